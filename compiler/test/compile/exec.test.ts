/**
 * `ptq exec infer` and `ptq exec perf` on `.bin` models (and folder inputs for ONNX models):
 * raw input_type_rt bytes, .npy and image files; folders of samples paired by sorted file
 * name, D/<sample>/<output>.npy; the hrt_model_exec perf block, profiler.log / profiler.csv,
 * worker threads; one-line errors.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/cli/main';
import { encodeBin } from '../../src/compile/bin-format';
import { compileQuantizedModel } from '../../src/compile/compile';
import { quantizeThroughPipeline } from '../../src/compile/compile.test.util';
import { Rng } from '../../src/kernels/random';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/encode';
import { Tensor } from '../../src/onnx/tensor';
import { readNpy, writeNpy } from '../../src/preprocess/npy';
import { BinEngine } from '../../src/runtime/bin-engine';
import { ReferenceEngine } from '../../src/runtime/reference';
import { expectUserError, runPtq } from '../cli/run-cli';

jest.setTimeout(120_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-exec-bin-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function ptq(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['exec', ...args], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A user error: exit code 2 and one `ERROR …` line. */
async function expectError(args: string[], text: RegExp): Promise<void> {
  const r = await ptq(args);
  expect(r.code).toBe(2);
  expect(r.err).toHaveLength(1);
  expect(r.err[0]).toMatch(/^ERROR /);
  expect(r.err[0]).toMatch(text);
}

/** an rgb image (NHWC at run time) and a featuremap, one Softmax on the CPU, two outputs */
function net(): ReturnType<GraphBuilder['build']> {
  const b = new GraphBuilder('two', { seed: 51 });
  const img = b.input('img', 'float32', [1, 3, 8, 8]);
  const feat = b.input('feat', 'float32', [1, 4, 8, 8]);
  const a = b.relu(b.conv(b.relu(b.conv(img, { outChannels: 4, kernel: 3, pad: 1 })), { outChannels: 4, kernel: 3, pad: 1, group: 4 }));
  const s = b.add(a, b.conv(feat, { outChannels: 4, kernel: 1 }));
  b.output(b.softmax(b.conv(s, { outChannels: 4, kernel: 1 }), 1, 'soft'), 'probs');
  b.output(b.globalAvgPool(s, 'gap'), 'pooled');
  return b.build();
}

const models = quantizeThroughPipeline(net(), {
  preprocess: [{ name: 'img', typeTrain: 'rgb', typeRt: 'rgb', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [120, 120, 120], scale: [0.02, 0.02, 0.02] }],
});
const binModel = compileQuantizedModel(models.quantized, { cpuNodes: models.cpuNodes, name: 'two', inputs: { img: { layoutRt: 'NHWC' } } }).model;
const binFile = path.join(root, 'two.bin');
fs.writeFileSync(binFile, encodeBin({ formatVersion: 1, packed: false, models: [binModel] }));
const engine = new BinEngine(binModel);

