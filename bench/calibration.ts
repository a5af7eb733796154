import { spawn } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { performance, PerformanceObserver } from 'perf_hooks';
import { collectStatistics, Sample } from '../compiler/src/calibrate/collect';
import { DEFAULT_HISTOGRAM_SAMPLE } from '../compiler/src/calibrate/sampled';
import { computeThresholds } from '../compiler/src/calibrate/thresholds';
import { isPtqError } from '../compiler/src/errors';
import { Rng } from '../compiler/src/kernels/random';
import { isFloat } from '../compiler/src/onnx/dtype';
import { Model } from '../compiler/src/onnx/ir';
import { inferShapes } from '../compiler/src/onnx/shape-inference';
import { Tensor } from '../compiler/src/onnx/tensor';
import { optimizeModel } from '../compiler/src/optimize/pipeline';
import { calibrationTensors } from '../compiler/src/stages/calibration-search';
import { OrtEngine } from '../compiler/src/runtime/ort';
import { ArchName, ARCHITECTURES } from '../scripts/fixtures/architectures';

/**
 * Cost of `kl` calibration on generated fixture CNNs (1×3×224×224, random seeded weights),
 * against the plain onnxruntime float forward pass measured in the same process.
 *
 *   node -r @swc-node/register bench/calibration.ts [--samples 100] [--models mobilenetv2,resnet50]
 *        [--tensors stage|all] [--seed 7] [--histogram-sample 8192|0]
 *
 * Each model runs in a fresh child process (the same script with `--child <model>`), so its
 * peak RSS (`process.resourceUsage().maxRSS` at the end of the child) is its own. In the child:
 *  1. build the model and run the optimisation pipeline on it (BN folded, …): calibration runs
 *     on the optimised model, as the calibrate stage does;
 *  2. forward_ms: OrtEngine (1 thread), no fetched intermediates, 2 warm-up runs, then the
 *     median of 20 runs on one sample — once before and once after the calibration, and the
 *     mean of the two (the forward time of this shared VM drifts by ±20 % over seconds; taking
 *     it on both sides of the calibration keeps the ratio from depending on which moment the
 *     forward alone was timed);
 *  3. calibration_ms: wall time of the whole calibration over N samples — collectStatistics
 *     with its default engine and the calibrate stage's default `histogram_sample`
 *     (DEFAULT_HISTOGRAM_SAMPLE: one pass on the statistics model of calibrate/sampled.ts;
 *     `--histogram-sample 0`: the two passes, pass 1 on the range model, pass 2 fetching every
 *     tensor) and computeThresholds 'kl' — of the
 *     tensors the calibrate stage asks thresholds for (`--tensors stage`, the default: every
 *     node on the BPU, bernoulli2), or of every float node output plus the float graph input
 *     (`--tensors all`). Samples are made lazily inside a function that starts the same stream
 *     over for each pass, so at most one sample lives at a time: sample i is a window, shifted
 *     by a seeded offset, of one pool of standard-normal values drawn once (drawing 150k
 *     normals per sample costs ~10 ms, far more than reading a sample file, which is what the
 *     stage does); making them is part of the wall time and reported separately.
 *  4. ratio = calibration_ms / (N × forward_ms); target ≤ 2.5 (MobileNetV2).
 *     peak_rss_mb: the child's max RSS (target ≤ 1024 for ResNet50); rss_before_mb: RSS just
 *     before calibration (model built and optimised, forward engine released), and
 *     maxrss_before_mb the peak up to then, so the calibration's own memory shows.
 *     The machine may be shared: `*_cpu_ms` and ratio_cpu are the same measures in CPU time of
 *     the process (onnxruntime runs on the calling thread with one intra-op thread), and the
 *     JSON line has the load average at the end of the child.
 *
 * Breakdown (in the JSON line, and on stderr), from the progress callbacks: pass 1 (opening
 * the range session included), pass 2 (opening the fetch session included), sample making per
 * pass, garbage-collection pauses per pass, the kl thresholds.
 *
 * Prints a table on stderr and one JSON line per model on stdout.
 */

interface Options {
  models: ArchName[];
  samples: number;
  seed: number;
  /** `all`: every float node output and float graph input; `stage`: what the calibrate stage asks for */
  tensors: 'all' | 'stage';
  /** histogram values per tensor per sample (0: every value, two passes) */
  histogramSample: number;
  child?: ArchName;
}

