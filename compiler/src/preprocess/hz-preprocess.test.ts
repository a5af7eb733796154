import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { DType } from '../onnx/dtype';
import { encodeModel } from '../onnx/encode';
import { Graph, Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { colourTransform, HZ_PREPROCESS, InputSpec, insertPreprocess, NormType, readPreprocessRecords, RtType, TrainType } from './hz-preprocess';

// ------------------------------------------------------------------ independent expectations

/** The reference guide's input_type_train × input_type_rt table (Y entries), written out here. */
const TABLE: [TrainType, RtType][] = [
  ['yuv444', 'nv12'], ['yuv444', 'yuv444'],
  ['rgb', 'nv12'], ['rgb', 'yuv444'], ['rgb', 'rgb'], ['rgb', 'bgr'],
  ['bgr', 'nv12'], ['bgr', 'yuv444'], ['bgr', 'rgb'], ['bgr', 'bgr'],
  ['gray', 'gray'],
  ['featuremap', 'featuremap'],
];
const ALL_TRAIN: TrainType[] = ['rgb', 'bgr', 'yuv444', 'gray', 'featuremap'];
const ALL_RT: RtType[] = ['nv12', 'yuv444', 'rgb', 'bgr', 'gray', 'featuremap'];

/** ITU-T T.871 (JFIF) full-range YCbCr → RGB coefficients, as published. */
const JFIF = { rv: 1.402, gu: 0.344136286, gv: 0.714136286, bu: 1.772 };

const clamp255 = (v: number): number => Math.min(255, Math.max(0, v));

/**
 * One pixel of intermediate data (uint8 values, channels in the intermediate format's order:
 * YUV, RGB, BGR or G) as the training format sees it.
 */
function toTrain(px: number[], rt: RtType, train: TrainType, video: boolean): number[] {
  if (rt === 'nv12' || rt === 'yuv444') {
    let [y, u, v] = px;
    if (video) {
      // BT.601 studio range [16,235] / [16,240] expanded to [0,255]
      y = ((y - 16) * 255) / 219;
      u = ((u - 128) * 255) / 224 + 128;
      v = ((v - 128) * 255) / 224 + 128;
    }
    if (train === 'yuv444') return video ? [y, u, v].map(clamp255) : [y, u, v];
    const r = clamp255(y + JFIF.rv * (v - 128));
    const g = clamp255(y - JFIF.gu * (u - 128) - JFIF.gv * (v - 128));
    const b = clamp255(y + JFIF.bu * (u - 128));
    return train === 'rgb' ? [r, g, b] : [b, g, r];
  }
  if (rt === train) return px.slice();
  // rgb <-> bgr
  return [px[2], px[1], px[0]];
}

const channelsOf = (t: TrainType): number => (t === 'gray' ? 1 : 3);

function shapeOf(layout: 'NCHW' | 'NHWC', c: number): number[] {
  return layout === 'NCHW' ? [2, c, 4, 6] : [2, 4, 6, c];
}

/** Flat index of (n, c, h, w) in a tensor of `layout` with dims from shapeOf. */
function idx(layout: 'NCHW' | 'NHWC', C: number, n: number, c: number, h: number, w: number): number {
  return layout === 'NCHW' ? ((n * C + c) * 4 + h) * 6 + w : ((n * 4 + h) * 6 + w) * C + c;
}

/** Random intermediate data: the uint8 image and the int8 (x − 128) feed. */
function randomImage(rng: Rng, size: number): { u8: Uint8Array; feed: Int8Array } {
  const u8 = new Uint8Array(size);
  for (let i = 0; i < size; i++) u8[i] = rng.int(256);
  // make sure the extremes occur (saturation paths)
  u8[0] = 0;
  u8[1] = 255;
  const feed = new Int8Array(size);
  for (let i = 0; i < size; i++) feed[i] = u8[i] - 128;
  return { u8, feed };
}

/** The float input the original model expects for the image `u8`: colour conversion, then (v − mean) · scale. */
function expectedFloatInput(u8: Uint8Array, spec: InputSpec, mean: number[], scale: number[]): Float64Array {
  const C = channelsOf(spec.typeTrain);
  const video = spec.typeRt === 'nv12' && spec.spaceAndRange === 'bt601_video';
  const out = new Float64Array(u8.length);
  const L = spec.layoutTrain;
  for (let n = 0; n < 2; n++) {
    for (let h = 0; h < 4; h++) {
      for (let w = 0; w < 6; w++) {
        const px: number[] = [];
        for (let c = 0; c < C; c++) px.push(u8[idx(L, C, n, c, h, w)]);
        const t = toTrain(px, spec.typeRt, spec.typeTrain, video);
        for (let c = 0; c < C; c++) out[idx(L, C, n, c, h, w)] = (t[c] - mean[c]) * scale[c];
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ models

/**
 * The float model under test: output `ident` = the input itself, output `conv` = a 3×3 conv of it
 * (NHWC inputs go through a Transpose first, as exported TF models do).
 */
function originalModel(layout: 'NCHW' | 'NHWC', C: number, opts: { dtype?: DType; opset?: number; name?: string; seed?: number } = {}): Model {
  const dtype = opts.dtype ?? 'float32';
  const x = opts.name ?? 'data';
  const rng = new Rng(opts.seed ?? 7);
  const w = new Float32Array(2 * C * 9).map(() => rng.normal(0, 0.3));
  const b = Float32Array.from([0.25, -0.5]);
  const nodes: Node[] = [new Node({ opType: 'Identity', name: 'ident', inputs: [x], outputs: ['ident'] })];
  let convIn = x;
  if (layout === 'NHWC') {
    nodes.push(new Node({ opType: 'Transpose', name: 'to_nchw', inputs: [x], outputs: ['x_nchw'], attrs: { perm: { type: 'ints', value: [0, 3, 1, 2] } } }));
    convIn = 'x_nchw';
  }
  const inits = new Map<string, Tensor>([
    ['conv.weight', new Tensor('float32', [2, C, 3, 3], w)],
    ['conv.bias', new Tensor('float32', [2], b)],
  ]);
  if (dtype === 'float32') {
    nodes.push(new Node({ opType: 'Conv', name: 'conv', inputs: [convIn, 'conv.weight', 'conv.bias'], outputs: ['conv'], attrs: { kernel_shape: { type: 'ints', value: [3, 3] }, pads: { type: 'ints', value: [1, 1, 1, 1] } } }));
  } else {
    nodes.push(new Node({ opType: 'Cast', name: 'to_f32', inputs: [convIn], outputs: ['x_f32'], attrs: { to: { type: 'int', value: 1 } } }));
    nodes.push(new Node({ opType: 'Conv', name: 'conv', inputs: ['x_f32', 'conv.weight', 'conv.bias'], outputs: ['conv'], attrs: { kernel_shape: { type: 'ints', value: [3, 3] }, pads: { type: 'ints', value: [1, 1, 1, 1] } } }));
  }
  const g = new Graph({
    name: 'net',
    nodes,
    inputs: [{ name: x, type: { dtype, shape: shapeOf(layout, C) } }],
    outputs: [
      { name: 'ident', type: { dtype, shape: shapeOf(layout, C) } },
      { name: 'conv', type: { dtype: 'float32', shape: [2, 2, 4, 6] } },
    ],
    initializers: inits,
  });
  const opset = opts.opset ?? 13;
  return new Model(g, { irVersion: opset >= 14 ? 8 : 7, opsetImports: [{ domain: '', version: opset }] });
}

function maxRelErr(got: Tensor, want: ArrayLike<number>): number {
  const g = got.toNumbers();
  expect(g.length).toBe(want.length);
  let err = 0;
  let mag = 1;
  for (let i = 0; i < g.length; i++) {
    err = Math.max(err, Math.abs(g[i] - want[i]));
    mag = Math.max(mag, Math.abs(want[i]));
  }
  return err / mag;
}

/** Runs pre (int8 feed) and orig (float feed) on both engines; compares both outputs and the identity output with `want`. */
async function compareModels(pre: Model, orig: Model, feeds: { pre: Record<string, Tensor>; orig: Record<string, Tensor> }, want: Record<string, ArrayLike<number>>): Promise<void> {
  const refPre = new ReferenceEngine(pre).runSync(feeds.pre);
  const refOrig = new ReferenceEngine(orig).runSync(feeds.orig);
  const ortPre = await OrtEngine.create(pre);
  const ortOrig = await OrtEngine.create(orig);
  try {
    const oPre = await ortPre.run(feeds.pre);
    const oOrig = await ortOrig.run(feeds.orig);
    for (const name of Object.keys(refOrig)) {
      const a = refOrig[name].toNumbers();
      const b = oOrig[name].toNumbers();
      expect(maxRelErr(refPre[name], a)).toBeLessThanOrEqual(1e-4);
      expect(maxRelErr(oPre[name], b)).toBeLessThanOrEqual(1e-4);
    }
    for (const [name, w] of Object.entries(want)) {
      expect(maxRelErr(refPre[name], w)).toBeLessThanOrEqual(1e-4);
      expect(maxRelErr(oPre[name], w)).toBeLessThanOrEqual(1e-4);
    }
  } finally {
    await ortPre.dispose();
    await ortOrig.dispose();
  }
}

const MEANS3 = [103.94, 116.78, 123.68];
const SCALES3 = [0.017, 0.0175, 0.0171];

function normParams(norm: NormType, C: number, perChannel: boolean): { mean?: number[]; scale?: number[]; effMean: number[]; effScale: number[] } {
  const mean = perChannel ? MEANS3.slice(0, C) : [127.5];
  const scale = perChannel ? SCALES3.slice(0, C) : [1 / 127.5];
  const full = (v: number[]): number[] => (v.length === 1 ? new Array<number>(C).fill(v[0]) : v);
  switch (norm) {
    case 'data_mean_and_scale':
      return { mean, scale, effMean: full(mean), effScale: full(scale) };
    case 'data_mean':
      return { mean, effMean: full(mean), effScale: new Array<number>(C).fill(1) };
    case 'data_scale':
      return { scale, effMean: new Array<number>(C).fill(0), effScale: full(scale) };
    default:
      return { effMean: new Array<number>(C).fill(0), effScale: new Array<number>(C).fill(1) };
  }
}

// ------------------------------------------------------------------ the numeric matrix

interface Case {
  train: TrainType;
  rt: RtType;
  layout: 'NCHW' | 'NHWC';
  range: 'regular' | 'bt601_video';
  norm: NormType;
  perChannel: boolean;
}

const NORMS: NormType[] = ['data_mean_and_scale', 'data_mean', 'data_scale', 'no_preprocess'];
const CASES: Case[] = [];
for (const [train, rt] of TABLE) {
  if (train === 'featuremap') continue;
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const range of rt === 'nv12' ? (['regular', 'bt601_video'] as const) : (['regular'] as const)) {
      for (const norm of NORMS) {
        for (const perChannel of norm === 'no_preprocess' ? [false] : [false, true]) CASES.push({ train, rt, layout, range, norm, perChannel });
      }
    }
  }
}

async function runCase(c: Case, opts: { opset?: number; dtype?: DType } = {}): Promise<Model> {
  const C = channelsOf(c.train);
  const orig = originalModel(c.layout, C, opts);
  const np = normParams(c.norm, C, c.perChannel);
  const spec: InputSpec = { name: 'data', typeTrain: c.train, typeRt: c.rt, layoutTrain: c.layout, spaceAndRange: c.range, normType: c.norm, mean: np.mean, scale: np.scale };
  const { model: pre } = insertPreprocess(orig, [spec]);
  const shape = shapeOf(c.layout, C);
  const { u8, feed } = randomImage(new Rng(`${c.train}-${c.rt}-${c.layout}-${c.range}-${c.norm}-${c.perChannel}`), shape.reduce((p, q) => p * q, 1));
  const want = expectedFloatInput(u8, spec, np.effMean, np.effScale);
  const dtype = opts.dtype ?? 'float32';
  await compareModels(
    pre,
    orig,
    { pre: { data: new Tensor('int8', shape, feed) }, orig: { data: tensorFrom(dtype, shape, want) } },
    dtype === 'float32' ? { ident: want } : {},
  );
  return pre;
}

describe('insertPreprocess: numerics for every supported type pair', () => {
  it.each(CASES.map((c) => [`${c.train} <- ${c.rt} ${c.layout} ${c.range} ${c.norm}${c.perChannel ? ' per-channel' : ''}`, c] as const))('%s', async (_label, c) => {
    await runCase(c);
  });

  it.each([9, 11, 17])('works with opset %i (Clip bounds as attributes before 11)', async (opset) => {
    for (const c of [
      { train: 'bgr', rt: 'nv12', layout: 'NCHW', range: 'bt601_video', norm: 'data_mean_and_scale', perChannel: true },
      { train: 'rgb', rt: 'bgr', layout: 'NHWC', range: 'regular', norm: 'data_scale', perChannel: false },
      { train: 'rgb', rt: 'yuv444', layout: 'NHWC', range: 'regular', norm: 'data_mean', perChannel: true },
    ] as Case[]) {
      const pre = await runCase(c, { opset });
      const clip = pre.graph.nodes.find((n) => n.opType === 'Clip');
      if (clip) expect(clip.inputs).toHaveLength(opset < 11 ? 1 : 3);
    }
  });

  it('casts to a float16 model input', async () => {
    const pre = await runCase({ train: 'rgb', rt: 'nv12', layout: 'NCHW', range: 'regular', norm: 'data_mean_and_scale', perChannel: true }, { dtype: 'float16' });
    const last = pre.graph.nodes.find((n) => n.outputs[0] === readPreprocessRecords(pre)[0].output)!;
    expect(last.opType).toBe('Cast');
    expect(pre.graph.typeOf(last.outputs[0])?.dtype).toBe('float16');
  });

  it('adds exactly the documented nodes', () => {
    const kinds = (train: TrainType, rt: RtType, layout: 'NCHW' | 'NHWC', norm: NormType, range: 'regular' | 'bt601_video' = 'regular'): string[] => {
      const np = normParams(norm, channelsOf(train), true);
      const { model } = insertPreprocess(originalModel(layout, channelsOf(train)), [
        { name: 'data', typeTrain: train, typeRt: rt, layoutTrain: layout, normType: norm, mean: np.mean, scale: np.scale, spaceAndRange: range },
      ]);
      return model.graph.nodes.filter((n) => n.name.startsWith('HzPreprocess_data')).map((n) => n.opType);
    };
    expect(kinds('rgb', 'rgb', 'NCHW', 'no_preprocess')).toEqual(['Cast', 'Conv']);
    expect(kinds('rgb', 'rgb', 'NHWC', 'no_preprocess')).toEqual(['Cast', 'Add']);
    expect(kinds('rgb', 'bgr', 'NCHW', 'data_mean_and_scale')).toEqual(['Cast', 'Gather', 'Conv']);
    expect(kinds('bgr', 'nv12', 'NCHW', 'data_mean_and_scale')).toEqual(['Cast', 'Conv', 'Clip', 'Conv']);
    expect(kinds('bgr', 'nv12', 'NHWC', 'data_scale')).toEqual(['Cast', 'MatMul', 'Clip', 'Mul', 'Add']);
    // the video-range conversion has a bias in the offset domain
    expect(kinds('bgr', 'nv12', 'NHWC', 'data_scale', 'bt601_video')).toEqual(['Cast', 'MatMul', 'Add', 'Clip', 'Mul', 'Add']);
    expect(kinds('yuv444', 'nv12', 'NCHW', 'data_mean')).toEqual(['Cast', 'Conv']);
    expect(kinds('gray', 'gray', 'NHWC', 'data_mean_and_scale')).toEqual(['Cast', 'Mul', 'Add']);
  });
});

// ------------------------------------------------------------------ structure, metadata, validity

describe('insertPreprocess: the written model', () => {
  const spec = (over: Partial<InputSpec> = {}): InputSpec => ({
    name: 'data', typeTrain: 'bgr', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: MEANS3, scale: [0.017], ...over,
  });

  it('keeps the input name, makes it int8 in the train layout, marks the stage and leaves the original alone', () => {
    const orig = originalModel('NHWC', 3);
    orig.graph.valueInfo.set('data', { name: 'data', type: { dtype: 'float32', shape: [2, 4, 6, 3] } });
    const before = encodeModel(orig);
    const { model, notes } = insertPreprocess(orig, [spec({ layoutTrain: 'NHWC' })]);
    expect(Buffer.from(encodeModel(orig)).equals(Buffer.from(before))).toBe(true);
    const g = model.graph;
    expect(g.realInputs.map((v) => v.name)).toEqual(['data']);
    expect(g.typeOf('data')).toEqual({ dtype: 'int8', shape: [2, 4, 6, 3] });
    expect(g.inputs[0].docString).toMatch(/hz_preprocess: yuv444_128, int8/);
    const recs = readPreprocessRecords(model);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ input: 'data', intermediate: 'yuv444_128', typeTrain: 'bgr', typeRt: 'nv12', layout: 'NHWC', spaceAndRange: 'regular', mean: MEANS3, scale: [0.017, 0.017, 0.017] });
    const stage = g.nodes.filter((n) => recs[0].nodes.includes(n.name));
    expect(stage).toHaveLength(recs[0].nodes.length);
    for (const n of stage) {
      expect(n.name.startsWith('HzPreprocess_data_')).toBe(true);
      expect(n.docString).toMatch(new RegExp(`^${HZ_PREPROCESS}`));
    }
    // the model's own nodes read the stage's output, and only the stage reads the input
    expect(g.consumers().get('data')!.map((n) => n.name)).toEqual([recs[0].nodes[0]]);
    expect(g.nodes.find((n) => n.name === 'ident')!.inputs).toEqual([recs[0].output]);
    expect(g.nodes.find((n) => n.name === 'to_nchw')!.inputs).toEqual([recs[0].output]);
    expect(g.typeOf(recs[0].output)?.dtype).toBe('float32');
    expect(notes.join('\n')).toMatch(/bgr <- nv12, input yuv444_128 int8 NHWC/);
    g.validate();
  });

  it('leaves featuremap inputs untouched next to an image input', () => {
    const orig = originalModel('NCHW', 3);
    orig.graph.inputs.push({ name: 'fm', type: { dtype: 'float32', shape: [2, 5] } });
    orig.graph.nodes.push(new Node({ opType: 'Relu', name: 'fm_relu', inputs: ['fm'], outputs: ['fm_out'] }));
    orig.graph.outputs.push({ name: 'fm_out', type: { dtype: 'float32', shape: [2, 5] } });
    const { model, notes } = insertPreprocess(orig, [
      spec({ typeRt: 'rgb' }),
      { name: 'fm', typeTrain: 'featuremap', typeRt: 'featuremap', layoutTrain: 'NCHW', normType: 'data_mean', mean: [1] },
    ]);
    expect(model.graph.typeOf('fm')).toEqual({ dtype: 'float32', shape: [2, 5] });
    expect(model.graph.nodes.find((n) => n.name === 'fm_relu')!.inputs).toEqual(['fm']);
    expect(model.graph.nodes.some((n) => n.name.startsWith('HzPreprocess_fm'))).toBe(false);
    expect(readPreprocessRecords(model).map((r) => r.input)).toEqual(['data']);
    expect(notes.join('\n')).toMatch(/'fm': featuremap input, norm_type data_mean ignored/);
  });

  it('handles several image inputs, each with its own stage', async () => {
    // two inputs added together: a (rgb <- nv12, NCHW), b (gray <- gray, NHWC)
    const g = new Graph({
      name: 'two',
      nodes: [
        new Node({ opType: 'Identity', name: 'ia', inputs: ['a'], outputs: ['oa'] }),
        new Node({ opType: 'Identity', name: 'ib', inputs: ['b'], outputs: ['ob'] }),
      ],
      inputs: [
        { name: 'a', type: { dtype: 'float32', shape: [2, 3, 4, 6] } },
        { name: 'b', type: { dtype: 'float32', shape: [2, 4, 6, 1] } },
      ],
      outputs: [{ name: 'oa' }, { name: 'ob' }],
    });
    const orig = new Model(g, { opsetImports: [{ domain: '', version: 13 }] });
    const sa: InputSpec = { name: 'a', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: MEANS3, scale: SCALES3 };
    const sb: InputSpec = { name: 'b', typeTrain: 'gray', typeRt: 'gray', layoutTrain: 'NHWC', normType: 'data_scale', scale: [0.5] };
    const { model } = insertPreprocess(orig, [sa, sb]);
    const rng = new Rng(3);
    const ia = randomImage(rng, 144);
    const ib = randomImage(rng, 48);
    const wa = expectedFloatInput(ia.u8, sa, MEANS3, SCALES3);
    const wb = expectedFloatInput(ib.u8, sb, [0], [0.5]);
    await compareModels(
      model,
      orig,
      {
        pre: { a: new Tensor('int8', [2, 3, 4, 6], ia.feed), b: new Tensor('int8', [2, 4, 6, 1], ib.feed) },
        orig: { a: tensorFrom('float32', [2, 3, 4, 6], wa), b: tensorFrom('float32', [2, 4, 6, 1], wb) },
      },
      { oa: wa, ob: wb },
    );
    expect(readPreprocessRecords(model).map((r) => [r.input, r.intermediate])).toEqual([['a', 'yuv444_128'], ['b', 'GRAY_128']]);
  });

  it('passes onnx.checker (full check, strict shape inference)', () => {
    const py = '/usr/bin/python3';
    if (!fs.existsSync(py)) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hzpre-'));
    const files: string[] = [];
    try {
      for (const [train, rt] of TABLE) {
        for (const layout of ['NCHW', 'NHWC'] as const) {
          for (const opset of [9, 13]) {
            const C = train === 'featuremap' ? 3 : channelsOf(train);
            const ranges = rt === 'nv12' ? (['regular', 'bt601_video'] as const) : (['regular'] as const);
            for (const range of ranges) {
              const { model } = insertPreprocess(originalModel(layout, C, { opset }), [
                { name: 'data', typeTrain: train, typeRt: rt, layoutTrain: layout, spaceAndRange: range, normType: 'data_mean_and_scale', mean: [128], scale: [0.0078125] },
              ]);
              const file = path.join(dir, `${train}-${rt}-${layout}-${opset}-${range}.onnx`);
              fs.writeFileSync(file, encodeModel(model));
              files.push(file);
            }
          }
        }
      }
      const code = 'import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\n    onnx.shape_inference.infer_shapes(onnx.load(f), check_type=True, strict_mode=True)\nprint(len(sys.argv) - 1)';
      const r = spawnSync(py, ['-c', code, ...files], { encoding: 'utf8' });
      if (/No module named/.test(r.stderr)) return;
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(String(files.length));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('documents the colour coefficients it uses', () => {
    const t = colourTransform('rgb', 'yuv444', 'regular');
    if (!t || t === 'swap') throw new Error('expected a matrix');
    const want = [
      [1, 0, JFIF.rv],
      [1, -JFIF.gu, -JFIF.gv],
      [1, JFIF.bu, 0],
    ];
    t.matrix.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(want[i][j], 8)));
    expect(t.bias).toEqual([0, 0, 0]);
    const v = colourTransform('rgb', 'nv12', 'bt601_video');
    if (!v || v === 'swap') throw new Error('expected a matrix');
    // the BT.601 studio-range coefficients as usually quoted
    const video = [
      [1.164383, 0, 1.596027],
      [1.164383, -0.391762, -0.812968],
      [1.164383, 2.017232, 0],
    ];
    v.matrix.forEach((row, i) => row.forEach((x, j) => expect(x).toBeCloseTo(video[i][j], 5)));
    expect(colourTransform('bgr', 'rgb', 'regular')).toBe('swap');
    expect(colourTransform('rgb', 'rgb', 'regular')).toBeUndefined();
    expect(colourTransform('yuv444', 'yuv444', 'regular')).toBeUndefined();
  });

  it('treats bt601_video on a non-nv12 input as regular, with a note', () => {
    const { model, notes } = insertPreprocess(originalModel('NCHW', 3), [spec({ typeRt: 'yuv444', spaceAndRange: 'bt601_video' })]);
    expect(readPreprocessRecords(model)[0].spaceAndRange).toBe('regular');
    expect(notes.join('\n')).toMatch(/bt601_video applies to nv12 only/);
  });

  it('accepts an integer model input only for exact stages', async () => {
    const orig = originalModel('NCHW', 3, { dtype: 'uint8' });
    const { model } = insertPreprocess(orig, [spec({ typeTrain: 'rgb', typeRt: 'bgr', normType: 'no_preprocess', mean: undefined, scale: undefined })]);
    const { u8, feed } = randomImage(new Rng(11), 144);
    const want = expectedFloatInput(u8, spec({ typeTrain: 'rgb', typeRt: 'bgr' }), [0, 0, 0], [1, 1, 1]);
    const out = new ReferenceEngine(model).runSync({ data: new Tensor('int8', [2, 3, 4, 6], feed) });
    expect(out.ident.dtype).toBe('uint8');
    expect(out.ident.toNumbers()).toEqual(Array.from(want));
    expect(() => insertPreprocess(orig, [spec({ typeTrain: 'rgb', typeRt: 'rgb' })])).toThrow(/uint8 cannot hold/);
  });

  it('notes a configured value the norm type does not use', () => {
    const { notes } = insertPreprocess(originalModel('NCHW', 3), [spec({ normType: 'data_mean', scale: [2] })]);
    expect(notes.join('\n')).toMatch(/scale_value ignored, norm_type data_mean does not use it/);
  });
});

// ------------------------------------------------------------------ errors

describe('insertPreprocess: user errors', () => {
  const base: InputSpec = { name: 'data', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [128], scale: [0.01] };

  function ptq(fn: () => unknown): PtqError {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(PtqError);
      expect((e as PtqError).oneLine()).not.toMatch(/\n/);
      return e as PtqError;
    }
    throw new Error('expected a PtqError');
  }

  const unsupported: [TrainType, RtType][] = [];
  for (const t of ALL_TRAIN) for (const r of ALL_RT) if (!TABLE.some(([a, b]) => a === t && b === r)) unsupported.push([t, r]);

  it('the table has 18 unsupported pairs', () => expect(unsupported).toHaveLength(18));

  it.each(unsupported)('rejects input_type_train %s with input_type_rt %s', (train, rt) => {
    const e = ptq(() => insertPreprocess(originalModel('NCHW', channelsOf(train)), [{ ...base, typeTrain: train, typeRt: rt }]));
    expect(e.code).toBe('E_CONFIG');
    expect(e.message).toContain(`input_type_rt ${rt}`);
    expect(e.message).toContain(`input_type_train is ${train}`);
    const allowed = TABLE.filter(([a]) => a === train).map(([, b]) => b);
    expect(e.message).toContain(`allowed input_type_rt for ${train}: ${allowed.join(', ')}`);
    expect(e.fix).toContain(allowed.join(', '));
  });

  it('rejects unknown type names with the allowed values', () => {
    const e1 = ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, typeTrain: 'hsv' as TrainType }]));
    expect(e1.message).toMatch(/input_type_train 'hsv' is not supported \(allowed: rgb, bgr, yuv444, gray, featuremap\)/);
    const e2 = ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, typeRt: 'yuv420' as RtType }]));
    expect(e2.message).toMatch(/input_type_rt 'yuv420' is not supported \(allowed: nv12, yuv444, rgb, bgr, gray, featuremap\)/);
  });

  it('needs mean/scale for the norm types that use them, with 1 or C values', () => {
    expect(ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, normType: 'data_mean', mean: undefined }])).message).toMatch(/data_mean needs mean_value/);
    expect(ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, normType: 'data_scale', scale: [] }])).message).toMatch(/data_scale needs scale_value/);
    const e = ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, mean: [1, 2] }]));
    expect(e.subject).toBe('input_parameters.mean_value');
    expect(e.message).toMatch(/mean_value has 2 values; rgb has 3 channels \(allowed: 1 or 3 values\)/);
    expect(ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, scale: [NaN] }])).message).toMatch(/not a finite number/);
  });

  it('catches a wrong layout through the channel dimension', () => {
    const e = ptq(() => insertPreprocess(originalModel('NHWC', 3), [base]));
    expect(e.message).toMatch(/shape 2x4x6x3; with input_layout_train NCHW its channel dimension is 4, but rgb has 3/);
    expect(e.fix).toBe('set input_layout_train to NHWC');
    const g = ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, typeTrain: 'gray', typeRt: 'gray' }]));
    expect(g.message).toMatch(/gray has 1/);
  });

  it('rejects unknown, repeated and already preprocessed inputs', () => {
    expect(ptq(() => insertPreprocess(originalModel('NCHW', 3), [{ ...base, name: 'image' }])).message).toMatch(/'image' is not an input of the model \(its inputs: data\)/);
    expect(ptq(() => insertPreprocess(originalModel('NCHW', 3), [base, base])).message).toMatch(/configured twice/);
    const once = insertPreprocess(originalModel('NCHW', 3), [base]).model;
    expect(ptq(() => insertPreprocess(once, [base])).code).toBe('E_PREPROCESS_TWICE');
  });

  it('rejects non-4-D image inputs', () => {
    const m = originalModel('NCHW', 3);
    m.graph.inputs[0].type = { dtype: 'float32', shape: [3, 4, 6] };
    expect(ptq(() => insertPreprocess(m, [base])).message).toMatch(/rank 3\); image inputs \(rgb\) must be 4-D/);
  });
});
