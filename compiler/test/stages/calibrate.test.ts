/**
 * The calibrate and quantize stages end to end on small generated projects (model.onnx,
 * model.yaml, raw calibration samples written like numpy's `tofile`): preprocess → check →
 * calibrate → quantize for every calibration_type and the image / gray / featuremap input
 * kinds. The written models pass onnx.checker and run in onnxruntime; the calibrated model
 * follows the float model (cosine ≥ 0.99), the quantized one too (≥ 0.98), and onnxruntime
 * agrees with the ReferenceEngine on the quantized model within one quantisation step.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mobileNetV2 } from '../../../scripts/fixtures/architectures';
import { Sample } from '../../src/calibrate/collect';
import { PtqError } from '../../src/errors';
import { Rng } from '../../src/kernels/random';
import { GraphBuilder, Value } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/encode';
import { Model } from '../../src/onnx/ir';
import { loadAndValidate } from '../../src/onnx/load';
import { Tensor, tensorFrom } from '../../src/onnx/tensor';
import { HzPreprocessRecord, insertPreprocess, readPreprocessRecords, RtType } from '../../src/preprocess/hz-preprocess';
import { encodeNpy } from '../../src/preprocess/npy';
import { QUANT_INFO_KEY, QuantizedModelInfo } from '../../src/quantize';
import { Engine } from '../../src/runtime/engine';
import { OrtEngine } from '../../src/runtime/ort';
import { ReferenceEngine } from '../../src/runtime/reference';
import { runStage, StageName } from '../../src/stages';
import type { CalibrationJson } from '../../src/stages/calibrate';
import { imageToIntermediate, openCalibrationSet, readModelSample } from '../../src/stages/calibration-data';
import { FAKE_QUANT_ORT, MIX_SENSITIVITY, mixChoice, tensorSensitivity } from '../../src/stages/calibration-search';
import { stripQdq } from '../../src/stages/qdq';
import type { QuantInfoJson } from '../../src/stages/quantize';
import { loadConfig } from '../../src/config';
import { Similarity } from '../../src/verify/similarity';

jest.setTimeout(120_000);

const CHECK_SCRIPT = path.join(__dirname, '..', 'onnx', 'check_models.py');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-calibrate-stage-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

// ------------------------------------------------------------------ fixtures

/** A smooth image (two slow sinusoids per channel), 0..255, in `layout` order. */
function smoothImage(rng: Rng, c: number, h: number, w: number): Uint8Array {
  const f = [rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0, 6), rng.uniform(0, 6)];
  const a = new Uint8Array(c * h * w);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = 128 + 70 * Math.sin(f[0] * x + f[1] * y + f[2] + k) + 40 * Math.cos(f[1] * x - f[0] * y + f[3] * k);
        a[(k * h + y) * w + x] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return a;
}

/** A smooth float feature map (N(0,1)-sized values). */
function smoothFeatures(rng: Rng, n: number): Float32Array {
  const f = [rng.uniform(0.05, 0.5), rng.uniform(0, 6), rng.uniform(0.5, 1.5)];
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f[2] * Math.sin(f[0] * i + f[1]) + 0.3 * Math.cos(0.07 * i);
  return a;
}

/** conv-bn-relu, maxpool, a residual add, a sigmoid head: every quantization kind of the plan. */
function smallNet(channels: number, size: number, seed = 5): Model {
  const b = new GraphBuilder('small', { seed });
  const x = b.input('data', 'float32', [1, channels, size, size]);
  let y = b.relu(b.batchNorm(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 })));
  y = b.maxPool(y, { kernel: 2, stride: 2 });
  const z = b.relu(b.batchNorm(b.conv(y, { outChannels: 8, kernel: 3, pad: 1 }), { gain: 0.5 }));
  y = b.add(y, z);
  y = b.sigmoid(b.conv(y, { outChannels: 8, kernel: 1 }));
  b.output(b.gemm(b.flatten(b.globalAvgPool(y)), 10), 'output');
  return b.build();
}

/** conv-relu-conv: the model output comes straight from a BPU Conv. */
function convNet(): Model {
  const b = new GraphBuilder('convs', { seed: 4 });
  const x = b.input('data', 'float32', [1, 4, 8, 8]);
  b.output(b.conv(b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 })), { outChannels: 4, kernel: 1 }), 'output');
  return b.build();
}

/** Two featuremap inputs added, then a conv (for the multi-input error cases). */
function twoInputNet(): Model {
  const b = new GraphBuilder('two', { seed: 2 });
  const a = b.input('a', 'float32', [1, 4, 8, 8]);
  const c = b.input('b', 'float32', [1, 4, 8, 8]);
  b.output(b.conv(b.add(a, c), { outChannels: 4, kernel: 1 }), 'output');
  return b.build();
}

/** A QAT-style QDQ model: QuantizeLinear → DequantizeLinear on the input and after each block. */
function qdqNet(scales = { input: 2.3 / 127, mid: 3 / 127, out: 1 / 127 }): Model {
  const b = new GraphBuilder('qdq', { seed: 3 });
  const x = b.input('data', 'float32', [1, 3, 16, 16]);
  const qdq = (v: Value, s: number): Value => {
    const sc = b.initializer(tensorFrom('float32', [], [s]));
    const zp = b.initializer(tensorFrom('int8', [], [0]));
    const [q] = b.node('QuantizeLinear', [v, sc, zp], {}, 1, { dtype: 'int8', shapes: [v.shape] });
    return b.node('DequantizeLinear', [q, sc, zp], {}, 1, { dtype: 'float32', shapes: [v.shape] })[0];
  };
  // a weight stored as int8 behind a DequantizeLinear (folded to float by the stage)
  const wq = b.initializer(tensorFrom('int8', [4, 8, 1, 1], Array.from({ length: 32 }, (_, i) => ((i * 37) % 255) - 127)));
  const ws = b.initializer(tensorFrom('float32', [], [0.004]));
  const wz = b.initializer(tensorFrom('int8', [], [0]));
  const [w] = b.node('DequantizeLinear', [wq, ws, wz], {}, 1, { dtype: 'float32', shapes: [[4, 8, 1, 1]] });
  let y = qdq(x, scales.input);
  y = b.relu(b.conv(y, { outChannels: 8, kernel: 3, pad: 1 }));
  y = qdq(y, scales.mid);
  [y] = b.node('Conv', [y, w], {}, 1, { shapes: [[1, 4, 16, 16]] });
  y = qdq(y, scales.out);
  b.output(y, 'out');
  return b.build();
}

