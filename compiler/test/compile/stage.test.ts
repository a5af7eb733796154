/**
 * The compile stage end to end on generated projects (model.onnx, model.yaml, raw calibration
 * samples): preprocess → check → calibrate → quantize → compile. The `.bin` records the deps,
 * the four parameter groups, the inputs and outputs, the static estimate (perf_json and per
 * segment, per op with debug) and the deleted nodes;
 * it runs bit-exactly like the quantized model; the same project elsewhere gives the same
 * bytes; the log has the arena and one line per subgraph.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BinModel, readBinFile } from '../../src/compile/bin-format';
import { compareWithReference } from '../../src/compile/compile.test.util';
import { COMPILER_VERSION, NX_PTQ_VERSION, RUNTIME_VERSION } from '../../src/compile/versions';
import { Rng } from '../../src/kernels/random';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/encode';
import { Model } from '../../src/onnx/ir';
import { loadAndValidate } from '../../src/onnx/load';
import { parsePerfRecord } from '../../src/perf/report/from-bin';
import { BinEngine } from '../../src/runtime/bin-engine';
import { runStage, StageName } from '../../src/stages';

jest.setTimeout(180_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-compile-stage-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function net(size: number, ch: number): Model {
  const b = new GraphBuilder('net', { seed: 41 });
  const x = b.input('data', 'float32', [1, 3, size, size]);
  let y = b.relu(b.batchNorm(b.conv(x, { outChannels: ch, kernel: 3, pad: 1, name: 'conv1' })));
  y = b.relu(b.batchNorm(b.conv(y, { outChannels: ch, kernel: 3, pad: 1, name: 'conv2' })));
  y = b.maxPool(y, { kernel: 2, stride: 2 });
  y = b.relu(b.batchNorm(b.conv(y, { outChannels: 2 * ch, kernel: 3, pad: 1, name: 'conv3' })));
  const logits = b.gemm(b.flatten(b.globalAvgPool(y, 'gap')), 10, { name: 'fc' });
  b.output(b.softmax(logits, 1, 'prob'), 'prob');
  return b.build();
}

interface Project {
  dir: string;
  yaml: string;
  bin: string;
  quantized: string;
}

function writeProject(name: string, o: { size: number; ch: number; compiler?: string; model?: string; dir?: string }): Project {
  const dir = path.join(o.dir ?? root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'cal'), { recursive: true });
  saveModel(net(o.size, o.ch), path.join(dir, 'model.onnx'));
  const rng = new Rng(9);
  for (let i = 0; i < 4; i++) {
    const img = new Uint8Array(3 * o.size * o.size);
    for (let k = 0; k < img.length; k++) img[k] = 128 + Math.round(80 * Math.sin(0.1 * k + i)) + rng.int(20);
    fs.writeFileSync(path.join(dir, 'cal', `s${i}.bin`), img);
  }
  const yaml = path.join(dir, 'model.yaml');
  fs.writeFileSync(
    yaml,
    `model_parameters:
  onnx_model: 'model.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: '${name}'
  working_dir: 'out'
${o.model ?? ''}
input_parameters:
  input_name: 'data'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_type_rt: 'nv12'
  norm_type: 'data_mean_and_scale'
  mean_value: '123.675 116.28 103.53'
  scale_value: '0.0171 0.0175 0.0174'
calibration_parameters:
  cal_data_dir: 'cal'
  cal_data_type: 'uint8'
  calibration_type: 'max'
compiler_parameters:
  compile_mode: 'latency'
${o.compiler ?? "  optimize_level: 'O3'"}
`,
  );
  return { dir, yaml, bin: path.join(dir, 'out', `${name}.bin`), quantized: path.join(dir, 'out', `${name}_quantized_model.onnx`) };
}

async function build(p: Project, stages: StageName[] = ['preprocess', 'check', 'calibrate', 'quantize', 'compile']): Promise<string[]> {
  const lines: string[] = [];
  for (const s of stages) await runStage(s, { configFile: p.yaml, log: (l) => lines.push(l) });
  return lines;
}

const param = (m: BinModel, group: string, key: string): string | undefined => m.params.find((g) => g.group === group)?.params.find((p) => p.key === key)?.value;

describe('compile stage', () => {
  let p: Project;
  let lines: string[];
  let m: BinModel;
  beforeAll(async () => {
    p = writeProject('small', { size: 16, ch: 8 });
    lines = await build(p);
    m = readBinFile(p.bin).models[0];
  });

  it('writes <prefix>.bin with the deps, the parameter groups, the inputs and outputs', () => {
    expect(m.name).toBe('small');
    expect(m.march).toBe('bernoulli2');
    expect(m.deps).toEqual({ nxPtqVersion: NX_PTQ_VERSION, compilerVersion: COMPILER_VERSION, runtimeVersion: RUNTIME_VERSION, formatVersion: 1 });
    expect(m.params.map((g) => g.group)).toEqual(['model_parameters', 'input_parameters', 'calibration_parameters', 'compiler_parameters']);
    expect(param(m, 'model_parameters', 'onnx_model')).toBe('model.onnx');
    expect(param(m, 'model_parameters', 'working dir')).toBe('out');
    expect(param(m, 'input_parameters', 'input_type_rt')).toBe('nv12');
    expect(param(m, 'input_parameters', 'mean_value')).toBe('123.675,116.28,103.53,');
    expect(param(m, 'calibration_parameters', 'calibration_type')).toBe('max');
    expect(param(m, 'compiler_parameters', 'optimize_level')).toBe('O3');
    expect(param(m, 'compiler_parameters', 'input-source')).toBe("{'data': 'pyramid'}");
    expect(m.inputs).toEqual([expect.objectContaining({ name: 'data', dtype: 'uint8', shape: [1, 24, 16], typeRt: 'nv12', typeTrain: 'rgb', source: 'pyramid' })]);
    expect(m.outputs).toEqual([expect.objectContaining({ name: 'prob', dtype: 'float32', shape: [1, 10] })]);
    // Softmax stays on the CPU after the BPU subgraph
    expect(m.segments.map((s) => s.kind)).toEqual(['cpu', 'bpu', 'cpu']);
    expect(m.segments[2].ops.map((o) => o.type)).toContain('Softmax');
  });

  it('records the static estimate: perf_json (subgraphs named as the segments) and per subgraph', () => {
    const e = parsePerfRecord(m.perfJson, p.bin, m.name);
    expect(e.subgraphs.map((s) => s.name)).toEqual(['small_subgraph_0']);
    const seg = m.segments[1];
    expect(seg.perf).toEqual({
      latencyMs: e.subgraphs[0].latencyMs, ops: e.subgraphs[0].ops, loadedBytes: e.subgraphs[0].loadedBytes,
      storedBytes: e.subgraphs[0].storedBytes, functionCalls: 1,
    });
    // without debug, no per-op numbers
    expect(seg.ops.every((o) => o.perf === undefined)).toBe(true);
    expect(e.borders.map((b) => b.name)).toContain('small_subgraph_0_output_layout_convert');
  });

  it('logs the arena and one line per BPU subgraph', () => {
    expect(lines).toContainEqual(expect.stringMatching(/^INFO compile: model 'small' \(bernoulli2, O3, latency\): 1 BPU subgraph\(s\), \d+ CPU op\(s\), activation arena \d+ bytes/));
    expect(lines).toContainEqual(expect.stringMatching(/^INFO {3}small_subgraph_0: \d+ op\(s\) \(\d+ Conv.*\), 1 function call\(s\), estimated [\d.]+ ms/));
    expect(lines.find((l) => /activation arena/.test(l))).toContain(`arena ${m.arenaBytes} bytes`);
  });

  it('runs bit-exactly like ***_quantized_model.onnx', () => {
    const e = BinEngine.load(p.bin);
    const r = compareWithReference((f) => e.runSync(f), e.model, loadAndValidate(p.quantized), 20, 4);
    expect(r.mismatch).toBeUndefined();
  });

  it('the same project in another folder gives the same bytes', async () => {
    const other = writeProject('small', { size: 16, ch: 8, dir: path.join(root, 'elsewhere') });
    await build(other);
    expect(fs.readFileSync(other.bin).equals(fs.readFileSync(p.bin))).toBe(true);
  });

  it('compiler_parameters: debug keeps per-op perf; O0 and bandwidth compile too (and more arena)', async () => {
    const q = writeProject('dbg', { size: 16, ch: 8, compiler: "  optimize_level: 'O3'\n  debug: True\n  max_time_per_fc: 1000\n  jobs: 4" });
    await build(q);
    const b = readBinFile(q.bin).models[0];
    expect(b.debug).toBe(true);
    const seg = b.segments.find((s) => s.kind === 'bpu')!;
    expect(seg.ops.find((o) => o.name === 'conv1')!.perf?.latencyMs).toBeGreaterThan(0);
    expect(param(b, 'compiler_parameters', 'max_time_per_fc')).toBe('1000');
    expect(param(b, 'compiler_parameters', 'jobs')).toBe('4');
    fs.writeFileSync(q.yaml, fs.readFileSync(q.yaml, 'utf8').replace("optimize_level: 'O3'", "optimize_level: 'O0'").replace("compile_mode: 'latency'", "compile_mode: 'bandwidth'"));
    await build(q, ['compile']);
    const b0 = readBinFile(q.bin).models[0];
    expect(param(b0, 'compiler_parameters', 'optimize_level')).toBe('O0');
    expect(param(b0, 'compiler_parameters', 'compile_mode')).toBe('bandwidth');
    expect(b0.arenaBytes).toBeGreaterThan(b.arenaBytes);
    const quant = loadAndValidate(q.quantized);
    for (const x of [b0, b]) {
      const e = new BinEngine(x);
      expect(compareWithReference((f) => e.runSync(f), x, quant, 2, 2).mismatch).toBeUndefined();
    }
  });

  it('model_parameters: remove_node_type and layer_out_dump', async () => {
    const q = writeProject('edges', { size: 16, ch: 8, model: "  remove_node_type: 'Dequantize'\n  layer_out_dump: True" });
    const log = await build(q);
    const b = readBinFile(q.bin).models[0];
    // one dequantized output per convolution (not the HzPreprocess normalisation), whose Dequantize
    // is then at an output: removed, the application gets the int8 values and their scales
    expect(b.outputs.map((o) => [o.name, o.dtype])).toEqual([['prob', 'float32'], ['conv1', 'int8'], ['conv2', 'int8'], ['conv3', 'int8'], ['fc_conv_out', 'int8']]);
    expect(b.deletedNodes.map((d) => [d.opType, d.position, d.io])).toEqual(['conv1', 'conv2', 'conv3', 'fc_conv_out'].map((c) => ['Dequantize', 'output', c]));
    expect(b.outputs.slice(1).every((o) => o.scale > 0)).toBe(true);
    expect(param(b, 'model_parameters', 'remove_node_type')).toBe('Dequantize');
    expect(log).toContainEqual(expect.stringMatching(/layer_out_dump: 4 convolution output/));
  });
});
