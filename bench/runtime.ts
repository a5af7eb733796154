import * as fs from 'fs';
import * as path from 'path';
import type { CheckJson } from '../compiler/src/check';
import { placeModel } from '../compiler/src/check/placement';
import { compileFromConfig } from '../compiler/src/compile';
import { loadConfig } from '../compiler/src/config';
import { loadCustomOps } from '../compiler/src/custom';
import { loadAndValidate } from '../compiler/src/onnx/load';
import { placementFromJson } from '../compiler/src/stages/compile';
import { compileQuantizedModel } from '../compiler/src/compile/compile';
import { compareWithReference, pairedFeeds } from '../compiler/src/compile/compile.test.util';
import { decodeBin, encodeBin } from '../compiler/src/compile/bin-format';
import { gemmBackend } from '../compiler/src/kernels/gemm';
import { Rng } from '../compiler/src/kernels/random';
import { Model } from '../compiler/src/onnx/ir';
import { optimizeModel } from '../compiler/src/optimize/pipeline';
import { insertPreprocess } from '../compiler/src/preprocess/hz-preprocess';
import { emitQuantizedModel } from '../compiler/src/quantize';
import { maxThresholds, randomFeeds } from '../compiler/src/quantize/quantize.test.util';
import { BinEngine } from '../compiler/src/runtime/bin-engine';
import { OrtEngine } from '../compiler/src/runtime/ort';
import { ArchName, ARCHITECTURES } from '../scripts/fixtures/architectures';

/**
 * `.bin` host runtime ÷ onnxruntime (1 intra-op, 1 inter-op thread) on the same
 * `***_quantized_model.onnx`, in the same process: the fixture CNNs go through the real
 * pipeline (HzPreprocess for an rgb NCHW input, optimisation, placement, absmax calibration on
 * two seeded inputs, int8 quantization), the quantized model is compiled to a `.bin` (O3)
 * and both engines run the same inputs (the `.bin` takes uint8 rgb, onnxruntime the int8
 * (x − 128) NHWC the quantized model takes). The outputs are checked bit for bit against the
 * ReferenceEngine on the quantized model (one input) before timing.
 *
 *   node -r @swc-node/register bench/runtime.ts [--models mobilenetv2,resnet18] [--size 224]
 *        [--width 1] [--runs 10] [--warmup 2] [--budget 60]
 *   node -r @swc-node/register bench/runtime.ts --zoo 100
 *
 * Each engine: `warmup` untimed runs, then the median of `runs` (fewer when they would exceed
 * `budget` seconds). Prints a table on stderr and one JSON line per model on stdout.
 *
 * `--zoo N` instead compiles every model of the zoo that has been converted up to the quantize
 * stage (models/<name>/<working_dir>/<prefix>_quantized_model.onnx, with its model.yaml and
 * check.json; nothing is written) and checks the `.bin` against the ReferenceEngine on N
 * random inputs, timing both engines on one input.
 */

interface Options {
  zoo: number;
  models: ArchName[];
  size: number;
  width: number;
  runs: number;
  warmup: number;
  budget: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { zoo: 0, models: ['mobilenetv2', 'resnet18'], size: 224, width: 1, runs: 10, warmup: 2, budget: 60 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--models') o.models = v.split(',') as ArchName[];
    else if (a === '--size') o.size = Number(v);
    else if (a === '--width') o.width = Number(v);
    else if (a === '--runs') o.runs = Number(v);
    else if (a === '--warmup') o.warmup = Number(v);
    else if (a === '--budget') o.budget = Number(v);
    else if (a === '--zoo') o.zoo = Number(v);
    else throw new Error(`unknown option ${a}`);
  }
  for (const m of o.models) if (!(m in ARCHITECTURES)) throw new Error(`unknown model '${m}' (${Object.keys(ARCHITECTURES).join(', ')})`);
  return o;
}

function quantized(name: ArchName, o: Options): { q: Model; cpuNodes: Set<string> } {
  const float = ARCHITECTURES[name]({ width: o.width, inputSize: o.size, numClasses: 1000 }).model;
  const pre = insertPreprocess(float, [
    { name: 'input', typeTrain: 'rgb', typeRt: 'rgb', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174] },
  ]).model;
  optimizeModel(pre);
  const placement = placeModel(pre, { march: 'bernoulli2' });
  const cpuNodes = new Set(placement.nodes.filter((n) => n.on === 'CPU').map((n) => n.name));
  const q = emitQuantizedModel(pre, { activations: maxThresholds(pre, randomFeeds(pre, 2, 1)), cpuNodes, march: 'bernoulli2' });
  return { q, cpuNodes };
}