const IMAGE = (typeTrain: string, typeRt: string): string => `
  input_type_train: '${typeTrain}'
  input_layout_train: 'NCHW'
  input_type_rt: '${typeRt}'
  ${typeRt === 'nv12' ? '' : "input_layout_rt: 'NHWC'"}
  norm_type: 'data_mean_and_scale'
  mean_value: '${typeTrain === 'gray' ? '128' : '123.675 116.28 103.53'}'
  scale_value: '${typeTrain === 'gray' ? '0.0172' : '0.0171 0.0175 0.0174'}'`;

const FEATUREMAP = `
  input_type_train: 'featuremap'
  input_layout_train: 'NCHW'
  input_type_rt: 'featuremap'
  input_layout_rt: 'NCHW'
  norm_type: 'no_preprocess'`;

interface ProjectSpec {
  name: string;
  model: Model;
  input: string;
  calibration: string;
  /** sample i of input k, raw bytes (`tofile`); none for skip/load */
  sample?: (i: number, k: number) => Uint8Array;
  samples?: number;
  inputs?: number;
  extra?: string;
}

interface Project {
  dir: string;
  yaml: string;
  work: string;
  name: string;
  file: (suffix: string) => string;
}

function writeProject(p: ProjectSpec): Project {
  const dir = path.join(root, p.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  saveModel(p.model, path.join(dir, 'model.onnx'));
  const inputs = p.inputs ?? 1;
  const calDirs: string[] = [];
  if (p.sample) {
    for (let k = 0; k < inputs; k++) {
      const cd = path.join(dir, `cal${k}`);
      fs.mkdirSync(cd);
      calDirs.push(`cal${k}`);
      for (let i = 0; i < (p.samples ?? 10); i++) fs.writeFileSync(path.join(cd, `sample_${String(i).padStart(3, '0')}.bin`), p.sample(i, k));
    }
  }
  const yaml = path.join(dir, 'model.yaml');
  fs.writeFileSync(
    yaml,
    `model_parameters:
  onnx_model: 'model.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: '${p.name}'
input_parameters:${p.input}
calibration_parameters:
${calDirs.length ? `  cal_data_dir: '${calDirs.join('; ')}'\n` : ''}${p.calibration}${p.extra ?? ''}
compiler_parameters:
  optimize_level: 'O3'
`,
  );
  const work = path.join(dir, 'model_output');
  return { dir, yaml, work, name: p.name, file: (s) => path.join(work, `${p.name}${s}`) };
}

async function run(p: Project, stages: StageName[], lines: string[] = []): Promise<string[]> {
  for (const s of stages) await runStage(s, { configFile: p.yaml, log: (l) => lines.push(l) });
  return lines;
}

const ALL: StageName[] = ['preprocess', 'check', 'calibrate', 'quantize'];

/** Every calibration sample of the project, as the optimized model takes it. */
function modelSamples(p: Project, model: Model, limit = 8): Sample[] {
  const set = openCalibrationSet(loadConfig(p.yaml), model);
  return Array.from({ length: Math.min(limit, set.count) }, (_, i) => readModelSample(set, i));
}

/** NCHW image feeds → NHWC where the quantized model says so. */
function quantizedFeeds(q: Model, s: Sample): Sample {
  const info = JSON.parse(q.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
  const out: Sample = { ...s };
  for (const inp of info.inputs) {
    const t = s[inp.name];
    if (inp.layout !== 'NHWC' || t.rank !== 4) continue;
    const [n, c, h, w] = t.dims;
    const src = t.data as Int8Array;
    const dst = new Int8Array(src.length);
    for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dst[((b * h + y) * w + x) * c + k] = src[((b * c + k) * h + y) * w + x];
    out[inp.name] = new Tensor('int8', [n, h, w, c], dst);
  }
  return out;
}

/** The scale of the DequantizeLinear that produces output `o` of the quantized model (one step). */
function outputStep(q: Model, o: string): number {
  const dq = q.graph.nodes.find((n) => n.outputs[0] === o && n.opType === 'DequantizeLinear');
  return dq ? (q.graph.initializers.get(dq.inputs[1]) as Tensor).toFloat32()[0] : 0;
}

interface Measured {
  calibrated: number;
  quantized: number;
  /** share of output elements where onnxruntime and the ReferenceEngine agree within one step */
  agree: number;
}

/** Output cosines float vs calibrated (onnxruntime) and vs quantized (ReferenceEngine), engine agreement. */
async function measure(p: Project, samples?: Sample[]): Promise<Measured> {
  const opt = loadAndValidate(p.file('_optimized_float_model.onnx'));
  const cal = loadAndValidate(p.file('_calibrated_model.onnx'));
  const q = loadAndValidate(p.file('_quantized_model.onnx'));
  const feeds = samples ?? modelSamples(p, opt, 4);
  const engines: Engine[] = [await OrtEngine.create(opt), await OrtEngine.create(cal, FAKE_QUANT_ORT), await OrtEngine.create(q)];
  const ref = new ReferenceEngine(q);
  const simCal = new Similarity();
  const simQ = new Similarity();
  let within = 0;
  let total = 0;
  try {
    for (const s of feeds) {
      const [f, c, o] = [await engines[0].run(s), await engines[1].run(s), await engines[2].run(quantizedFeeds(q, s))];
      const r = ref.runSync(quantizedFeeds(q, s));
      for (const name of engines[0].outputNames) {
        simCal.add(f[name].toFloat32(), c[name].toFloat32());
        simQ.add(f[name].toFloat32(), r[name].toFloat32());
        const step = outputStep(q, name) || 1;
        const a = o[name].toFloat32();
        const b = r[name].toFloat32();
        for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) <= step * (1 + 1e-6)) within++;
        total += a.length;
      }
    }
  } finally {
    for (const e of engines) await e.dispose();
  }
  return { calibrated: simCal.cosine, quantized: simQ.cosine, agree: within / total };
}

