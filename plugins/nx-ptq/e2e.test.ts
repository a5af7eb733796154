/**
 * End to end through the real Nx CLI (no daemon, cache inside a temp workspace): the plugin
 * loads from this repository by absolute path, its executors resolve, outputs are restored
 * from the cache, and the slice hashes make Nx re-run only the stages a YAML edit concerns.
 * Each nx invocation costs ~5 s here.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { implementedStages } from '../../compiler/src/stages';
import { GraphBuilder } from '../../compiler/src/onnx/builder';
import { saveModel } from '../../compiler/src/onnx/encode';

const REPO = path.resolve(__dirname, '..', '..');
const NX = path.join(REPO, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');

// No `nx-ptq:` block here: the stages' config loader refuses unknown groups until it learns
// to skip that one (the plugin's unit tests cover the block).
const MODEL_YAML = `model_parameters:
  onnx_model: '../../shared/tiny.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'tiny'
input_parameters:
  input_name: 'data'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_shape: '1x3x8x8'
  norm_type: 'data_scale'
  scale_value: '0.0039'
  input_type_rt: 'rgb'
  input_layout_rt: 'NHWC'
calibration_parameters:
  cal_data_dir: '../../calibration/tiny_f32'
  calibration_type: 'max'
compiler_parameters:
  optimize_level: 'O3'
`;

let ws: string;
const out = (f: string): string => path.join(ws, 'models', 'm1', 'model_output', f);

function write(rel: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
  fs.writeFileSync(path.join(ws, rel), data);
}

function nx(...args: string[]): { status: number | null; stdout: string; all: string } {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NX_DAEMON: 'false',
    CI: 'true',
    NX_NO_CLOUD: 'true',
    NX_CACHE_DIRECTORY: path.join(ws, '.nx-cache'),
    NX_TUI: 'false',
    FORCE_COLOR: '0',
  };
  delete env.NX_BATCH_MODE;
  const r = spawnSync(process.execPath, [NX, ...args], { cwd: ws, env, encoding: 'utf8', timeout: 110_000 });
  const strip = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex
  return { status: r.status, stdout: strip(r.stdout), all: strip(r.stdout + r.stderr) };
}

/** Status check that shows Nx's output when it fails. */
function expectStatus(r: { status: number | null; all: string }, status: number): void {
  if (r.status !== status) throw new Error(`nx exited with ${r.status}, expected ${status}:\n${r.all}`);
}

/** `> nx run m1:check  [local cache]` */
const fromCache = (all: string, task: string): boolean =>
  new RegExp(`nx run ${task}\\s+\\[(local cache|existing outputs match the cache, left as is)\\]`).test(all);

beforeAll(() => {
  ws = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-e2e-'));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(ws, 'node_modules'), 'dir');
  write('package.json', JSON.stringify({ name: 'nx-ptq-e2e', private: true }));
  // Nx registers its TS loader for local plugins only when the workspace has a root tsconfig.
  write('tsconfig.base.json', JSON.stringify({ extends: path.join(REPO, 'tsconfig.base.json') }));
  write('nx.json', JSON.stringify({ analytics: false, plugins: [{ plugin: path.join(REPO, 'plugins', 'nx-ptq', 'index.ts') }] }));
  write('.gitignore', 'model_output/\n.nx-cache/\n.nx/\n');
  const b = new GraphBuilder('tiny', { opset: 13, seed: 1 });
  b.output(b.relu(b.conv(b.input('data', 'float32', [1, 3, 8, 8]), { outChannels: 4, kernel: 3, pad: 1 })));
  fs.mkdirSync(path.join(ws, 'shared'));
  saveModel(b.build(), path.join(ws, 'shared', 'tiny.onnx'));
  for (let i = 0; i < 2; i++) {
    const sample = new Float32Array(3 * 8 * 8).map((_, j) => ((j * 7 + i * 13) % 255) / 255);
    write(`calibration/tiny_f32/s${i}.bin`, new Uint8Array(sample.buffer));
  }
  write('models/m1/model.yaml', MODEL_YAML);
  write('models/bad/model.yaml', MODEL_YAML.replace("march: 'bernoulli2'", "march: 'bernouli2'"));
});

afterAll(() => {
  if (ws) fs.rmSync(ws, { recursive: true, force: true });
});

describe('nx-ptq through the Nx CLI', () => {
  it('nx show project: the inferred targets, despite a broken model next to it', () => {
    const r = nx('show', 'project', 'm1', '--json');
    expectStatus(r, 0);
    const p = JSON.parse(r.stdout) as { tags: string[]; targets: Record<string, { executor: string; inputs: unknown[]; dependsOn: string[] }> };
    expect(p.tags).toEqual(['march:bernoulli2']);
    expect(Object.keys(p.targets)).toEqual(['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify', 'watch']);
    expect(p.targets.check.inputs).toContain('{workspaceRoot}/shared/tiny.onnx');
    expect(p.targets.preprocess.inputs).toContain('{workspaceRoot}/calibration/tiny_f32/*');
    expect(p.targets.calibrate.dependsOn).toEqual(['preprocess', 'check']);
    expect(r.all).toMatch(/nx-ptq: models\/bad\/model\.yaml:\d+ model_parameters\.march: 'bernouli2' is not allowed/);
  });

  it('nx run m1:check writes the outputs, and a second run is a cache hit', () => {
    const first = nx('run', 'm1:check');
    expectStatus(first, 0);
    expect(fromCache(first.all, 'm1:check')).toBe(false);
    for (const f of ['tiny_original_float_model.onnx', 'tiny_optimized_float_model.onnx', 'check.json', 'hb_mapper_checker.log']) {
      expect(fs.existsSync(out(f))).toBe(true);
    }
    fs.rmSync(out('check.json'));
    const second = nx('run', 'm1:check');
    expectStatus(second, 0);
    expect(fromCache(second.all, 'm1:check')).toBe(true);
    expect(fs.existsSync(out('check.json'))).toBe(true); // restored from the cache
  });

  it('editing compiler_parameters leaves check cached; editing its slice re-runs it; an unimplemented stage fails in one line', () => {
    const yaml = path.join(ws, 'models', 'm1', 'model.yaml');
    fs.writeFileSync(yaml, MODEL_YAML.replace("optimize_level: 'O3'", "optimize_level: 'O2'"));
    const cached = nx('run', 'm1:check');
    expectStatus(cached, 0);
    expect(fromCache(cached.all, 'm1:check')).toBe(true);

    fs.writeFileSync(yaml, MODEL_YAML.replace("scale_value: '0.0039'", "scale_value: '0.0078'"));
    const r = nx('run', 'm1:calibrate');
    expect(r.all).toMatch(/nx run m1:preprocess/);
    expect(fromCache(r.all, 'm1:check')).toBe(false);
    if (implementedStages().includes('calibrate')) {
      expectStatus(r, 0);
      expect(fs.existsSync(out('tiny_calibrated_model.onnx'))).toBe(true);
    } else {
      expectStatus(r, 1);
      expect(r.all).toContain("ERROR the 'calibrate' stage is not implemented in this version of nx-ptq (fix: the stages available are:");
      expect(r.all).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m); // no stack trace
    }
  });
});
