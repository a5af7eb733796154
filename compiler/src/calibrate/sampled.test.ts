import '../ops';
import { Rng } from '../kernels/random';
import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor } from '../onnx/tensor';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { collectStatistics, Sample } from './collect';
import { statisticsModel, unpack } from './sampled';
import { computeThresholds } from './thresholds';

const { abs, ceil, max, min } = Math; // bound once: global lookups are slow inside jest's vm context

/** conv-relu6 → depthwise conv (no activation) → add → relu → gap → gemm, fixed shapes. */
function net(opset = 13): Model {
  const b = new GraphBuilder('sampled', { opset, seed: 11 });
  const x = b.input('x', 'float32', [2, 3, 20, 20]);
  const c1 = b.clip(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 }), 0, 6);
  const c2 = b.conv(c1, { outChannels: 8, kernel: 3, pad: 1, group: 8 });
  const r = b.relu(b.add(c2, b.conv(c1, { outChannels: 8, kernel: 1 })));
  b.output(b.gemm(b.flatten(b.globalAvgPool(r)), 6), 'y');
  return b.build();
}

function samplesOf(seed: number, count: number, m: Model): Sample[] {
  const rng = new Rng(seed);
  const v = m.graph.realInputs[0];
  const dims = v.type!.shape as number[];
  const size = dims.reduce((p, q) => p * q, 1);
  return Array.from({ length: count }, () => ({ [v.name]: new Tensor('float32', dims, rng.fillNormal(new Float32Array(size))) }));
}

const model = net();
const names = ['x', ...model.graph.nodes.map((n) => n.outputs[0])];
const facts = inferShapes(model, { apply: false });
const sizeOf = (n: string): number => (facts.get(n)!.shape as number[]).reduce((p, q) => p * q, 1);

describe('statisticsModel', () => {
  it('reduces ranges next to the activations and subsamples large tensors on a grid', async () => {
    const plan = statisticsModel(model, names, facts, false, 256);
    const site = (n: string) => plan.sites.find((s) => s.name === n)!;
    const op = (out: string | undefined) => plan.model.graph.nodes.find((n) => n.outputs[0] === out)?.opType;
    const clip = model.graph.nodes.find((n) => n.opType === 'Clip')!.outputs[0];
    const relu = model.graph.nodes.find((n) => n.opType === 'Relu')!.outputs[0];
    const add = model.graph.nodes.find((n) => n.opType === 'Add')!.outputs[0];
    // Clip(0, 6) and Relu: bounded below by 0, no ReduceMin; the Add: both
    for (const n of [clip, relu]) expect([site(n).kind, op(site(n).max), site(n).min, site(n).lower]).toEqual(['reduced', 'GlobalMaxPool', undefined, 0]);
    expect([op(site(add).max), op(site(add).min), site(add).lower]).toEqual(['GlobalMaxPool', 'ReduceMin', undefined]);
    // 2×8×20×20 = 6400 elements, 256 wanted: stride 5 → 2×8×4×4 = 256
    const pool = plan.model.graph.nodes.find((n) => n.outputs[0] === site(clip).sample)!;
    expect([pool.opType, pool.ints('kernel_shape'), pool.ints('strides')]).toEqual(['MaxPool', [1, 1], [5, 5]]);
    // small tensors (the gemm output, the pooled features) are fetched whole
    expect(site('y').kind).toBe('whole');
    expect(plan.packed!.parts.map((p) => p.name)).toContain('y');
    // everything of known size comes out packed into one output
    expect(plan.model.graph.outputs.map((o) => o.name)).toEqual([plan.packed!.output]);
    // onnxruntime and the reference engine run it; the subsample is the grid of the tensor
    const feeds = samplesOf(1, 1, model)[0];
    const ort = await OrtEngine.create(plan.model, { threads: 1 });
    const full = await new ReferenceEngine(model).run(feeds, { fetch: [clip] });
    try {
      const out = unpack(plan, await ort.run(feeds));
      const sub = out[site(clip).sample!];
      expect(sub.dims).toEqual([2, 8, 4, 4]);
      const want: number[] = [];
      const f = full[clip].data as Float32Array;
      for (let b = 0; b < 16; b++) for (let h = 0; h < 20; h += 5) for (let w = 0; w < 20; w += 5) want.push(f[b * 400 + h * 20 + w]);
      Array.from(sub.data as Float32Array).forEach((v, i) => expect(abs(v - want[i])).toBeLessThanOrEqual(1e-5 * max(1, abs(want[i]))));
    } finally {
      await ort.dispose();
    }
  });

  it('rank-2 tensors: every k-th value (Slice), ReduceMin/ReduceMax per channel; opset 18 gives the axes as inputs', async () => {
    const b = new GraphBuilder('r2', { opset: 18, seed: 3 });
    const x = b.input('x', 'float32', [64, 40]);
    b.output(b.gemm(x, 30), 'y');
    const m = b.build();
    const plan = statisticsModel(m, ['y'], inferShapes(m, { apply: false }), true, 500);
    const s = plan.sites[0];
    const nodes = plan.model.graph.nodes;
    expect(nodes.find((n) => n.outputs[0] === s.sample)!.opType).toBe('Slice');
    const reduce = nodes.find((n) => n.outputs[0] === s.min)!;
    expect([reduce.opType, reduce.inputs.length]).toEqual(['ReduceMin', 2]);
    const out = unpack(plan, await (await OrtEngine.create(plan.model, { threads: 1 })).run({ x: new Tensor('float32', [64, 40], new Rng(5).fillNormal(new Float32Array(2560))) }));
    expect(out[s.sample!].dims).toEqual([ceil(1920 / ceil(1920 / 500))]);
    expect(out[s.max!].dims).toEqual([30]);
  });
});