const measured: Record<string, Measured> = {};
const checked: string[] = [];

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function expectOutputs(p: Project): void {
  for (const s of ['_calibrated_model.onnx', '_calibration.json', '_quantized_model.onnx', '_quant_info.json']) expect(fs.existsSync(p.file(s))).toBe(true);
  checked.push(p.work);
}

async function expectError(f: () => Promise<unknown>, code: string, message: RegExp): Promise<PtqError> {
  let caught: unknown;
  try {
    await f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PtqError);
  const e = caught as PtqError;
  expect({ code: e.code, message: e.oneLine() }).toEqual({ code, message: expect.stringMatching(message) });
  expect(e.oneLine()).not.toContain('\n');
  return e;
}

const images = (c: number, size: number, seed: number) => {
  const rng = new Rng(seed);
  const cache: Uint8Array[] = [];
  return (i: number): Uint8Array => (cache[i] ??= smoothImage(rng, c, size, size));
};

// ------------------------------------------------------------------ tests

describe('sample conversion: train format → intermediate type of input_type_rt', () => {
  // the converted sample through HzPreprocess ≈ the raw sample normalised, through the user's model
  const model = smallNet(3, 16);
  const mean = [123.675, 116.28, 103.53];
  const scale = [0.0171, 0.0175, 0.0174];
  const rng = new Rng(11);
  const samples = Array.from({ length: 4 }, () => smoothImage(rng, 3, 16, 16));
  const cases: [string, RtType, 'regular' | 'bt601_video', 'rgb' | 'bgr' | 'yuv444'][] = [
    ['rgb ← nv12', 'nv12', 'regular', 'rgb'],
    ['rgb ← nv12 (bt601_video)', 'nv12', 'bt601_video', 'rgb'],
    ['bgr ← nv12', 'nv12', 'regular', 'bgr'],
    ['rgb ← yuv444', 'yuv444', 'regular', 'rgb'],
    ['rgb ← bgr', 'bgr', 'regular', 'rgb'],
  ];
  it.each(cases)('%s: cosine ≥ 0.999 against the float model on the raw sample', async (_n, typeRt, range, typeTrain) => {
    const pre = insertPreprocess(model, [{ name: 'data', typeTrain, typeRt, layoutTrain: 'NCHW', spaceAndRange: range, normType: 'data_mean_and_scale', mean, scale }]).model;
    const rec = readPreprocessRecords(pre)[0];
    const a = await OrtEngine.create(model);
    const b = await OrtEngine.create(pre);
    const sim = new Similarity();
    try {
      for (const raw of samples) {
        const data = typeTrain === 'bgr' ? swapped(raw) : raw; // the sample in the training format
        const x = new Float32Array(raw.length);
        // mean/scale of the YAML apply to the training channels in order
        for (let i = 0; i < x.length; i++) {
          const k = Math.floor(i / 256);
          x[i] = (data[i] - mean[k]) * scale[k];
        }
        const want = (await a.run({ data: new Tensor('float32', [1, 3, 16, 16], x) })).output.toFloat32();
        const got = (await b.run({ data: imageToIntermediate(data, [1, 3, 16, 16], rec) })).output.toFloat32();
        sim.add(want, got);
      }
    } finally {
      await a.dispose();
      await b.dispose();
    }
    expect(sim.cosine).toBeGreaterThanOrEqual(0.999);
  });

  it('float32 samples are rounded half to even and clamped; gray and yuv444 → yuv444 pass unchanged', () => {
    const rec: HzPreprocessRecord = { input: 'x', intermediate: 'GRAY_128', typeTrain: 'gray', typeRt: 'gray', layout: 'NCHW', spaceAndRange: 'regular', normType: 'no_preprocess', mean: [0], scale: [1], output: 'x', nodes: [] };
    const t = imageToIntermediate([0.5, 1.5, 254.5, 300, -3, 17], [1, 1, 2, 3], { ...rec, mean: [0], scale: [1] });
    expect(Array.from(t.data as Int8Array)).toEqual([0, 2, 254, 255, 0, 17].map((v) => v - 128));
    const y = imageToIntermediate([10, 20, 30, 40, 50, 60], [1, 2, 1, 3], { ...rec, layout: 'NHWC', typeTrain: 'yuv444', typeRt: 'yuv444', intermediate: 'yuv444_128', mean: [0, 0, 0], scale: [1, 1, 1] });
    expect(Array.from(y.data as Int8Array)).toEqual([10, 20, 30, 40, 50, 60].map((v) => v - 128));
  });

  it('yuv444 → nv12 keeps the chroma of the top-left pixel of each 2×2 block', () => {
    const rec: HzPreprocessRecord = { input: 'x', intermediate: 'yuv444_128', typeTrain: 'yuv444', typeRt: 'nv12', layout: 'NCHW', spaceAndRange: 'regular', normType: 'no_preprocess', mean: [0, 0, 0], scale: [1, 1, 1], output: 'x', nodes: [] };
    const data = Array.from({ length: 12 }, (_, i) => i * 10); // Y 0..30, U 40..70, V 80..110 on 2×2
    const t = imageToIntermediate(data, [1, 3, 2, 2], rec);
    expect(Array.from(t.data as Int8Array)).toEqual([0, 10, 20, 30, 40, 40, 40, 40, 80, 80, 80, 80].map((v) => v - 128));
  });
});

