import { GraphBuilder, Value } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { tensorFrom } from '../onnx/tensor';
import { BinEngine } from '../runtime/bin-engine';
import { decodeBin, encodeBin } from './bin-format';
import { compileQuantizedModel, CompileOptions } from './compile';
import { compareWithReference, PipelineModels, PipelineOptions, quantizeThroughPipeline } from './compile.test.util';

/**
 * The compiler and the `.bin` runtime on quantized models built through the real pipeline
 * (HzPreprocess, optimisation, placement, calibration, quantization): the `.bin`'s outputs
 * equal the ReferenceEngine's on `***_quantized_model.onnx` bit for bit, at every
 * optimize_level, for image (nv12, rgb, gray), featuremap and several inputs, CPU ops between
 * BPU subgraphs, int8 / int16 / float outputs, and the less common operators.
 */

jest.setTimeout(120_000);

const LEVELS = ['O0', 'O1', 'O2', 'O3'] as const;

function roundTrip(q: Model, opts: CompileOptions): { engine: BinEngine; model: ReturnType<typeof compileQuantizedModel>['model'] } {
  const { model } = compileQuantizedModel(q, opts);
  const bytes = encodeBin({ formatVersion: 1, packed: false, models: [model] });
  const decoded = decodeBin(bytes, 'test.bin').models[0];
  return { engine: new BinEngine(decoded), model: decoded };
}

function expectExact(m: PipelineModels, opts: CompileOptions, samples: number, seed = 1): ReturnType<typeof roundTrip>['model'] {
  const { engine, model } = roundTrip(m.quantized, { cpuNodes: m.cpuNodes, ...opts });
  const r = compareWithReference((f) => engine.runSync(f), model, m.quantized, samples, seed);
  expect(r.mismatch).toBeUndefined();
  expect(r.samples).toBe(samples);
  expect(r.elements).toBeGreaterThan(0);
  return model;
}

const opTypes = (m: ReturnType<typeof roundTrip>['model']): string[] => {
  // every int8 / int16 value a BPU op writes carries its scale
  for (const s of m.segments) {
    if (s.kind !== 'bpu') continue;
    for (const o of s.ops.flatMap((op) => op.outputs)) {
      const v = m.values.find((x) => x.name === o);
      if (v && (v.dtype === 'int8' || v.dtype === 'int16') && !(v.scale > 0)) throw new Error(`value '${o}' has no scale`);
    }
  }
  return m.segments.flatMap((s) => s.ops.map((o) => o.type));
};

/** conv-bn-relu, maxpool, residual block, depthwise + relu6, sigmoid, GAP, FC: an rgb image net. */
function imageNet(size = 16): Model {
  const b = new GraphBuilder('imagenet', { seed: 11 });
  const x = b.input('data', 'float32', [1, 3, size, size]);
  let y = b.relu(b.batchNorm(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'stem' })));
  y = b.maxPool(y, { kernel: 2, stride: 2 });
  const z = b.relu(b.batchNorm(b.conv(y, { outChannels: 8, kernel: 3, pad: 1 })));
  y = b.relu(b.add(y, b.batchNorm(b.conv(z, { outChannels: 8, kernel: 3, pad: 1 }), { gain: 0.5 })));
  y = b.clip(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, group: 8, name: 'dw' }), 0, 6);
  y = b.sigmoid(b.conv(y, { outChannels: 12, kernel: 1, name: 'pw' }));
  b.output(b.gemm(b.flatten(b.globalAvgPool(y)), 10, { name: 'fc' }), 'logits');
  return b.build();
}

const rgbPre = (typeRt: 'nv12' | 'rgb' | 'bgr' | 'yuv444', layoutTrain: 'NCHW' | 'NHWC' = 'NCHW'): PipelineOptions['preprocess'] => [
  { name: 'data', typeTrain: 'rgb', typeRt, layoutTrain, normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174] },
];

