/**
 * Summaries of value sets for the debugger's plots: histograms on shared bins, and the box-plot
 * statistics of a channel (quantiles with numpy's default linear interpolation, Tukey whiskers).
 */

const floor = Math.floor;

export interface Range {
  min: number;
  max: number;
  /** the value of largest magnitude (signed) */
  maxAbs: number;
  count: number;
}

/** min, max and the largest-magnitude value over several arrays (NaN skipped). */
export function rangeOf(arrays: ArrayLike<number>[]): Range {
  let min = Infinity;
  let max = -Infinity;
  let count = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v !== v) continue;
      if (v < min) min = v;
      if (v > max) max = v;
      count++;
    }
  }
  if (!count) return { min: 0, max: 0, maxAbs: 0, count: 0 };
  return { min, max, maxAbs: -min > max ? min : max, count };
}

/** `bins` equal bins over [lo, hi] (a degenerate range is widened to ±0.5 around it). */
export function binEdges(lo: number, hi: number, bins: number): number[] {
  let a = lo;
  let b = hi;
  if (!(b > a)) {
    a -= 0.5;
    b += 0.5;
  }
  const edges: number[] = [];
  for (let k = 0; k <= bins; k++) edges.push(k === bins ? b : a + ((b - a) * k) / bins);
  return edges;
}

/** Counts per bin of `edges` (the last bin is closed; values outside are dropped). */
export function histogram(arrays: ArrayLike<number>[], edges: number[]): number[] {
  const bins = edges.length - 1;
  const counts = new Float64Array(bins);
  const lo = edges[0];
  const hi = edges[bins];
  const w = (hi - lo) / bins;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!(v >= lo && v <= hi)) continue;
      let k = floor((v - lo) / w);
      if (k >= bins) k = bins - 1;
      counts[k]++;
    }
  }
  return Array.from(counts);
}

export interface BoxStats {
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  mean: number;
  /** most extreme values within 1.5 · IQR of the box */
  whiskerLow: number;
  whiskerHigh: number;
  count: number;
}

/** Box statistics of `values` (sorted in place). */
export function boxStats(values: Float32Array | Float64Array): BoxStats {
  const n = values.length;
  if (!n) return { min: NaN, q1: NaN, median: NaN, q3: NaN, max: NaN, mean: NaN, whiskerLow: NaN, whiskerHigh: NaN, count: 0 };
  values.sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const q = (p: number): number => {
    const pos = (n - 1) * p;
    const i = floor(pos);
    const f = pos - i;
    return i + 1 < n ? values[i] + (values[i + 1] - values[i]) * f : values[i];
  };
  const q1 = q(0.25);
  const q3 = q(0.75);
  const iqr = q3 - q1;
  const lo = q1 - 1.5 * iqr;
  const hi = q3 + 1.5 * iqr;
  let wl = q1;
  let wh = q3;
  for (let i = 0; i < n; i++) {
    if (values[i] >= lo) {
      wl = Math.min(values[i], q1);
      break;
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    if (values[i] <= hi) {
      wh = Math.max(values[i], q3);
      break;
    }
  }
  return { min: values[0], q1, median: q(0.5), q3, max: values[n - 1], mean: sum / n, whiskerLow: wl, whiskerHigh: wh, count: n };
}

/**
 * Split tensors of equal dims into channels along `axis`: channel c gets every element whose
 * index along `axis` is c, from every tensor, in order.
 */
export function channelValues(tensors: { dims: readonly number[]; data: ArrayLike<number> }[], axis: number): Float32Array[] {
  if (!tensors.length) return [];
  const dims = tensors[0].dims;
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const per = outer * inner;
  const out = Array.from({ length: channels }, () => new Float32Array(per * tensors.length));
  tensors.forEach((t, s) => {
    const d = t.data;
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const dst = out[c];
        const base = (o * channels + c) * inner;
        const at = s * per + o * inner;
        for (let i = 0; i < inner; i++) dst[at + i] = d[base + i];
      }
    }
  });
  return out;
}