function swapped(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length);
  const plane = rgb.length / 3;
  for (let k = 0; k < 3; k++) out.set(rgb.subarray((2 - k) * plane, (3 - k) * plane), k * plane);
  return out;
}

describe('MobileNetV2 (0.35, 32×32), rgb fed as nv12, calibration_type default', () => {
  let p: Project;
  let lines: string[];
  beforeAll(async () => {
    p = writeProject({
      name: 'mbv2_default',
      model: mobileNetV2({ width: 0.35, inputSize: 32, numClasses: 10 }).model,
      input: IMAGE('rgb', 'nv12'),
      calibration: "  calibration_type: 'default'",
      sample: images(3, 32, 1),
      samples: 12,
    });
    lines = await run(p, ALL);
  });

  it('writes the outputs, selects a method by output cosine and logs it', () => {
    expectOutputs(p);
    const j = readJson<CalibrationJson>(p.file('_calibration.json'));
    expect(j.candidates.map((c) => c.method)).toEqual(['max', 'percentile', 'kl']);
    const best = Math.max(...j.candidates.map((c) => c.score));
    expect(j.candidates.find((c) => c.method === j.method)?.score).toBe(best);
    expect(j.samples).toBe(12);
    expect(j.scoring_samples).toBe(12);
    expect(lines).toContainEqual(expect.stringMatching(/^INFO Select (max|max-percentile 0\.99995|kl) method\.$/));
    expect(lines.filter((l) => /output cosine similarity 0\.9\d+/.test(l))).toHaveLength(3);
    // one pass (histogram_sample, by default 8192): ranges and histograms together
    expect(lines).toContain('INFO calibration statistics: one pass, exact ranges, |x| histograms of at most 8192 value(s) per tensor per sample (histogram_sample)');
    expect(lines.some((l) => /calibration pass 1 \(ranges and histograms\): 12\/12/.test(l))).toBe(true);
    expect(lines.some((l) => /calibration pass 2/.test(l))).toBe(false);
    expect(j.histogram_sample).toBe(8192);
    for (const t of Object.values(j.tensors)) expect(t.scale).toBe(Math.fround(t.threshold / 127));
  });

  it('prints the node table and the output similarity, and writes them to quant_info.json', () => {
    expect(lines.some((l) => /^Node\s+ON\s+Subgraph\s+Type\s+Cosine Similarity\s+Threshold\s+DataType$/m.test(l))).toBe(true);
    expect(lines.some((l) => /^Output\s+Cosine Similarity\s+L1 Distance\s+L2 Distance\s+Chebyshev Distance$/m.test(l))).toBe(true);
    const info = readJson<QuantInfoJson>(p.file('_quant_info.json'));
    const check = readJson<{ nodes: { name: string }[] }>(path.join(p.work, 'check.json'));
    expect(info.nodes.map((n) => n.node)).toEqual(check.nodes.map((n) => n.name));
    const cast = info.nodes.find((n) => n.node === 'HzPreprocess_input_cast');
    expect(cast).toMatchObject({ on: 'BPU', threshold: 127, data_type: 'int8' });
    expect(info.nodes.filter((n) => n.cosine !== null).length).toBeGreaterThan(50);
    expect(info.outputs).toHaveLength(1);
    expect(info.outputs[0].cosine).toBeGreaterThanOrEqual(0.98);
    expect(info.samples).toBe(5);
  });

  it('calibrated ≈ float (≥ 0.99), quantized ≈ float (≥ 0.98), onnxruntime = ReferenceEngine within one step', async () => {
    const m = await measure(p);
    measured.mbv2_default = m;
    expect(m.calibrated).toBeGreaterThanOrEqual(0.99);
    expect(m.quantized).toBeGreaterThanOrEqual(0.98);
    expect(m.agree).toBeGreaterThanOrEqual(0.999);
  });
});

describe.each([
  ['max', "  calibration_type: 'max'", 'max'],
  ['percentile', "  calibration_type: 'max'\n  max_percentile: 0.9999", 'percentile'],
  ['kl', "  calibration_type: 'kl'", 'kl'],
  ['kl_per_channel', "  calibration_type: 'kl'\n  per_channel: True", 'kl'],
  ['default', "  calibration_type: 'default'", undefined],
  ['mix', "  calibration_type: 'mix'", undefined],
])('small net, rgb fed as nv12, calibration_type %s', (name, calibration, method) => {
  let p: Project;
  let lines: string[];
  beforeAll(async () => {
    p = writeProject({ name: `small_${name}`, model: smallNet(3, 16), input: IMAGE('rgb', 'nv12'), calibration, sample: images(3, 16, 2), samples: 10 });
    lines = await run(p, ALL);
  });

  it('writes the outputs with the method asked for; models track the float model', async () => {
    expectOutputs(p);
    const j = readJson<CalibrationJson>(p.file('_calibration.json'));
    if (method) expect(j.method).toBe(method);
    if (name === 'percentile') expect(j.max_percentile).toBe(0.9999);
    if (name === 'kl_per_channel') {
      expect(j.per_channel).toBe(true);
      expect(lines.some((l) => /^WARN per_channel/.test(l))).toBe(true);
      const withChannels = Object.values(j.tensors).filter((t) => t.per_channel);
      const exact = Object.values(j.tensors).filter((t) => t.method === 'preprocess-range');
      expect(exact.length).toBeGreaterThan(0); // the HzPreprocess values keep their exact range
      expect(withChannels.length).toBe(Object.keys(j.tensors).length - exact.length);
      for (const t of withChannels) expect(t.threshold).toBe(Math.max(...(t.per_channel as number[])));
    }
    if (name === 'mix') {
      expect(j.base_method).toMatch(/^(max|percentile|kl)$/);
      expect(j.candidates.map((c) => c.method)).toEqual(['max', 'percentile', 'kl', 'mix']);
      expect(lines).toContainEqual(expect.stringMatching(/^INFO mix: \d+ of \d+ tensor\(s\) below cosine 0\.999/));
      expect([j.base_method, 'mix']).toContain(j.method);
    }
    const m = await measure(p);
    measured[`small_${name}`] = m;
    expect(m.calibrated).toBeGreaterThanOrEqual(0.99);
    expect(m.quantized).toBeGreaterThanOrEqual(0.98);
    expect(m.agree).toBeGreaterThanOrEqual(0.999);
  });

  if (name === 'default') {
    it('is deterministic: calibrate and quantize again → byte-identical files', async () => {
      const files = ['_calibrated_model.onnx', '_calibration.json', '_quantized_model.onnx', '_quant_info.json'].map(p.file);
      const before = files.map((f) => fs.readFileSync(f));
      for (const f of files) fs.rmSync(f);
      await run(p, ['calibrate', 'quantize']);
      files.forEach((f, k) => expect(fs.readFileSync(f).equals(before[k])).toBe(true));
    });
  }
});

