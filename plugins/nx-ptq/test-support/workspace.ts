/**
 * Test-only helpers for the end-to-end tests that drive the real Nx CLI: a temp workspace that
 * loads this repository's plugin by absolute path, small generated models with their YAML and
 * calibration samples, `nx` runs (no daemon, cache inside the workspace), and the parsing of
 * Nx's task lines.
 */
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mobileNetV2 } from '../../../scripts/fixtures/architectures';
import { GraphBuilder } from '../../../compiler/src/onnx/builder';
import { saveModel } from '../../../compiler/src/onnx/encode';
import { implementedStages, StageName, STAGE_NAMES } from '../../../compiler/src/stages';

export const REPO = path.resolve(__dirname, '..', '..', '..');
export const NX = path.join(REPO, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');
export const PTQ = path.join(REPO, 'compiler', 'bin', 'ptq.js');

/** `tiny`: conv + relu on 1x3x8x8 rgb (one model file shared by several projects). */
export const TINY_YAML = `model_parameters:
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

/** `mbv2`: a narrow MobileNetV2 at 32x32 (depthwise, residual adds, Relu6, Gemm), own folder. */
export const MBV2_YAML = `model_parameters:
  onnx_model: './mbv2.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'mbv2'
  working_dir: './model_output'
input_parameters:
  input_name: 'input'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_shape: '1x3x32x32'
  norm_type: 'data_mean_and_scale'
  mean_value: '123.7 116.3 103.5'
  scale_value: '0.0171 0.0175 0.0174'
  input_type_rt: 'nv12'
  input_layout_rt: 'NHWC'
calibration_parameters:
  cal_data_dir: '../../calibration/rgb_32'
  cal_data_type: 'float32'
  calibration_type: 'max'
  max_percentile: 0.9999
  per_channel: True
compiler_parameters:
  compile_mode: 'latency'
  optimize_level: 'O3'
`;

export interface WorkspaceOptions {
  /** project folder name under models/ → model.yaml text (default: m1 = tiny) */
  models?: Record<string, string>;
  /** extra nx.json fields */
  nxJson?: Record<string, unknown>;
}

/** A fresh workspace in a temp folder with the fixtures every e2e test uses. */
export function createWorkspace(prefix: string, opts: WorkspaceOptions = {}): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(ws, 'node_modules'), 'dir');
  write(ws, 'package.json', JSON.stringify({ name: path.basename(ws), private: true }));
  // Nx registers its TS loader for local plugins only when the workspace has a root tsconfig.
  write(ws, 'tsconfig.base.json', JSON.stringify({ extends: path.join(REPO, 'tsconfig.base.json') }));
  write(ws, 'nx.json', JSON.stringify({ analytics: false, plugins: [{ plugin: path.join(REPO, 'plugins', 'nx-ptq', 'plugin.js') }], ...opts.nxJson }, null, 2));
  write(ws, '.gitignore', 'model_output/\n.nx-cache/\n.nx/\n.nx-ptq/\n');
  writeFixtures(ws);
  for (const [name, yaml] of Object.entries(opts.models ?? { m1: TINY_YAML })) write(ws, `models/${name}/model.yaml`, yaml);
  return ws;
}

/** The model files and calibration sets the YAMLs above name (deterministic: seeded weights, formula samples). */
export function writeFixtures(ws: string): void {
  const b = new GraphBuilder('tiny', { opset: 13, seed: 1 });
  b.output(b.relu(b.conv(b.input('data', 'float32', [1, 3, 8, 8]), { outChannels: 4, kernel: 3, pad: 1 })));
  fs.mkdirSync(path.join(ws, 'shared'), { recursive: true });
  saveModel(b.build(), path.join(ws, 'shared', 'tiny.onnx'));
  for (let i = 0; i < 2; i++) {
    const sample = new Float32Array(3 * 8 * 8).map((_, j) => ((j * 7 + i * 13) % 255) / 255);
    write(ws, `calibration/tiny_f32/s${i}.bin`, new Uint8Array(sample.buffer));
  }
  fs.mkdirSync(path.join(ws, 'models', 'mbv2'), { recursive: true });
  saveModel(mobileNetV2({ width: 0.25, inputSize: 32, numClasses: 10, seed: 3 }).model, path.join(ws, 'models', 'mbv2', 'mbv2.onnx'));
  for (let i = 0; i < 4; i++) {
    const sample = new Float32Array(3 * 32 * 32).map((_, j) => 128 + 100 * Math.sin(j * 0.05 + i) * Math.cos(j * 0.013 * (i + 1)));
    write(ws, `calibration/rgb_32/s${i}.bin`, new Uint8Array(sample.buffer));
  }
}

export function write(ws: string, rel: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
  fs.writeFileSync(path.join(ws, rel), data);
}

/** Replaces `from` by `to` in a workspace file (the fixture must contain `from`). */
export function editFile(ws: string, rel: string, from: string, to: string): void {
  const file = path.join(ws, rel);
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${rel} has no '${from}'`);
  fs.writeFileSync(file, text.replace(from, to));
}

