import { Rng } from '../../kernels/random';
import { argminDivergence, klDivergences, klThreshold } from './kl';

const BINS = 2048;
// bound once: global lookups are slow inside jest's vm context
const { abs, floor, log, min } = Math;

/** Histogram of |x| over [0, absmax] in `bins` bins, written plainly (not the observer). */
function histogramOf(values: number[], bins = BINS, range?: number): { hist: number[]; absmax: number; width: number } {
  const absmax = range ?? Math.max(...values.map(Math.abs));
  const hist = new Array<number>(bins).fill(0);
  for (const v of values) hist[min(bins - 1, floor((abs(v) / absmax) * bins))]++;
  return { hist, absmax, width: absmax / bins };
}

/** The steps of kl.ts's doc comment, one whole array at a time, independent of its prefix-sum code. */
function referenceDivergences(hist: number[], target = 128, eps = 1e-4, maxClipped = 1e-3): Map<number, number> {
  const out = new Map<number, number>();
  const total = hist.reduce((a, b) => a + b, 0);
  const p: number[] = [];
  const q: number[] = [];
  /** normalise d[0..n) to sum 1, then give each zero bin eps and renormalise */
  const normaliseAndSmooth = (d: number[], n: number): void => {
    let s = 0;
    let zeros = 0;
    for (let j = 0; j < n; j++) s += d[j];
    for (let j = 0; j < n; j++) {
      d[j] /= s;
      if (d[j] === 0) zeros++;
    }
    for (let j = 0; j < n; j++) d[j] = (d[j] === 0 ? eps : d[j]) / (1 + eps * zeros);
  };
  for (let i = target; i <= hist.length; i++) {
    let clipped = 0;
    for (let k = i; k < hist.length; k++) clipped += hist[k];
    if (clipped > maxClipped * total) {
      out.set(i, Infinity); // the spike guard
      continue;
    }
    for (let j = 0; j < i; j++) p[j] = hist[j];
    for (let k = i; k < hist.length; k++) p[i - 1] += hist[k];
    let qTotal = 0;
    for (let level = 0; level < target; level++) {
      const lo = floor((level * i) / target);
      const hi = floor(((level + 1) * i) / target);
      let levelSum = 0;
      let filled = 0;
      for (let j = lo; j < hi; j++) {
        levelSum += hist[j];
        if (hist[j] > 0) filled++;
      }
      for (let j = lo; j < hi; j++) q[j] = hist[j] > 0 ? levelSum / filled : 0;
      qTotal += levelSum;
    }
    if (qTotal === 0) {
      out.set(i, Infinity);
      continue;
    }
    normaliseAndSmooth(p, i);
    normaliseAndSmooth(q, i);
    let kl = 0;
    for (let j = 0; j < i; j++) kl += p[j] * log(p[j] / q[j]);
    out.set(i, kl);
  }
  return out;
}

function referenceThreshold(hist: number[], width: number, absmax: number, maxClipped = 1e-3): number {
  let best = -1;
  let bestD = Infinity;
  for (const [i, d] of referenceDivergences(hist, 128, 1e-4, maxClipped)) {
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return Math.min((best + 0.5) * width, absmax);
}

function gaussianWithOutliers(seed: number): number[] {
  const r = new Rng(seed);
  const v: number[] = [];
  for (let i = 0; i < 100000; i++) v.push(r.normal(0, 1));
  for (let i = 0; i < 30; i++) v.push((r.next() < 0.5 ? -1 : 1) * r.uniform(20, 40));
  return v;
}

function uniform(seed: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: 100000 }, () => r.uniform(-1, 1));
}

/** ReLU of a Gaussian: half the mass at exactly 0, a long-ish tail. */
function relu(seed: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: 100000 }, () => Math.max(0, r.normal(0, 2)));
}

/** Few distinct values: most bins empty (stresses the smoothing). */
function sparse(seed: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: 5000 }, () => r.int(40) * 0.25);
}

