import { isPtqError, PtqError } from '../errors';
import { isFloat } from '../onnx/dtype';
import { Model } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor } from '../onnx/tensor';
import { ValueFacts } from '../ops/registry';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { chooseEngine } from '../runtime/select';
import { FloatData, HISTOGRAM_BINS, HistogramObserver, MinMaxObserver, RangeSummary } from './observers';
import { collectSampled } from './sampled';
import { StatisticsGraph } from './statistics-graph';

/** One calibration sample: a tensor per model input. */
export type Sample = Record<string, Tensor>;

/**
 * Calibration samples. Read twice (one pass each), so either a re-iterable collection (an
 * array, or an object whose iterator method starts over on every call) or a function that
 * returns a fresh iterable; a one-shot generator object is refused.
 */
export type SampleSource = Iterable<Sample> | AsyncIterable<Sample> | (() => Iterable<Sample> | AsyncIterable<Sample>);

export interface CollectProgress {
  /** 1: min/max (or, sampled, everything), 2: histograms (or, sampled, a rare exact pass) */
  pass: 1 | 2;
  /** what the pass collects: 'ranges', 'histograms', 'ranges and histograms' (one pass, `sample`) */
  what: string;
  /** samples done in this pass */
  samples: number;
  /** samples in the pass, when known (pass 2) */
  total?: number;
}

export interface CollectOptions {
  /**
   * Float engine for the passes: 'ort' (onnxruntime, one thread), 'reference' (our kernels),
   * or an engine the caller owns. Default: onnxruntime when it is installed and loads the
   * model, the reference engine otherwise.
   */
  engine?: 'ort' | 'reference' | Engine;
  /** also observe min/max/absmax per channel (axis 1) */
  perChannel?: boolean;
  /** histogram bins (default 2048) */
  bins?: number;
  /**
   * Histogram values per tensor per sample: with a number, ONE pass collects the exact ranges and
   * histograms of a fixed subsample of each larger tensor (calibrate/sampled.ts; the default of
   * the calibrate stage, DEFAULT_HISTOGRAM_SAMPLE); without, two passes count every value. Taken
   * only with an engine collectStatistics opens itself ('ort', 'reference' or the default).
   */
  sample?: number;
  onProgress?: (p: CollectProgress) => void;
}

/** What calibration knows about one tensor after both passes. */
export interface TensorStatistics extends RangeSummary {
  /** counts of |x| in equal bins over [0, absmax] (see HistogramObserver) */
  histogram: Float64Array;
  /** absmax / bins */
  binWidth: number;
  /** elements exactly 0 (included in histogram[0]) */
  zeros: number;
  /** values counted in the histogram, when it is taken from a subsample (`sample`) */
  histogramValues?: number;
}

export interface CalibrationStatistics {
  /** engine that computed the activations ('ort' or 'reference', or the caller's engine name) */
  engine: string;
  /** samples per pass */
  samples: number;
  tensors: Record<string, TensorStatistics>;
}

/** onnxruntime failures after which the default engine choice falls back to the reference engine. */
const ORT_FALLBACK = new Set(['E_ORT_MISSING', 'E_ORT_LOAD', 'E_ORT_DTYPE']);

/**
 * Statistics of the named tensors (graph inputs or node outputs) over the calibration
 * samples. With `opts.sample` (the calibrate stage's default): one pass, exact ranges and
 * histograms of a fixed subsample of each larger tensor (calibrate/sampled.ts, README.md).
 * Without: two streaming passes: pass 1 runs every sample and folds min/max/absmax
 * (per tensor, and per channel when asked); pass 2 runs every sample again and counts |x|
 * into a histogram over [0, absmax of pass 1].
 *
 * With onnxruntime (the default), pass 1 runs a copy of the model whose outputs are, per
 * float32 tensor, a ReduceMin and a ReduceMax over every axis but 1 (rangeModel): the ranges
 * are computed next to the activations and only C numbers per tensor cross into JavaScript,
 * instead of every activation (the copy out of onnxruntime, not the arithmetic, is what a
 * pass that fetches every tensor costs). A tensor whose reduced range is not finite (NaN or
 * ±Infinity in the data; the observers skip those) gets its range again from its fetched
 * values. Pass 2 opens one session whose outputs are all the tensors (OrtEngine `fetchable`)
 * and counts them in JavaScript (accumulateHistogram). With the reference engine or an
 * engine the caller gives, both passes fetch the tensors.
 *
 * Memory: each sample's activations are dropped once observed, so the peak is one sample's
 * fetched tensors (the engine returns them together) plus, per tensor, 2 numbers per channel
 * for pass 1 and 4 × `bins` counts for pass 2 (64 KiB at 2048 bins, see HistogramObserver):
 * O(tensors × (bins + channels)), whatever the number of samples. The two onnxruntime
 * sessions are open one after the other, never together. Recomputing the activations in
 * pass 2 trades a second forward pass for not storing them.
 */
