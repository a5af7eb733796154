import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { writeFileAtomic } from '../onnx/encode';
import { Tensor } from '../onnx/tensor';
import type { HostProfile, HostProfileNode } from '../perf/report/data';
import type { BinFile, BinModel } from '../compile/bin-format';
import { BinEngine } from './bin-engine';

/**
 * Host profiling of a `.bin` (`ptq exec perf`, the perf stage's host numbers): frames of
 * seeded random inputs through the host runtime on 1–8 threads (worker threads, one engine
 * each), timing every frame and every op, grouped the way the reference's profiler names
 * its nodes: `Preprocess`, each BPU subgraph, `<subgraph>_input_layout_convert` /
 * `<subgraph>_output_layout_convert`, `<value>_HzQuantize` / `<value>_HzDequantize`, and
 * every CPU op. These are host-simulator times, not BPU latencies.
 */

export const HOST_ENGINE = 'nx-ptq host runtime';

export interface HostProfileOptions {
  /** the model of a packed file */
  modelName?: string;
  /** frames in total (default 200; ignored when perfTimeMin > 0) */
  frames?: number;
  /** run for this many minutes instead of a frame count (0 = use frames) */
  perfTimeMin?: number;
  /** worker threads, 1–8 (default 1: runs in this thread) */
  threads?: number;
  /** seed of the random inputs (default 1) */
  seed?: number;
}

export interface TimeStats {
  avgMs: number;
  maxMs: number;
  minMs: number;
  count: number;
}

/** HostProfile (what the perf report shows) plus the reference profiler's records. */
export interface HostProfileResult extends HostProfile {
  modelName: string;
  /** wall time of the whole run */
  programMs: number;
  /** Σ of the frames' latencies */
  totalLatencyMs: number;
  coreNum: number;
  /** per profiler node (Preprocess, subgraphs, layout conversions, Quantize/Dequantize, CPU ops) */
  modelLatency: Record<string, TimeStats>;
  /** BPU_inference_time_cost (Σ subgraphs per frame), CPU_inference_time_cost (the rest) */
  chipLatency: Record<string, TimeStats>;
  /** TaskPendingTime (between frames), TaskRunningTime (a frame) */
  taskLatency: Record<string, TimeStats>;
}

/** Profiler node of each step: its subgraph for BPU ops, its own name on the CPU. */
export function profileNodes(m: BinModel): { node: string; device: 'BPU' | 'CPU'; type: string }[] {
  const out: { node: string; device: 'BPU' | 'CPU'; type: string }[] = [];
  for (const s of m.segments) for (const op of s.ops) out.push(s.kind === 'bpu' ? { node: s.name, device: 'BPU', type: 'subgraph' } : { node: op.name, device: 'CPU', type: op.type });
  return out;
}

interface Acc {
  sum: number;
  max: number;
  min: number;
  count: number;
}

const newAcc = (): Acc => ({ sum: 0, max: -Infinity, min: Infinity, count: 0 });

function addTo(a: Acc, v: number): void {
  a.sum += v;
  if (v > a.max) a.max = v;
  if (v < a.min) a.min = v;
  a.count++;
}

function merge(a: Acc, b: Acc): void {
  a.sum += b.sum;
  a.max = Math.max(a.max, b.max);
  a.min = Math.min(a.min, b.min);
  a.count += b.count;
}

/** What one thread measured. */
interface ThreadResult {
  /** wall clock (performance.timeOrigin + now) of the first frame's start and the last frame's end */
  startWall: number;
  endWall: number;
  latencies: number[];
  nodes: Record<string, Acc>;
  bpu: Acc;
  cpu: Acc;
  pending: Acc;
}

