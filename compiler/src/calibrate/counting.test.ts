import { Rng } from '../kernels/random';
import { countingCore, openHistogramSink, SinkItem } from './counting';
import { GrowingHistogram, growingToFixed, growingTotal, HistogramObserver } from './observers';

const { abs, max } = Math; // bound once: global lookups are slow inside jest's vm context

/** Samples of ReLU'd normal values with growing spread (the range grows several times), one with NaN/Infinity. */
function samples(seed: number, count: number, size: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const a = rng.fillNormal(new Float32Array(size));
    for (let i = 0; i < size; i++) a[i] = max(0, a[i]) * (1 + k);
    return a;
  });
}
const absmaxOf = (a: Float32Array): number => a.reduce((m, v) => (Number.isFinite(v) ? max(m, abs(v)) : m), 0);

describe('GrowingHistogram', () => {
  it('doubling its range adds bins pairwise: the counts equal those counted at the final range from the start', () => {
    const data = samples(1, 6, 5000);
    const grown = new GrowingHistogram(4096, 4);
    for (const d of data) grown.observe(d, absmaxOf(d));
    const final = grown.state();
    // the same values counted at once with the final range
    const once = new GrowingHistogram(4096, 1);
    const all = Float32Array.from(data.flatMap((d) => Array.from(d)));
    once.observe(all, 2 ** final.exponent!);
    expect(once.state().exponent).toBe(final.exponent);
    expect(Array.from(final.fine)).toEqual(Array.from(once.state().fine));
    expect(final.zeros).toBe(all.filter((v) => v === 0).length);
    expect(growingTotal(final)).toBe(all.length);
    // 2^(e-1) < absmax ≤ 2^e
    const absmax = absmaxOf(all);
    expect(2 ** final.exponent!).toBeGreaterThanOrEqual(absmax);
    expect(2 ** (final.exponent! - 1)).toBeLessThan(absmax);
  });

  it('laid out over the final absmax it is the fixed-range histogram, counts moved at most one bin', () => {
    const data = samples(2, 5, 8000);
    const grown = new GrowingHistogram(4096, 4);
    for (const d of data) grown.observe(d, absmaxOf(d));
    const absmax = max(...data.map(absmaxOf));
    const fixed = new HistogramObserver(absmax, 2048);
    for (const d of data) fixed.observe(d);
    const h = growingToFixed(grown.state(), absmax, 2048);
    let ca = 0;
    let cb = 0;
    for (let k = 0; k < 2048; k++) {
      ca += h[k];
      cb += fixed.histogram[k];
      expect(abs(ca - cb)).toBeLessThanOrEqual(fixed.histogram[k] + (fixed.histogram[k + 1] ?? 0) + 1e-6);
    }
    expect(ca).toBeCloseTo(cb, 6);
    expect(h[0]).toBeGreaterThanOrEqual(grown.state().zeros); // the zeros stay in bin 0
  });

  it('zeros before any range, non-finite values skipped and counted', () => {
    const g = new GrowingHistogram(16, 1);
    g.observe(new Float32Array(5), 0);
    g.observe(Float32Array.from([NaN, 1, 0, Infinity, 3]), 3);
    const s = g.state();
    expect([s.onlyZeros, s.zeros, s.nonFinite, growingTotal(s), s.exponent]).toEqual([5, 6, 2, 8, 2]);
    // 16 bins over [0, 4): 0 → bin 0, 1 → bin 4, 3 → bin 12
    expect(Array.from(s.fine).flatMap((c, k) => (c ? [[k, c]] : []))).toEqual([[0, 1], [4, 1], [12, 1]]);
    expect(Array.from(growingToFixed(s, 3, 3))).toEqual([6, 1, 1]);
    expect(() => g.observe(new Float32Array(1), Infinity)).toThrow(/absmax/);
  });
});

describe('HistogramSink', () => {
  it('a worker thread counts exactly what this thread counts', async () => {
    const sites = [{ fineBins: 4096, lanes: 4 as const }, { fineBins: 1 << 16, lanes: 1 as const }];
    const data = [samples(3, 8, 3000), samples(4, 8, 700)];
    const run = async (inline: boolean) => {
      const before = process.env.NX_PTQ_COUNT_INLINE;
      process.env.NX_PTQ_COUNT_INLINE = inline ? '1' : '0';
      const sink = await openHistogramSink(sites);
      if (before === undefined) delete process.env.NX_PTQ_COUNT_INLINE;
      else process.env.NX_PTQ_COUNT_INLINE = before;
      try {
        for (let k = 0; k < 8; k++) {
          const items: SinkItem[] = data.map((d, site) => ({ site, data: d[k], absmax: absmaxOf(d[k]) }));
          await sink.add(items);
        }
        return { worker: sink.worker, states: await sink.finish() };
      } finally {
        await sink.close();
      }
    };
    const w = await run(false);
    const t = await run(true);
    expect([w.worker, t.worker]).toEqual([true, false]);
    expect(w.states.map((s) => ({ ...s, fine: Array.from(s.fine) }))).toEqual(t.states.map((s) => ({ ...s, fine: Array.from(s.fine) })));
    // the inputs were copied, not moved: still readable here
    expect(data[0][0].length).toBe(3000);
  });

  it('a failure in the worker reaches the caller', async () => {
    process.env.NX_PTQ_COUNT_INLINE = '0';
    const sink = await openHistogramSink([{ fineBins: 4, lanes: 1 }]);
    delete process.env.NX_PTQ_COUNT_INLINE;
    try {
      await sink.add([{ site: 0, data: Float32Array.from([1]), absmax: Infinity }]);
      await expect(sink.finish()).rejects.toThrow(/absmax must be finite/);
    } finally {
      await sink.close();
    }
  });

  it('the core is self-contained (its source runs on its own)', () => {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const again = new Function(`return (${countingCore.toString()})();`)() as ReturnType<typeof countingCore>;
    const a = again.growing(8, 1);
    a.observe(Float64Array.from([0.5, 1, 2]), 2);
    expect(Array.from(a.state().fine)).toEqual([0, 0, 1, 0, 1, 0, 0, 1]); // 8 bins over [0, 2): 0.5, 1, 2 (the last bin)
  });
});
