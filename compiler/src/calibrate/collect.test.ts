import '../ops';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { ReferenceEngine } from '../runtime/reference';
import { inferShapes } from '../onnx/shape-inference';
import { OrtEngine } from '../runtime/ort';
import { collectRanges, collectStatistics, CollectProgress, rangeModel, Sample } from './collect';
import { computeThresholds, ThresholdMethod, ThresholdOptions } from './thresholds';

const { abs, floor, max, min } = Math; // bound once: global lookups are slow inside jest's vm context

/** conv-bn-relu-pool-conv-relu-gap-gemm with a symbolic batch. */
function convNet(): Model {
  const b = new GraphBuilder('calib', { opset: 13, seed: 7 });
  const x = b.input('data', 'float32', ['N', 3, 16, 16]);
  const c1 = b.relu(b.batchNorm(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 })));
  const c2 = b.relu(b.conv(b.maxPool(c1, { kernel: 2, stride: 2 }), { outChannels: 16, kernel: 3, pad: 1 }));
  b.output(b.gemm(b.flatten(b.globalAvgPool(c2)), 10), 'logits');
  return b.build();
}

function samplesOf(seed: number, count: number, batch = 1): Sample[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => ({ data: new Tensor('float32', [batch, 3, 16, 16], rng.fillNormal(new Float32Array(batch * 768))) }));
}

const model = convNet();
const tensors = ['data', ...model.graph.nodes.map((n) => n.outputs[0])];