/** Random feeds for every input of the model (uint8 images, N(0,1) featuremaps). */
export function randomModelFeeds(m: BinModel, seed: number): Record<string, Tensor> {
  const rng = new Rng(seed);
  const feeds: Record<string, Tensor> = {};
  for (const io of m.inputs) {
    const n = io.shape.reduce((a, b) => a * b, 1);
    if (io.dtype === 'float32') feeds[io.name] = new Tensor('float32', io.shape, rng.fillNormal(new Float32Array(n), 0, 1));
    else {
      const t = new Tensor(io.dtype, io.shape);
      const d = t.data as Int32Array;
      const lo = io.dtype === 'uint8' ? 0 : io.dtype === 'int16' ? -32768 : -128;
      const span = io.dtype === 'int16' ? 65536 : 256;
      for (let i = 0; i < n; i++) d[i] = lo + rng.int(span);
      feeds[io.name] = t;
    }
  }
  return feeds;
}

/** Run frames on one engine until `frames` are done or `deadline` (performance.now()) passes. */
export function profileFrames(engine: BinEngine, frames: number, deadline: number, seed: number): ThreadResult {
  const feeds = randomModelFeeds(engine.model, seed);
  const nodes = profileNodes(engine.model);
  const names = [...new Set(nodes.map((n) => n.node))];
  const index = new Map(names.map((n, i) => [n, i]));
  const stepNode = nodes.map((n) => index.get(n.node) as number);
  const bpuStep = nodes.map((n) => n.device === 'BPU');
  const res: ThreadResult = { startWall: performance.timeOrigin + performance.now(), endWall: 0, latencies: [], nodes: {}, bpu: newAcc(), cpu: newAcc(), pending: newAcc() };
  const accs = names.map(() => newAcc());
  const prof = new Float64Array(engine.steps.length);
  const perNode = new Float64Array(names.length);
  let last = performance.now();
  for (let f = 0; (deadline > 0 ? performance.now() < deadline : f < frames); f++) {
    prof.fill(0);
    const t0 = performance.now();
    addTo(res.pending, t0 - last);
    engine.runSync(feeds, { profile: prof });
    const t1 = performance.now();
    last = t1;
    res.latencies.push(t1 - t0);
    perNode.fill(0);
    let bpu = 0;
    let cpu = 0;
    for (let i = 0; i < prof.length; i++) {
      perNode[stepNode[i]] += prof[i];
      if (bpuStep[i]) bpu += prof[i];
      else cpu += prof[i];
    }
    for (let k = 0; k < names.length; k++) addTo(accs[k], perNode[k]);
    addTo(res.bpu, bpu);
    addTo(res.cpu, cpu);
  }
  names.forEach((n, k) => (res.nodes[n] = accs[k]));
  res.endWall = performance.timeOrigin + performance.now();
  return res;
}

/** Entry point of a profiling worker thread (see measureHostProfile). */
export async function runProfileWorker(data: { file: string; modelName?: string; frames: number; deadline: number; seed: number; start: number }): Promise<ThreadResult> {
  const engine = BinEngine.load(data.file, data.modelName);
  // the deadline is relative to the main thread's clock: convert through the wall clock
  const deadline = data.deadline > 0 ? performance.now() + (data.deadline - Date.now()) : 0;
  return profileFrames(engine, data.frames, deadline, data.seed);
}

function workerResult(file: string, modelName: string | undefined, frames: number, deadlineWall: number, seed: number): Promise<ThreadResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when threads are used
  const { Worker } = require('worker_threads') as typeof import('worker_threads');
  const hook = __filename.endsWith('.ts') ? path.resolve(__dirname, '..', '..', 'bin', 'ts-hook.js') : '';
  const code = [
    "const { parentPort, workerData } = require('worker_threads');",
    'if (workerData.hook) require(workerData.hook);',
    'require(workerData.module).runProfileWorker(workerData.job).then(',
    '  (r) => parentPort.postMessage({ ok: r }),',
    '  (e) => parentPort.postMessage({ error: (e && e.message) || String(e), code: e && e.code, fix: e && e.fix }),',
    ');',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { hook, module: __filename, job: { file, modelName, frames, deadline: deadlineWall, seed, start: Date.now() } } });
    w.once('message', (m: { ok?: ThreadResult; error?: string; code?: string; fix?: string }) => {
      void w.terminate();
      if (m.ok) resolve(m.ok);
      else reject(m.code ? new PtqError(m.code, m.error ?? 'worker failed', { fix: m.fix }) : new Error(m.error));
    });
    w.once('error', (e) => reject(e));
  });
}