/** The environment of every nx run: no daemon, no cloud, plain output, the cache inside the workspace. */
export function nxEnv(ws: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NX_DAEMON: 'false',
    CI: 'true',
    NX_NO_CLOUD: 'true',
    NX_CACHE_DIRECTORY: path.join(ws, '.nx-cache'),
    NX_TUI: 'false',
    FORCE_COLOR: '0',
    NX_SKIP_NX_CACHE: undefined,
    ...extra,
  };
  for (const k of ['NX_BATCH_MODE', 'NX_SELF_HOSTED_REMOTE_CACHE_SERVER', 'NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN']) {
    if (!(k in extra)) delete env[k];
  }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export interface NxRun {
  status: number | null;
  stdout: string;
  /** stdout + stderr, colours stripped */
  all: string;
  ms: number;
}

export const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''); // eslint-disable-line no-control-regex

export function nx(ws: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 110_000): NxRun {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [NX, ...args], { cwd: ws, env: nxEnv(ws, env), encoding: 'utf8', timeout });
  return { status: r.status, stdout: stripAnsi(r.stdout ?? ''), all: stripAnsi((r.stdout ?? '') + (r.stderr ?? '')), ms: Date.now() - t0 };
}

/** `nx` without blocking this process (needed when this process also serves Nx, e.g. a remote cache). */
export function nxAsync(ws: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 110_000): Promise<NxRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [NX, ...args], { cwd: ws, env: nxEnv(ws, env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: stripAnsi(stdout), all: stripAnsi(stdout + stderr), ms: Date.now() - t0 });
    });
  });
}

/** Status check that shows Nx's output when it fails. */
export function expectStatus(r: { status: number | null; all: string }, status: number): void {
  if (r.status !== status) throw new Error(`nx exited with ${r.status}, expected ${status}:\n${r.all}`);
}

/** Tasks in Nx's output, split into those it ran and those it restored from a cache. */
export interface TaskLines {
  ran: string[];
  cached: string[];
  remote: string[];
}

/** `> nx run m1:check`, `> nx run m1:check  [local cache]`, `[remote cache]`, `[existing outputs match the cache, left as is]`. */
export function taskLines(all: string): TaskLines {
  const out: TaskLines = { ran: [], cached: [], remote: [] };
  for (const m of all.matchAll(/^\s*>\s+nx run (\S+:\S+)(?:\s+\[([^\]]+)\])?/gm)) {
    const [, task, tag] = m;
    // a task that runs is announced twice in static output (start, then with its output)
    const list = !tag ? out.ran : tag === 'remote cache' ? out.remote : out.cached;
    if (!list.includes(task)) list.push(task);
  }
  return out;
}

/**
 * The stages that can run in this build: registered (`implementedStages`) and present on disk
 * (compile, perf and verify are registered before their files land), each after all the
 * stages it needs.
 */
export function runnableStages(): StageName[] {
  const present = (s: StageName): boolean =>
    ['.ts', '.js'].some((ext) => fs.existsSync(path.join(REPO, 'compiler', 'src', 'stages', `${s}${ext}`)));
  const ok = new Set(implementedStages().filter(present));
  // a stage runs only when its upstream stages do
  const needs: Record<StageName, StageName[]> = {
    preprocess: [],
    check: [],
    calibrate: ['preprocess', 'check'],
    quantize: ['calibrate'],
    compile: ['quantize'],
    perf: ['compile'],
    verify: ['compile'],
  };
  const out: StageName[] = [];
  for (const s of STAGE_NAMES) if (ok.has(s) && needs[s].every((n) => out.includes(n))) out.push(s);
  return out;
}

/** The stages no other runnable stage depends on: `nx run-many -t <these>` builds everything. */
export function leafStages(stages: readonly StageName[]): StageName[] {
  const upstream = new Set<StageName>();
  if (stages.includes('calibrate')) ['preprocess', 'check'].forEach((s) => upstream.add(s as StageName));
  if (stages.includes('quantize')) upstream.add('calibrate');
  if (stages.includes('compile')) upstream.add('quantize');
  if (stages.includes('perf') || stages.includes('verify')) upstream.add('compile');
  return stages.filter((s) => !upstream.has(s));
}

/** sha256 of every file under `dir`, keyed by its path relative to `dir` (sorted). */
/**
 * A file's bytes as artifact comparisons see them: the one measured (so run-dependent) part of
 * any artifact, the perf report's host-simulator section (wall time of the host runtime,
 * labelled as such), is left out of the report's JSON and HTML; everything else is compared
 * byte for byte.
 */
export function comparable(rel: string, bytes: Buffer): Buffer | string {
  if (!/(^|\/)hb_perf_result\//.test(rel)) return bytes;
  if (rel.endsWith('.json')) {
    const doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    delete doc.hostSimulator;
    return JSON.stringify(doc);
  }
  if (rel.endsWith('.html')) return bytes.toString('utf8').replace(/<section class="host" id="host-simulator">[\s\S]*?<\/section>/, '');
  return bytes;
}

/** sha256 of every file under `dir` (see `comparable`), keyed by relative path. */
export function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out[r] = crypto.createHash('sha256').update(comparable(r, fs.readFileSync(path.join(dir, r)))).digest('hex');
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

export function removeWorkspace(ws: string | undefined): void {
  if (ws) fs.rmSync(ws, { recursive: true, force: true });
}
