import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { Rng } from '../kernels/random';
import { averageCurve, compareWorstFirst, MetricAccumulator, METRICS, parseMetric, pyFloat } from './metrics';

/** Textbook formulas, one pass each, to check the streaming accumulator against. */
function direct(a: number[], b: number[]): Record<string, number> {
  const n = a.length;
  const dot = a.reduce((s, x, i) => s + x * b[i], 0);
  const na = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
  const nb = Math.sqrt(b.reduce((s, x) => s + x * x, 0));
  const diff = a.map((x, i) => x - b[i]);
  const noise = diff.reduce((s, d) => s + d * d, 0);
  return {
    'cosine-similarity': dot / (na * nb),
    mse: noise / n,
    mre: diff.reduce((s, d) => s + Math.abs(d), 0) / a.reduce((s, x) => s + Math.abs(x), 0),
    sqnr: 10 * Math.log10((na * na) / noise),
    chebyshev: Math.max(...diff.map(Math.abs)),
  };
}

describe('metrics', () => {
  it('match the textbook formulas, streamed over several samples as over one array', () => {
    const rng = new Rng(3);
    const a = Array.from({ length: 3000 }, () => rng.normal());
    const b = a.map((x) => x + 0.05 * rng.normal());
    const want = direct(a, b);
    const one = new MetricAccumulator().add(Float32Array.from(a), Float32Array.from(b));
    const parts = new MetricAccumulator();
    for (let k = 0; k < 3000; k += 1000) parts.add(Float32Array.from(a.slice(k, k + 1000)), Float32Array.from(b.slice(k, k + 1000)));
    // the accumulator reads float32 arrays: compare with the formulas on the same float32 values
    const wantF = direct(Array.from(Float32Array.from(a)), Array.from(Float32Array.from(b)));
    for (const m of METRICS) {
      expect(one.value(m)).toBeCloseTo(wantF[m], 10);
      expect(parts.value(m)).toBeCloseTo(one.value(m), 12);
      expect(one.value(m)).toBeCloseTo(want[m], 5);
    }
    expect(want.sqnr).toBeGreaterThan(20); // noise 0.05 of a unit signal: ~26 dB
    expect(one.elements).toBe(3000);
  });

  it('edge cases: identical, all-zero, one side zero, NaN', () => {
    const x = Float32Array.of(1, -2, 3);
    const same = new MetricAccumulator().add(x, x);
    expect(same.values([...METRICS])).toEqual({ 'cosine-similarity': 1, mse: 0, mre: 0, sqnr: Infinity, chebyshev: 0 });
    const zeros = new Float32Array(3);
    expect(new MetricAccumulator().add(zeros, zeros).values([...METRICS])).toEqual({ 'cosine-similarity': 1, mse: 0, mre: 0, sqnr: Infinity, chebyshev: 0 });
    const lost = new MetricAccumulator().add(x, zeros);
    expect(lost.value('cosine-similarity')).toBe(0);
    expect(lost.value('mre')).toBe(1);
    expect(lost.value('sqnr')).toBe(0);
    const fromZero = new MetricAccumulator().add(zeros, x);
    expect(fromZero.value('mre')).toBe(Infinity);
    expect(fromZero.value('sqnr')).toBe(-Infinity);
    expect(new MetricAccumulator().add(Float32Array.of(1, NaN), Float32Array.of(1, 2)).value('mse')).toBeNaN();
  });

  it('rank worst first whichever direction the metric goes; NaN is the worst', () => {
    const sortBy = (m: (typeof METRICS)[number], v: number[]): number[] => [...v].sort((x, y) => compareWorstFirst(m, x, y));
    expect(sortBy('cosine-similarity', [0.99, 0.5, NaN, 1])).toEqual([NaN, 0.5, 0.99, 1]);
    expect(sortBy('sqnr', [30, Infinity, 10])).toEqual([10, 30, Infinity]);
    expect(sortBy('mse', [0.1, 0, 2])).toEqual([2, 0.1, 0]);
    expect(sortBy('chebyshev', [1, 3])).toEqual([3, 1]);
  });

  it('parse names, with a one-line error for others', () => {
    expect(parseMetric('cosine-similarity')).toBe('cosine-similarity');
    expect(parseMetric('Cosine_Similarity')).toBe('cosine-similarity');
    expect(parseMetric('MSE')).toBe('mse');
    expect(() => parseMetric('l2')).toThrow(/unknown metric 'l2'/);
  });
});

describe('average_mode', () => {
  it("is the reference's worked example: [1.0, 0.9, 0.9, 0.8] → [1.0, 0.95, 0.933, 0.9]", () => {
    const avg = averageCurve([1.0, 0.9, 0.9, 0.8]);
    expect(avg.map((v) => Math.round(v * 1000) / 1000)).toEqual([1.0, 0.95, 0.933, 0.9]);
    expect(avg[1]).toBeCloseTo(0.95, 15);
    expect(avg[2]).toBeCloseTo(2.8 / 3, 15);
    expect(avg[3]).toBeCloseTo(0.9, 15);
    expect(averageCurve([])).toEqual([]);
  });
});

describe('pyFloat', () => {
  it("writes floats as Python's repr does", () => {
    const cases: [number, string][] = [
      [0.999009567957658, '0.999009567957658'],
      [0.00041888411550854263, '0.00041888411550854263'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [1, '1.0'],
      [-2.5, '-2.5'],
      [123456789012345.6, '123456789012345.6'],
      [1e16, '1e+16'],
      [1.2345e21, '1.2345e+21'],
      [0, '0.0'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [NaN, 'nan'],
    ];
    for (const [v, s] of cases) expect(pyFloat(v)).toBe(s);
  });

  const py = '/usr/bin/python3';
  (fs.existsSync(py) ? it : it.skip)('agrees with Python on random doubles of every magnitude', () => {
    const rng = new Rng(9);
    const values = Array.from({ length: 300 }, () => (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform() * 10 ** Math.floor(rng.uniform(-12, 20)));
    const r = spawnSync(py, ['-c', 'import sys\nfor l in sys.stdin: print(repr(float(l)))'], { input: values.map((v) => v.toPrecision(17)).join('\n'), encoding: 'utf8' });
    expect(r.status).toBe(0);
    const want = r.stdout.trim().split('\n');
    values.forEach((v, i) => expect(pyFloat(Number(v.toPrecision(17)))).toBe(want[i]));
  });
});
