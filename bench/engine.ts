import { isPtqError } from '../compiler/src/errors';
import { Rng } from '../compiler/src/kernels/random';
import { Model } from '../compiler/src/onnx/ir';
import { Tensor } from '../compiler/src/onnx/tensor';
import { findOp } from '../compiler/src/ops/registry';
import { Engine } from '../compiler/src/runtime/engine';
import { OrtEngine } from '../compiler/src/runtime/ort';
import { ReferenceEngine } from '../compiler/src/runtime/reference';
import { decodeModel } from '../compiler/src/onnx/decode';
import { encodeModel } from '../compiler/src/onnx/encode';
import { optimizeModel } from '../compiler/src/optimize/pipeline';
import { ArchName, ARCHITECTURES } from '../scripts/fixtures/architectures';
import { collectRanges, foldBatchNorm, Range, toQLinear } from './qlinear-fixture';

/**
 * ReferenceEngine vs onnxruntime-node (1 intra-op, 1 inter-op thread) on fixture CNNs at
 * 1x3x224x224, float and integer (QLinearConv) paths, in the same process. The integer
 * model comes from bench/qlinear-fixture.ts (BN folded, min/max ranges from onnxruntime on
 * three random inputs); `int8` uses int8 activations (the BPU contract), `uint8` uint8 ones
 * (onnxruntime's fastest x86 kernels), both with int8 per-channel weights.
 *
 *   node -r @swc-node/register bench/engine.ts [--models mobilenetv2,resnet18] [--paths float,int8,uint8]
 *        [--runs 5] [--warmup 1] [--budget 60] [--size 224] [--width 1]
 *
 * Each engine gets `warmup` untimed runs, then the median of `runs` timed runs (fewer when a
 * run is so slow that `runs` would exceed `budget` seconds). Prints a table on stderr and one
 * JSON line per (model, path) on stdout; the outputs of the two engines are compared.
 */

type Path = 'float' | 'float-optimized' | 'int8' | 'uint8';

interface Options {
  models: ArchName[];
  paths: Path[];
  runs: number;
  warmup: number;
  budget: number;
  size: number;
  width: number;
}

interface Timing {
  ms: number;
  runs: number;
  output: Tensor;
}

interface Row {
  bench: 'engine';
  model: string;
  path: Path;
  reference_ms: number | null;
  ort_ms: number | null;
  ratio: number | null;
  reference_runs?: number;
  ort_runs?: number;
  max_abs_diff?: number;
  /** max |diff| / max |ort output| */
  rel_diff?: number;
  /** integer paths: cosine similarity of each engine's integer-model output with the float model's output */
  ort_vs_float_cosine?: number;
  reference_vs_float_cosine?: number;
  macs?: number;
  error?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { models: ['mobilenetv2', 'resnet18'], paths: ['float', 'float-optimized', 'int8'], runs: 5, warmup: 1, budget: 60, size: 224, width: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--models') o.models = v.split(',') as ArchName[];
    else if (a === '--paths') o.paths = v.split(',') as Path[];
    else if (a === '--runs') o.runs = Number(v);
    else if (a === '--warmup') o.warmup = Number(v);
    else if (a === '--budget') o.budget = Number(v);
    else if (a === '--size') o.size = Number(v);
    else if (a === '--width') o.width = Number(v);
    else throw new Error(`unknown option ${a}`);
  }
  for (const m of o.models) if (!(m in ARCHITECTURES)) throw new Error(`unknown model '${m}' (${Object.keys(ARCHITECTURES).join(', ')})`);
  return o;
}

/** Operators of `model` the reference engine has no kernel for (none: it can run). */
function unsupportedOps(model: Model): string[] {
  const missing = new Set<string>();
  for (const n of model.graph.nodes) {
    const opset = model.opset(n.domain) ?? 1;
    const def = findOp(n.domain, n.opType);
    if (!def || (def.sinceOpset ?? 1) > opset) missing.add(n.domain ? `${n.domain}::${n.opType}` : n.opType);
  }
  return [...missing].sort();
}

async function time(engine: Engine, feeds: Record<string, Tensor>, o: Options): Promise<Timing> {
  const once = async (): Promise<[number, Tensor]> => {
    const t0 = process.hrtime.bigint();
    const out = await engine.run(feeds);
    return [Number(process.hrtime.bigint() - t0) / 1e6, out[engine.outputNames[0]]];
  };
  let [first, output] = await once();
  for (let i = 1; i < o.warmup; i++) [first, output] = await once();
  const runs = Math.max(1, Math.min(o.runs, Math.floor((o.budget * 1000) / Math.max(first, 1e-3))));
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const [t, out] = await once();
    ms.push(t);
    output = out;
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  return { ms: ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2, runs, output };
}

function diff(a: Tensor, b: Tensor): { maxAbs: number; rel: number } {
  const x = a.toFloat32();
  const y = b.toFloat32();
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return { maxAbs, rel: scale > 0 ? maxAbs / scale : maxAbs };
}

function cosine(a: Tensor, b: Tensor): number {
  const x = a.toFloat32();
  const y = b.toFloat32();
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < x.length; i++) {
    xy += x[i] * y[i];
    xx += x[i] * x[i];
    yy += y[i] * y[i];
  }
  return xy / Math.sqrt(xx * yy);
}