/** A 24-bit BMP of an RGB image (HWC uint8). */
function bmp(w: number, h: number, rgb: Uint8Array): Buffer {
  const row = Math.ceil((w * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + row * h);
  buf.write('BM', 0, 'ascii');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(w, 18);
  buf.writeInt32LE(-h, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) buf[54 + y * row + x * 3 + (2 - c)] = rgb[(y * w + x) * 3 + c];
  return buf;
}

describe('ptq exec infer with a .bin', () => {
  const rng = new Rng(3);
  const samples = [0, 1, 2].map(() => ({
    img: Uint8Array.from({ length: 192 }, () => rng.int(256)),
    feat: rng.fillNormal(new Float32Array(256), 0, 1),
  }));
  const want = samples.map((s) => engine.runSync({ img: new Tensor('uint8', [1, 8, 8, 3], s.img), feat: new Tensor('float32', [1, 4, 8, 8], s.feat) }));

  it('raw input_type_rt bytes and .npy, one sample', async () => {
    const dir = path.join(root, 'single');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'img.rgb'), samples[0].img);
    writeNpy(path.join(dir, 'feat.npy'), new Tensor('float32', [1, 4, 8, 8], samples[0].feat));
    const out = path.join(dir, 'out');
    const r = await ptq(['infer', '--model-file', binFile, '--input-file', `${path.join(dir, 'img.rgb')},${path.join(dir, 'feat.npy')}`, '--output-dir', out]);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([`${path.join(out, 'probs.npy')}  probs  float32[1,4,8,8]`, `${path.join(out, 'pooled.npy')}  pooled  float32[1,4,1,1]`]);
    expect(readNpy(path.join(out, 'probs.npy')).data).toEqual(want[0].probs.data);
    expect(readNpy(path.join(out, 'pooled.npy')).data).toEqual(want[0].pooled.data);
  });

  it('folders: samples paired by sorted file name, D/<sample>/<output>.npy; an image file for the image input', async () => {
    const imgs = path.join(root, 'imgs');
    const feats = path.join(root, 'feats');
    fs.mkdirSync(imgs);
    fs.mkdirSync(feats);
    // names sort in the same order in both folders; the first input's names name the samples
    ['b_second', 'a_first', 'c_third'].forEach((n, k) => fs.writeFileSync(path.join(imgs, `${n}.rgb`), samples[[1, 0, 2][k]].img));
    ['2', '1', '3'].forEach((n, k) => writeNpy(path.join(feats, `f${n}.npy`), new Tensor('float32', [1, 4, 8, 8], samples[[1, 0, 2][k]].feat)));
    const out = path.join(root, 'folders_out');
    const r = await ptq(['infer', '--model-file', binFile, '--input-file', `${imgs},${feats}`, '--output-dir', out]);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['a_first', 'b_second', 'c_third']);
    ['a_first', 'b_second', 'c_third'].forEach((s, k) => {
      expect(fs.readdirSync(path.join(out, s)).sort()).toEqual(['pooled.npy', 'probs.npy']);
      expect(readNpy(path.join(out, s, 'probs.npy')).data).toEqual(want[k].probs.data);
    });
    expect(r.out[r.out.length - 1]).toBe(`3 sample(s) written to ${out}`);
    // an image (BMP) for the rgb input: decoded to the same bytes
    const hwc = samples[0].img;
    fs.writeFileSync(path.join(root, 'img.bmp'), bmp(8, 8, hwc));
    writeNpy(path.join(root, 'feat0.npy'), new Tensor('float32', [1, 4, 8, 8], samples[0].feat));
    const r2 = await ptq(['infer', '--model-file', binFile, '--input-file', `${path.join(root, 'img.bmp')},${path.join(root, 'feat0.npy')}`, '--output-dir', path.join(root, 'bmp_out')]);
    expect(r2.code).toBe(0);
    expect(readNpy(path.join(root, 'bmp_out', 'probs.npy')).data).toEqual(want[0].probs.data);
  });

  it('one-line errors: counts, mixed files and folders, raw sizes, --engine, model names', async () => {
    const imgs = path.join(root, 'imgs');
    const feats2 = path.join(root, 'feats2');
    fs.mkdirSync(feats2);
    writeNpy(path.join(feats2, 'only.npy'), new Tensor('float32', [1, 4, 8, 8]));
    await expectError(['infer', '--model-file', binFile, '--input-file', `${imgs},${feats2}`, '--output-dir', path.join(root, 'x')], /input folder '.*feats2' has 1 file\(s\), '.*imgs' has 3/);
    await expectError(['infer', '--model-file', binFile, '--input-file', `${imgs},${path.join(root, 'feat0.npy')}`, '--output-dir', path.join(root, 'x')], /mixes folders and files/);
    fs.writeFileSync(path.join(root, 'short.rgb'), new Uint8Array(10));
    await expectError(['infer', '--model-file', binFile, '--input-file', `${path.join(root, 'short.rgb')},${path.join(root, 'feat0.npy')}`, '--output-dir', path.join(root, 'x')], /its 10 bytes are not raw data of model input 'img' uint8\[1,8,8,3\] \(rgb NHWC\) \(192 bytes\)/);
    await expectError(['infer', '--model-file', binFile, '--engine', 'ort', '--input-file', 'a,b', '--output-dir', path.join(root, 'x')], /--engine applies to ONNX models/);
    await expectError(['infer', '--model-file', binFile, '--model-name', 'nope', '--input-file', 'a,b', '--output-dir', path.join(root, 'x')], /has no model named 'nope'/);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
  });
});