describe('collectStatistics with `sample` (one pass)', () => {
  const samples = samplesOf(2, 6, model);

  it.each([false, true])('gives exactly the two-pass ranges (per channel: %s) and a histogram of about `sample` values per tensor per sample', async (perChannel) => {
    const progress: string[] = [];
    const one = await collectStatistics(model, samples, names, { sample: 256, perChannel, onProgress: (p) => progress.push(`${p.pass}:${p.what}:${p.samples}`) });
    const two = await collectStatistics(model, samples, names, { perChannel });
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((k) => `1:ranges and histograms:${k}`));
    expect(one.samples).toBe(6);
    for (const n of names) {
      const a = one.tensors[n];
      const b = two.tensors[n];
      expect([a.min, a.max, a.absmax, a.count, a.binWidth]).toEqual([b.min, b.max, b.absmax, b.count, b.binWidth]);
      if (perChannel) for (const k of ['perChannelMin', 'perChannelMax', 'perChannelAbsmax'] as const) expect(Array.from(a[k]!)).toEqual(Array.from(b[k]!));
      const counted = a.histogram.reduce((s, v) => s + v, 0);
      expect(counted).toBeCloseTo(a.histogramValues!, 6);
      if (sizeOf(n) <= 256) expect(a.histogramValues).toBe(b.count);
      else expect(a.histogramValues).toBeLessThanOrEqual(6 * 256 * 1.3);
      // max thresholds are the exact absmax; kl and the percentile come from an estimate of the same distribution
      expect(computeThresholds({ [n]: a }, 'max')[n].threshold).toBe(b.absmax);
    }
  });

  it('tensors counted whole give the two-pass histogram up to the re-binning (each count moves at most one bin)', async () => {
    const one = await collectStatistics(model, samples, names, { sample: 1 << 20 });
    const two = await collectStatistics(model, samples, names, {});
    for (const n of names) {
      const a = one.tensors[n];
      const b = two.tensors[n];
      expect([a.histogramValues, a.zeros]).toEqual([b.count, b.zeros]);
      // cumulative counts agree within one bin's content: every value stays in its bin or a neighbour
      let ca = 0;
      let cb = 0;
      for (let k = 0; k < 2048; k++) {
        ca += a.histogram[k];
        cb += b.histogram[k];
        const near = b.histogram[k] + (k + 1 < 2048 ? b.histogram[k + 1] : 0) + (k > 0 ? b.histogram[k - 1] : 0);
        expect(abs(ca - cb)).toBeLessThanOrEqual(near + 1e-6 * b.count);
      }
      expect(ca).toBeCloseTo(cb, 6);
      const pa = computeThresholds({ [n]: a }, 'percentile', { maxPercentile: 0.999 })[n].threshold;
      const pb = computeThresholds({ [n]: b }, 'percentile', { maxPercentile: 0.999 })[n].threshold;
      expect(abs(pa - pb)).toBeLessThanOrEqual(b.binWidth * 1.0000001);
    }
  });

  it('onnxruntime and the reference engine give the same statistics', async () => {
    const ort = await collectStatistics(model, samples, names, { sample: 256, engine: 'ort', perChannel: true });
    const ref = await collectStatistics(model, samples, names, { sample: 256, engine: 'reference', perChannel: true });
    expect([ort.engine, ref.engine]).toEqual(['ort', 'reference']);
    for (const n of names) {
      const a = ort.tensors[n];
      const b = ref.tensors[n];
      const tol = 1e-5 * b.absmax;
      for (const k of ['min', 'max', 'absmax'] as const) expect(abs(a[k] - b[k])).toBeLessThanOrEqual(tol);
      expect([a.histogramValues, a.zeros]).toEqual([b.histogramValues, b.zeros]);
      for (const m of ['kl', 'max'] as const) {
        const ta = computeThresholds({ [n]: a }, m)[n].threshold;
        const tb = computeThresholds({ [n]: b }, m)[n].threshold;
        expect(abs(ta - tb)).toBeLessThanOrEqual(2 * b.binWidth);
      }
    }
  });

  it('a Relu output whose subsample never shows 0 gets its min from an exact pass', async () => {
    // all-positive inputs and weights, positive bias: the Relu never clips, min > 0
    const b = new GraphBuilder('pos', { opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 12, 12]);
    const w = b.initializer(new Tensor('float32', [3, 2, 1, 1], Float32Array.from([1, 2, 0.5, 1, 2, 0.25])), 'w');
    const bias = b.initializer(new Tensor('float32', [3], Float32Array.from([0.5, 1, 0.1])), 'bias');
    const conv = b.node('Conv', [x, w, bias], {}, 1, { shapes: [[1, 3, 12, 12]] })[0];
    const relu = b.relu(conv);
    const r = relu.name;
    b.output(b.globalAvgPool(relu), 'y');
    const m = b.build();
    const rng = new Rng(8);
    const feeds = Array.from({ length: 3 }, () => {
      const a = new Float32Array(288);
      for (let i = 0; i < a.length; i++) a[i] = 0.1 + rng.next();
      return { x: new Tensor('float32', [1, 2, 12, 12], a) };
    });
    const progress: number[] = [];
    for (const perChannel of [false, true]) {
      const one = await collectStatistics(m, feeds, [r], { sample: 50, perChannel, onProgress: (p) => progress.push(p.pass) });
      const two = await collectStatistics(m, feeds, [r], { perChannel });
      expect(one.tensors[r].min).toBeGreaterThan(0);
      expect([one.tensors[r].min, one.tensors[r].max]).toEqual([two.tensors[r].min, two.tensors[r].max]);
      if (perChannel) expect(Array.from(one.tensors[r].perChannelMin!)).toEqual(Array.from(two.tensors[r].perChannelMin!));
    }
    expect(progress).toContain(2); // the exact range pass ran
  });

  it('non-finite values: the tensor is collected again by the two-pass way', async () => {
    const b = new GraphBuilder('inf', { opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 10, 10]);
    b.output(b.node('Reciprocal', [x], {}, 1, { shapes: [[1, 2, 10, 10]] })[0], 'r');
    const m = b.build();
    const rng = new Rng(3);
    const feeds = Array.from({ length: 3 }, (_, k) => {
      const a = rng.fillNormal(new Float32Array(200));
      a[5 + k] = 0; // 1/0 = Infinity
      return { x: new Tensor('float32', [1, 2, 10, 10], a) };
    });
    const one = await collectStatistics(m, feeds, ['r', 'x'], { sample: 20 });
    const two = await collectStatistics(m, feeds, ['r', 'x'], {});
    expect(one.tensors.r.nonFinite).toBe(3);
    const { histogram: h1, ...a } = one.tensors.r;
    const { histogram: h2, ...c } = two.tensors.r;
    expect(a).toEqual(c);
    expect(Array.from(h1)).toEqual(Array.from(h2));
    expect(one.tensors.x.histogramValues).toBeLessThan(600);
  });

  it('memory does not grow with the samples: one sample of subsampled values at a time', async () => {
    const many = samplesOf(4, 40, model);
    const stats = await collectStatistics(model, () => many, names, { sample: 64 });
    expect(stats.samples).toBe(40);
    for (const n of names) expect(stats.tensors[n].histogramValues!).toBeLessThanOrEqual(40 * max(64 * 1.3, min(sizeOf(n), 64)) + 40 * 16);
  });
});