describe('klThreshold (TensorRT entropy calibration)', () => {
  const cases: [string, number[]][] = [
    ['gaussian + outliers', gaussianWithOutliers(1)],
    ['uniform', uniform(2)],
    ['relu', relu(3)],
    ['sparse', sparse(4)],
  ];

  it.each(cases)('matches a plain implementation of the documented steps (%s)', (_, values) => {
    const { hist, absmax, width } = histogramOf(values);
    // with the spike guard (default) and without (every candidate, as the slides)
    for (const maxClipped of [1e-3, 1]) {
      const ours = klDivergences(hist, { maxClipped });
      const ref = referenceDivergences(hist, 128, 1e-4, maxClipped);
      for (const [i, d] of ref) {
        if (d === Infinity) expect(ours[i]).toBe(Infinity);
        else expect(ours[i]).toBeCloseTo(d, 10);
      }
      for (let i = 0; i < 128; i++) expect(ours[i]).toBeNaN();
      expect(klThreshold({ histogram: hist, binWidth: width, absmax }, { maxClipped })).toBe(referenceThreshold(hist, width, absmax, maxClipped));
    }
  });

  it('spike guard: mass in one bin does not drag the cut into the values around it', () => {
    // 90 % of the values in one bin (a uniform background), the rest |N(0, 500²)| in bins of width 1
    const r = new Rng(12);
    for (const spike of [3, 40, 300]) {
      const hist = new Array<number>(BINS).fill(0);
      hist[spike] = 90000;
      for (let k = 0; k < 10000; k++) hist[min(BINS - 1, floor(abs(r.normal(0, 500))))]++;
      const clippedBy = (t: number): number => hist.slice(Math.ceil(t)).reduce((a, b) => a + b, 0) / 100000;
      // unguarded, KL cuts at ~0.4σ: two thirds of the non-spike values clipped
      const unguarded = klThreshold({ histogram: hist, binWidth: 1, absmax: BINS }, { maxClipped: 1 });
      expect(clippedBy(unguarded)).toBeGreaterThan(0.05);
      const t = klThreshold({ histogram: hist, binWidth: 1, absmax: BINS });
      expect(clippedBy(t)).toBeLessThanOrEqual(1e-3);
      expect(t).toBeGreaterThan(2.5 * 500); // keeps 99 % of the spread values (0.1 % of all): beyond 2.5σ
      expect(t).toBe(referenceThreshold(hist, 1, BINS));
    }
    // nothing below 0.3 of the range (a Sigmoid output in 0.3…1): unguarded, KL cuts just above the smallest values
    const sig = new Array<number>(BINS).fill(0);
    for (let k = 0; k < 20000; k++) sig[600 + floor(r.next() * 1448)]++;
    expect(klThreshold({ histogram: sig, binWidth: 1, absmax: BINS }, { maxClipped: 1 })).toBeLessThan(610);
    expect(klThreshold({ histogram: sig, binWidth: 1, absmax: BINS })).toBeGreaterThan(0.99 * BINS);
  });

  it('spike guard: leaves well-behaved distributions alone, and checks its bound', () => {
    for (const values of [gaussianWithOutliers(21), relu(22), uniform(23)]) {
      const { hist, absmax, width } = histogramOf(values);
      const zeros = values.filter((v) => v === 0).length;
      expect(klThreshold({ histogram: hist, binWidth: width, absmax, zeros })).toBe(klThreshold({ histogram: hist, binWidth: width, absmax, zeros }, { maxClipped: 1 }));
    }
    expect(() => klDivergences([1, 2, 3], { maxClipped: 1.5, targetBins: 2 })).toThrow(RangeError);
  });

  it('clips a Gaussian with rare outliers far below its max', () => {
    const { hist, absmax, width } = histogramOf(gaussianWithOutliers(5));
    const t = klThreshold({ histogram: hist, binWidth: width, absmax });
    expect(absmax).toBeGreaterThan(20);
    expect(t).toBeLessThan(0.25 * absmax);
    // …yet keeps the bulk of the Gaussian (|x| < 2.5σ holds ~98.8 % of it)
    expect(t).toBeGreaterThan(2.5);
  });

  it('keeps (nearly) the whole range of a uniform distribution', () => {
    const { hist, absmax, width } = histogramOf(uniform(6));
    const t = klThreshold({ histogram: hist, binWidth: width, absmax });
    expect(t).toBeGreaterThan(0.97 * absmax);
    expect(t).toBeLessThanOrEqual(absmax);
  });

  it('puts the threshold half a bin past the chosen clipping bin', () => {
    const { hist, absmax, width } = histogramOf(gaussianWithOutliers(7));
    const m = argminDivergence(klDivergences(hist));
    expect(m).toBeGreaterThanOrEqual(128);
    expect(klThreshold({ histogram: hist, binWidth: width, absmax })).toBeCloseTo((m + 0.5) * width, 12);
  });

  it('leaves exact zeros out: a ReLU output is calibrated like its positive part', () => {
    const values = relu(8);
    const zeros = values.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(values.length / 3);
    const all = histogramOf(values);
    const positive = histogramOf(values.filter((v) => v > 0), BINS, all.absmax);
    const t = klThreshold({ histogram: all.hist, binWidth: all.width, absmax: all.absmax, zeros });
    expect(t).toBe(klThreshold({ histogram: positive.hist, binWidth: all.width, absmax: all.absmax }));
    expect(t).toBe(referenceThreshold(positive.hist, all.width, all.absmax));
    // counted, the spike at 0 would pull the threshold well down (the reason they are left out)
    expect(klThreshold({ histogram: all.hist, binWidth: all.width, absmax: all.absmax })).toBeLessThan(0.8 * t);
    // only zeros: nothing to calibrate
    expect(klThreshold({ histogram: histogramOf([0, 0, 0], BINS, 1).hist, binWidth: 1 / BINS, absmax: 1, zeros: 3 })).toBe(0);
  });

  it('gives 0 for an empty histogram and absmax when there are fewer bins than levels', () => {
    expect(klThreshold({ histogram: new Float64Array(BINS), binWidth: 0.5, absmax: 1024 })).toBe(0);
    expect(klThreshold({ histogram: new Float64Array(64).fill(1), binWidth: 0.5, absmax: 32 })).toBe(32);
  });

  it('is not fooled by all the mass in the first bin', () => {
    const hist = new Float64Array(BINS);
    hist[0] = 1000;
    hist[BINS - 1] = 1;
    const t = klThreshold({ histogram: hist, binWidth: 1, absmax: BINS });
    expect(Number.isFinite(t)).toBe(true);
    expect(t).toBeGreaterThan(0);
    expect(t).toBeLessThanOrEqual(BINS);
  });
});
