import { isPtqError, PtqError } from '../errors';
import { isFloat } from '../onnx/dtype';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { FloatData, HISTOGRAM_BINS, HistogramObserver, MinMaxObserver, RangeSummary } from './observers';

/** One calibration sample: a tensor per model input. */
export type Sample = Record<string, Tensor>;

/**
 * Calibration samples. Read twice (one pass each), so either a re-iterable collection (an
 * array, or an object whose iterator method starts over on every call) or a function that
 * returns a fresh iterable; a one-shot generator object is refused.
 */
export type SampleSource = Iterable<Sample> | AsyncIterable<Sample> | (() => Iterable<Sample> | AsyncIterable<Sample>);

export interface CollectProgress {
  /** 1: min/max, 2: histograms */
  pass: 1 | 2;
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
 * samples, in two streaming passes: pass 1 runs every sample and folds min/max/absmax
 * (per tensor, and per channel when asked); pass 2 runs every sample again and counts |x|
 * into a histogram over [0, absmax of pass 1].
 *
 * Memory: each sample's activations are dropped once observed, so the peak is one sample's
 * fetched tensors (the engine returns them together) plus, per tensor, 2 numbers per channel
 * (or 2 without per-channel) for pass 1 and one Float64Array of `bins` counts for pass 2
 * (16 KiB at 2048 bins): O(tensors × (bins + channels)), whatever the number of samples.
 * Recomputing the activations in pass 2 trades a second forward pass for not storing them.
 */
export async function collectStatistics(model: Model, samples: SampleSource, tensors: string[], opts: CollectOptions = {}): Promise<CalibrationStatistics> {
  checkTensorNames(model, tensors);
  checkReiterable(samples);
  const { engine, owned } = await openEngine(model, tensors, opts.engine);
  try {
    const names = [...new Set(tensors)];
    const ranges = new Map(names.map((n) => [n, new MinMaxObserver(opts.perChannel ?? false)]));
    const count = await runPass(engine, samples, names, 1, undefined, opts.onProgress, (name, data, dims) => ranges.get(name)!.observe(data, dims));
    if (count === 0) {
      throw new PtqError('E_CALIBRATION_DATA', 'no calibration samples were given', {
        fix: 'point cal_data_dir at a folder with at least one sample per input',
      });
    }
    const summaries = new Map(names.map((n) => [n, ranges.get(n)!.summary()]));
    const histograms = new Map(names.map((n) => [n, new HistogramObserver(summaries.get(n)!.absmax, opts.bins ?? HISTOGRAM_BINS)]));
    const again = await runPass(engine, samples, names, 2, count, opts.onProgress, (name, data) => histograms.get(name)!.observe(data));
    if (again !== count) {
      throw new PtqError('E_CALIBRATION_DATA', `the calibration samples changed between passes (${count} samples, then ${again})`, {
        fix: 'keep the calibration data unchanged while calibrating',
      });
    }
    const out: Record<string, TensorStatistics> = {};
    for (const n of names) {
      const h = histograms.get(n)!;
      out[n] = { ...summaries.get(n)!, histogram: h.histogram, binWidth: h.binWidth, zeros: h.zeros };
    }
    return { engine: engine.name, samples: count, tensors: out };
  } finally {
    if (owned) await engine.dispose();
  }
}

type Visit = (name: string, data: FloatData, dims: readonly number[]) => void;

/** Run every sample once, handing each fetched tensor to `visit`; returns the sample count. */
async function runPass(engine: Engine, samples: SampleSource, names: string[], pass: 1 | 2, total: number | undefined, onProgress: CollectOptions['onProgress'], visit: Visit): Promise<number> {
  let done = 0;
  for await (const feeds of typeof samples === 'function' ? samples() : samples) {
    const out = await engine.run(feeds, { fetch: names });
    for (const name of names) {
      const t = out[name];
      visit(name, floatData(t, name), t.dims);
    }
    done++;
    onProgress?.({ pass, samples: done, total });
  }
  return done;
}

function floatData(t: Tensor, name: string): FloatData {
  if (t.dtype === 'float32' || t.dtype === 'float64') return t.data as FloatData;
  if (isFloat(t.dtype)) return t.toFloat32();
  throw new PtqError('E_CALIBRATE_DTYPE', `value '${name}' is ${t.dtype}; only float tensors are calibrated`, {
    subject: name,
    fix: 'calibrate the float activations only (this one needs no threshold)',
  });
}

async function openEngine(model: Model, tensors: string[], choice: CollectOptions['engine']): Promise<{ engine: Engine; owned: boolean }> {
  if (typeof choice === 'object') return { engine: choice, owned: false };
  if (choice === 'reference') return { engine: new ReferenceEngine(model), owned: true };
  try {
    return { engine: await OrtEngine.create(model, { threads: 1, fetchable: tensors }), owned: true };
  } catch (e) {
    if (choice === 'ort' || !isPtqError(e) || !ORT_FALLBACK.has(e.code)) throw e;
    return { engine: new ReferenceEngine(model), owned: true };
  }
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