describe('sampled histograms estimate the full ones', () => {
  it('a large ReLU tensor: the same distribution of |x|, the percentile within 5 %, kl within its own spread', async () => {
    const b = new GraphBuilder('big', { opset: 13, seed: 21 });
    const x = b.input('x', 'float32', [1, 3, 64, 64]);
    const relu = b.relu(b.conv(x, { outChannels: 16, kernel: 3, pad: 1 }));
    const r = relu.name;
    b.output(b.globalAvgPool(relu), 'y');
    const m = b.build();
    const feeds = samplesOf(6, 20, m);
    const one = await collectStatistics(m, feeds, [r], { sample: 8192 });
    const two = await collectStatistics(m, feeds, [r], {});
    const threshold = (s: typeof one, k: 'kl' | 'percentile') => computeThresholds(s.tensors, k, k === 'percentile' ? { maxPercentile: 0.9999 } : {})[r].threshold;
    expect(one.tensors[r].histogramValues).toBe(20 * 16 * 22 * 22); // stride 3 of 64×64 (stride 2 gives 16 384 > 8192)
    // the same distribution: total variation distance in 64 coarse bins (the fine ones are noisy by construction)
    const coarse = (h: Float64Array) => {
      const t = h.reduce((s, v) => s + v, 0);
      return Array.from({ length: 64 }, (_, k) => h.subarray(32 * k, 32 * k + 32).reduce((s, v) => s + v, 0) / t);
    };
    const [p, q] = [coarse(one.tensors[r].histogram), coarse(two.tensors[r].histogram)];
    expect(p.reduce((s, v, k) => s + abs(v - q[k]) / 2, 0)).toBeLessThan(0.01);
    expect(abs(one.tensors[r].zeros / one.tensors[r].histogramValues! - two.tensors[r].zeros / two.tensors[r].count)).toBeLessThan(0.01);
    expect(abs(threshold(one, 'percentile') / threshold(two, 'percentile') - 1)).toBeLessThan(0.05);
    // entropy calibration depends on how many values fill the histogram's tail (fewer: sparser,
    // and its argmin moves): 155k values against 1.3M here give a threshold 1.33× as large; on
    // the generated MobileNetV2 (100 samples) the subsampled tensors' kl thresholds are
    // 0.90–1.29× (median 1.00) of those from every value
    const kl = threshold(one, 'kl') / threshold(two, 'kl');
    expect(kl).toBeGreaterThan(1 / 1.5);
    expect(kl).toBeLessThan(1.5);
    expect(threshold(one, 'kl')).toBeLessThanOrEqual(two.tensors[r].absmax);
  });
});