describe('other input kinds', () => {
  it('gray (kl): thresholds, models track the float model', async () => {
    const p = writeProject({ name: 'gray', model: smallNet(1, 16), input: IMAGE('gray', 'gray'), calibration: "  calibration_type: 'kl'", sample: images(1, 16, 3), samples: 8 });
    await run(p, ALL);
    expectOutputs(p);
    const opt = loadAndValidate(p.file('_optimized_float_model.onnx'));
    expect(opt.graph.realInputs[0].type?.dtype).toBe('int8');
    const m = await measure(p);
    measured.gray = m;
    expect(m.calibrated).toBeGreaterThanOrEqual(0.99);
    expect(m.quantized).toBeGreaterThanOrEqual(0.98);
    expect(m.agree).toBeGreaterThanOrEqual(0.999);
  });

  it('featuremap (max, float32 samples): the float input is calibrated and quantized by QuantizeLinear', async () => {
    const rng = new Rng(4);
    const p = writeProject({
      name: 'featuremap',
      model: smallNet(4, 8),
      input: FEATUREMAP,
      calibration: "  calibration_type: 'max'\n  cal_data_type: 'float32'",
      sample: () => new Uint8Array(smoothFeatures(rng, 4 * 8 * 8).buffer),
      samples: 8,
    });
    await run(p, ALL);
    expectOutputs(p);
    const j = readJson<CalibrationJson>(p.file('_calibration.json'));
    expect(j.tensors.data?.threshold).toBeGreaterThan(0);
    const q = loadAndValidate(p.file('_quantized_model.onnx'));
    expect(q.graph.realInputs[0].type?.dtype).toBe('float32');
    expect(q.graph.nodes.some((n) => n.opType === 'QuantizeLinear' && n.inputs[0] === 'data')).toBe(true);
    const m = await measure(p);
    measured.featuremap = m;
    expect(m.calibrated).toBeGreaterThanOrEqual(0.99);
    expect(m.quantized).toBeGreaterThanOrEqual(0.98);
    expect(m.agree).toBeGreaterThanOrEqual(0.999);
  });
});

describe('model output type (optimization)', () => {
  it.each([
    ['bernoulli2', 'set_model_output_int8', 'int8'],
    ['bayes', 'set_model_output_int16', 'int16'],
  ])('%s, %s: the quantized model outputs %s; the report dequantizes it', async (march, optimization, dtype) => {
    const rng = new Rng(8);
    const p = writeProject({
      name: `out_${dtype}`,
      model: convNet(),
      input: FEATUREMAP,
      calibration: `  calibration_type: 'max'\n  cal_data_type: 'float32'\n  optimization: '${optimization}'`,
      sample: () => new Uint8Array(smoothFeatures(rng, 4 * 8 * 8).buffer),
      samples: 6,
    });
    fs.writeFileSync(p.yaml, fs.readFileSync(p.yaml, 'utf8').replace("march: 'bernoulli2'", `march: '${march}'`));
    await run(p, ALL);
    expectOutputs(p);
    const q = loadAndValidate(p.file('_quantized_model.onnx'));
    expect(q.graph.outputs.map((o) => o.type?.dtype)).toEqual([dtype]);
    const info = readJson<QuantInfoJson>(p.file('_quant_info.json'));
    expect(info.output_type).toBe(dtype);
    expect(info.outputs[0].cosine).toBeGreaterThanOrEqual(0.98);
    expect(info.nodes.map((n) => n.data_type)).toEqual(['int8', 'int8', dtype]);
    // onnxruntime = ReferenceEngine on the integer output within one step
    const opt = loadAndValidate(p.file('_optimized_float_model.onnx'));
    const ort = await OrtEngine.create(q);
    try {
      for (const s of modelSamples(p, opt, 3)) {
        const a = (await ort.run(s)).output.toFloat32();
        const b = new ReferenceEngine(q).runSync(s).output.toFloat32();
        expect(a.every((v, i) => Math.abs(v - b[i]) <= 1)).toBe(true);
      }
    } finally {
      await ort.dispose();
    }
  });
});