async function median(fn: () => Promise<unknown> | unknown, o: Options): Promise<{ ms: number; runs: number }> {
  const once = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  let first = await once();
  for (let i = 1; i < o.warmup; i++) first = await once();
  const runs = Math.max(1, Math.min(o.runs, Math.floor((o.budget * 1000) / Math.max(first, 1e-3))));
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) ms.push(await once());
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  return { ms: ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2, runs };
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** --zoo: every converted zoo model compiled with its own YAML and checked on `n` random inputs. */
async function zoo(n: number): Promise<void> {
  const modelsDir = path.resolve(__dirname, '..', 'models');
  for (const name of fs.readdirSync(modelsDir).sort()) {
    const yaml = path.join(modelsDir, name, 'model.yaml');
    if (!fs.existsSync(yaml)) continue;
    const cfg = loadConfig(yaml);
    const work = cfg.model.workingDir;
    const prefix = cfg.model.outputModelFilePrefix;
    const qFile = path.join(work, `${prefix}_quantized_model.onnx`);
    const optFile = path.join(work, `${prefix}_optimized_float_model.onnx`);
    const checkFile = path.join(work, 'check.json');
    if (![qFile, optFile, checkFile].every((f) => fs.existsSync(f))) {
      process.stdout.write(`${JSON.stringify({ bench: 'runtime-zoo', model: name, skipped: 'not converted up to the quantize stage' })}\n`);
      continue;
    }
    if (cfg.customOp) loadCustomOps(cfg);
    const check = JSON.parse(fs.readFileSync(checkFile, 'utf8')) as CheckJson;
    const q = loadAndValidate(qFile);
    const cpuNodes = new Set(check.nodes.filter((x) => x.on === 'CPU').map((x) => x.name));
    const t0 = performance.now();
    const { model } = compileFromConfig(cfg, q, { optimized: loadAndValidate(optFile), placement: placementFromJson(check), cpuNodes });
    const compileMs = performance.now() - t0;
    const engine = BinEngine.load(decodeBin(encodeBin({ formatVersion: 1, packed: false, models: [model] })));
    const t1 = performance.now();
    const r = compareWithReference((f) => engine.runSync(f), model, q, n, 17);
    const feeds = pairedFeeds(model, q, new Rng(2));
    const ort = await OrtEngine.create(q, { threads: 1 });
    const o: Options = { zoo: n, models: [], size: 0, width: 0, runs: 5, warmup: 1, budget: 20 };
    const onnx = await median(() => ort.run(feeds.ref), o);
    await ort.dispose();
    const bin = await median(() => engine.runSync(feeds.bin), o);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'runtime-zoo', model: name, samples: r.samples, bit_exact: r.mismatch === undefined, ...(r.mismatch ? { mismatch: r.mismatch } : {}),
        check_s: round((performance.now() - t1) / 1000), compile_ms: Math.round(compileMs), arena_bytes: model.arenaBytes,
        bin_ms: round(bin.ms), ort_ms: round(onnx.ms), ratio: round(bin.ms / onnx.ms),
      })}\n`,
    );
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.zoo > 0) return zoo(o.zoo);
  const rows: Record<string, unknown>[] = [];
  for (const name of o.models) {
    const { q, cpuNodes } = quantized(name, o);
    const t0 = performance.now();
    const { model } = compileQuantizedModel(q, { name, cpuNodes, optimizeLevel: 'O3', inputs: { input: { layoutRt: 'NCHW' } } });
    const compileMs = performance.now() - t0;
    const bytes = encodeBin({ formatVersion: 1, packed: false, models: [model] });
    const engine = BinEngine.load(decodeBin(bytes, `${name}.bin`));
    const check = compareWithReference((f) => engine.runSync(f), model, q, 1, 3);
    const feeds = pairedFeeds(model, q, new Rng(9));
    const ort = await OrtEngine.create(q, { threads: 1 });
    let bin: { ms: number; runs: number };
    let onnx: { ms: number; runs: number };
    try {
      onnx = await median(() => ort.run(feeds.ref), o);
      bin = await median(() => engine.runSync(feeds.bin), o);
    } finally {
      await ort.dispose();
    }
    const row = {
      bench: 'runtime', model: name, size: o.size, width: o.width, bin_ms: round(bin.ms), ort_ms: round(onnx.ms), ratio: round(bin.ms / onnx.ms),
      bin_runs: bin.runs, ort_runs: onnx.runs, bit_exact: check.mismatch === undefined, ...(check.mismatch ? { mismatch: check.mismatch } : {}),
      compile_ms: Math.round(compileMs), bin_bytes: bytes.length, arena_bytes: model.arenaBytes, backend: gemmBackend(),
    };
    rows.push(row);
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }
  const w = [14, 10, 10, 8, 10];
  const line = (c: string[]): string => c.map((x, i) => x.padEnd(w[i] ?? 10)).join('');
  process.stderr.write(`${line(['model', '.bin ms', 'ort ms', 'ratio', 'bit-exact'])}\n`);
  for (const r of rows) process.stderr.write(`${line([String(r.model), String(r.bin_ms), String(r.ort_ms), `${r.ratio}x`, String(r.bit_exact)])}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