describe('collectStatistics', () => {
  it('gives the range and |x| histogram of each tensor over all samples (checked against a plain computation)', async () => {
    const samples = samplesOf(1, 6);
    const stats = await collectStatistics(model, samples, tensors, { engine: 'reference', perChannel: true });
    expect(stats).toMatchObject({ engine: 'reference', samples: 6 });
    // plain: keep every activation (fine for a fixture), then compute
    const engine = new ReferenceEngine(model);
    const values = new Map<string, number[]>(tensors.map((n) => [n, []]));
    const channelAbsmax = new Map<string, number[]>();
    for (const s of samples) {
      const out = engine.runSync(s, { fetch: tensors });
      for (const n of tensors) {
        const t = out[n];
        values.get(n)!.push(...(t.data as Float32Array));
        const c = t.dims[1];
        const inner = t.size / (t.dims[0] * c);
        const acc = channelAbsmax.get(n) ?? new Array<number>(c).fill(0);
        (t.data as Float32Array).forEach((v, i) => (acc[floor(i / inner) % c] = max(acc[floor(i / inner) % c], abs(v))));
        channelAbsmax.set(n, acc);
      }
    }
    for (const n of tensors) {
      const v = values.get(n)!;
      const s = stats.tensors[n];
      const absmax = max(...v.map(abs));
      expect([s.min, s.max, s.absmax, s.count]).toEqual([min(...v), max(...v), absmax, v.length]);
      expect(Array.from(s.perChannelAbsmax!)).toEqual(channelAbsmax.get(n));
      expect(s.binWidth).toBe(absmax / 2048);
      const h = new Array<number>(2048).fill(0);
      for (const x of v) h[min(2047, floor(abs(x) * (2048 / absmax)))]++;
      expect(Array.from(s.histogram)).toEqual(h);
      expect(s.zeros).toBe(v.filter((x) => x === 0).length);
    }
    expect(stats.tensors.Relu_0.zeros).toBeGreaterThan(0);
  });

  it('streams: samples one by one give the statistics of the samples as one batch', async () => {
    const ones = samplesOf(2, 10);
    const batch = new Float32Array(10 * 768);
    ones.forEach((s, k) => batch.set(s.data.data as Float32Array, k * 768));
    const a = await collectStatistics(model, ones, tensors, { engine: 'reference', perChannel: true });
    const b = await collectStatistics(model, [{ data: new Tensor('float32', [10, 3, 16, 16], batch) }], tensors, { engine: 'reference', perChannel: true });
    expect(b.samples).toBe(1);
    expect(a.tensors).toEqual(b.tensors);
  });

  it('gives the same thresholds with onnxruntime and the reference engine (20 seeded samples)', async () => {
    const samples = samplesOf(3, 20);
    const ort = await collectStatistics(model, samples, tensors, { engine: 'ort', perChannel: true });
    const ref = await collectStatistics(model, samples, tensors, { engine: 'reference', perChannel: true });
    expect(ort.engine).toBe('ort');
    const methods: [ThresholdMethod, ThresholdOptions][] = [['max', {}], ['max', { maxPercentile: 0.9999 }], ['max', { maxPercentile: 0.999 }], ['kl', {}]];
    for (const [method, opts] of methods) {
      const a = computeThresholds(ort.tensors, method, { ...opts, perChannel: true });
      const b = computeThresholds(ref.tensors, method, { ...opts, perChannel: true });
      for (const n of tensors) {
        // activations agree to float32 rounding, so thresholds agree to ~1e-7 of the range:
        // well under one histogram bin (4.9e-4 of the range), i.e. the same bin was chosen
        const tol = 1e-6 * ref.tensors[n].absmax;
        expect(abs(a[n].threshold - b[n].threshold)).toBeLessThanOrEqual(tol);
        a[n].perChannel!.forEach((t, c) => expect(abs(t - b[n].perChannel![c])).toBeLessThanOrEqual(tol));
      }
    }
  });

  it('reads a function source once per pass and reports progress', async () => {
    let calls = 0;
    const progress: CollectProgress[] = [];
    const source = function* (): Generator<Sample> {
      calls++;
      yield* samplesOf(4, 3);
    };
    const stats = await collectStatistics(model, source, ['Relu_1'], { engine: 'reference', onProgress: (p) => progress.push(p) });
    expect(calls).toBe(2);
    expect(stats.samples).toBe(3);
    expect(progress).toEqual([
      { pass: 1, what: 'ranges', samples: 1, total: undefined }, { pass: 1, what: 'ranges', samples: 2, total: undefined }, { pass: 1, what: 'ranges', samples: 3, total: undefined },
      { pass: 2, what: 'histograms', samples: 1, total: 3 }, { pass: 2, what: 'histograms', samples: 2, total: 3 }, { pass: 2, what: 'histograms', samples: 3, total: 3 },
    ]);
    // async iterables that start over on every iteration are fine too
    const again = { async *[Symbol.asyncIterator](): AsyncGenerator<Sample> { yield* samplesOf(4, 3); } };
    expect((await collectStatistics(model, again, ['Relu_1'], { engine: 'reference' })).tensors).toEqual(stats.tensors);
  });

  it('uses onnxruntime by default (it is installed here)', async () => {
    const stats = await collectStatistics(model, samplesOf(5, 2), ['Conv_1']);
    expect(stats.engine).toBe('ort');
  });

  it('refuses a one-shot generator, no samples, changing samples, unknown and non-float tensors', async () => {
    const gen = (function* (): Generator<Sample> { yield* samplesOf(6, 2); })();
    await expect(collectStatistics(model, gen, ['Relu_0'], { engine: 'reference' })).rejects.toThrow(/read twice/);
    await expect(collectStatistics(model, [], ['Relu_0'], { engine: 'reference' })).rejects.toMatchObject({ code: 'E_CALIBRATION_DATA' });
    let n = 3;
    const shrinking = (): Sample[] => samplesOf(7, n--);
    await expect(collectStatistics(model, shrinking, ['Relu_0'], { engine: 'reference' })).rejects.toMatchObject({ code: 'E_CALIBRATION_DATA' });
    const unknown = collectStatistics(model, samplesOf(8, 1), ['nope'], { engine: 'reference' });
    await expect(unknown).rejects.toBeInstanceOf(PtqError);
    await expect(unknown).rejects.toMatchObject({ code: 'E_VALUE_UNKNOWN', subject: 'nope' });

    const b = new GraphBuilder('shape', { opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 3, 3]);
    b.output(b.node('Shape', [x], {}, 1, { dtype: 'int64', shapes: [[4]] })[0], 'dims');
    const shapeModel = b.build();
    const feeds = [{ x: new Tensor('float32', [1, 2, 3, 3]) }];
    await expect(collectStatistics(shapeModel, feeds, ['dims'], { engine: 'reference' })).rejects.toMatchObject({ code: 'E_CALIBRATE_DTYPE', subject: 'dims' });
  });
});