describe('calibration without data', () => {
  it('skip: seeded thresholds (same every run), models valid and runnable', async () => {
    const p = writeProject({ name: 'skip', model: smallNet(3, 16), input: IMAGE('rgb', 'nv12'), calibration: "  calibration_type: 'skip'" });
    const lines = await run(p, ALL);
    expectOutputs(p);
    const j = readJson<CalibrationJson>(p.file('_calibration.json'));
    expect(j.method).toBe('skip');
    expect(j.samples).toBe(0);
    const th = Object.values(j.tensors);
    for (const t of th.filter((x) => x.method === 'skip')) {
      expect(t.threshold).toBeGreaterThanOrEqual(0.5);
      expect(t.threshold).toBeLessThanOrEqual(8);
    }
    // the HzPreprocess output gets its exact range: the normalisation of 0..255
    const norm = j.tensors.HzPreprocess_data_norm;
    expect(norm.method).toBe('preprocess-range');
    expect(norm.threshold).toBeCloseTo(Math.max(...[123.675, 116.28, 103.53].map((mu, k) => Math.max(mu, 255 - mu) * [0.0171, 0.0175, 0.0174][k])), 4);
    expect(lines).toContainEqual(expect.stringMatching(/no calibration data \(calibration_type skip\): similarities on 5 seeded random input/));
    const before = fs.readFileSync(p.file('_calibration.json'));
    await run(p, ['calibrate']);
    expect(fs.readFileSync(p.file('_calibration.json')).equals(before)).toBe(true);
    const opt = loadAndValidate(p.file('_optimized_float_model.onnx'));
    const m = await measure(p, randomSamples(opt, 2));
    expect(m.agree).toBeGreaterThanOrEqual(0.999);
  });

  it('load: thresholds = 127 · scale of the QDQ pairs; int8 weights folded; models track the float model', async () => {
    // QAT-like scales: the ranges of the float model the pairs wrap, on smooth images normalised as the YAML says
    const rng = new Rng(6);
    const images = Array.from({ length: 4 }, () => smoothImage(rng, 3, 16, 16));
    const probe = new ReferenceEngine(stripQdq(qdqNet()).model);
    const range = { Relu_0: 0, out: 0 };
    for (const img of images) {
      const r = probe.runSync({ data: new Tensor('float32', [1, 3, 16, 16], Float32Array.from(img, (v) => (v - 128) * 0.0171)) }, { fetch: ['Relu_0'] });
      for (const k of ['Relu_0', 'out'] as const) range[k] = Math.max(range[k], ...Array.from(r[k].toFloat32(), Math.abs));
    }
    const scales = { input: (128 * 0.0171) / 127, mid: range.Relu_0 / 127, out: range.out / 127 };
    const p = writeProject({
      name: 'load',
      model: qdqNet(scales),
      input: IMAGE('rgb', 'bgr').replace(/mean_value: .*/, "mean_value: '128'").replace(/scale_value: .*/, "scale_value: '0.0171'"),
      calibration: "  calibration_type: 'load'",
    });
    const lines = await run(p, ALL);
    expectOutputs(p);
    expect(lines).toContainEqual(expect.stringMatching(/calibration_type load: 3 QuantizeLinear\/DequantizeLinear pair\(s\) read, 1 quantized constant\(s\) folded/));
    const j = readJson<CalibrationJson>(p.file('_calibration.json'));
    expect(Object.keys(j.tensors).sort()).toEqual(['HzPreprocess_data_norm', 'Relu_0', 'out']);
    expect(Object.values(j.tensors).every((t) => t.method === 'load')).toBe(true);
    // the scale the QDQ model stored (float32) is the scale of the quantized model: threshold = 127 · scale
    expect(j.tensors.HzPreprocess_data_norm.scale).toBe(Math.fround(scales.input));
    expect(j.tensors.Relu_0.scale).toBe(Math.fround(scales.mid));
    expect(j.tensors.out.scale).toBe(Math.fround(scales.out));
    expect(j.tensors.out.threshold).toBe(Math.fround(scales.out) * 127);
    const q = loadAndValidate(p.file('_quantized_model.onnx'));
    expect(q.graph.nodes.filter((n) => n.opType === 'QLinearConv').map((n) => n.name)).toEqual(['HzPreprocess_data_norm', 'Conv_0', 'Conv_1']);
    // the models against the float model the QDQ pairs wrap (pairs removed), on the smooth images fed as bgr
    const rec = readPreprocessRecords(loadAndValidate(p.file('_optimized_float_model.onnx')))[0];
    const samples = images.map((img) => ({ data: imageToIntermediate(img, [1, 3, 16, 16], rec) }));
    const m = await measureAgainstStripped(p, samples);
    measured.load = m;
    expect(m.calibrated).toBeGreaterThanOrEqual(0.99);
    expect(m.quantized).toBeGreaterThanOrEqual(0.98);
    expect(m.agree).toBeGreaterThanOrEqual(0.999);
  });
});

/** As measure, with the QDQ pairs of the optimized model removed (the float model they stand for). */
async function measureAgainstStripped(p: Project, samples: Sample[]): Promise<Measured> {
  const file = p.file('_optimized_float_model.onnx');
  const stripped = stripQdq(loadAndValidate(file)).model;
  const backup = fs.readFileSync(file);
  saveModel(stripped, file);
  try {
    return await measure(p, samples);
  } finally {
    fs.writeFileSync(file, backup);
  }
}

function randomSamples(model: Model, n: number): Sample[] {
  const rng = new Rng(9);
  return Array.from({ length: n }, () => {
    const s: Sample = {};
    for (const v of model.graph.realInputs) {
      const dims = (v.type?.shape ?? []) as number[];
      const k = dims.reduce((a, b) => a * b, 1);
      s[v.name] = v.type?.dtype === 'int8' ? new Tensor('int8', dims, Int8Array.from({ length: k }, () => rng.int(256) - 128)) : new Tensor('float32', dims, rng.fillNormal(new Float32Array(k)));
    }
    return s;
  });
}