export async function collectStatistics(model: Model, samples: SampleSource, tensors: string[], opts: CollectOptions = {}): Promise<CalibrationStatistics> {
  const names = [...new Set(tensors)];
  const choice = engineChoice(model, opts.engine);
  if (opts.sample !== undefined && typeof choice !== 'object') return sampledStatistics(model, samples, names, { ...opts, sample: opts.sample, engine: choice });
  const { ranges, count, fetchEngine } = await rangePass(model, samples, names, opts.perChannel ?? false, choice, opts.onProgress);
  const inputs = new Set(model.graph.realInputs.map((v) => v.name));
  const fetched = names.filter((n) => !inputs.has(n));
  let pass2 = fetchEngine;
  try {
    pass2 ??= await openEngine(model, fetched, choice);
    const engine = pass2.engine;
    const summaries = new Map(names.map((n) => [n, ranges.get(n)!.summary()]));
    const bins = opts.bins ?? HISTOGRAM_BINS;
    const histograms = new Map(names.map((n) => [n, new HistogramObserver(summaries.get(n)!.absmax, bins)]));
    const elements = new Map(names.map((n) => [n, 0]));
    const again = await runPass(engine, samples, fetched, 2, count, opts.onProgress, (out) => {
      for (const name of names) {
        const data = floatData(out[name], name);
        histograms.get(name)!.observe(data);
        elements.set(name, elements.get(name)! + data.length);
      }
    });
    if (again !== count) {
      throw new PtqError('E_CALIBRATION_DATA', `the calibration samples changed between passes (${count} samples, then ${again})`, {
        fix: 'keep the calibration data unchanged while calibrating',
      });
    }
    const out: Record<string, TensorStatistics> = {};
    for (const n of names) {
      const h = histograms.get(n)!;
      // counts from pass 2 (pass 1 may have seen only reduced ranges)
      const counts = { count: elements.get(n)! - h.nonFinite, nonFinite: h.nonFinite };
      out[n] = { ...summaries.get(n)!, ...counts, histogram: h.histogram, binWidth: h.binWidth, zeros: h.zeros };
    }
    return { engine: engine.name, samples: count, tensors: out };
  } finally {
    if (pass2?.owned) await pass2.engine.dispose();
  }
}

/** The one-pass collection (calibrate/sampled.ts), with the exact passes for what it cannot settle. */
async function sampledStatistics(model: Model, samples: SampleSource, names: string[], opts: CollectOptions & { sample: number }): Promise<CalibrationStatistics> {
  checkRequest(model, samples, names);
  const progress = opts.onProgress;
  const exactOpts = {
    engine: opts.engine,
    perChannel: opts.perChannel,
    bins: opts.bins,
    onProgress: progress && ((p: CollectProgress) => progress({ ...p, pass: 2, what: `exact ${p.what}` })),
  };
  return collectSampled(
    model,
    samples,
    names,
    opts,
    (some, kind) => (kind === 'statistics' ? collectStatistics(model, samples, some, exactOpts) : collectRanges(model, samples, some, exactOpts)),
    async (engine, source, visit) => {
      const count = await runPass(engine, source, [], 1, undefined, progress && ((p) => progress({ ...p, what: 'ranges and histograms' })), visit);
      if (count === 0) throw noSamplesError();
      return count;
    },
    floatData,
  );
}

/**
 * Pass 1 alone: the range of each tensor, per channel (axis 1) too when asked, as
 * collectStatistics computes it. For what needs the ranges before the histograms are
 * worth taking (per-channel equalisation, calibrate/equalize.ts). `count` and `nonFinite` count
 * the values that crossed into JavaScript: 0 for a tensor onnxruntime reduced itself.
 */
export async function collectRanges(model: Model, samples: SampleSource, tensors: string[], opts: Omit<CollectOptions, 'bins'> = {}): Promise<{ samples: number; tensors: Record<string, RangeSummary> }> {
  const names = [...new Set(tensors)];
  const { ranges, count, fetchEngine } = await rangePass(model, samples, names, opts.perChannel ?? false, engineChoice(model, opts.engine), opts.onProgress);
  if (fetchEngine?.owned) await fetchEngine.engine.dispose();
  const out: Record<string, RangeSummary> = {};
  for (const n of names) out[n] = ranges.get(n)!.summary();
  return { samples: count, tensors: out };
}

type EngineChoice = CollectOptions['engine'];