describe('collectStatistics with onnxruntime (ranges reduced in the graph)', () => {
  it.each([true, false])('gives the ranges of the reference engine (per channel: %s), the same zeros and counts', async (perChannel) => {
    const samples = samplesOf(9, 5);
    const ort = await collectStatistics(model, samples, tensors, { engine: 'ort', perChannel });
    const ref = await collectStatistics(model, samples, tensors, { engine: 'reference', perChannel });
    for (const n of tensors) {
      const a = ort.tensors[n];
      const b = ref.tensors[n];
      const tol = 1e-6 * b.absmax;
      for (const k of ['min', 'max', 'absmax'] as const) expect(abs(a[k] - b[k])).toBeLessThanOrEqual(tol);
      if (perChannel) a.perChannelAbsmax!.forEach((v, c) => expect(abs(v - b.perChannelAbsmax![c])).toBeLessThanOrEqual(tol));
      else expect(a.perChannelAbsmax).toBeUndefined();
      expect([a.count, a.nonFinite, a.zeros]).toEqual([b.count, b.nonFinite, b.zeros]);
      expect(a.histogram.reduce((s, v) => s + v, 0)).toBe(b.count);
    }
  });

  it('non-finite values: the range of the finite ones, as the reference engine gives it', async () => {
    const b = new GraphBuilder('inf', { opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    b.output(b.node('Reciprocal', [x], {}, 1, { shapes: [[1, 2, 4, 4]] })[0], 'r');
    const m = b.build();
    const rng = new Rng(3);
    const feeds = Array.from({ length: 3 }, (_, k) => {
      const a = rng.fillNormal(new Float32Array(32));
      a[5 + k] = 0; // 1/0 = Infinity
      return { x: new Tensor('float32', [1, 2, 4, 4], a) };
    });
    const ort = await collectStatistics(m, feeds, ['r', 'x'], { engine: 'ort', perChannel: true });
    const ref = await collectStatistics(m, feeds, ['r', 'x'], { engine: 'reference', perChannel: true });
    expect(ref.tensors.r.nonFinite).toBe(3);
    expect(Number.isFinite(ref.tensors.r.absmax)).toBe(true);
    for (const n of ['r', 'x']) {
      const { histogram: h1, perChannelAbsmax: p1, perChannelMin: n1, perChannelMax: x1, ...a } = ort.tensors[n];
      const { histogram: h2, perChannelAbsmax: p2, perChannelMin: n2, perChannelMax: x2, ...c } = ref.tensors[n];
      expect(a).toEqual(c);
      expect(Array.from(h1)).toEqual(Array.from(h2));
      expect([p1, n1, x1].map((v) => Array.from(v!))).toEqual([p2, n2, x2].map((v) => Array.from(v!)));
    }
  });

  it('opset 18 (axes as an input), rank-2 tensors and graph inputs', async () => {
    const b = new GraphBuilder('o18', { opset: 18, seed: 2 });
    const x = b.input('x', 'float32', [2, 3, 6, 6]);
    const c = b.relu(b.conv(x, { outChannels: 4, kernel: 3 }));
    b.output(b.gemm(b.flatten(b.globalAvgPool(c)), 5), 'y');
    const m = b.build();
    const names = ['x', ...m.graph.nodes.map((n) => n.outputs[0])];
    const rng = new Rng(4);
    const feeds = Array.from({ length: 3 }, () => ({ x: new Tensor('float32', [2, 3, 6, 6], rng.fillNormal(new Float32Array(216))) }));
    const ort = await collectStatistics(m, feeds, names, { engine: 'ort', perChannel: true });
    const ref = await collectStatistics(m, feeds, names, { engine: 'reference', perChannel: true });
    for (const n of names) {
      const tol = 1e-6 * ref.tensors[n].absmax;
      expect(abs(ort.tensors[n].absmax - ref.tensors[n].absmax)).toBeLessThanOrEqual(tol);
      expect(ort.tensors[n].perChannelAbsmax!.length).toBe(ref.tensors[n].perChannelAbsmax!.length);
    }
    expect(ort.tensors.y.perChannelAbsmax!.length).toBe(5);
    // the range model itself loads (collectStatistics would fall back to fetching otherwise)
    const plan = rangeModel(m, names, inferShapes(m, { apply: false }));
    expect(plan.raw).toEqual(['x']);
    expect(plan.reduced.size).toBe(names.length - 1);
    await (await OrtEngine.create(plan.model, { threads: 1 })).dispose();
  });

  it('collectRanges: pass 1 alone, the ranges collectStatistics starts from', async () => {
    const samples = samplesOf(10, 4);
    const r = await collectRanges(model, samples, tensors, { perChannel: true });
    const s = await collectStatistics(model, samples, tensors, { perChannel: true });
    expect(r.samples).toBe(4);
    for (const n of tensors) {
      expect([r.tensors[n].min, r.tensors[n].max, r.tensors[n].absmax]).toEqual([s.tensors[n].min, s.tensors[n].max, s.tensors[n].absmax]);
      expect(Array.from(r.tensors[n].perChannelAbsmax!)).toEqual(Array.from(s.tensors[n].perChannelAbsmax!));
    }
  });
});