function stats(a: Acc): TimeStats {
  return a.count ? { avgMs: a.sum / a.count, maxMs: a.max, minMs: a.min, count: a.count } : { avgMs: 0, maxMs: 0, minMs: 0, count: 0 };
}

/**
 * Measure a `.bin` model on the host runtime: `frames` frames (or `perfTimeMin` minutes) of
 * random inputs on `threads` threads. Errors about the file are one-line PtqErrors.
 */
export async function measureHostProfile(file: string, opts: HostProfileOptions = {}): Promise<HostProfileResult> {
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 8) {
    throw new PtqError('E_CLI_ARGS', `thread number ${threads} is out of range`, { fix: 'use 1 to 8 threads' });
  }
  const frames = opts.frames ?? 200;
  const minutes = opts.perfTimeMin ?? 0;
  if (!(Number.isInteger(frames) && frames >= 1) && !(minutes > 0)) throw new PtqError('E_CLI_ARGS', `frame count ${frames} must be at least 1`, { fix: 'give a positive frame count' });
  const engine = BinEngine.load(file, opts.modelName);
  const seed = opts.seed ?? 1;
  const start = performance.now();
  void start;
  let parts: ThreadResult[];
  if (threads === 1) {
    parts = [profileFrames(engine, frames, minutes > 0 ? start + minutes * 60000 : 0, seed)];
  } else {
    const deadlineWall = minutes > 0 ? Date.now() + minutes * 60000 : 0;
    const share = (k: number): number => Math.floor(frames / threads) + (k < frames % threads ? 1 : 0);
    parts = await Promise.all(Array.from({ length: threads }, (_, k) => workerResult(file, opts.modelName, share(k), deadlineWall, seed + k)).filter((_, k) => minutes > 0 || share(k) > 0));
  }
  // from the first frame started to the last one finished (thread start-up not counted)
  const programMs = Math.max(...parts.map((p) => p.endWall)) - Math.min(...parts.map((p) => p.startWall));
  const latencies = parts.flatMap((p) => p.latencies);
  const total = latencies.reduce((a, b) => a + b, 0);
  const nodeAcc = new Map<string, Acc>();
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.nodes)) {
      const a = nodeAcc.get(k) ?? newAcc();
      merge(a, v);
      nodeAcc.set(k, a);
    }
  }
  const sum = (f: (p: ThreadResult) => Acc): Acc => {
    const a = newAcc();
    for (const p of parts) merge(a, f(p));
    return a;
  };
  const m = engine.model;
  const info = profileNodes(m);
  const modelLatency: Record<string, TimeStats> = {};
  for (const k of [...nodeAcc.keys()].sort()) modelLatency[k] = stats(nodeAcc.get(k) as Acc);
  const nodes: HostProfileNode[] = [...nodeAcc.keys()].map((k) => {
    const n = info.find((x) => x.node === k)!;
    return { name: k, type: n.type, device: n.device, averageMs: stats(nodeAcc.get(k) as Acc).avgMs, calls: (nodeAcc.get(k) as Acc).count };
  });
  const coreParam = m.params.find((g) => g.group === 'compiler_parameters')?.params.find((p) => p.key === 'core_num')?.value;
  return {
    engine: HOST_ENGINE,
    modelName: m.name,
    frames: latencies.length,
    threads,
    averageMs: latencies.length ? total / latencies.length : 0,
    minMs: latencies.length ? Math.min(...latencies) : 0,
    maxMs: latencies.length ? Math.max(...latencies) : 0,
    fps: programMs > 0 ? (latencies.length * 1000) / programMs : 0,
    nodes,
    programMs,
    totalLatencyMs: total,
    coreNum: Number(coreParam ?? 1) || 1,
    modelLatency,
    chipLatency: { BPU_inference_time_cost: stats(sum((p) => p.bpu)), CPU_inference_time_cost: stats(sum((p) => p.cpu)) },
    taskLatency: { TaskPendingTime: stats(sum((p) => p.pending)), TaskRunningTime: stats({ sum: total, max: Math.max(0, ...latencies), min: latencies.length ? Math.min(...latencies) : 0, count: latencies.length }) },
  };
}

