/**
 * The check stage end to end on generated fixtures: the YAML is read, HzPreprocess inserted,
 * the model optimised and placed; both float models pass onnx.checker, run in onnxruntime and
 * agree (max relative error <= 1e-4), and the placement is what the march's constraints say.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mobileNetV2, resNet18 } from '../../../scripts/fixtures/architectures';
import { bigKernelMidGraph, reshapeSoftmaxTail, topKMidGraph, twoInputs } from '../../src/check/fixtures.test.util';
import { main } from '../../src/cli/main';
import { Rng } from '../../src/kernels/random';
import { saveModel } from '../../src/onnx/encode';
import { Model } from '../../src/onnx/ir';
import { loadAndValidate } from '../../src/onnx/load';
import { Tensor, tensorFrom } from '../../src/onnx/tensor';
import { OrtEngine } from '../../src/runtime/ort';
import { runStage } from '../../src/stages';

const CHECK_SCRIPT = path.join(__dirname, '..', 'onnx', 'check_models.py');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-check-stage-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

interface Fixture {
  name: string;
  model: () => Model;
  input: string;
  expect: (j: CheckJson) => void;
}

interface CheckJson {
  summary: { subgraphs: number; cpu: number; bpu: number };
  nodes: { name: string; op: string; on: 'BPU' | 'CPU'; reason: string | null; type: string }[];
}

const on = (j: CheckJson, name: string): string | undefined => j.nodes.find((n) => n.name === name)?.on;

const IMAGE = (typeTrain: string, typeRt: string, extra = ''): string => `
  input_type_train: '${typeTrain}'
  input_layout_train: 'NCHW'
  input_type_rt: '${typeRt}'
  ${typeRt === 'nv12' ? '' : "input_layout_rt: 'NHWC'"}
  norm_type: 'data_mean_and_scale'
  mean_value: '123.675 116.28 103.53'
  scale_value: '0.0171 0.0175 0.0174'${extra}`;

const FIXTURES: Fixture[] = [
  {
    name: 'mobilenetv2',
    model: () => mobileNetV2({ width: 0.5, inputSize: 64, numClasses: 10 }).model,
    input: IMAGE('rgb', 'nv12'),
    expect: (j) => {
      expect(j.summary.subgraphs).toBe(1);
      expect(j.nodes.filter((n) => n.op === 'Conv').every((n) => n.on === 'BPU')).toBe(true);
      expect(j.nodes.some((n) => n.op === 'BatchNormalization')).toBe(false);
      expect(j.nodes.filter((n) => n.name.startsWith('HzPreprocess_')).every((n) => n.on === 'BPU')).toBe(true);
    },
  },
  {
    name: 'resnet18',
    model: () => resNet18({ width: 0.5, inputSize: 64, numClasses: 10 }).model,
    input: IMAGE('bgr', 'bgr'),
    expect: (j) => {
      expect(j.summary.subgraphs).toBe(1);
      expect(j.nodes.filter((n) => n.op === 'Add').every((n) => n.on === 'BPU')).toBe(true);
    },
  },
  {
    name: 'reshape_softmax',
    model: reshapeSoftmaxTail,
    input: IMAGE('rgb', 'rgb'),
    expect: (j) => {
      expect(on(j, 'conv1')).toBe('BPU');
      expect(on(j, 'reshape')).toBe('CPU');
      expect(on(j, 'softmax')).toBe('CPU');
    },
  },
  {
    name: 'big_kernel',
    model: bigKernelMidGraph,
    input: IMAGE('rgb', 'rgb'),
    expect: (j) => {
      const big = j.nodes.find((n) => n.name === 'conv_big');
      expect(big?.on).toBe('CPU');
      expect(big?.reason).toMatch(/9x9|kernel/);
      expect(j.summary.subgraphs).toBe(2);
    },
  },
  {
    name: 'topk_mid',
    model: topKMidGraph,
    input: `
  input_type_train: 'featuremap'
  input_layout_train: 'NCHW'
  input_type_rt: 'featuremap'
  input_layout_rt: 'NCHW'
  norm_type: 'no_preprocess'`,
    expect: (j) => {
      expect(on(j, 'topk')).toBe('CPU');
      expect(on(j, 'conv1')).toBe('BPU');
      expect(on(j, 'conv2')).toBe('BPU');
      expect(j.summary.subgraphs).toBe(2);
    },
  },
  {
    name: 'two_inputs',
    model: twoInputs,
    input: `
  input_name: 'left; right'
  input_type_train: 'rgb; featuremap'
  input_layout_train: 'NCHW; NCHW'
  input_type_rt: 'nv12; featuremap'
  input_layout_rt: 'NHWC; NCHW'
  norm_type: 'data_scale; no_preprocess'
  mean_value: 'None; None'
  scale_value: '0.0078125; None'`,
    expect: (j) => {
      expect(on(j, 'diff')).toBe('CPU'); // Sub runs on the CPU on bernoulli2
      expect(on(j, 'add')).toBe('BPU');
    },
  },
];

function writeProject(f: Fixture): string {
  const dir = path.join(root, f.name);
  fs.mkdirSync(dir, { recursive: true });
  saveModel(f.model(), path.join(dir, 'model.onnx'));
  fs.writeFileSync(
    path.join(dir, 'model.yaml'),
    `model_parameters:
  onnx_model: 'model.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: '${f.name}'
input_parameters:${f.input}
calibration_parameters:
  calibration_type: 'skip'
compiler_parameters:
  optimize_level: 'O3'
`,
  );
  return dir;
}

function randomFeeds(m: Model, rng: Rng): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const v of m.graph.realInputs) {
    const dims = (v.type?.shape ?? []) as number[];
    const n = dims.reduce((a, b) => a * b, 1);
    const vals = Array.from({ length: n }, () => (v.type?.dtype === 'int8' ? rng.int(256) - 128 : rng.normal()));
    feeds[v.name] = tensorFrom(v.type!.dtype, dims, vals);
  }
  return feeds;
}

describe('check stage', () => {
  const outDirs: string[] = [];

  it.each(FIXTURES.map((f) => [f.name, f] as const))('%s: writes both float models, check.json and the log', async (_n, f) => {
    const dir = writeProject(f);
    const r = await runStage('check', { configFile: path.join(dir, 'model.yaml'), log: () => undefined });
    const work = path.join(dir, 'model_output');
    outDirs.push(work);
    expect(r.outputs.map((o) => path.basename(o)).sort()).toEqual(
      [`${f.name}_original_float_model.onnx`, `${f.name}_optimized_float_model.onnx`, 'check.json', 'hb_mapper_checker.log'].sort(),
    );
    for (const o of r.outputs) expect(fs.existsSync(o)).toBe(true);
    const j = JSON.parse(fs.readFileSync(path.join(work, 'check.json'), 'utf8')) as CheckJson;
    f.expect(j);
    expect(fs.readFileSync(path.join(work, 'hb_mapper_checker.log'), 'utf8')).toMatch(/Node\s+ON\s+Subgraph\s+Type/);

    // original vs optimized in onnxruntime
    const orig = loadAndValidate(path.join(work, `${f.name}_original_float_model.onnx`));
    const opt = loadAndValidate(path.join(work, `${f.name}_optimized_float_model.onnx`));
    const a = await OrtEngine.create(orig);
    const b = await OrtEngine.create(opt);
    const rng = new Rng(7);
    for (let s = 0; s < 3; s++) {
      const feeds = randomFeeds(orig, rng);
      const ya = await a.run(feeds);
      const yb = await b.run(feeds);
      for (const name of a.outputNames) {
        const x = ya[name].toFloat32();
        const y = yb[name].toFloat32();
        let peak = 0;
        let err = 0;
        for (let i = 0; i < x.length; i++) {
          peak = Math.max(peak, Math.abs(x[i]));
          err = Math.max(err, Math.abs(x[i] - y[i]));
        }
        expect(err / Math.max(peak, 1e-12)).toBeLessThanOrEqual(1e-4);
      }
    }
    await a.dispose();
    await b.dispose();
  });

  it('every written model passes onnx.checker', () => {
    const r = spawnSync('/usr/bin/python3', [CHECK_SCRIPT, ...outDirs], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, string | null>;
    expect(Object.keys(res).length).toBe(outDirs.length * 2);
    expect(Object.entries(res).filter(([, v]) => v !== null)).toEqual([]);
  });
});

describe('ptq checker', () => {
  async function run(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const prev = process.cwd();
    process.chdir(cwd);
    try {
      const code = await main(['checker', ...argv], { out: (l) => out.push(l), err: (l) => err.push(l) });
      return { code, out: out.join('\n'), err };
    } finally {
      process.chdir(prev);
    }
  }

  it('prints the placement table and writes hb_mapper_checker.log', async () => {
    const dir = path.join(root, 'checker');
    fs.mkdirSync(dir, { recursive: true });
    saveModel(topKMidGraph(), path.join(dir, 'topk.onnx'));
    const r = await run(['--model-type', 'onnx', '--march', 'bernoulli2', '--model', 'topk.onnx'], dir);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/topk\s+CPU\s+--\s+TopK/);
    expect(r.out).toMatch(/conv1\s+BPU\s+id\(0\)/);
    expect(r.out).toMatch(/conv2\s+BPU\s+id\(1\)/);
    expect(fs.existsSync(path.join(dir, 'hb_mapper_checker.log'))).toBe(true);
  });

  it('fixes a dynamic input with --input-shape', async () => {
    const dir = path.join(root, 'checker-dyn');
    fs.mkdirSync(dir, { recursive: true });
    const m = reshapeSoftmaxTail();
    m.graph.inputs[0].type = { dtype: 'float32', shape: ['N', 3, 'H', 'W'] };
    saveModel(m, path.join(dir, 'dyn.onnx'));
    const bad = await run(['--model-type', 'onnx', '--march', 'bayes', '--model', 'dyn.onnx'], dir);
    expect(bad.code).toBe(2);
    expect(bad.err).toHaveLength(1);
    expect(bad.err[0]).toMatch(/^ERROR .*'data'.*dynamic/);
    const ok = await run(['--model-type', 'onnx', '--march', 'bayes', '--model', 'dyn.onnx', '--input-shape', 'data', '1x3x32x32'], dir);
    expect(ok.err).toEqual([]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/conv1\s+BPU/);
  });

  it('user errors: one line, exit 2', async () => {
    const dir = path.join(root, 'checker-err');
    fs.mkdirSync(dir, { recursive: true });
    for (const argv of [
      ['--model-type', 'onnx', '--march', 'bernoulli2', '--model', 'missing.onnx'],
      ['--model-type', 'onnx', '--march', 'x3', '--model', 'missing.onnx'],
      ['--model-type', 'onnx', '--march', 'bernoulli2'],
      ['--model-type', 'caffe', '--march', 'bernoulli2', '--model', 'a.caffemodel', '--proto', 'a.prototxt'],
      ['--model-type', 'onnx', '--march', 'bernoulli2', '--model', 'x.onnx', '--input-shape', 'data'],
    ]) {
      const r = await run(argv, dir);
      expect(r.code).toBe(2);
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(/^ERROR /);
    }
  });
});
