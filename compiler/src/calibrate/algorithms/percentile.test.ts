import { Rng } from '../../kernels/random';
import { percentileThreshold } from './percentile';

// bound once: global lookups are slow inside jest's vm context
const { abs, ceil, floor, max, min } = Math;

/** Exact order statistic: the smallest |x| with at least `p` of the values at or below it. */
function exactQuantile(values: number[], p: number): number {
  const sorted = Float64Array.from(values, abs).sort();
  return sorted[max(0, ceil(p * sorted.length) - 1)];
}

function histogram(values: number[], range: number, bins = 2048): Float64Array {
  const h = new Float64Array(bins);
  for (const v of values) h[min(bins - 1, floor((abs(v) * bins) / range))]++;
  return h;
}

describe('percentileThreshold', () => {
  it('is exact on data at bin centres: the upper edge of the bin holding the order statistic', () => {
    // bin width 1; value ±(j + 0.5) appears 1 to 5 times, plus 2048 itself (in the last bin)
    const values: number[] = [];
    for (let j = 0; j < 2048; j++) for (let k = 0; k <= (j * 37) % 5; k++) values.push(j % 2 ? j + 0.5 : -(j + 0.5));
    values.push(2048);
    const h = histogram(values, 2048);
    for (const p of [0.5, 0.9, 0.99, 0.999, 0.9999, 0.99995, 0.99999, 0.999999, 1]) {
      const q = exactQuantile(values, p);
      expect(percentileThreshold(h, 1, 2048, p)).toBe(min(floor(q) + 1, 2048));
    }
  });

  it('stays within one bin above the exact quantile on random data, and keeps at least p of |x|', () => {
    const r = new Rng(11);
    const values = Array.from({ length: 50000 }, () => r.normal(0, 1) * (r.next() < 0.01 ? 8 : 1));
    const absmax = max(...values.map(abs));
    const width = absmax / 2048;
    const h = histogram(values, absmax);
    for (const p of [0.9, 0.99, 0.999, 0.9999, 0.99995]) {
      const t = percentileThreshold(h, width, absmax, p);
      const q = exactQuantile(values, p);
      expect(t).toBeGreaterThanOrEqual(q - 1e-12);
      expect(t - q).toBeLessThan(width + 1e-12);
      expect(values.filter((v) => abs(v) <= t).length).toBeGreaterThanOrEqual(p * values.length);
    }
  });

  it('is absmax at percentile 1, 0 for no data, and rejects percentiles outside [0, 1]', () => {
    const h = histogram([0.1, -3, 2], 3);
    expect(percentileThreshold(h, 3 / 2048, 3, 1)).toBe(3);
    expect(percentileThreshold(new Float64Array(2048), 1, 0, 0.99)).toBe(0);
    expect(() => percentileThreshold(h, 1, 3, 1.5)).toThrow(RangeError);
    expect(() => percentileThreshold(h, 1, 3, -0.1)).toThrow(RangeError);
  });
});