describe('image inputs', () => {
  it('nv12 on bernoulli2: Preprocess, NHWC convolutions, fusions; bit-exact at every level', () => {
    const m = quantizeThroughPipeline(imageNet(), { preprocess: rgbPre('nv12') });
    const arenas: number[] = [];
    for (const level of LEVELS) {
      const model = expectExact(m, { optimizeLevel: level }, 3);
      arenas.push(model.arenaBytes);
      expect(model.inputs[0]).toMatchObject({ name: 'data', dtype: 'uint8', shape: [1, 24, 16], typeRt: 'nv12' });
      const types = opTypes(model);
      expect(types).toContain('Preprocess');
      expect(types).toContain('Lut');
      expect(types).toContain('GlobalAvgPool');
      expect(types).toContain('MaxPool');
      if (level === 'O0') expect(types).toContain('Clip');
      else expect(types).not.toContain('Clip');
      // the Add of the residual block is fused into the conv from O1 on
      expect(types.includes('Eltwise')).toBe(level === 'O0');
      // BPU activations of rank 4 are NHWC
      const convOut = model.values.find((v) => v.name === model.segments.flatMap((s) => s.ops).find((o) => o.name === 'stem')?.outputs[0]);
      expect(convOut?.layout).toBe('NHWC');
    }
    expect(arenas[3]).toBeLessThanOrEqual(arenas[1]);
    expect(arenas[1]).toBeLessThan(arenas[0]);
  });

  it('rgb NCHW and NHWC at run time, bgr into an rgb model, yuv444; NHWC-trained models', () => {
    for (const [typeRt, layoutRt] of [['rgb', 'NCHW'], ['rgb', 'NHWC'], ['bgr', 'NHWC'], ['yuv444', 'NCHW']] as const) {
      const m = quantizeThroughPipeline(imageNet(8), { preprocess: rgbPre(typeRt), seed: 2 });
      const model = expectExact(m, { optimizeLevel: 'O3', inputs: { data: { layoutRt } } }, 2);
      expect(model.inputs[0]).toMatchObject({ typeRt, layout: layoutRt, shape: layoutRt === 'NHWC' ? [1, 8, 8, 3] : [1, 3, 8, 8] });
    }
    // a model trained on NHWC images (its own Transpose to NCHW), on bayes: the input keeps NHWC
    const b = new GraphBuilder('nhwc', { seed: 3 });
    const x = b.input('data', 'float32', [1, 8, 8, 3]);
    const [t] = b.node('Transpose', [x], { perm: [0, 3, 1, 2] }, 1, { shapes: [[1, 3, 8, 8]] });
    b.output(b.relu(b.conv(t, { outChannels: 4, kernel: 3, pad: 1 })), 'out');
    const m = quantizeThroughPipeline(b.build(), { preprocess: rgbPre('rgb', 'NHWC'), march: 'bayes' });
    for (const level of ['O0', 'O3'] as const) expectExact(m, { optimizeLevel: level, inputs: { data: { layoutRt: 'NCHW' } } }, 2);
  });

  it('nv12 into a bayes model trained on NCHW', () => {
    const m = quantizeThroughPipeline(imageNet(8), { preprocess: rgbPre('nv12'), march: 'bayes', seed: 5 });
    expect(m.quantized.graph.inputs[0].type?.shape).toEqual([1, 3, 8, 8]);
    const model = expectExact(m, { optimizeLevel: 'O3', march: 'bayes' }, 3);
    expect(model.inputs[0]).toMatchObject({ shape: [1, 12, 8], typeRt: 'nv12' });
  });

  it('gray input, a batch of 2', () => {
    const b = new GraphBuilder('gray', { seed: 4 });
    const x = b.input('data', 'float32', [2, 1, 10, 10]);
    let y = b.relu(b.conv(x, { outChannels: 6, kernel: 3, stride: 2, pad: [1, 1, 0, 0] }));
    y = b.avgPool(y, { kernel: 2, stride: 1 });
    b.output(b.gemm(b.flatten(b.globalAvgPool(y)), 3), 'out');
    const m = quantizeThroughPipeline(b.build(), {
      preprocess: [{ name: 'data', typeTrain: 'gray', typeRt: 'gray', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [128], scale: [0.0172] }],
    });
    for (const level of ['O0', 'O2'] as const) {
      const model = expectExact(m, { optimizeLevel: level, inputs: { data: { layoutRt: 'NHWC' } } }, 3);
      expect(model.inputs[0].shape).toEqual([2, 10, 10, 1]);
      expect(opTypes(model)).toContain('AvgPool');
    }
  });
});

