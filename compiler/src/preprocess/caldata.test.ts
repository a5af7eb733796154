import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { parseConfig } from '../config/load';
import { validateAgainstModel } from '../config/rules';
import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { calibrationSpec, CalInputSpec, planCalibrationSet, rawDataType, readCalibrationSet, writeCalibrationData, E_CALDATA } from './caldata';
import { encodeNpy, readNpy } from './npy';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-cal-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const quiet = { onProgress: () => {} };

function dir(name: string, files: Record<string, Uint8Array | string> = {}): string {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(d, f), data);
  return d;
}

const u8 = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 17) % 256);
const f32 = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i + seed) * 3.5);
const bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(0));

function input(name: string, calDataDir: string, extra: Partial<CalInputSpec> = {}): CalInputSpec {
  return { name, typeTrain: 'rgb', layoutTrain: 'NCHW', shape: [1, 3, 2, 2], calDataDir, ...extra };
}

function workDir(): string {
  return path.join(root, 'work');
}

/** Expect a one-line E_CALDATA PtqError matching `msg`, and nothing left in the working dir. */
async function expectCalError(run: () => Promise<unknown>, msg: RegExp, work = workDir()): Promise<PtqError> {
  const before = fs.existsSync(work) ? fs.readdirSync(work).sort() : undefined;
  let caught: unknown;
  try {
    await run();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PtqError);
  const e = caught as PtqError;
  expect(e.code).toBe(E_CALDATA);
  expect(e.oneLine()).toMatch(msg);
  expect(e.oneLine()).not.toContain('\n');
  if (before === undefined) expect(fs.existsSync(work)).toBe(false);
  else expect(fs.readdirSync(work).sort()).toEqual(before);
  return e;
}

