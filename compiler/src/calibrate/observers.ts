/**
 * What calibration observes about an activation, one sample at a time (the "collector" half
 * of calibration; algorithms/ turn what is observed into thresholds).
 *
 * Two streaming passes over the calibration set:
 *  1. `MinMaxObserver`: min, max and absmax per tensor, optionally per channel (axis 1);
 *  2. `HistogramObserver`: a fixed-range histogram of |x| over [0, absmax of pass 1].
 * Or one pass (calibrate/sampled.ts): the ranges reduced by onnxruntime, and a
 * `GrowingHistogram` whose power-of-two range follows the absmax seen so far, laid out over the
 * final absmax at the end (growingToFixed). Each observer holds O(bins + channels) numbers,
 * whatever the number of samples; the data of a sample is read once and never kept. NaN and
 * ±Infinity are skipped and counted. The counting kernels are calibrate/counting.ts's.
 */

import { countingCore, CountingCore, GrowingCounter, GrowingState } from './counting';

/** Activation data the observers read (float16 is widened to float32 by the caller). */
export type FloatData = Float32Array | Float64Array;

/** Bins of the |x| histograms (TensorRT's entropy calibration uses 2048). */
export const HISTOGRAM_BINS = 2048;

// ---------------------------------------------------------------- kernels

// bound once: global lookups are slow inside vm contexts (jest runs tests in one)
const { floor, max, min } = Math;

const core = countingCore();

/**
 * Fold `data[from..to)` into the running range `acc[2k]` (min) and `acc[2k+1]` (max).
 * Returns how many elements were not finite (skipped).
 */
export function accumulateRange(data: FloatData, from: number, to: number, acc: Float64Array, k: number): number {
  let lo = acc[2 * k];
  let hi = acc[2 * k + 1];
  let skipped = 0;
  for (let i = from; i < to; i++) {
    const v = data[i];
    if (v - v !== 0) {
      skipped++; // NaN or ±Infinity (Infinity - Infinity is NaN)
      continue;
    }
    // min/max rather than `if (v < lo)`: no branch to mispredict on noisy data
    lo = min(lo, v);
    hi = max(hi, v);
  }
  acc[2 * k] = lo;
  acc[2 * k + 1] = hi;
  return skipped;
}

/** Count |data[from..to)| into a histogram (countingCore's kernel; see CountingCore.accumulateHistogram). */
export const accumulateHistogram: CountingCore['accumulateHistogram'] = core.accumulateHistogram;

/** Channels (axis 1) and elements per channel per batch item of an NCHW-like shape; rank < 2 is one channel. */
export function channelLayout(dims: readonly number[]): { outer: number; channels: number; inner: number } {
  if (dims.length < 2) return { outer: 1, channels: 1, inner: dims.length ? dims[0] : 1 };
  let inner = 1;
  for (let i = 2; i < dims.length; i++) inner *= dims[i];
  return { outer: dims[0], channels: dims[1], inner };
}

// ---------------------------------------------------------------- pass 1

/** Range of a tensor over all samples seen so far. */
export interface RangeSummary {
  /** 0 when no finite value was seen (likewise max and absmax) */
  min: number;
  max: number;
  /** max(|min|, |max|) */
  absmax: number;
  /** finite elements seen */
  count: number;
  /** NaN/±Infinity elements skipped */
  nonFinite: number;
  /** per channel (axis 1), when observed per channel */
  perChannelMin?: Float64Array;
  perChannelMax?: Float64Array;
  perChannelAbsmax?: Float64Array;
}

/** Pass 1: running min/max/absmax of one tensor, per tensor and (optionally) per channel along axis 1. */
export class MinMaxObserver {
  /** [min, max] pairs: one per channel when per channel, else one */
  private acc: Float64Array | undefined;
  private total = 0;
  private skipped = 0;
  private nonFiniteBounds = false;

  constructor(readonly perChannel = false) {}

  /** Fold in one sample (any batch size; the channel count must not change between samples). */
  observe(data: FloatData, dims: readonly number[]): void {
    const { outer, channels, inner } = channelLayout(dims);
    const slots = this.perChannel ? channels : 1;
    if (!this.acc) this.acc = emptyRanges(slots);
    else if (this.acc.length !== 2 * slots) {
      throw new Error(`MinMaxObserver: ${slots} channels, earlier samples had ${this.acc.length / 2}`);
    }
    let skipped = 0;
    if (!this.perChannel) skipped = accumulateRange(data, 0, data.length, this.acc, 0);
    else {
      for (let n = 0; n < outer; n++) {
        for (let c = 0; c < channels; c++) {
          const from = (n * channels + c) * inner;
          skipped += accumulateRange(data, from, from + inner, this.acc, c);
        }
      }
    }
    this.skipped += skipped;
    this.total += data.length - skipped;
  }