describe('featuremap inputs, several inputs and outputs, CPU ops', () => {
  /** two featuremap inputs, convs on each, an Add and a Concat of different scales, two outputs */
  function twoInputs(): Model {
    const b = new GraphBuilder('two', { seed: 5 });
    const a = b.input('a', 'float32', [1, 4, 8, 8]);
    const c = b.input('b', 'float32', [1, 4, 8, 8]);
    const ya = b.relu(b.conv(a, { outChannels: 8, kernel: 3, pad: 1 }));
    const yc = b.conv(c, { outChannels: 8, kernel: 1 });
    const s = b.add(ya, yc, 'sum');
    const cat = b.concat([ya, s], 1, 'cat');
    b.output(b.conv(cat, { outChannels: 4, kernel: 1, name: 'head1' }), 'out1');
    b.output(b.globalAvgPool(s, 'gap'), 'out2');
    return b.build();
  }

  it('featuremap inputs (NCHW and NHWC at run time), two outputs, requantising Concat', () => {
    const m = quantizeThroughPipeline(twoInputs());
    for (const level of LEVELS) {
      const model = expectExact(m, { optimizeLevel: level, inputs: { b: { layoutRt: 'NHWC' } } }, 3);
      expect(model.inputs.map((i) => [i.name, i.dtype, i.typeRt])).toEqual([['a', 'float32', 'featuremap'], ['b', 'float32', 'featuremap']]);
      // b is given channels-last: quantized as it is, no layout conversion before the BPU
      expect(model.inputs[1]).toMatchObject({ layout: 'NHWC', shape: [1, 8, 8, 4] });
      const bq = model.segments.flatMap((s) => s.ops).find((o) => o.type === 'Quantize' && o.inputs[0] === 'b')!;
      expect(model.values.find((v) => v.name === bq.outputs[0])?.layout).toBe('NHWC');
      expect(model.outputs.map((o) => o.name)).toEqual(['out1', 'out2']);
      expect(opTypes(model).filter((t) => t === 'Quantize')).toHaveLength(2);
      expect(opTypes(model)).toContain('Concat');
    }
  });

  it('int8 outputs (set_model_output_int8)', () => {
    const m = quantizeThroughPipeline(twoInputs(), { outputType: 'int8' });
    const model = expectExact(m, { optimizeLevel: 'O3' }, 3);
    expect(model.outputs.map((o) => o.dtype)).toEqual(['int8', 'int8']);
    expect(model.outputs.every((o) => o.scale > 0)).toBe(true);
  });

  it('a CPU op between two BPU subgraphs (Softmax) and a node forced onto the CPU (run_on_cpu)', () => {
    const b = new GraphBuilder('cpu', { seed: 6 });
    const x = b.input('x', 'float32', [1, 4, 8, 8]);
    const y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'c1' }));
    const sm = b.softmax(y, 1, 'soft');
    const z = b.relu(b.conv(sm, { outChannels: 8, kernel: 3, pad: 1, name: 'c2' }), 'r2');
    const w = b.add(z, b.conv(y, { outChannels: 8, kernel: 1, name: 'c3' }), 'forced_add');
    b.output(b.conv(w, { outChannels: 4, kernel: 1, name: 'c4' }), 'out');
    b.output(y, 'early');
    const m = quantizeThroughPipeline(b.build(), { runOnCpu: ['forced_add'] });
    expect(m.cpuNodes.has('forced_add')).toBe(true);
    for (const level of LEVELS) {
      const model = expectExact(m, { optimizeLevel: level }, 3);
      const bpu = model.segments.filter((s) => s.kind === 'bpu');
      expect(bpu.length).toBeGreaterThanOrEqual(2);
      const cpuOps = model.segments.filter((s) => s.kind === 'cpu').flatMap((s) => s.ops.map((o) => o.type));
      expect(cpuOps).toEqual(expect.arrayContaining(['Softmax', 'Add', 'Quantize', 'Dequantize', 'LayoutConvert']));
      const names = model.segments.flatMap((s) => s.ops.map((o) => o.name));
      expect(names.some((n) => /_subgraph_\d+_output_layout_convert/.test(n))).toBe(true);
      expect(names.some((n) => /_subgraph_\d+_input_layout_convert/.test(n))).toBe(true);
    }
  });
});

