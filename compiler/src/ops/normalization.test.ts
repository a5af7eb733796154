import { Rng } from '../kernels/random';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { inferOp, runOp } from './tensor-shape.test.util';

/* BatchNormalization, InstanceNormalization, LayerNormalization and LRN against formulas written here. */

const prod = (v: number[]): number => v.reduce((a, b) => a * b, 1);
const rand = (rng: Rng, dims: number[], lo = -1, hi = 1): Tensor => tensorFrom('float32', dims, Array.from({ length: prod(dims) }, () => rng.uniform(lo, hi)));

function expectClose(got: Tensor, want: number[], what: string): void {
  const g = got.toNumbers();
  expect(g.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(g[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])))) throw new Error(`${what}: element ${i} is ${g[i]}, expected ${want[i]}`);
  }
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const variance = (v: number[]): number => mean(v.map((x) => (x - mean(v)) ** 2));

describe('BatchNormalization', () => {
  const rng = new Rng('bn');
  const dims = [2, 3, 4, 5];
  const x = rand(rng, dims), s = rand(rng, [3]), b = rand(rng, [3]), m = rand(rng, [3]), v = rand(rng, [3], 0.1, 2);
  const X = x.toNumbers(), S = s.toNumbers(), B = b.toNumbers(), Mn = m.toNumbers(), V = v.toNumbers();
  const channelOf = (i: number): number => Math.floor(i / 20) % 3;

  it('normalises with the given statistics (inference)', () => {
    const want = X.map((xv, i) => ((xv - Mn[channelOf(i)]) / Math.sqrt(V[channelOf(i)] + 1e-3)) * S[channelOf(i)] + B[channelOf(i)]);
    for (const opset of [6, 9, 15]) expectClose(runOp('BatchNormalization', opset, [x, s, b, m, v], { epsilon: { float: 1e-3 } })[0], want, `opset ${opset}`);
  });

  it('uses per-activation statistics with spatial = 0 (opset 7)', () => {
    const s2 = rand(rng, [3, 4, 5]), b2 = rand(rng, [3, 4, 5]), m2 = rand(rng, [3, 4, 5]), v2 = rand(rng, [3, 4, 5], 0.1, 2);
    const e = (t: Tensor, i: number): number => t.toNumbers()[i % 60];
    const want = X.map((xv, i) => ((xv - e(m2, i)) / Math.sqrt(e(v2, i) + 1e-5)) * e(s2, i) + e(b2, i));
    expectClose(runOp('BatchNormalization', 7, [x, s2, b2, m2, v2], { spatial: 0 })[0], want, 'spatial 0');
  });

  it('normalises with batch statistics and updates the running ones in training mode (opset 14+)', () => {
    const [y, rm, rv] = runOp('BatchNormalization', 15, [x, s, b, m, v], { training_mode: 1, momentum: { float: 0.8 } }, 3);
    const per = [0, 1, 2].map((c) => X.filter((_, i) => channelOf(i) === c));
    const bm = per.map(mean), bv = per.map(variance);
    expectClose(y, X.map((xv, i) => ((xv - bm[channelOf(i)]) / Math.sqrt(bv[channelOf(i)] + 1e-5)) * S[channelOf(i)] + B[channelOf(i)]), 'y');
    expectClose(rm, Mn.map((q, c) => q * 0.8 + bm[c] * 0.2), 'running mean');
    expectClose(rv, V.map((q, c) => q * 0.8 + bv[c] * 0.2), 'running var');
    expect(inferOp('BatchNormalization', 15, [{ dtype: 'float32', shape: dims }], { training_mode: 1 }, 3).map((f) => f.shape)).toEqual([dims, [3], [3]]);
  });
});

describe('InstanceNormalization', () => {
  it('normalises each (n, c) plane', () => {
    const rng = new Rng('in');
    const x = rand(rng, [2, 3, 7]), s = rand(rng, [3]), b = rand(rng, [3]);
    const X = x.toNumbers(), S = s.toNumbers(), B = b.toNumbers();
    const want: number[] = [];
    for (let p = 0; p < 6; p++) {
      const plane = X.slice(p * 7, p * 7 + 7);
      for (const xv of plane) want.push(((xv - mean(plane)) / Math.sqrt(variance(plane) + 0.01)) * S[p % 3] + B[p % 3]);
    }
    expectClose(runOp('InstanceNormalization', 6, [x, s, b], { epsilon: { float: 0.01 } })[0], want, 'instancenorm');
  });
});

describe('LayerNormalization', () => {
  it('normalises over the trailing dims from axis, with broadcast Scale/B and the Mean/InvStdDev outputs', () => {
    const rng = new Rng('ln');
    const dims = [2, 3, 4];
    const x = rand(rng, dims);
    const X = x.toNumbers();
    for (const axis of [-1, 1, 0]) {
      const a = axis < 0 ? axis + 3 : axis;
      const inner = prod(dims.slice(a));
      const scale = rand(rng, a === 1 ? [1, 4] : dims.slice(a)), bias = rand(rng, [dims[2]]);
      const sc = (i: number): number => (a === 1 ? scale.toNumbers()[i % 4] : scale.toNumbers()[i]);
      const want: number[] = [], mu: number[] = [], inv: number[] = [];
      for (let r = 0; r < X.length / inner; r++) {
        const row = X.slice(r * inner, (r + 1) * inner);
        const is = 1 / Math.sqrt(variance(row) + 1e-5);
        mu.push(mean(row));
        inv.push(is);
        row.forEach((xv, i) => want.push((xv - mean(row)) * is * sc(i) + bias.toNumbers()[i % 4]));
      }
      const [y, m, v] = runOp('LayerNormalization', 17, [x, scale, bias], { axis }, 3);
      expectClose(y, want, `axis ${axis}`);
      expectClose(m, mu, `mean axis ${axis}`);
      expectClose(v, inv, `invstd axis ${axis}`);
      expect(m.dims).toEqual(dims.map((d, i) => (i < a ? d : 1)));
    }
  });
});

describe('LRN', () => {
  it('divides by the windowed sum of squares across channels', () => {
    const rng = new Rng('lrn');
    const dims = [1, 6, 2, 3];
    const x = rand(rng, dims);
    const X = x.toNumbers();
    const [size, alpha, beta, bias] = [4, 0.02, 0.6, 1.5];
    const want = X.map((xv, i) => {
      const c = Math.floor(i / 6) % 6;
      let sq = 0;
      // window [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉] = [c − 1, c + 2]
      for (let k = Math.max(0, c - 1); k <= Math.min(5, c + 2); k++) sq += X[k * 6 + (i % 6)] ** 2;
      return xv / (bias + (alpha / size) * sq) ** beta;
    });
    expectClose(runOp('LRN', 13, [x], { size, alpha: { float: alpha }, beta: { float: beta }, bias: { float: bias } })[0], want, 'lrn');
  });
});