  /**
   * Fold in ranges reduced elsewhere (onnxruntime, see collect.ts): `lo[c]`/`hi[c]` are the
   * min and max of channel c of one sample (one entry for a tensor without channels). They
   * must be finite: the observer cannot tell which values a non-finite bound stands for
   * (`finite()` says whether every bound folded so far was).
   */
  observeRanges(lo: FloatData, hi: FloatData): void {
    const slots = this.perChannel ? lo.length : 1;
    if (!this.acc) this.acc = emptyRanges(slots);
    else if (this.acc.length !== 2 * slots) {
      throw new Error(`MinMaxObserver: ${slots} channels, earlier samples had ${this.acc.length / 2}`);
    }
    const acc = this.acc;
    for (let c = 0; c < lo.length; c++) {
      const a = lo[c];
      const b = hi[c];
      if (a - a !== 0 || b - b !== 0) this.nonFiniteBounds = true;
      const k = this.perChannel ? 2 * c : 0;
      acc[k] = min(acc[k], a);
      acc[k + 1] = max(acc[k + 1], b);
    }
  }

  /** max(|min|, |max|) of what was folded in so far (0 before anything). */
  absmax(): number {
    const acc = this.acc;
    if (!acc) return 0;
    let a = 0;
    for (let k = 0; k < acc.length; k += 2) if (acc[k] <= acc[k + 1]) a = max(a, -acc[k], acc[k + 1]);
    return a;
  }

  /** False once a non-finite bound was folded in by observeRanges. */
  finite(): boolean {
    return !this.nonFiniteBounds;
  }

  summary(): RangeSummary {
    const acc = this.acc ?? emptyRanges(1);
    const slots = acc.length / 2;
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 0; k < slots; k++) {
      lo = Math.min(lo, acc[2 * k]);
      hi = Math.max(hi, acc[2 * k + 1]);
    }
    const s: RangeSummary = { ...rangeOf(lo, hi), count: this.total, nonFinite: this.skipped };
    if (this.perChannel) {
      s.perChannelMin = new Float64Array(slots);
      s.perChannelMax = new Float64Array(slots);
      s.perChannelAbsmax = new Float64Array(slots);
      for (let k = 0; k < slots; k++) {
        const r = rangeOf(acc[2 * k], acc[2 * k + 1]);
        s.perChannelMin[k] = r.min;
        s.perChannelMax[k] = r.max;
        s.perChannelAbsmax[k] = r.absmax;
      }
    }
    return s;
  }
}

function emptyRanges(slots: number): Float64Array {
  const acc = new Float64Array(2 * slots);
  for (let k = 0; k < slots; k++) {
    acc[2 * k] = Infinity;
    acc[2 * k + 1] = -Infinity;
  }
  return acc;
}

/** A range with "nothing seen" (min > max) reported as zeros. */
function rangeOf(lo: number, hi: number): { min: number; max: number; absmax: number } {
  if (lo > hi) return { min: 0, max: 0, absmax: 0 };
  return { min: lo, max: hi, absmax: Math.max(-lo, hi) };
}

// ---------------------------------------------------------------- pass 2

/**
 * Pass 2: histogram of |x| in `bins` equal bins over [0, range], where `range` is the absmax
 * found by pass 1 (so nothing falls outside; values that do, e.g. from another engine, are
 * counted in the last bin). Bin k holds k·w ≤ |x| < (k+1)·w, w = range / bins; the last bin
 * also holds |x| = range. A zero range puts everything in bin 0.
 */
export class HistogramObserver {
  readonly binWidth: number;
  private readonly binsPerUnit: number;
  /** four histograms side by side (see accumulateHistogram), added up by `histogram` */
  private readonly lanes: Float64Array;
  private folded: Float64Array | undefined;
  /** [non-finite elements skipped, elements exactly 0] */
  private readonly tally = new Float64Array(2);

  constructor(readonly range: number, readonly bins = HISTOGRAM_BINS) {
    if (!(range >= 0) || !Number.isFinite(range)) throw new Error(`HistogramObserver: range must be finite and >= 0, got ${range}`);
    if (!Number.isInteger(bins) || bins < 1) throw new Error(`HistogramObserver: bins must be a positive integer, got ${bins}`);
    this.lanes = new Float64Array(4 * bins);
    this.binWidth = range / bins;
    this.binsPerUnit = range > 0 ? bins / range : 0;
  }

  /** Fold in one sample. */
  observe(data: FloatData): void {
    accumulateHistogram(data, 0, data.length, this.lanes, this.binsPerUnit, this.tally, 4);
    this.folded = undefined;
  }

