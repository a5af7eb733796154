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
const { abs, floor, max, min } = Math;

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

/**
 * Count |data[from..to)| into `hist` (equal bins starting at 0; `binsPerUnit` = bins / range).
 * Values beyond the range go to the last bin. Adds to `tally[0]` the elements that were not
 * finite (skipped) and to `tally[1]` those exactly 0 (counted in bin 0 too).
 *
 * `hist` holds `lanes` equal histograms side by side (length lanes × bins; lanes 1 or 4), which
 * the caller adds up: element i goes to lane i mod lanes. Four lanes let consecutive elements
 * that fall in the same bin (a run of zeros after a ReLU) increment different counters, so the
 * loop does not wait for the previous increment (2.5–4× faster than one lane).
 */
export function accumulateHistogram(data: FloatData, from: number, to: number, hist: Float64Array, binsPerUnit: number, tally: Float64Array, lanes: 1 | 4 = 1): void {
  const bins = hist.length / lanes;
  if (lanes === 4 && data instanceof Float32Array) {
    histogramF32x4(data, from, to, hist, bins, binsPerUnit, tally);
    return;
  }
  const last = bins - 1;
  let skipped = 0;
  let zeros = 0;
  for (let i = from; i < to; i++) {
    const v = data[i];
    if (v - v !== 0) {
      skipped++;
      continue;
    }
    if (v === 0) zeros++;
    const k = floor(abs(v) * binsPerUnit);
    hist[(i % lanes) * bins + (k < last ? k : last)]++;
  }
  tally[0] += skipped;
  tally[1] += zeros;
}

/**
 * The four-lane float32 kernel, without data-dependent branches: zeros and non-finite values
 * are counted from the bit patterns (|bits| = 0: ±0; exponent all ones: NaN/±Infinity);
 * non-finite values land in the last bin (NaN < last is false) and are taken out of it after.
 */
function histogramF32x4(data: Float32Array, from: number, to: number, hist: Float64Array, bins: number, binsPerUnit: number, tally: Float64Array): void {
  const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
  const last = bins - 1;
  const l1 = bins;
  const l2 = 2 * bins;
  const l3 = 3 * bins;
  let zeros = 0;
  let special = 0;
  // the lane of element i is i mod 4 (as in the generic loop), whatever `from` is
  let i = from;
  for (; i < to && (i & 3) !== 0; i++) {
    const b = bits[i] & 0x7fffffff;
    zeros += (b - 1) >>> 31;
    special += ((b + 0x00800000) | 0) >>> 31;
    const x = abs(data[i]) * binsPerUnit;
    hist[(i & 3) * bins + (x < last ? x | 0 : last)]++;
  }
  for (; i + 3 < to; i += 4) {
    const b0 = bits[i] & 0x7fffffff;
    const b1 = bits[i + 1] & 0x7fffffff;
    const b2 = bits[i + 2] & 0x7fffffff;
    const b3 = bits[i + 3] & 0x7fffffff;
    zeros += ((b0 - 1) >>> 31) + ((b1 - 1) >>> 31) + ((b2 - 1) >>> 31) + ((b3 - 1) >>> 31);
    special += (((b0 + 0x00800000) | 0) >>> 31) + (((b1 + 0x00800000) | 0) >>> 31) + (((b2 + 0x00800000) | 0) >>> 31) + (((b3 + 0x00800000) | 0) >>> 31);
    const x0 = abs(data[i]) * binsPerUnit;
    const x1 = abs(data[i + 1]) * binsPerUnit;
    const x2 = abs(data[i + 2]) * binsPerUnit;
    const x3 = abs(data[i + 3]) * binsPerUnit;
    hist[x0 < last ? x0 | 0 : last]++;
    hist[l1 + (x1 < last ? x1 | 0 : last)]++;
    hist[l2 + (x2 < last ? x2 | 0 : last)]++;
    hist[l3 + (x3 < last ? x3 | 0 : last)]++;
  }
  for (; i < to; i++) {
    const b = bits[i] & 0x7fffffff;
    zeros += (b - 1) >>> 31;
    special += ((b + 0x00800000) | 0) >>> 31;
    const x = abs(data[i]) * binsPerUnit;
    hist[(i & 3) * bins + (x < last ? x | 0 : last)]++;
  }
  if (special > 0) {
    // take the non-finite elements back out of the last bins of their lanes
    for (let j = from; j < to; j++) {
      const v = data[j];
      if (v - v !== 0) hist[(j & 3) * bins + last]--;
    }
  }
  tally[0] += special;
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