interface Breakdown {
  /** first sample of pass 1 seen: opening the range session, its first run */
  pass1_ms: number;
  pass2_ms: number;
  pass1_samplegen_ms: number;
  pass2_samplegen_ms: number;
  /** V8 garbage-collection pauses during the pass */
  pass1_gc_ms: number;
  pass2_gc_ms: number;
  thresholds_ms: number;
}

interface Row {
  bench: 'calibration';
  model: string;
  samples: number;
  /** mean of the medians before and after the calibration */
  forward_ms: number | null;
  forward_ms_before?: number;
  forward_ms_after?: number;
  calibration_ms: number | null;
  ratio: number | null;
  /** the same in CPU time of the process (user + system), less sensitive to a loaded machine */
  forward_cpu_ms?: number;
  calibration_cpu_ms?: number;
  ratio_cpu?: number;
  tensor_set?: 'all' | 'stage';
  /** histogram values per tensor per sample (0: every value, two passes) */
  histogram_sample?: number;
  peak_rss_mb: number | null;
  rss_before_mb: number | null;
  maxrss_before_mb?: number;
  tensors?: number;
  nodes?: number;
  /** elements of all calibrated tensors for one sample */
  activation_elements?: number;
  load_avg?: number[];
  breakdown?: Breakdown;
  error?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { models: ['mobilenetv2', 'resnet50'], samples: 100, seed: 7, tensors: 'stage', histogramSample: DEFAULT_HISTOGRAM_SAMPLE };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--models') o.models = v.split(',') as ArchName[];
    else if (a === '--samples') o.samples = Number(v);
    else if (a === '--seed') o.seed = Number(v);
    else if (a === '--child') o.child = v as ArchName;
    else if (a === '--histogram-sample') o.histogramSample = Number(v);
    else if (a === '--tensors') {
      if (v !== 'all' && v !== 'stage') throw new Error(`--tensors must be all or stage, got ${v}`);
      o.tensors = v;
    }
    else throw new Error(`unknown option ${a}`);
  }
  for (const m of [...o.models, ...(o.child ? [o.child] : [])]) {
    if (!(m in ARCHITECTURES)) throw new Error(`unknown model '${m}' (${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  if (!(Number.isInteger(o.histogramSample) && o.histogramSample >= 0)) throw new Error(`--histogram-sample must be an integer >= 0, got ${o.histogramSample}`);
  if (!(Number.isInteger(o.samples) && o.samples >= 1)) throw new Error(`--samples must be a positive integer, got ${o.samples}`);
  return o;
}

const now = (): number => performance.now();
const mb = (bytes: number): number => round(bytes / (1024 * 1024));
const maxRssMb = (): number => round(process.resourceUsage().maxRSS / 1024);
const cpuMs = (since?: NodeJS.CpuUsage): number => {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
};

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function message(e: unknown): string {
  if (isPtqError(e)) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * `all`: float graph inputs and float node outputs (dtypes by shape inference), in graph order;
 * `stage`: the tensors the calibrate stage asks thresholds for (everything on the BPU, int8 bernoulli2).
 */
function tensorsToCalibrate(model: Model, set: 'all' | 'stage'): { names: string[]; elements: number } {
  const facts = inferShapes(model, { apply: false });
  const names: string[] = [];
  let elements = 0;
  const add = (name: string): void => {
    const f = facts.get(name);
    if (!f?.dtype || !isFloat(f.dtype) || names.includes(name)) return;
    names.push(name);
    if (f.shape?.every((d) => typeof d === 'number')) elements += (f.shape as number[]).reduce((p, q) => p * q, 1);
  };
  if (set === 'stage') {
    for (const t of calibrationTensors(model, { cpuNodes: new Set(), march: 'bernoulli2' })) add(t);
    return { names, elements };
  }
  for (const v of model.graph.realInputs) add(v.name);
  for (const n of model.graph.nodes) for (const o of n.outputs) if (o) add(o);
  return { names, elements };
}

interface SampleTimer {
  /** calls of the sample function so far (= the pass in progress) */
  pass: number;
  passStart: number[];
  gen: number[];
}

/** Values in the sample pool beyond one sample's length: the room for the shifted windows. */
const POOL_SLACK = 1 << 16;

/**
 * `count` samples for every float input, made lazily and identically on each call: sample i is
 * the window of a seeded standard-normal pool starting at a seeded offset (see the file comment).
 */
function sampleSource(model: Model, count: number, seed: number, timer: SampleTimer): () => Iterable<Sample> {
  const inputs = model.graph.realInputs.map((v) => {
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const size = dims.reduce((p, q) => p * q, 1);
    return { name: v.name, dims, size, pool: new Rng(`${seed}:${v.name}`).fillNormal(new Float32Array(size + POOL_SLACK)) };
  });
  return function* samples(): Generator<Sample> {
    timer.pass++;
    timer.passStart[timer.pass] = now();
    timer.gen[timer.pass] = 0;
    const rng = new Rng(seed);
    for (let i = 0; i < count; i++) {
      const t0 = now();
      const feeds: Sample = {};
      for (const { name, dims, size, pool } of inputs) {
        const at = rng.int(POOL_SLACK);
        feeds[name] = new Tensor('float32', dims, pool.slice(at, at + size));
      }
      timer.gen[timer.pass] += now() - t0;
      yield feeds;
    }
  };
}

const sum = (xs: number[] = []): number => xs.reduce((p, q) => p + q, 0);

/** OrtEngine (1 thread) on `model`: 2 warm-up runs, then the medians of 20 runs' wall and CPU times. */
async function forwardTimes(model: Model, feeds: Sample): Promise<{ ms: number; cpu: number }> {
  const fwd = await OrtEngine.create(model, { threads: 1 });
  try {
    for (let i = 0; i < 2; i++) await fwd.run(feeds);
    const ms: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < 20; i++) {
      const c0 = process.cpuUsage();
      const t0 = now();
      await fwd.run(feeds);
      ms.push(now() - t0);
      cpu.push(cpuMs(c0));
    }
    return { ms: median(ms), cpu: median(cpu) };
  } finally {
    await fwd.dispose();
  }
}

async function child(name: ArchName, o: Options): Promise<Row> {
  const row: Row = { bench: 'calibration', model: name, samples: o.samples, forward_ms: null, calibration_ms: null, ratio: null, peak_rss_mb: null, rss_before_mb: null, tensor_set: o.tensors, histogram_sample: o.histogramSample };
  try {
    const { model } = ARCHITECTURES[name]({ seed: 1 });
    optimizeModel(model);
    row.nodes = model.graph.nodes.length;
    const { names: tensors, elements } = tensorsToCalibrate(model, o.tensors);
    row.tensors = tensors.length;
    row.activation_elements = elements;

    // plain float forward, before and after the calibration (see the file comment)
    const fwdTimer: SampleTimer = { pass: 0, passStart: [], gen: [] };
    const [feeds] = sampleSource(model, 1, o.seed, fwdTimer)();
    const before = await forwardTimes(model, feeds);

    row.rss_before_mb = mb(process.memoryUsage().rss);
    row.maxrss_before_mb = maxRssMb();

    const timer: SampleTimer = { pass: 0, passStart: [], gen: [] };
    const samples = sampleSource(model, o.samples, o.seed, timer);
    const gcPauses: { start: number; ms: number }[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, ms: e.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const gcBetween = async (from: number, to: number): Promise<number> => {
      await new Promise((r) => setImmediate(r)); // gc entries are delivered asynchronously
      return sum(gcPauses.filter((g) => g.start >= from && g.start < to).map((g) => g.ms));
    };
    const c0 = process.cpuUsage();
    const t0 = now();
    let pass1End = t0;
    const stats = await collectStatistics(model, samples, tensors, {
      ...(o.histogramSample > 0 ? { sample: o.histogramSample } : {}),
      onProgress: (p) => {
        if (p.pass === 1) pass1End = now();
      },
    });
    const t2 = now();
    const th = computeThresholds(stats.tensors, 'kl');
    const t3 = now();
    if (Object.keys(th).length !== tensors.length) throw new Error(`${Object.keys(th).length} thresholds for ${tensors.length} tensors`);
    row.calibration_ms = round(t3 - t0);
    row.calibration_cpu_ms = round(cpuMs(c0));
    row.breakdown = {
      pass1_ms: round(pass1End - t0),
      pass2_ms: round(t2 - pass1End),
      pass1_samplegen_ms: round(timer.gen[1]),
      pass2_samplegen_ms: round(timer.gen[2] ?? 0),
      pass1_gc_ms: round(await gcBetween(t0, pass1End)),
      pass2_gc_ms: round(await gcBetween(pass1End, t2)),
      thresholds_ms: round(t3 - t2),
    };
    gcObserver.disconnect();
    // the peak of the calibration, before the second forward session exists
    row.peak_rss_mb = maxRssMb();
    const after = await forwardTimes(model, feeds);
    row.forward_ms_before = round(before.ms);
    row.forward_ms_after = round(after.ms);
    row.forward_ms = round((before.ms + after.ms) / 2);
    row.forward_cpu_ms = round((before.cpu + after.cpu) / 2);
    row.ratio = round(row.calibration_ms / (o.samples * row.forward_ms));
    row.ratio_cpu = round(row.calibration_cpu_ms / (o.samples * row.forward_cpu_ms));
  } catch (e) {
    row.error = message(e);
  }
  row.peak_rss_mb ??= maxRssMb();
  row.load_avg = os.loadavg().map(round);
  return row;
}

/** Run one model in a fresh process; its JSON line comes back on its stdout. */
function spawnChild(name: ArchName, o: Options): Promise<Row> {
  const args = ['-r', '@swc-node/register', __filename, '--child', name, '--samples', String(o.samples), '--seed', String(o.seed), '--tensors', o.tensors, '--histogram-sample', String(o.histogramSample)];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { cwd: path.resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => (out += d));
    p.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('{"bench":"calibration"'));
      if (line) resolve(JSON.parse(line) as Row);
      else {
        resolve({
          bench: 'calibration', model: name, samples: o.samples, forward_ms: null, calibration_ms: null, ratio: null, peak_rss_mb: null, rss_before_mb: null,
          error: `child exited with ${signal ?? code} and no result`,
        });
      }
    });
  });
}

function printTable(rows: Row[]): void {
  const fmt = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? '-' : v.toFixed(d));
  const lines = [
    ['model', 'samples', 'hist. sample', 'tensors', 'forward ms', 'calibration ms', 'ratio', 'ratio (cpu)', 'rss before MB', 'peak RSS MB', 'load', 'note'],
    ...rows.map((r) => [
      r.model, String(r.samples), r.histogram_sample ? String(r.histogram_sample) : 'all', `${r.tensors ?? '-'} (${r.tensor_set ?? '-'})`, fmt(r.forward_ms, 2), fmt(r.calibration_ms, 0), r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
      r.ratio_cpu === undefined ? '-' : `${r.ratio_cpu.toFixed(2)}x`,
      fmt(r.rss_before_mb, 0), fmt(r.peak_rss_mb, 0), r.load_avg ? r.load_avg[0].toFixed(2) : '-', r.error ?? '',
    ]),
  ];
  const w = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  for (const l of lines) console.error(l.map((s, c) => (c === l.length - 1 ? s : s.padEnd(w[c]))).join('  '));
  for (const r of rows) {
    const b = r.breakdown;
    if (!b) continue;
    console.error(
      `${r.model}: pass 1 ${b.pass1_ms.toFixed(0)} ms (samples ${b.pass1_samplegen_ms.toFixed(0)}, gc ${b.pass1_gc_ms.toFixed(0)}); ` +
        `pass 2 ${b.pass2_ms.toFixed(0)} ms (samples ${b.pass2_samplegen_ms.toFixed(0)}, gc ${b.pass2_gc_ms.toFixed(0)}); ` +
        `kl thresholds ${b.thresholds_ms.toFixed(0)} ms; forward ${fmt(r.forward_ms, 2)} ms`,
    );
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) {
    console.log(JSON.stringify(await child(o.child, o)));
    return;
  }
  console.error(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cpus)`);
  const rows: Row[] = [];
  for (const name of o.models) {
    const row = await spawnChild(name, o);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  printTable(rows);
}

main().catch((e: unknown) => {
  console.error(isPtqError(e) ? e.oneLine() : e);
  process.exitCode = 1;
});