/** The caller's choice; by default onnxruntime, the reference engine for custom operators. */
function engineChoice(model: Model, choice: EngineChoice): EngineChoice {
  return choice ?? (chooseEngine(model).engine === 'reference' ? 'reference' : undefined);
}

/**
 * Pass 1 (see collectStatistics): checks the names and the samples, folds every sample into a
 * MinMaxObserver per tensor. Hands back the fetching engine when it opened one (the caller's
 * engine, the reference engine, onnxruntime after a non-finite reduced range), for pass 2.
 */
async function rangePass(
  model: Model,
  samples: SampleSource,
  names: string[],
  perChannel: boolean,
  choice: EngineChoice,
  onProgress: CollectOptions['onProgress'],
): Promise<{ ranges: Map<string, MinMaxObserver>; count: number; fetchEngine?: { engine: Engine; owned: boolean } }> {
  const facts = checkRequest(model, samples, names);
  const ranges = new Map(names.map((n) => [n, new MinMaxObserver(perChannel)]));
  const inputs = new Set(model.graph.realInputs.map((v) => v.name));
  const fetched = names.filter((n) => !inputs.has(n));

  const ranged = typeof choice === 'object' || choice === 'reference' ? undefined : await openRangeEngine(model, names, facts, perChannel, choice);
  if (!ranged) {
    const fetchEngine = await openEngine(model, fetched, choice);
    try {
      const count = await runPass(fetchEngine.engine, samples, fetched, 1, undefined, onProgress, (out) => {
        for (const name of names) {
          const t = out[name];
          ranges.get(name)!.observe(floatData(t, name), t.dims);
        }
      });
      if (count === 0) throw noSamplesError();
      return { ranges, count, fetchEngine };
    } catch (e) {
      if (fetchEngine.owned) await fetchEngine.engine.dispose();
      throw e;
    }
  }
  let count: number;
  try {
    count = await runPass(ranged.engine, samples, [], 1, undefined, onProgress, (out, feeds) => {
      for (const [name, r] of ranged.plan.reduced) ranges.get(name)!.observeRanges(floatData(out[r.min], name), floatData(out[r.max], name));
      for (const name of ranged.plan.raw) {
        const t = out[name] ?? feeds[name];
        ranges.get(name)!.observe(floatData(t, name), t.dims);
      }
    });
  } finally {
    await ranged.engine.dispose();
  }
  if (count === 0) throw noSamplesError();
  const redo = [...ranged.plan.reduced.keys()].filter((n) => !ranges.get(n)!.finite());
  if (!redo.length) return { ranges, count };
  // non-finite values in a reduced range: the range of the finite values, from the values
  const fetchEngine = await openEngine(model, fetched, choice);
  try {
    for (const n of redo) ranges.set(n, new MinMaxObserver(perChannel));
    await runPass(fetchEngine.engine, samples, fetched, 1, undefined, undefined, (out) => {
      for (const name of redo) ranges.get(name)!.observe(floatData(out[name], name), out[name].dims);
    });
    return { ranges, count, fetchEngine };
  } catch (e) {
    if (fetchEngine.owned) await fetchEngine.engine.dispose();
    throw e;
  }
}

function noSamplesError(): PtqError {
  return new PtqError('E_CALIBRATION_DATA', 'no calibration samples were given', { fix: 'point cal_data_dir at a folder with at least one sample per input' });
}

type Visit = (out: Record<string, Tensor>, feeds: Sample) => void | Promise<void>;

/** Run every sample once, handing the outputs (with `fetch`) to `visit`; returns the sample count. */
async function runPass(engine: Engine, samples: SampleSource, fetch: string[], pass: 1 | 2, total: number | undefined, onProgress: CollectOptions['onProgress'], visit: Visit): Promise<number> {
  let done = 0;
  for await (const feeds of typeof samples === 'function' ? samples() : samples) {
    const out = await engine.run(feeds, { fetch });
    // graph inputs are not fetched: their values are the feeds
    await visit(Object.keys(feeds).length ? { ...feeds, ...out } : out, feeds);
    done++;
    onProgress?.({ pass, what: pass === 1 ? 'ranges' : 'histograms', samples: done, total });
  }
  return done;
}

function floatData(t: Tensor, name: string): FloatData {
  if (t.dtype === 'float32' || t.dtype === 'float64') return t.data as FloatData;
  if (isFloat(t.dtype)) return t.toFloat32();
  throw dtypeError(name, t.dtype);
}

function dtypeError(name: string, dtype: string): PtqError {
  return new PtqError('E_CALIBRATE_DTYPE', `value '${name}' is ${dtype}; only float tensors are calibrated`, {
    subject: name,
    fix: 'calibrate the float activations only (this one needs no threshold)',
  });
}