describe('int16 outputs (bayes) and the less common operators', () => {
  it('set_model_output_int16: conv, requantising and passive outputs, FC', () => {
    const b = new GraphBuilder('i16', { seed: 7 });
    const x = b.input('x', 'float32', [1, 4, 8, 8]);
    const y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 }));
    b.output(b.conv(y, { outChannels: 4, kernel: 1, name: 'headconv' }), 'conv_out');
    b.output(b.add(y, b.conv(y, { outChannels: 8, kernel: 1 }), 'addout'), 'add_out');
    b.output(b.maxPool(y, { kernel: 2, stride: 2 }), 'pool_out');
    b.output(b.gemm(b.flatten(b.globalAvgPool(y)), 5, { name: 'fcout' }), 'fc_out');
    const m = quantizeThroughPipeline(b.build(), { march: 'bayes', outputType: 'int16' });
    for (const level of ['O0', 'O3'] as const) {
      const model = expectExact(m, { optimizeLevel: level, march: 'bayes' }, 3);
      expect(model.outputs.map((o) => o.dtype)).toEqual(['int16', 'int16', 'int16', 'int16']);
      expect(model.outputs.every((o) => o.scale > 0)).toBe(true);
      expect(opTypes(model)).toContain('ConvFloatAcc');
    }
  });

  it('ConvTranspose, Resize (nearest and linear), Transpose, Pad, Slice, Mul by a constant, grouped and dilated convs, PRelu', () => {
    const b = new GraphBuilder('misc', { seed: 8 });
    const x = b.input('x', 'float32', [1, 4, 6, 6]);
    const wt = b.initializer(b.randomTensor([4, 4, 3, 3], 0.3), 'deconv.weight');
    const bt = b.initializer(b.randomTensor([4], 0.1), 'deconv.bias');
    let [y] = b.node('ConvTranspose', [x, wt, bt], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1], kernel_shape: [3, 3] }, 1, { shapes: [[1, 4, 12, 12]] });
    y = b.relu(y);
    const sc = b.initializer(tensorFrom('float32', [4], [1, 1, 0.5, 0.5]), 'up.scales');
    const [near] = b.node('Resize', [y, '', sc], { mode: 'nearest' }, 1, { shapes: [[1, 4, 6, 6]] });
    const [lin] = b.node('Resize', [y, '', sc], { mode: 'linear' }, 1, { shapes: [[1, 4, 6, 6]] });
    let z: Value = b.add(near, lin);
    [z] = b.node('Transpose', [z], { perm: [0, 1, 3, 2] }, 1, { shapes: [[1, 4, 6, 6]] });
    z = b.conv(z, { outChannels: 8, kernel: 3, pad: 2, dilation: 2, group: 2 });
    const slope = b.initializer(tensorFrom('float32', [8, 1, 1], [0.1, 0.2, 0.1, 0.3, 0.1, 0.2, 0.1, 0.25]), 'prelu.slope');
    [z] = b.node('PRelu', [z, slope], {}, 1, { shapes: [[1, 8, 6, 6]] });
    const pads = b.initializer(tensorFrom('int64', [8], [0, 0, 1, 0, 0, 0, 0, 1]), 'pad.pads');
    [z] = b.node('Pad', [z, pads], { mode: 'constant' }, 1, { shapes: [[1, 8, 7, 7]] });
    const st = b.initializer(tensorFrom('int64', [2], [1, 0]), 'slice.starts');
    const en = b.initializer(tensorFrom('int64', [2], [6, 5]), 'slice.ends');
    const ax = b.initializer(tensorFrom('int64', [2], [2, 3]), 'slice.axes');
    [z] = b.node('Slice', [z, st, en, ax], {}, 1, { shapes: [[1, 8, 5, 5]] });
    const k = b.initializer(tensorFrom('float32', [1, 8, 1, 1], [0.5, 1, 1.5, 2, -1, 0.25, 3, 1]), 'mul.k');
    [z] = b.node('Mul', [z, k], {}, 1, { shapes: [[1, 8, 5, 5]] });
    b.output(b.reshape(z, [1, -1], 'flat'), 'out');
    const m = quantizeThroughPipeline(b.build());
    for (const level of LEVELS) {
      const model = expectExact(m, { optimizeLevel: level }, 3);
      const types = opTypes(model);
      expect(types).toEqual(expect.arrayContaining(['ConvFloatAcc', 'Resize', 'Requant', 'Eltwise', 'Conv']));
    }
  });
});