const f6 = (x: number): string => x.toFixed(6);

/** The console block of `hrt_model_exec perf`. */
export function formatPerfBlock(r: HostProfileResult): string {
  return [
    'Running condition:',
    `  Thread number is: ${r.threads}`,
    `  Frame count   is: ${r.frames}`,
    `  core number   is: ${r.coreNum}`,
    `  Program run time: ${f6(r.programMs)} ms`,
    'Perf result:',
    `  Frame totally latency is: ${f6(r.totalLatencyMs)} ms`,
    `  Average    latency    is: ${f6(r.averageMs)} ms`,
    `  Frame      rate       is: ${f6(r.fps ?? 0)} FPS`,
  ].join('\n');
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

function timeJson(s: TimeStats): Record<string, number> {
  return { avg_time: round6(s.avgMs), max_time: round6(s.maxMs), min_time: round6(s.minMs) };
}

/** profiler.log: the reference's JSON (perf_result, running_condition, chip/model/task latency). */
export function profilerLog(r: HostProfileResult): string {
  const obj = {
    chip_latency: Object.fromEntries(Object.entries(r.chipLatency).map(([k, v]) => [k, timeJson(v)])),
    model_latency: Object.fromEntries(Object.entries(r.modelLatency).map(([k, v]) => [k, timeJson(v)])),
    perf_result: { FPS: round6(r.fps ?? 0), average_latency: round6(r.averageMs) },
    running_condition: { core_id: 0, frame_count: r.frames, model_name: r.modelName, run_time: round6(r.programMs), thread_num: r.threads },
    simulator: 'nx-ptq host runtime: host wall times, not BPU latencies',
    task_latency: Object.fromEntries(Object.entries(r.taskLatency).map(([k, v]) => [k, timeJson(v)])),
  };
  return `${JSON.stringify(obj, null, 2)}\n`;
}

/** profiler.csv: one row per profiler node and per chip / task record. */
export function profilerCsv(r: HostProfileResult): string {
  const q = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = ['name,group,avg_time(ms),max_time(ms),min_time(ms),count'];
  const add = (group: string, rec: Record<string, TimeStats>): void => {
    for (const [k, v] of Object.entries(rec)) rows.push([q(k), group, f6(v.avgMs), f6(v.maxMs), f6(v.minMs), String(v.count)].join(','));
  };
  add('model_latency', r.modelLatency);
  add('chip_latency', r.chipLatency);
  add('task_latency', r.taskLatency);
  return `${rows.join('\n')}\n`;
}

/** Write profiler.log and profiler.csv into `dir` (created if needed). */
export function writeProfile(dir: string, r: HostProfileResult): string[] {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new PtqError('E_FILE', `cannot create --profile-path '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: dir, fix: 'check the path and its permissions' });
  }
  const log = path.join(dir, 'profiler.log');
  const csv = path.join(dir, 'profiler.csv');
  writeFileAtomic(log, profilerLog(r));
  writeFileAtomic(csv, profilerCsv(r));
  return [log, csv];
}

/**
 * A host profiler for the perf stage (`perfStageWith({ hostProfiler: binHostProfiler() })`):
 * measures each model of the `.bin` it is given; undefined when the host runtime cannot run
 * it (a custom CPU operator that is not registered in this process, say).
 */
export function binHostProfiler(opts: Omit<HostProfileOptions, 'modelName'> = {}): (bin: BinFile, model: BinModel, binFile: string) => Promise<HostProfileResult | undefined> {
  return async (_bin, model, binFile) => {
    try {
      return await measureHostProfile(binFile, { frames: 50, ...opts, modelName: model.name });
    } catch (e) {
      if (e instanceof PtqError) return undefined;
      throw e;
    }
  };
}