function message(e: unknown): string {
  if (isPtqError(e)) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** Time both engines on one model; a missing kernel or a failing engine is reported in the row. */
async function compare(
  name: string, path: Row['path'], model: Model, feeds: Record<string, Tensor>, o: Options, extra: Partial<Row>,
): Promise<{ row: Row; ortOut?: Tensor; refOut?: Tensor }> {
  const row: Row = { bench: 'engine', model: name, path, reference_ms: null, ort_ms: null, ratio: null, ...extra };
  const errors: string[] = [];
  let ortT: Timing | undefined;
  let refT: Timing | undefined;
  const ort = await OrtEngine.create(model, { threads: 1 }).catch((e: unknown) => {
    errors.push(`onnxruntime: ${message(e)}`);
    return undefined;
  });
  if (ort) {
    try {
      ortT = await time(ort, feeds, o);
      row.ort_ms = round(ortT.ms);
      row.ort_runs = ortT.runs;
    } catch (e) {
      errors.push(`onnxruntime: ${message(e)}`);
    }
    await ort.dispose();
  }
  const missing = unsupportedOps(model);
  if (missing.length) {
    errors.push(`reference: no kernel for ${missing.join(', ')}`);
  } else {
    try {
      refT = await time(new ReferenceEngine(model), feeds, o);
      row.reference_ms = round(refT.ms);
      row.reference_runs = refT.runs;
    } catch (e) {
      errors.push(`reference: ${message(e)}`);
    }
  }
  if (refT && ortT) {
    row.ratio = round(refT.ms / ortT.ms);
    const d = diff(refT.output, ortT.output);
    row.max_abs_diff = Number(d.maxAbs.toPrecision(3));
    row.rel_diff = Number(d.rel.toPrecision(3));
  }
  if (errors.length) row.error = errors.join('; ');
  return { row, ortOut: ortT?.output, refOut: refT?.output };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function randomInput(model: Model, seed: number): Record<string, Tensor> {
  const rng = new Rng(seed);
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.realInputs) {
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const n = dims.reduce((p, q) => p * q, 1);
    feeds[v.name] = new Tensor('float32', dims, rng.fillNormal(new Float32Array(n)));
  }
  return feeds;
}

function printTable(rows: Row[]): void {
  const fmt = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? '-' : v.toFixed(d));
  const lines = [
    ['model', 'path', 'reference ms', 'ort ms', 'ratio', 'max|diff|', 'note'],
    ...rows.map((r) => [
      r.model, r.path, fmt(r.reference_ms), fmt(r.ort_ms, 2), r.ratio === null ? '-' : `${r.ratio.toFixed(1)}x`,
      r.max_abs_diff === undefined ? '-' : r.max_abs_diff.toExponential(2),
      r.error ?? (r.ort_vs_float_cosine !== undefined ? `cosine vs float: ort ${r.ort_vs_float_cosine.toFixed(4)}, reference ${r.reference_vs_float_cosine?.toFixed(4) ?? '-'}` : ''),
    ]),
  ];
  const w = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  for (const l of lines) console.error(l.map((s, c) => (c === 6 ? s : s.padEnd(w[c]))).join('  '));
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  for (const name of o.models) {
    const { model, stats } = ARCHITECTURES[name]({ seed: 1, inputSize: o.size, width: o.width });
    const feeds = randomInput(model, 7);
    let floatOut: Tensor | undefined;
    if (o.paths.includes('float')) {
      const { row, ortOut } = await compare(name, 'float', model, feeds, o, { macs: stats.macs });
      floatOut = ortOut;
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    if (o.paths.includes('float-optimized')) {
      // the model as nx-ptq's stages run it: after the optimisation pipeline (BN folded, …);
      // both engines get the same optimised model
      const opt = decodeModel(encodeModel(model), name);
      optimizeModel(opt);
      const { row } = await compare(name, 'float-optimized', opt, feeds, o, { macs: stats.macs });
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    const intPaths = o.paths.filter((p): p is 'int8' | 'uint8' => p === 'int8' || p === 'uint8');
    let ranges: Map<string, Range> | undefined;
    let folded: Model | undefined;
    for (const path of intPaths) {
      let row: Row;
      try {
        if (!ranges || !folded) {
          folded = foldBatchNorm(model);
          const calib = await OrtEngine.create(folded, { threads: 1 });
          ranges = await collectRanges(calib, folded, [feeds, randomInput(model, 8), randomInput(model, 9)]);
          floatOut ??= (await calib.run(feeds))[calib.outputNames[0]];
          await calib.dispose();
        }
        const r = await compare(name, path, toQLinear(folded, ranges, path), feeds, o, { macs: stats.macs });
        row = r.row;
        if (r.ortOut && floatOut) row.ort_vs_float_cosine = Number(cosine(r.ortOut, floatOut).toFixed(5));
        if (r.refOut && floatOut) row.reference_vs_float_cosine = Number(cosine(r.refOut, floatOut).toFixed(5));
      } catch (e) {
        row = { bench: 'engine', model: name, path, reference_ms: null, ort_ms: null, ratio: null, error: `building the ${path} model: ${message(e)}` };
      }
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  printTable(rows);
}

main().catch((e: unknown) => {
  console.error(isPtqError(e) ? e.oneLine() : e);
  process.exitCode = 1;
});