describe('raw and .npy samples', () => {
  it('writes calibration_data/<input>/<i>.npy from raw uint8 files in sorted order', async () => {
    const samples = [u8(12, 1), u8(12, 2), u8(12, 3)];
    const d = dir('cal_rgb', { 'b.rgb': samples[1], 'a.rgb': samples[0], 'c.rgb': samples[2], '.hidden': 'x' });
    fs.mkdirSync(path.join(d, 'sub'));
    const r = await writeCalibrationData({ inputs: [input('input.1', d)] }, workDir(), quiet);
    expect(r.count).toBe(3);
    expect(r.files).toEqual([0, 1, 2].map((i) => `calibration_data/input.1/${i}.npy`));
    expect(r.inputs[0]).toMatchObject({ name: 'input.1', folder: 'input.1', dtype: 'uint8', shape: [1, 3, 2, 2] });
    samples.forEach((s, i) => {
      const t = readNpy(path.join(workDir(), r.files[i]));
      expect(t.dtype).toBe('uint8');
      expect(t.dims).toEqual([1, 3, 2, 2]);
      expect(t.toNumbers()).toEqual(Array.from(s));
    });
    expect(r.hashes).toEqual(r.files.map((f) => crypto.createHash('sha256').update(fs.readFileSync(path.join(workDir(), f))).digest('hex')));
    expect(fs.readdirSync(workDir())).toEqual(['calibration_data']);
  });

  it('reads float32 raw files when cal_data_type says so, or the folder/file name ends in _f32', async () => {
    const a = f32(12, 1);
    const byType = dir('plain', { s0: bytes(a) });
    const byDir = dir('calibration_data_bgr_f32', { s0: bytes(a) });
    const byFile = dir('mixed', { 'x_f32.bin': bytes(a) });
    const byExt = dir('ext', { 'x.bgr_f32': bytes(a) });
    for (const [d, type] of [
      [byType, 'float32'],
      [byDir, undefined],
      [byFile, undefined],
      [byExt, undefined],
    ] as const) {
      const work = path.join(root, `w-${path.basename(d)}`);
      const r = await writeCalibrationData({ inputs: [input('x', d, { calDataType: type })] }, work, quiet);
      const t = readNpy(path.join(work, r.files[0]));
      expect(t.dtype).toBe('float32');
      expect(t.toNumbers()).toEqual(Array.from(a));
    }
    expect(rawDataType({ calDataDir: '/a/cal', typeTrain: 'rgb' }, '/a/cal/x.bin')).toBe('uint8');
    expect(rawDataType({ calDataDir: '/a/cal', typeTrain: 'featuremap' }, '/a/cal/x.bin')).toBe('float32');
    expect(rawDataType({ calDataDir: '/a/cal_f32', typeTrain: 'rgb', calDataType: 'uint8' }, '/a/cal_f32/x')).toBe('uint8');
  });

  it('writes featuremap inputs as float32 (uint8 data widened) and reads .npy samples', async () => {
    const fm = dir('fm', { '0.bin': bytes(f32(6, 0)) });
    const fmU8 = dir('fm8', { '0.bin': u8(6, 4) });
    const npy = dir('npy', {
      'a.npy': encodeNpy(new Tensor('float64', [2, 6], Float64Array.from({ length: 12 }, (_, i) => i / 4))),
      'b.npy': encodeNpy(new Tensor('float64', [12], Float64Array.from({ length: 12 }, (_, i) => -i))),
    });
    const npyU8 = dir('npy8', { 'a.npy': encodeNpy(new Tensor('uint8', [1, 3, 2, 2], u8(12, 9))) });
    const r = await writeCalibrationData(
      {
        inputs: [
          input('fm', fm, { typeTrain: 'featuremap', shape: [1, 6] }),
          input('fm8', fmU8, { typeTrain: 'featuremap', shape: [6], calDataType: 'uint8' }),
        ],
      },
      path.join(root, 'w1'),
      quiet,
    );
    expect(r.inputs.map((x) => x.dtype)).toEqual(['float32', 'float32']);
    expect(readNpy(path.join(root, 'w1', r.files[1])).toNumbers()).toEqual(Array.from(u8(6, 4)));
    const r2 = await writeCalibrationData({ inputs: [input('x', npy)] }, path.join(root, 'w2'), quiet);
    const t = readNpy(path.join(root, 'w2', r2.files[0]));
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([1, 3, 2, 2]);
    expect(t.toNumbers()).toEqual(Array.from({ length: 12 }, (_, i) => i / 4));
    const r3 = await writeCalibrationData({ inputs: [input('x', npyU8)] }, path.join(root, 'w3'), quiet);
    expect(readNpy(path.join(root, 'w3', r3.files[0])).dtype).toBe('uint8');
  });

  it('pairs multi-input sets by sorted file name and reports progress per set', async () => {
    const a = dir('a', { '2': u8(12, 2), '1': u8(12, 1) });
    const b = dir('b', { 'y.npy': encodeNpy(new Tensor('float32', [4], f32(4, 1))), 'x.npy': encodeNpy(new Tensor('float32', [4], f32(4, 0))) });
    const spec = { inputs: [input('img', a), input('feat:0', b, { typeTrain: 'featuremap', shape: [1, 4] })] };
    const seen: string[] = [];
    for await (const s of readCalibrationSet(spec)) {
      seen.push(s.files.map((f) => path.basename(f)).join('+'));
      expect(Object.keys(s.feeds)).toEqual(['img', 'feat:0']);
    }
    expect(seen).toEqual(['1+x.npy', '2+y.npy']);
    const progress: [number, number][] = [];
    const r = await writeCalibrationData(spec, workDir(), { onProgress: (d, t) => progress.push([d, t]) });
    expect(progress).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
    expect(r.files).toEqual(['calibration_data/img/0.npy', 'calibration_data/img/1.npy', 'calibration_data/feat_0/0.npy', 'calibration_data/feat_0/1.npy']);
    expect(readNpy(path.join(workDir(), 'calibration_data/feat_0/1.npy')).toNumbers()).toEqual(Array.from(f32(4, 1)));
  });

  it('is deterministic: two runs give byte-identical files and hashes, and replace an older calibration_data', async () => {
    const d = dir('cal_f32', { a: bytes(f32(12, 1)), b: bytes(f32(12, 2)) });
    const spec = { inputs: [input('x', d)] };
    const r1 = await writeCalibrationData(spec, path.join(root, 'w1'), quiet);
    const r2 = await writeCalibrationData(spec, path.join(root, 'w2'), quiet);
    expect(r2.hashes).toEqual(r1.hashes);
    for (const f of r1.files) expect(fs.readFileSync(path.join(root, 'w2', f))).toEqual(fs.readFileSync(path.join(root, 'w1', f)));
    fs.writeFileSync(path.join(root, 'w1', 'calibration_data', 'x', '9.npy'), 'stale');
    const r3 = await writeCalibrationData(spec, path.join(root, 'w1'), quiet);
    expect(r3.hashes).toEqual(r1.hashes);
    expect(fs.readdirSync(path.join(root, 'w1', 'calibration_data', 'x'))).toEqual(['0.npy', '1.npy']);
    expect(fs.readdirSync(path.join(root, 'w1'))).toEqual(['calibration_data']);
  });

  const PY = '/usr/bin/python3';
  const hasNumpy = fs.existsSync(PY) && spawnSync(PY, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
  (hasNumpy ? it : it.skip)('reads numpy.tofile output and writes files numpy.load reads back', async () => {
    const d = dir('np_f32');
    const script = `import numpy as np
for i in range(2): (np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2) * (i + 1) - 0.5).tofile('${d}/s%d.bin' % i)`;
    expect(spawnSync(PY, ['-c', script]).status).toBe(0);
    await writeCalibrationData({ inputs: [input('in', d)] }, workDir(), quiet);
    const check = spawnSync(PY, ['-c', `import numpy as np; a = np.load('${workDir()}/calibration_data/in/1.npy'); print(a.dtype, a.shape, float(a.sum()))`], { encoding: 'utf8' });
    expect(check.stdout.trim()).toBe(`float32 (1, 3, 2, 2) ${2 * 66 - 6}.0`);
  });
});

describe('images (preprocess_on)', () => {
  /** 8 wide, 6 high, RGB; pixel (y, x) = [10x + 1, 20y + 2, 3x + 5y + 3]. */
  const pixels = (): Buffer => {
    const b = Buffer.alloc(8 * 6 * 3);
    for (let y = 0; y < 6; y++) for (let x = 0; x < 8; x++) b.set([10 * x + 1, 20 * y + 2, 3 * x + 5 * y + 3], (y * 8 + x) * 3);
    return b;
  };
  const png = (): Promise<Buffer> => sharp(pixels(), { raw: { width: 8, height: 6, channels: 3 } }).png().toBuffer();

  it('at the input size: exact pixels, in the train colour format and layout, uint8', async () => {
    const d = dir('img', { 'a.png': await png(), 'notes.txt': 'skipped' });
    const cases = [
      ['rgb', 'NCHW', [1, 3, 6, 8], (y: number, x: number) => [10 * x + 1, 20 * y + 2, 3 * x + 5 * y + 3]],
      ['bgr', 'NHWC', [1, 6, 8, 3], (y: number, x: number) => [3 * x + 5 * y + 3, 20 * y + 2, 10 * x + 1]],
      ['gray', 'NCHW', [1, 1, 6, 8], (y: number, x: number) => [Math.round(0.299 * (10 * x + 1) + 0.587 * (20 * y + 2) + 0.114 * (3 * x + 5 * y + 3))]],
    ] as const;
    for (const [type, layout, shape, want] of cases) {
      const work = path.join(root, `w-${type}`);
      const r = await writeCalibrationData({ inputs: [input('in', d, { typeTrain: type, layoutTrain: layout, shape: shape.slice(), preprocessOn: true })] }, work, quiet);
      expect(r.inputs[0]).toMatchObject({ dtype: 'uint8', skipped: 1 });
      const t = readNpy(path.join(work, r.files[0]));
      expect(t.dtype).toBe('uint8');
      expect(t.dims).toEqual(shape);
      const a = t.toNumbers();
      const c = want(0, 0).length;
      for (let y = 0; y < 6; y++) {
        for (let x = 0; x < 8; x++) {
          const got = Array.from({ length: c }, (_, k) => (layout === 'NCHW' ? a[(k * 6 + y) * 8 + x] : a[(y * 8 + x) * c + k]));
          expect(got).toEqual(want(y, x));
        }
      }
    }
  });

  it('resizes to the input H×W and converts to yuv444 (BT.601 full range, rounded)', async () => {
    const flat = Buffer.alloc(20 * 30 * 3);
    for (let i = 0; i < flat.length; i += 3) flat.set([255, 0, 0], i);
    const d = dir('red', {
      '1.png': await sharp(flat, { raw: { width: 30, height: 20, channels: 3 } }).png().toBuffer(),
      '2.jpg': await sharp(flat, { raw: { width: 30, height: 20, channels: 3 } }).jpeg({ quality: 100 }).toBuffer(),
      '3.bmp': bmpFile(30, 20, [255, 0, 0]),
    });
    const r = await writeCalibrationData({ inputs: [input('in', d, { typeTrain: 'yuv444', layoutTrain: 'NHWC', shape: [1, 4, 4, 3], preprocessOn: true })] }, workDir(), quiet);
    expect(r.count).toBe(3);
    const want = [76, 85, 255]; // round(76.245), round(84.905), min(255.5 → 256, 255)
    for (const f of r.files) {
      const t = readNpy(path.join(workDir(), f));
      expect(t.dims).toEqual([1, 4, 4, 3]);
      const a = t.toNumbers();
      const tol = f.endsWith('1.npy') ? 3 : 0; // the JPEG (sample 1) is lossy
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - want[i % 3])).toBeLessThanOrEqual(tol);
    }
  });
});