async function openEngine(model: Model, fetchable: string[], choice: CollectOptions['engine']): Promise<{ engine: Engine; owned: boolean }> {
  if (typeof choice === 'object') return { engine: choice, owned: false };
  if (choice === 'reference') return { engine: new ReferenceEngine(model), owned: true };
  try {
    return { engine: await OrtEngine.create(model, { threads: 1, fetchable }), owned: true };
  } catch (e) {
    if (choice === 'ort' || !isPtqError(e) || !ORT_FALLBACK.has(e.code)) throw e;
    return { engine: new ReferenceEngine(model), owned: true };
  }
}

/**
 * The pass-1 engine: onnxruntime on rangeModel. Undefined when onnxruntime cannot take it and
 * the choice allows another way (the caller then fetches the values, on the reference engine
 * when onnxruntime is not there at all).
 */
async function openRangeEngine(model: Model, names: string[], facts: Map<string, ValueFacts>, perChannel: boolean, choice: 'ort' | undefined): Promise<{ engine: Engine; plan: RangePlan } | undefined> {
  const plan = rangeModel(model, names, facts, perChannel);
  try {
    return { engine: await OrtEngine.create(plan.model, { threads: 1 }), plan };
  } catch (e) {
    if (!isPtqError(e)) throw e;
    if (choice === 'ort' && e.code === 'E_ORT_MISSING') throw e;
    return undefined; // (a reduction onnxruntime refuses: the plain way reports the model's own problems)
  }
}

/** A model whose outputs are the per-channel ranges of the tensors (see collectStatistics). */
export interface RangePlan {
  model: Model;
  /** tensor → names of its ReduceMin / ReduceMax outputs (length C for rank ≥ 2, else 1) */
  reduced: Map<string, { min: string; max: string }>;
  /** tensors passed through whole: graph inputs (the feeds), values of unknown rank or not float32 */
  raw: string[];
}

/**
 * `model` plus, for each float32 tensor of known rank r, ReduceMin and ReduceMax over the axes
 * {0, 2, …, r−1} (keepdims 0: one number per channel of axis 1; every axis when r < 2 or not
 * `perChannel`: one number), which become the only graph outputs with the raw tensors.
 * Tensors are shared with `model`.
 */
export function rangeModel(model: Model, names: string[], facts: Map<string, ValueFacts>, perChannel = true): RangePlan {
  const sg = new StatisticsGraph(model);
  const inputs = new Set(sg.g.realInputs.map((v) => v.name));
  const reduced = new Map<string, { min: string; max: string }>();
  const raw: string[] = [];
  const outputs: string[] = [];
  for (const name of names) {
    const f = facts.get(name);
    if (inputs.has(name) || f?.dtype !== 'float32' || !f.shape) {
      raw.push(name);
      if (!inputs.has(name)) outputs.push(name);
      continue;
    }
    const ends = { min: sg.reduce('ReduceMin', name, f.shape.length, perChannel), max: sg.reduce('ReduceMax', name, f.shape.length, perChannel) };
    outputs.push(ends.min, ends.max);
    reduced.set(name, ends);
  }
  sg.setOutputs(outputs);
  return { model: sg.model, reduced, raw };
}

/** The names exist and are float, the samples can be read more than once; the value facts of the model. */
function checkRequest(model: Model, samples: SampleSource, names: string[]): Map<string, ValueFacts> {
  checkTensorNames(model, names);
  checkReiterable(samples);
  const facts = inferShapes(model, { apply: false });
  for (const n of names) {
    const dtype = facts.get(n)?.dtype;
    if (dtype && !isFloat(dtype)) throw dtypeError(n, dtype);
  }
  return facts;
}

function checkTensorNames(model: Model, tensors: string[]): void {
  const g = model.graph;
  const known = new Set(g.realInputs.map((v) => v.name));
  for (const n of g.nodes) for (const o of n.outputs) if (o) known.add(o);
  for (const name of tensors) {
    if (!known.has(name)) {
      throw new PtqError('E_VALUE_UNKNOWN', `value '${name}' is neither a model input nor computed by the model`, {
        subject: name,
        fix: 'calibrate existing activations (graph inputs or node outputs)',
      });
    }
  }
}

/** A generator object (its iterator method returns itself) would be empty on the second pass. */
function checkReiterable(samples: SampleSource): void {
  if (typeof samples === 'function') return;
  const s = samples as Partial<Iterable<Sample> & AsyncIterable<Sample>>;
  const asyncIt = s[Symbol.asyncIterator];
  const it = asyncIt ? asyncIt.call(s) : s[Symbol.iterator]?.call(s);
  if ((it as unknown) === samples) {
    throw new Error('collectStatistics: the samples are read twice; pass an array or a function returning a fresh iterable, not a generator object');
  }
}