describe('written models pass onnx.checker', () => {
  it('calibrated and quantized models of every project', () => {
    expect(checked.length).toBeGreaterThanOrEqual(10);
    const r = spawnSync('/usr/bin/python3', [CHECK_SCRIPT, ...checked], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, string | null>;
    const ours = Object.keys(res).filter((f) => /_(calibrated|quantized)_model\.onnx$/.test(f));
    expect(ours.length).toBe(checked.length * 2);
    expect(Object.entries(res).filter(([, v]) => v !== null)).toEqual([]);
  });

  afterAll(() => {
    // the measured cosines, for the record
    process.stdout.write(`${JSON.stringify(measured)}\n`);
  });
});

describe('mix sensitivity', () => {
  it('scores each tensor against its fake-quantization by every candidate threshold', async () => {
    // rare outliers at 40 in N(0,1): absmax keeps them and quantizes the bulk coarsely
    const rng = new Rng(1);
    const x = new Float32Array(4096);
    for (let i = 0; i < x.length; i++) x[i] = i % 1000 === 0 ? 40 : rng.normal();
    const stub: Engine = {
      name: 'stub',
      inputNames: ['x'],
      outputNames: ['y'],
      run: async () => ({ y: new Tensor('float32', [1, 4096], x) }),
      dispose: async () => undefined,
    };
    const sens = await tensorSensitivity(stub, [{ x: tensorFrom('float32', [1], [0]) }], [{ y: 40 }, { y: 4 }], ['y']);
    const got = sens.get('y') as number[];
    // independently: quantize by hand (round half away from zero differs from half-even only on exact halves)
    const byHand = [40, 4].map((t) => {
      const s = Math.fround(t / 127);
      return new Similarity().add(x, Array.from(x, (v) => Math.max(-128, Math.min(127, Math.round(v / s))) * s)).cosine;
    });
    expect(got[0]).toBeCloseTo(byHand[0], 5);
    expect(got[1]).toBeCloseTo(byHand[1], 5);
    expect(got[0]).toBeLessThan(0.999); // below MIX_SENSITIVITY: mix would revisit it
  });
});

describe('mix choice', () => {
  it('switches only tensors below the bar, to their best candidate; keeps the base on ties', () => {
    const sens = new Map<string, number[]>([
      ['fine', [0.9995, 0.9999, 0.99999]], // above the bar with the base (0): stays
      ['weak', [0.99, 0.995, 0.998]], // below: best is 2
      ['tie', [0.98, 0.98, 0.97]], // below: nothing better than the base
      ['worse', [0.997, 0.99, 0.98]], // below: the base is the best
    ]);
    const r = mixChoice(['fine', 'weak', 'tie', 'worse', 'unknown'], sens, 0);
    expect(r.weak).toBe(3);
    expect([...r.switched]).toEqual([['weak', 2]]);
    expect(MIX_SENSITIVITY).toBe(0.999);
    expect([...mixChoice(['weak'], sens, 1).switched]).toEqual([['weak', 2]]);
  });
});

describe('errors', () => {
  const base = (name: string, calibration = "  calibration_type: 'max'"): Project =>
    writeProject({ name, model: smallNet(3, 16), input: IMAGE('rgb', 'rgb'), calibration, sample: images(3, 16, 7), samples: 4 });

  it('calibrate before check, quantize before calibrate: name the stage to run', async () => {
    const p = base('err_order');
    await run(p, ['preprocess']);
    await expectError(() => run(p, ['calibrate']), 'E_STAGE_ORDER', /optimized_float_model\.onnx' is missing.*run the check stage first \(ptq makertbin or nx run err_order:check\)/);
    await run(p, ['check']);
    await expectError(() => run(p, ['quantize']), 'E_STAGE_ORDER', /_calibration\.json' is missing.*run the calibrate stage first/);
  });

  it('no calibration_data, an empty input folder, a NaN sample, unequal sample counts', async () => {
    const p = base('err_data');
    await run(p, ['check']);
    await expectError(() => run(p, ['calibrate']), 'E_STAGE_ORDER', /calibration_data' is missing.*run the preprocess stage first/);
    await run(p, ['preprocess']);
    const folder = path.join(p.work, 'calibration_data', 'data');
    const files = fs.readdirSync(folder).sort();
    for (const f of files) fs.rmSync(path.join(folder, f));
    await expectError(() => run(p, ['calibrate']), 'E_CALIBRATION_DATA', /no calibration samples: .*calibration_data\/data' holds no <i>\.npy files/);

    const f = writeProject({ name: 'err_nan', model: twoInputNet(), input: FEATUREMAP.replace(/: '(\w+)'/g, ": '$1; $1'").replace("input_type_train", "input_name: 'a; b'\n  input_type_train"), calibration: "  calibration_type: 'max'\n  cal_data_type: 'float32; float32'", sample: (i) => new Uint8Array(smoothFeatures(new Rng(i), 256).buffer), samples: 3, inputs: 2 });
    await run(f, ['preprocess', 'check']);
    const bad = path.join(f.work, 'calibration_data', 'b', '1.npy');
    const arr = new Float32Array(256).fill(0.5);
    arr[7] = NaN;
    fs.writeFileSync(bad, encodeNpy(new Tensor('float32', [1, 4, 8, 8], arr)));
    await expectError(() => run(f, ['calibrate']), 'E_CALIBRATION_DATA', /calibration_data\/b\/1\.npy' holds NaN at element 7/);
    fs.rmSync(bad);
    await expectError(() => run(f, ['calibrate']), 'E_CALIBRATION_DATA', /calibration_data\/b has 2 sample\(s\), calibration_data\/a has 3/);
    fs.rmSync(path.join(f.work, 'calibration_data', 'b'), { recursive: true });
    await expectError(() => run(f, ['calibrate']), 'E_CALIBRATION_DATA', /calibration_data has no folder 'b' for model input 'b'/);
  });

  it('load without QDQ pairs; a QDQ model with another calibration_type; a stale calibration.json', async () => {
    const p = writeProject({ name: 'err_load', model: smallNet(3, 16), input: IMAGE('rgb', 'rgb'), calibration: "  calibration_type: 'load'" });
    await run(p, ['preprocess', 'check']);
    await expectError(() => run(p, ['calibrate']), 'E_LOAD_QDQ', /has no QuantizeLinear → DequantizeLinear pairs/);

    const q = writeProject({ name: 'err_qdq', model: qdqNet(), input: IMAGE('rgb', 'rgb'), calibration: "  calibration_type: 'skip'" });
    await run(q, ['preprocess', 'check']);
    await expectError(() => run(q, ['calibrate']), 'E_QUANT_INPUT', /QuantizeLinear\/DequantizeLinear nodes; calibration_type skip calibrates float models/);

    const s = base('err_stale', "  calibration_type: 'skip'");
    await run(s, ['preprocess', 'check', 'calibrate']);
    const file = s.file('_calibration.json');
    const j = readJson<CalibrationJson>(file);
    fs.writeFileSync(file, JSON.stringify({ ...j, model_sha256: '0'.repeat(64) }));
    await expectError(() => run(s, ['quantize']), 'E_STAGE_ORDER', /belongs to another version of 'err_stale_optimized_float_model\.onnx'.*run the calibrate stage first/);
  });
});

describe('per_channel equalisation and bias_correction (nx-ptq) through the calibrate stage', () => {
  /** conv → relu → conv → relu → GAP → Gemm, the first conv's channels at ranges 1, 1/2, 1/4, 1/8, … */
  function eqNet(): Model {
    const b = new GraphBuilder('eq', { seed: 3 });
    const x = b.input('data', 'float32', [1, 3, 16, 16]);
    const a = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'c1' }), 'r1');
    const c = b.relu(b.conv(a, { outChannels: 8, kernel: 1, name: 'c2' }), 'r2');
    b.output(b.gemm(b.flatten(b.globalAvgPool(c)), 10), 'output');
    const m = b.build();
    for (const name of ['c1.weight', 'c1.bias']) {
      const t = m.graph.initializers.get(name)!;
      const v = t.toFloat32();
      const inner = v.length / 8;
      m.graph.initializers.set(name, new Tensor('float32', t.dims, v.map((u, i) => Math.fround(u * 2 ** -(Math.floor(i / inner) % 4)))));
    }
    return m;
  }

  it('writes channel_scales and bias_correction; both models built from them track the float model', async () => {
    const p = writeProject({
      name: 'eq_bias', model: eqNet(), input: IMAGE('rgb', 'rgb'), sample: images(3, 16, 4), samples: 10,
      calibration: "  calibration_type: 'kl'\n  per_channel: True\n  bias_correction: True",
    });
    const lines = await run(p, ALL);
    expectOutputs(p);
    const j = readJson<CalibrationJson>(p.file('_calibration.json'));
    expect(Object.keys(j.channel_scales ?? {})).toEqual(['r1']);
    expect(j.channel_scales!.r1.every((s) => Number.isInteger(Math.log2(s)))).toBe(true);
    expect(new Set(j.channel_scales!.r1).size).toBeGreaterThan(1);
    // every Conv/Gemm of the optimized model (the HzPreprocess normalisation and the Gemm head are 1×1 Convs there)
    const opt = loadAndValidate(p.file('_optimized_float_model.onnx'));
    const convs = opt.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm').map((n) => n.name);
    expect(convs).toEqual(expect.arrayContaining(['c1', 'c2']));
    expect(Object.keys(j.bias_correction ?? {}).sort()).toEqual([...convs].sort());
    // (the HzPreprocess normalisation Conv feeding c1 is a site too; its channels need no factor)
    expect(lines).toContainEqual('INFO per_channel: 1 of 2 activation(s) between BPU Convs equalised across channels');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^INFO bias_correction: ${convs.length} Conv/Gemm bias\\(es\\) corrected, largest change `)));
    // the calibrated model (the calibrate stage's) carries both
    const cal = loadAndValidate(p.file('_calibrated_model.onnx'));
    expect(cal.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm').map((n) => n.inputs[2])).toEqual(convs.map((n) => `${n}_bias_corrected`));
    // the quantized model of the same spec (what the quantize stage makes once it passes them on)
    const { emitQuantizedModel } = await import('../../src/quantize');
    const chk = readJson<{ nodes: { name: string; on: string }[] }>(path.join(p.work, 'check.json'));
    const q = emitQuantizedModel(opt, {
      activations: Object.fromEntries(Object.entries(j.tensors).map(([k, v]) => [k, { threshold: v.threshold }])),
      cpuNodes: new Set(chk.nodes.filter((n) => n.on === 'CPU').map((n) => n.name)),
      march: 'bernoulli2',
      channelScales: j.channel_scales,
      biasCorrection: j.bias_correction,
    });
    const f = await OrtEngine.create(opt);
    const c = await OrtEngine.create(cal, FAKE_QUANT_ORT);
    const simCal = new Similarity();
    const simQ = new Similarity();
    try {
      for (const s of modelSamples(p, opt, 4)) {
        const want = (await f.run(s)).output.toFloat32();
        simCal.add(want, (await c.run(s)).output.toFloat32());
        simQ.add(want, new ReferenceEngine(q).runSync(quantizedFeeds(q, s)).output.toFloat32());
      }
    } finally {
      await f.dispose();
      await c.dispose();
    }
    expect(simCal.cosine).toBeGreaterThanOrEqual(0.99);
    expect(simQ.cosine).toBeGreaterThanOrEqual(0.98);
    const info = JSON.parse(q.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
    expect([info.equalized, info.biasCorrected]).toEqual([['r1'], [...convs].sort()]);
  });
});