describe('the JavaScript kernels (NX_PTQ_NO_WASM=1)', () => {
  it('give the same outputs as the WebAssembly ones', () => {
    const rng = new Rng(8);
    const dir = path.join(root, 'nowasm');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'img.rgb'), Uint8Array.from({ length: 192 }, () => rng.int(256)));
    writeNpy(path.join(dir, 'feat.npy'), new Tensor('float32', [1, 4, 8, 8], rng.fillNormal(new Float32Array(256), 0, 1)));
    const inputs = `${path.join(dir, 'img.rgb')},${path.join(dir, 'feat.npy')}`;
    for (const [env, out] of [['0', 'wasm'], ['1', 'js']]) {
      const r = runPtq(['exec', 'infer', '--model-file', binFile, '--input-file', inputs, '--output-dir', path.join(dir, out)], { env: { NX_PTQ_NO_WASM: env }, timeoutMs: 90_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    for (const o of ['probs.npy', 'pooled.npy']) expect(fs.readFileSync(path.join(dir, 'js', o)).equals(fs.readFileSync(path.join(dir, 'wasm', o)))).toBe(true);
  });
});

describe('ptq exec infer with an ONNX model and folders', () => {
  it('runs every sample of .npy and raw files in one process', async () => {
    const b = new GraphBuilder('onnx', { seed: 2 });
    const x = b.input('x', 'float32', [1, 2, 3]);
    const [y] = b.node('Relu', [x], {}, 1, { shapes: [[1, 2, 3]] });
    b.output(y, 'y');
    const model = b.build();
    const file = path.join(root, 'relu.onnx');
    saveModel(model, file);
    const dir = path.join(root, 'onnx_in');
    fs.mkdirSync(dir);
    const a = Float32Array.from([-1, 2, -3, 4, -5, 6]);
    writeNpy(path.join(dir, 's1.npy'), new Tensor('float32', [1, 2, 3], a));
    fs.writeFileSync(path.join(dir, 's2.raw'), Buffer.from(Float32Array.from([1, -2, 3, -4, 5, -6]).buffer));
    const out = path.join(root, 'onnx_out');
    const r = await ptq(['infer', '--model-file', file, '--input-file', dir, '--output-dir', out]);
    expect(r.code).toBe(0);
    expect(Array.from(readNpy(path.join(out, 's1', 'y.npy')).data as Float32Array)).toEqual([0, 2, 0, 4, 0, 6]);
    expect(Array.from(readNpy(path.join(out, 's2', 'y.npy')).data as Float32Array)).toEqual([1, 0, 3, 0, 5, 0]);
    expect(new ReferenceEngine(model).outputNames).toEqual(['y']);
  });
});

describe('ptq exec perf', () => {
  it('prints the hrt_model_exec block and writes profiler.log / profiler.csv', async () => {
    const prof = path.join(root, 'prof');
    const r = await ptq(['perf', '--model-file', binFile, '--frame-count', '20', '--profile-path', prof]);
    expect(r.code).toBe(0);
    expect(r.out.slice(0, 9).map((l) => l.replace(/[\d.]+/g, 'N'))).toEqual([
      'Running condition:',
      '  Thread number is: N',
      '  Frame count   is: N',
      '  core number   is: N',
      '  Program run time: N ms',
      'Perf result:',
      '  Frame totally latency is: N ms',
      '  Average    latency    is: N ms',
      '  Frame      rate       is: N FPS',
    ]);
    expect(r.out[2]).toBe('  Frame count   is: 20');
    const log = JSON.parse(fs.readFileSync(path.join(prof, 'profiler.log'), 'utf8'));
    expect(Object.keys(log)).toEqual(['chip_latency', 'model_latency', 'perf_result', 'running_condition', 'simulator', 'task_latency']);
    expect(log.running_condition).toMatchObject({ frame_count: 20, model_name: 'two', thread_num: 1 });
    const nodes = Object.keys(log.model_latency);
    expect(nodes).toEqual(expect.arrayContaining(['Preprocess', 'two_subgraph_0', 'two_subgraph_0_input_layout_convert', 'soft', 'feat_HzQuantize', 'pooled_HzDequantize']));
    // two values leave the subgraph: one output_layout_convert each, named after the value
    expect(nodes.filter((n) => n.startsWith('two_subgraph_0_output_layout_convert_'))).toHaveLength(2);
    expect(log.model_latency.two_subgraph_0.avg_time).toBeGreaterThan(0);
    expect(Object.keys(log.task_latency)).toEqual(['TaskPendingTime', 'TaskRunningTime']);
    const csv = fs.readFileSync(path.join(prof, 'profiler.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('name,group,avg_time(ms),max_time(ms),min_time(ms),count');
    expect(csv.some((l) => l.startsWith('two_subgraph_0,model_latency,'))).toBe(true);
  });

  it('worker threads (the real binary), --perf-time, and range errors', () => {
    const r = runPtq(['exec', 'perf', '--model-file', binFile, '--frame-count', '12', '--thread-num', '2'], { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Thread number is: 2\n {2}Frame count {3}is: 12\n/);
    const t = runPtq(['exec', 'perf', '--model-file', binFile, '--perf-time', '0.005'], { timeoutMs: 90_000 });
    expect(t.code).toBe(0);
    expect(Number(/Frame count {3}is: (\d+)/.exec(t.stdout)?.[1])).toBeGreaterThan(1);
    expectUserError(runPtq(['exec', 'perf', '--model-file', binFile, '--thread-num', '0']), /--thread-num must be an integer from 1 to 8/);
    expectUserError(runPtq(['exec', 'perf', '--model-file', path.join(root, 'missing.bin')]), /cannot read model file/);
  });
});