describe('kernels', () => {
  it('a deep conv whose sums are cut into exact chunks, depthwise with a channel multiplier and with 6 channels, MatMul rows as FC', () => {
    const b = new GraphBuilder('kern', { seed: 9 });
    const x = b.input('x', 'float32', [1, 6, 5, 5]);
    let y = b.relu(b.conv(x, { outChannels: 6, kernel: 3, pad: 1, group: 6, name: 'dw6' }));
    y = b.relu(b.conv(y, { outChannels: 12, kernel: 3, pad: 1, group: 6, name: 'dwmult' }));
    y = b.relu(b.conv(y, { outChannels: 600, kernel: 1, name: 'wide' }));
    // K = 600 · 9 = 5400: 128 · Σ|w| over K exceeds 2^24 for these weights
    y = b.conv(y, { outChannels: 8, kernel: 3, pad: 1, name: 'deep', weightStd: 1 });
    const r = b.reshape(y, [1, 8, 25], 'rows');
    const w = b.initializer(b.randomTensor([25, 7], 0.2), 'mm.weight');
    const [mm] = b.node('MatMul', [r, w], {}, 1, { shapes: [[1, 8, 7]] });
    b.output(mm, 'out');
    const m = quantizeThroughPipeline(b.build());
    for (const level of ['O0', 'O3'] as const) {
      const model = expectExact(m, { optimizeLevel: level }, 3);
      expect(opTypes(model)).toContain('FC');
      const deep = model.segments.flatMap((s) => s.ops).find((o) => o.name === 'deep')!;
      const wt = model.tensors.find((t) => t.name === deep.inputs[1])!;
      const w8 = new Int8Array(wt.raw.buffer, wt.raw.byteOffset, wt.raw.byteLength);
      let worst = 0;
      for (let o = 0; o < 8; o++) {
        let s = 0;
        for (let k = 0; k < 5400; k++) s += Math.abs(w8[o * 5400 + k]);
        worst = Math.max(worst, s * 128);
      }
      expect(worst).toBeGreaterThan(2 ** 24);
    }
  });
});

describe('compile', () => {
  it('is deterministic: the same model and options give the same bytes', () => {
    const m = quantizeThroughPipeline(imageNet(8), { preprocess: rgbPre('rgb') });
    const a = encodeBin({ formatVersion: 1, packed: false, models: [compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, name: 'x' }).model] });
    const b = encodeBin({ formatVersion: 1, packed: false, models: [compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, name: 'x' }).model] });
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
  });

  it('the memory plan never overlaps two values alive at once (except a relabel or an in-place op)', () => {
    const m = quantizeThroughPipeline(imageNet(), { preprocess: rgbPre('nv12') });
    for (const level of LEVELS) {
      const { model } = compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, optimizeLevel: level });
      const ops = model.segments.flatMap((s) => s.ops);
      const shared = new Set<string>();
      for (const op of ops) if (op.inputs[0] && op.outputs[0]) shared.add(`${op.inputs[0]}|${op.outputs[0]}`);
      for (const op of ops) if (op.type === 'Conv' && op.inputs[4]) shared.add(`${op.inputs[4]}|${op.outputs[0]}`);
      const vs = model.values.filter((v) => v.offset >= 0);
      for (const a of vs) {
        expect(a.offset + a.bytes).toBeLessThanOrEqual(model.arenaBytes);
        for (const b of vs) {
          if (a === b || a.offset >= b.offset + b.bytes || b.offset >= a.offset + a.bytes) continue;
          const live = a.firstUse <= b.lastUse && b.firstUse <= a.lastUse;
          if (!live) continue;
          // only a value handed over at one op (relabel / in place) may share bytes with its source
          const ok = shared.has(`${a.name}|${b.name}`) || shared.has(`${b.name}|${a.name}`) || a.offset === b.offset;
          if (!ok) throw new Error(`${level}: '${a.name}' [${a.offset}, +${a.bytes}) and '${b.name}' [${b.offset}, +${b.bytes}) overlap while both are live`);
        }
      }
    }
  });
});
