import { Rng } from '../kernels/random';
import { accumulateHistogram, channelLayout, HistogramObserver, MinMaxObserver } from './observers';

const { abs, floor, max, min } = Math; // bound once: global lookups are slow inside jest's vm context

function randomSample(rng: Rng, dims: number[], specials = false): Float32Array {
  const n = dims.reduce((p, q) => p * q, 1);
  const a = rng.fillNormal(new Float32Array(n), 0.3, 2);
  for (let i = 0; i < n; i += 7) a[i] = 0; // exact zeros, as after a ReLU
  if (specials) {
    a[3] = NaN;
    a[n - 2] = Infinity;
    a[n >> 1] = -Infinity;
  }
  return a;
}

/** Plain range over the finite values, per channel (axis 1) of an [N, C, …] array. */
function plainChannelRanges(a: Float32Array, dims: number[]): { min: number[]; max: number[] } {
  const c = dims[1];
  const inner = dims.slice(2).reduce((p, q) => p * q, 1);
  const lo = new Array<number>(c).fill(Infinity);
  const hi = new Array<number>(c).fill(-Infinity);
  a.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const ch = floor(i / inner) % c;
    lo[ch] = min(lo[ch], v);
    hi[ch] = max(hi[ch], v);
  });
  return { min: lo, max: hi };
}

describe('MinMaxObserver', () => {
  it('tracks min, max and absmax per tensor, skipping and counting NaN/Infinity', () => {
    const rng = new Rng(1);
    const o = new MinMaxObserver();
    const finite: number[] = [];
    let bad = 0;
    for (let s = 0; s < 5; s++) {
      const a = randomSample(rng, [1, 3, 4, 4], s === 2);
      o.observe(a, [1, 3, 4, 4]);
      a.forEach((v) => (Number.isFinite(v) ? finite.push(v) : bad++));
    }
    const r = o.summary();
    expect(r.min).toBe(min(...finite));
    expect(r.max).toBe(max(...finite));
    expect(r.absmax).toBe(max(...finite.map(abs)));
    expect(r.count).toBe(finite.length);
    expect(r.nonFinite).toBe(bad);
    expect(bad).toBe(3);
    expect(r.perChannelAbsmax).toBeUndefined();
  });

  it('tracks each channel along axis 1, over batches of different sizes', () => {
    const rng = new Rng(2);
    const o = new MinMaxObserver(true);
    const lo = new Array<number>(5).fill(Infinity);
    const hi = new Array<number>(5).fill(-Infinity);
    for (const batch of [1, 3, 2]) {
      const dims = [batch, 5, 3, 2];
      const a = randomSample(rng, dims, batch === 3);
      o.observe(a, dims);
      const p = plainChannelRanges(a, dims);
      for (let c = 0; c < 5; c++) {
        lo[c] = min(lo[c], p.min[c]);
        hi[c] = max(hi[c], p.max[c]);
      }
    }
    const r = o.summary();
    expect(Array.from(r.perChannelMin!)).toEqual(lo);
    expect(Array.from(r.perChannelMax!)).toEqual(hi);
    expect(Array.from(r.perChannelAbsmax!)).toEqual(lo.map((l, c) => max(-l, hi[c])));
    expect(r.min).toBe(min(...lo));
    expect(r.max).toBe(max(...hi));
    expect(r.absmax).toBe(max(...r.perChannelAbsmax!));
  });

  it('treats [N, C] as C channels and rank < 2 as one channel', () => {
    expect(channelLayout([4, 10])).toEqual({ outer: 4, channels: 10, inner: 1 });
    expect(channelLayout([7])).toEqual({ outer: 1, channels: 1, inner: 7 });
    expect(channelLayout([])).toEqual({ outer: 1, channels: 1, inner: 1 });
    const o = new MinMaxObserver(true);
    o.observe(Float32Array.from([1, -2, 3, -4, 5, -6]), [3, 2]);
    expect(Array.from(o.summary().perChannelAbsmax!)).toEqual([5, 6]);
    const v = new MinMaxObserver(true);
    v.observe(Float32Array.from([1, -9, 3]), [3]);
    expect(Array.from(v.summary().perChannelAbsmax!)).toEqual([9]);
  });

  it('reports zeros when nothing finite was seen, and refuses a changing channel count', () => {
    const o = new MinMaxObserver(true);
    expect(o.summary()).toMatchObject({ min: 0, max: 0, absmax: 0, count: 0 });
    o.observe(Float32Array.from([NaN, Infinity]), [1, 2]);
    expect(o.summary()).toMatchObject({ min: 0, max: 0, absmax: 0, count: 0, nonFinite: 2 });
    expect(() => o.observe(new Float32Array(3), [1, 3])).toThrow(/3 channels/);
  });
});