  /** The counts: bin k holds k·w ≤ |x| < (k+1)·w (see the class comment). */
  get histogram(): Float64Array {
    if (!this.folded) {
      const b = this.bins;
      const h = new Float64Array(b);
      const l = this.lanes;
      for (let k = 0; k < b; k++) h[k] = l[k] + l[b + k] + l[2 * b + k] + l[3 * b + k];
      this.folded = h;
    }
    return this.folded;
  }

  /** NaN/±Infinity elements skipped so far. */
  get nonFinite(): number {
    return this.tally[0];
  }

  /** Elements exactly 0 so far (they are in bin 0; entropy calibration leaves them out). */
  get zeros(): number {
    return this.tally[1];
  }
}

// ---------------------------------------------------------------- one pass: growing range

/**
 * A histogram of |x| whose range grows with the data, for statistics taken in one pass (when
 * the final absmax is not known yet while counting; calibrate/sampled.ts). The range is a
 * power of two R = 2^e, the smallest that holds every absmax seen, split into `fineBins` equal
 * bins. When a sample's absmax exceeds R, R doubles as often as needed and each doubling adds
 * neighbouring bins pairwise: bin k of the wider histogram is exactly bins 2k and 2k+1 of the
 * narrower one, so no count moves to a bin it does not belong to.
 *
 * `growingToFixed(state, range, bins)` then gives what HistogramObserver would hold over [0, range] (range =
 * the final absmax, R/2 < range ≤ R), by spreading each fine bin's count over the fixed bins its
 * interval overlaps, in proportion to the overlap (values inside a fine bin are taken as evenly
 * spread). With fineBins = 2 × bins a fine bin is narrower than a fixed bin (R / fineBins <
 * range / bins), so a count moves at most across one boundary; the zeros (fine bin 0 ⊂ fixed
 * bin 0) stay in bin 0 exactly.
 */
export class GrowingHistogram {
  private readonly counter: GrowingCounter;

  /**
   * `lanes` 4 for many values a sample (the four-lane kernel), 1 for a large `fineBins` (few
   * values into a big table: four copies would only cost cache).
   */
  constructor(
    readonly fineBins = 2 * HISTOGRAM_BINS,
    readonly lanes: 1 | 4 = 4,
  ) {
    if (!Number.isInteger(fineBins) || fineBins < 2 || (fineBins & (fineBins - 1)) !== 0) {
      throw new Error(`GrowingHistogram: fineBins must be a power of two >= 2, got ${fineBins}`);
    }
    this.counter = core.growing(fineBins, lanes);
  }

  /**
   * Fold in values whose largest |x| is at most `absmax` (the caller knows it exactly, e.g.
   * reduced next to the activations; a value beyond it is counted in the last bin).
   * Non-finite values are skipped and counted (`nonFinite`).
   */
  observe(data: FloatData, absmax: number): void {
    this.counter.observe(data, absmax);
  }

  /** What was counted so far (what a worker hands back, see calibrate/counting.ts). */
  state(): GrowingState {
    return this.counter.state();
  }
}

/** Elements counted (finite ones) in a growing histogram's state. */
export function growingTotal(s: GrowingState): number {
  let t = s.onlyZeros;
  for (let k = 0; k < s.fine.length; k++) t += s.fine[k];
  return t;
}

/**
 * A growing histogram's counts over [0, range] in `bins` equal bins (range ≥ every absmax
 * observed), as HistogramObserver lays them out (see GrowingHistogram).
 */
export function growingToFixed(s: GrowingState, range: number, bins = HISTOGRAM_BINS): Float64Array {
  const out = new Float64Array(bins);
  const fine = s.fine;
  out[0] += s.onlyZeros;
  if (s.exponent === null) return out;
  if (!(range > 0)) {
    for (let j = 0; j < fine.length; j++) out[0] += fine[j];
    return out;
  }
  const width = 2 ** s.exponent / s.fineBins;
  const perUnit = bins / range;
  const last = bins - 1;
  for (let j = 0; j < fine.length; j++) {
    const c = fine[j];
    if (c === 0) continue;
    // the values of fine bin j lie in [a, b), and none beyond the range
    const a = j * width * perUnit;
    const b = min((j + 1) * width, range) * perUnit;
    const first = floor(a);
    if (!(b > a) || first >= last) {
      out[min(first, last)] += c;
      continue;
    }
    const span = b - a;
    let k = first;
    let from = a;
    while (from < b && k < last) {
      const to = min(k + 1, b);
      out[k] += (c * (to - from)) / span;
      from = to;
      k++;
    }
    if (from < b) out[last] += (c * (b - from)) / span;
  }
  return out;
}
