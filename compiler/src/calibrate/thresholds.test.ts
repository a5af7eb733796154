import { Rng } from '../kernels/random';
import { klThreshold } from './algorithms/kl';
import { maxThreshold, maxThresholdPerChannel } from './algorithms/max';
import { percentileThreshold } from './algorithms/percentile';
import { TensorStatistics } from './collect';
import { HistogramObserver, MinMaxObserver } from './observers';
import { activationScale, computeThresholds } from './thresholds';

/** Statistics of one tensor from `samples` of shape [1, C, 8, 8], through the observers. */
function statsOf(samples: Float32Array[], channels: number): TensorStatistics {
  const dims = [1, channels, 8, 8];
  const mm = new MinMaxObserver(true);
  for (const s of samples) mm.observe(s, dims);
  const r = mm.summary();
  const h = new HistogramObserver(r.absmax);
  for (const s of samples) h.observe(s);
  return { ...r, histogram: h.histogram, binWidth: h.binWidth, zeros: h.zeros };
}

/** Channel c ~ N(0, c + 1), with rare outliers in the last channel. */
function fixture(seed: number): TensorStatistics {
  const rng = new Rng(seed);
  const samples = Array.from({ length: 20 }, () => {
    const a = new Float32Array(4 * 64);
    for (let c = 0; c < 4; c++) for (let i = 0; i < 64; i++) a[c * 64 + i] = Math.max(0, rng.normal(0, c + 1));
    if (rng.next() < 0.2) a[3 * 64 + rng.int(64)] = 60;
    return a;
  });
  return statsOf(samples, 4);
}

describe('computeThresholds', () => {
  const stats = { a: fixture(1), b: fixture(2) };

  it('max: the absmax; scale threshold / 127 in float32', () => {
    const t = computeThresholds(stats, 'max');
    for (const [name, s] of Object.entries(stats)) {
      expect(t[name].threshold).toBe(maxThreshold(s.absmax));
      expect(t[name].threshold).toBe(s.absmax);
      expect(t[name].scale).toBe(Math.fround(s.absmax / 127));
      expect(t[name].method).toBe('max');
    }
  });

  it('max with max_percentile < 1 is the percentile algorithm; 1 is plain max', () => {
    const t = computeThresholds(stats, 'max', { maxPercentile: 0.99 });
    for (const [name, s] of Object.entries(stats)) {
      expect(t[name]).toMatchObject({ method: 'percentile', maxPercentile: 0.99 });
      expect(t[name].threshold).toBe(percentileThreshold(s.histogram, s.binWidth, s.absmax, 0.99));
      expect(t[name].threshold).toBeLessThan(s.absmax);
    }
    expect(computeThresholds(stats, 'max', { maxPercentile: 1 }).a).toMatchObject({ method: 'max', threshold: stats.a.absmax });
    expect(computeThresholds(stats, 'percentile', { maxPercentile: 0.99 }).b.threshold).toBe(percentileThreshold(stats.b.histogram, stats.b.binWidth, stats.b.absmax, 0.99));
  });

  it('kl: the entropy threshold without the exact zeros', () => {
    const t = computeThresholds(stats, 'kl');
    // unguarded (every candidate), as the slides search
    const all = computeThresholds(stats, 'kl', { kl: { maxClipped: 1 } });
    expect(stats.a.zeros).toBeGreaterThan(0);
    for (const [name, s] of Object.entries(stats)) {
      expect(t[name].method).toBe('kl');
      const h = { histogram: s.histogram, binWidth: s.binWidth, absmax: s.absmax, zeros: s.zeros };
      expect(t[name].threshold).toBe(klThreshold(h));
      expect(all[name].threshold).toBe(klThreshold(h, { maxClipped: 1 }));
      expect(all[name].threshold).toBeLessThan(s.absmax); // the outliers at 60 are clipped…
      // …but they are more than 0.1 % of the nonzero values: the spike guard keeps them
      const nonzero = s.count - s.zeros;
      let beyond = 0;
      for (let k = Math.ceil(all[name].threshold / s.binWidth); k < s.histogram.length; k++) beyond += s.histogram[k];
      expect(beyond / nonzero).toBeGreaterThan(1e-3);
      expect(t[name].threshold).toBeGreaterThan(all[name].threshold);
    }
  });

  it('per channel: each channel absmax, capped at the tensor threshold', () => {
    const s = stats.a;
    const chans = Array.from(s.perChannelAbsmax!);
    expect(computeThresholds(stats, 'max', { perChannel: true }).a.perChannel).toEqual(maxThresholdPerChannel(chans));
    const kl = computeThresholds(stats, 'kl', { perChannel: true }).a;
    expect(kl.perChannel).toEqual(chans.map((c) => Math.min(c, kl.threshold)));
    expect(kl.perChannel![0]).toBe(chans[0]); // a narrow channel keeps its own range
    expect(kl.perChannel![3]).toBe(kl.threshold); // the one with outliers is clipped like the tensor
    expect(kl.perChannelScale).toEqual(kl.perChannel!.map((v) => Math.fround(v / 127)));
  });

  it('rejects bad options', () => {
    expect(() => computeThresholds(stats, 'percentile')).toThrow(/maxPercentile/);
    expect(() => computeThresholds(stats, 'max', { maxPercentile: 1.2 })).toThrow(RangeError);
    const flat = { x: { ...stats.a, perChannelAbsmax: undefined } };
    expect(() => computeThresholds(flat, 'max', { perChannel: true })).toThrow(/per-channel/);
  });

  it('gives an all-zero tensor a usable scale', () => {
    const z = statsOf([new Float32Array(64)], 1);
    const t = computeThresholds({ z }, 'kl').z;
    expect(t.threshold).toBe(0);
    expect(t.scale).toBe(activationScale(0));
    expect(activationScale(0)).toBe(Math.fround(1 / 127));
    expect(computeThresholds({ z }, 'max').z.threshold).toBe(0);
  });
});