describe('HistogramObserver', () => {
  /** Plain binning: bin of |v| = floor(|v| / range · bins), the top edge in the last bin. */
  function plainHistogram(values: ArrayLike<number>, range: number, bins: number): number[] {
    const h = new Array<number>(bins).fill(0);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (Number.isFinite(v)) h[min(bins - 1, floor((abs(v) * bins) / range))]++;
    }
    return h;
  }

  it('counts |x| into equal bins over [0, range], absmax in the last bin, zeros counted', () => {
    const rng = new Rng(3);
    const a = randomSample(rng, [2, 3, 8, 8], true);
    let range = 0;
    a.forEach((v) => Number.isFinite(v) && (range = max(range, abs(v))));
    const o = new HistogramObserver(range, 256);
    o.observe(a);
    expect(Array.from(o.histogram)).toEqual(plainHistogram(a, range, 256));
    expect(o.binWidth).toBe(range / 256);
    expect(o.histogram[255]).toBeGreaterThanOrEqual(1); // the absmax element itself
    expect(o.nonFinite).toBe(3);
    expect(o.zeros).toBe(a.filter((v) => v === 0).length);
    expect(o.histogram.reduce((s, c) => s + c, 0)).toBe(a.length - 3);
  });

  it('puts values beyond the range in the last bin, and everything in bin 0 for a zero range', () => {
    const o = new HistogramObserver(1, 4);
    o.observe(Float64Array.from([0.1, -0.3, 0.6, 1, 7, -0.99]));
    expect(Array.from(o.histogram)).toEqual([1, 1, 1, 3]);
    const z = new HistogramObserver(0, 8);
    z.observe(Float32Array.from([0, -0, 0]));
    expect(z.histogram[0]).toBe(3);
    expect(z.binWidth).toBe(0);
    expect(z.zeros).toBe(3);
  });
});

describe('streaming', () => {
  it('gives the same statistics fed sample by sample as over the concatenated samples', () => {
    const rng = new Rng(4);
    const dims = [1, 4, 5, 5];
    const samples = Array.from({ length: 10 }, (_, k) => randomSample(rng, dims, k === 6));
    const all = new Float32Array(samples.length * samples[0].length);
    samples.forEach((s, k) => all.set(s, k * s.length));

    const oneByOne = new MinMaxObserver(true);
    for (const s of samples) oneByOne.observe(s, dims);
    const together = new MinMaxObserver(true);
    together.observe(all, [10, 4, 5, 5]);
    const r = oneByOne.summary();
    expect(together.summary()).toEqual(r);

    const h1 = new HistogramObserver(r.absmax);
    for (const s of samples) h1.observe(s);
    const h2 = new HistogramObserver(r.absmax);
    h2.observe(all);
    expect(h1.histogram).toEqual(h2.histogram);
    expect([h1.zeros, h1.nonFinite]).toEqual([h2.zeros, h2.nonFinite]);
  });
});

describe('accumulateHistogram', () => {
  it('four lanes over float32 count what one lane does, from any offset, NaN/±Infinity/±0 included', () => {
    const rng = new Rng(8);
    const base = randomSample(rng, [1, 3, 7, 9], true);
    base[10] = -0;
    base[11] = NaN;
    base[12] = 1e30; // finite, far beyond the range: last bin
    for (const [from, to] of [[0, base.length], [1, base.length - 2], [3, 4], [5, 5], [2, 9]]) {
      // also a view that does not start at the buffer's start
      const view = new Float32Array(base.buffer, 4, base.length - 1);
      for (const data of [base, view]) {
        const one = new Float64Array(64);
        const four = new Float64Array(4 * 64);
        const t1 = new Float64Array(2);
        const t4 = new Float64Array(2);
        accumulateHistogram(data, from, Math.min(to, data.length), one, 64 / 3, t1);
        accumulateHistogram(data, from, Math.min(to, data.length), four, 64 / 3, t4, 4);
        const summed = Array.from(one, (_, k) => four[k] + four[64 + k] + four[128 + k] + four[192 + k]);
        expect(summed).toEqual(Array.from(one));
        expect(Array.from(t4)).toEqual(Array.from(t1));
      }
    }
  });
});