/** A 24-bit BMP of one colour (rows padded to 4 bytes). */
function bmpFile(w: number, h: number, rgb: number[]): Buffer {
  const row = Math.ceil((w * 3) / 4) * 4;
  const b = Buffer.alloc(54 + row * h);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set([rgb[2], rgb[1], rgb[0]], 54 + y * row + x * 3);
  return b;
}

describe('bad calibration data: one-line E_CALDATA errors, nothing left behind', () => {
  it('missing, empty, not-a-folder and image-less cal_data_dir', async () => {
    const missing = path.join(root, 'nope');
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', missing)] }, workDir(), quiet), /cal_data_dir '.*nope' of input 'in' does not exist/);
    const empty = dir('empty', { '.DS_Store': 'x' });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', empty)] }, workDir(), quiet), /cal_data_dir '.*empty' of input 'in' holds no sample files/);
    fs.writeFileSync(path.join(root, 'file'), 'x');
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', path.join(root, 'file'))] }, workDir(), quiet), /is not a folder/);
    const raw = dir('raw', { 'a.bin': u8(12, 0) });
    await expectCalError(
      () => writeCalibrationData({ inputs: [input('in', raw, { preprocessOn: true })] }, workDir(), quiet),
      /holds no \.jpg\/\.jpeg\/\.png\/\.bmp images \(preprocess_on is True; it holds 1 other file\(s\)\)/,
    );
  });

  it('wrong sample sizes name the file, its size and the expected one', async () => {
    const d = dir('cal', { '0': u8(12, 0), '1': u8(13, 0) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', d)] }, workDir(), quiet), /sample '.*cal\/1' \(input 'in'\) is 13 bytes; input_shape 1x3x2x2 of uint8 needs 12 bytes/);
    const f = dir('cal2', { '0': bytes(f32(12, 0)) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', f)] }, workDir(), quiet), /is 48 bytes; .* needs 12 bytes; its size fits float32 — set cal_data_type: float32/);
    const n = dir('cal3', { 'a.npy': encodeNpy(new Tensor('float32', [2, 3], f32(6, 0))) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', n)] }, workDir(), quiet), /sample '.*a\.npy' \(input 'in'\) has shape \(2, 3\) = 6 values; input_shape 1x3x2x2 needs 12/);
    const i = dir('cal4', { 'a.npy': encodeNpy(new Tensor('int32', [12], new Int32Array(12))) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', i)] }, workDir(), quiet), /holds int32; \.npy samples must be float32 or uint8/);
    const img = dir('cal5', { 'a.jpg': 'not really' });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', img)] }, workDir(), quiet), /is 10 bytes; .*it is an image — set preprocess_on: True/);
    const bad = dir('cal6', { 'a.png': 'broken' });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', bad, { preprocessOn: true })] }, workDir(), quiet), /calibration image '.*a\.png' \(input 'in'\): cannot decode image/);
  });

  it('NaN and Inf in samples', async () => {
    const a = f32(12, 0);
    a[5] = NaN;
    const d = dir('nan_f32', { '0': bytes(f32(12, 1)), '1': bytes(a) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', d)] }, workDir(), quiet), /sample '.*nan_f32\/1' \(input 'in'\) holds NaN at element 5; samples must be finite/);
    const b = new Float64Array(12);
    b[11] = -Infinity;
    const n = dir('inf', { 'a.npy': encodeNpy(new Tensor('float64', [12], b)) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', n)] }, workDir(), quiet), /holds -Infinity at element 11/);
  });

  it('multi-input sets with unequal counts name both folders; mixed dtypes in one input', async () => {
    const a = dir('a', { '0': u8(12, 0), '1': u8(12, 1) });
    const b = dir('b', { '0': u8(12, 0) });
    await expectCalError(
      () => writeCalibrationData({ inputs: [input('x', a), input('y', b)] }, workDir(), quiet),
      /input 'x' has 2 sample\(s\) in '.*\/a', input 'y' has 1 in '.*\/b'; multi-input calibration sets pair sample i/,
    );
    const mixed = dir('mixed', { '0': u8(12, 0), '1.npy': encodeNpy(new Tensor('float32', [12], f32(12, 0))) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('x', mixed)] }, workDir(), quiet), /'.*1\.npy' \(input 'x'\) holds float32, the earlier samples of the input hold uint8/);
  });

  it('config problems: preprocess_on on a featuremap or batch > 1, a dynamic shape, a duplicate input', async () => {
    const d = dir('img', { 'a.png': 'x' });
    await expectCalError(
      () => writeCalibrationData({ inputs: [input('f', d, { typeTrain: 'featuremap', preprocessOn: true })] }, workDir(), quiet),
      /input 'f' is a featuremap; preprocess_on reads images/,
    );
    await expectCalError(
      () => writeCalibrationData({ inputs: [input('f', d, { shape: [8, 3, 2, 2], preprocessOn: true })] }, workDir(), quiet),
      /preprocess_on needs a 4-D input_shape with batch 1 and 3 channel\(s\) \(rgb, NCHW\), got 8x3x2x2/,
    );
    await expectCalError(() => writeCalibrationData({ inputs: [input('f', d, { shape: [1, -1, 2, 2] })] }, workDir(), quiet), /input_shape \[1,-1,2,2\] is not static/);
    await expectCalError(() => writeCalibrationData({ inputs: [input('f', d), input('f', d)] }, workDir(), quiet), /input 'f' is listed twice/);
  });

  it('a failure after some samples leaves an existing working dir and calibration_data as they were', async () => {
    const good = dir('good', { '0': u8(12, 0) });
    const work = workDir();
    const first = await writeCalibrationData({ inputs: [input('in', good)] }, work, quiet);
    fs.writeFileSync(path.join(work, 'other.txt'), 'keep');
    const d = dir('late', { '0': u8(12, 0), '1': u8(12, 1), '2': u8(11, 2) });
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', d)] }, work, quiet), /late\/2' .* is 11 bytes/, work);
    expect(fs.readdirSync(path.join(work, 'calibration_data', 'in'))).toEqual(['0.npy']);
    expect(crypto.createHash('sha256').update(fs.readFileSync(path.join(work, first.files[0]))).digest('hex')).toBe(first.hashes[0]);
    // a working dir created by the failed run is removed again, with the parents it created
    const fresh = path.join(root, 'new', 'deep', 'work');
    await expectCalError(() => writeCalibrationData({ inputs: [input('in', d)] }, fresh, quiet), /is 11 bytes/, fresh);
    expect(fs.existsSync(path.join(root, 'new'))).toBe(false);
  });
});

describe('calibrationSpec (from the YAML config)', () => {
  it('maps a validated config: per-input dirs and types, preprocess_on for image inputs only', () => {
    const yaml = `
model_parameters:
  onnx_model: m.onnx
  march: bernoulli2
  output_model_file_prefix: net
input_parameters:
  input_name: 'img; feat'
  input_type_train: 'rgb; bgr'
  input_layout_train: 'NCHW; NHWC'
  input_type_rt: 'nv12; bgr'
  input_layout_rt: 'NCHW; NHWC'
  input_shape: '1x3x224x224; 1x8x8x3'
  norm_type: 'no_preprocess; no_preprocess'
calibration_parameters:
  cal_data_dir: './cal/img; ./cal/feat'
  cal_data_type: 'uint8; float32'
  calibration_type: default
compiler_parameters:
  optimize_level: O3
`;
    const cfg = validateAgainstModel(parseConfig(yaml, { dir: '/y' }), [
      { name: 'img', shape: [1, 3, 224, 224] },
      { name: 'feat', shape: [1, 8, 8, 3] },
    ]);
    const spec = calibrationSpec(cfg);
    expect(spec.inputs).toEqual([
      { name: 'img', typeTrain: 'rgb', layoutTrain: 'NCHW', shape: [1, 3, 224, 224], calDataDir: '/y/cal/img', calDataType: 'uint8', preprocessOn: false },
      { name: 'feat', typeTrain: 'bgr', layoutTrain: 'NHWC', shape: [1, 8, 8, 3], calDataDir: '/y/cal/feat', calDataType: 'float32', preprocessOn: false },
    ]);
    const pre = calibrationSpec({ ...cfg, calibration: { ...cfg.calibration, preprocessOn: true }, inputs: cfg.inputs.map((x, i) => (i ? { ...x, typeTrain: 'featuremap' } : x)) });
    expect(pre.inputs.map((x) => x.preprocessOn)).toEqual([true, false]);
    expect(() => calibrationSpec({ ...cfg, inputs: [{ ...cfg.inputs[0], calDataDir: undefined }] })).toThrow(/input 'img' has no cal_data_dir/);
  });

  it('planCalibrationSet lists without reading', () => {
    const d = dir('p', { b: 'x', a: 'y' });
    const plan = planCalibrationSet({ inputs: [input('in', d)] });
    expect(plan.count).toBe(2);
    expect(plan.inputs[0].files.map((f) => path.basename(f))).toEqual(['a', 'b']);
  });
});
