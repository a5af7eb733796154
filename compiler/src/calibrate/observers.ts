/**
 * What calibration observes about an activation, one sample at a time (the "collector" half
 * of calibration; algorithms/ turn what is observed into thresholds).
 *
 * Two streaming passes over the calibration set:
 *  1. `MinMaxObserver`: min, max and absmax per tensor, optionally per channel (axis 1);
 *  2. `HistogramObserver`: a fixed-range histogram of |x| over [0, absmax of pass 1].
 * Each observer holds O(bins + channels) numbers, whatever the number of samples; the data of
 * a sample is read once and never kept. NaN and ±Infinity are skipped and counted.
 */

/** Activation data the observers read (float16 is widened to float32 by the caller). */
export type FloatData = Float32Array | Float64Array;

/** Bins of the |x| histograms (TensorRT's entropy calibration uses 2048). */
export const HISTOGRAM_BINS = 2048;

// ---------------------------------------------------------------- kernels

// bound once: global lookups are slow inside vm contexts (jest runs tests in one)
const floor = Math.floor;

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
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  acc[2 * k] = lo;
  acc[2 * k + 1] = hi;
  return skipped;
}

/**
 * Count |data[from..to)| into `hist` (equal bins starting at 0; `binsPerUnit` = bins / range).
 * Values beyond the range go to the last bin. Adds to `tally[0]` the elements that were not
 * finite (skipped) and to `tally[1]` those exactly 0 (counted in bin 0 too).
 */
export function accumulateHistogram(data: FloatData, from: number, to: number, hist: Float64Array, binsPerUnit: number, tally: Float64Array): void {
  const last = hist.length - 1;
  let skipped = 0;
  let zeros = 0;
  for (let i = from; i < to; i++) {
    const v = data[i];
    if (v - v !== 0) {
      skipped++;
      continue;
    }
    if (v === 0) zeros++;
    const k = floor((v < 0 ? -v : v) * binsPerUnit);
    hist[k < last ? k : last]++;
  }
  tally[0] += skipped;
  tally[1] += zeros;
}

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
  readonly histogram: Float64Array;
  readonly binWidth: number;
  private readonly binsPerUnit: number;
  /** [non-finite elements skipped, elements exactly 0] */
  private readonly tally = new Float64Array(2);

  constructor(readonly range: number, bins = HISTOGRAM_BINS) {
    if (!(range >= 0) || !Number.isFinite(range)) throw new Error(`HistogramObserver: range must be finite and >= 0, got ${range}`);
    if (!Number.isInteger(bins) || bins < 1) throw new Error(`HistogramObserver: bins must be a positive integer, got ${bins}`);
    this.histogram = new Float64Array(bins);
    this.binWidth = range / bins;
    this.binsPerUnit = range > 0 ? bins / range : 0;
  }

  /** Fold in one sample. */
  observe(data: FloatData): void {
    accumulateHistogram(data, 0, data.length, this.histogram, this.binsPerUnit, this.tally);
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
