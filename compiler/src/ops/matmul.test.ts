import { Rng } from '../kernels/random';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { inferOp, runOp } from './tensor-shape.test.util';

/* Gemm and MatMul against straightforward loops written here, on random shapes. */

const prod = (v: number[]): number => v.reduce((a, b) => a * b, 1);
const randT = (rng: Rng, dims: number[]): Tensor => new Tensor('float32', dims, Float32Array.from({ length: prod(dims) }, () => rng.uniform(-1, 1)));

function expectClose(got: Tensor, dims: number[], want: ArrayLike<number>, what: string): void {
  expect(got.dims).toEqual(dims);
  const g = got.toNumbers();
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(g[i] - want[i]) / (1 + Math.abs(want[i])));
  if (!(worst < 1e-5)) throw new Error(`${what}: error ${worst}`);
}

/** numpy-style matmul of row-major arrays by the definition. */
function naiveMatmul(a: number[], ad: number[], b: number[], bd: number[]): { dims: number[]; data: number[] } {
  const A = ad.length === 1 ? [1, ad[0]] : ad;
  const B = bd.length === 1 ? [bd[0], 1] : bd;
  const M = A[A.length - 2], K = A[A.length - 1], N = B[B.length - 1];
  const ab = A.slice(0, -2), bb = B.slice(0, -2);
  const r = Math.max(ab.length, bb.length);
  const pa = [...new Array<number>(r - ab.length).fill(1), ...ab], pb = [...new Array<number>(r - bb.length).fill(1), ...bb];
  const batch = pa.map((x, i) => Math.max(x, pb[i]));
  const data: number[] = [];
  for (let q = 0; q < prod(batch); q++) {
    // batch coordinates → offsets of the (broadcast) operands
    let rem = q, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = r - 1; d >= 0; d--) {
      const c = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
      ia += (pa[d] === 1 ? 0 : c) * sa;
      ib += (pb[d] === 1 ? 0 : c) * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ia * M * K + i * K + k] * b[ib * K * N + k * N + j];
        data.push(s);
      }
    }
  }
  const dims = [...batch];
  if (ad.length > 1) dims.push(M);
  if (bd.length > 1) dims.push(N);
  return { dims, data };
}

describe('MatMul', () => {
  it('matches numpy semantics on random batch-broadcast and 1-D shapes', () => {
    const rng = new Rng('matmul');
    for (let t = 0; t < 120; t++) {
      const M = 1 + rng.int(20), K = 1 + rng.int(t % 4 === 0 ? 300 : 30), N = 1 + rng.int(20);
      const rank = rng.int(4);
      const batch = Array.from({ length: rank }, () => 1 + rng.int(3));
      const ba = batch.map((d) => (rng.int(3) === 0 ? 1 : d)).slice(rng.int(rank + 1));
      const bb = batch.map((d) => (rng.int(3) === 0 ? 1 : d)).slice(rng.int(rank + 1));
      const ad = t % 9 === 0 ? [K] : [...ba, M, K];
      const bd = t % 11 === 0 ? [K] : t % 5 === 0 ? [K, N] : [...bb, K, N];
      const a = randT(rng, ad), b = randT(rng, bd);
      const want = naiveMatmul(a.toNumbers(), ad, b.toNumbers(), bd);
      for (let run = 0; run < (bd.length === 2 ? 3 : 1); run++) {
        expectClose(runOp('MatMul', 13, [a, b])[0], want.dims, want.data, `case ${t} [${ad}]·[${bd}] run ${run}`);
      }
      const inferred = inferOp('MatMul', 13, [{ dtype: 'float32', shape: ad }, { dtype: 'float32', shape: bd }])[0];
      expect(inferred.shape).toEqual(want.dims);
    }
  });

  it('multiplies integer and float64 matrices exactly', () => {
    const a = tensorFrom('int32', [2, 3], [1, -2, 3, 4, 5, -6]);
    const b = tensorFrom('int32', [3, 2], [7, 8, 9, 10, -11, 12]);
    expect(runOp('MatMul', 13, [a, b])[0].toNumbers()).toEqual([1 * 7 - 2 * 9 - 3 * 11, 8 - 20 + 36, 28 + 45 + 66, 32 + 50 - 72]);
    const a64 = tensorFrom('int64', [1, 2], [2 ** 40, 3]);
    const b64 = tensorFrom('int64', [2, 1], [4, 5]);
    expect(runOp('MatMul', 13, [a64, b64])[0].toNumbers()).toEqual([2 ** 42 + 15]);
    const d = runOp('MatMul', 13, [tensorFrom('float64', [1, 2], [0.1, 0.2]), tensorFrom('float64', [2, 1], [0.3, 0.4])])[0];
    expect(d.dtype).toBe('float64');
    expect(d.toNumbers()[0]).toBe(0.1 * 0.3 + 0.2 * 0.4);
  });

  it('rejects mismatched inner dimensions', () => {
    expect(() => runOp('MatMul', 13, [new Tensor('float32', [2, 3]), new Tensor('float32', [4, 2])])).toThrow(/inner dimensions/);
  });
});

describe('Gemm', () => {
  it('matches alpha·op(A)·op(B) + beta·C on random shapes and C broadcasts', () => {
    const rng = new Rng('gemm');
    for (let t = 0; t < 120; t++) {
      const M = 1 + rng.int(t % 6 === 0 ? 70 : 12), K = 1 + rng.int(t % 4 === 0 ? 300 : 20), N = 1 + rng.int(t % 5 === 0 ? 70 : 12);
      const tA = rng.int(2), tB = rng.int(2);
      const a = randT(rng, tA ? [K, M] : [M, K]), b = randT(rng, tB ? [N, K] : [K, N]);
      const cShapes = [undefined, [], [1], [N], [1, N], [M, 1], [M, N]];
      const cs = cShapes[rng.int(cShapes.length)];
      const c = cs ? randT(rng, cs) : undefined;
      const alpha = [1, 0.5, -1.5][rng.int(3)], beta = [1, 0, 2][rng.int(3)];
      const A = a.toNumbers(), B = b.toNumbers(), Cv = c?.toNumbers();
      const want: number[] = [];
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += (tA ? A[k * M + i] : A[i * K + k]) * (tB ? B[j * K + k] : B[k * N + j]);
          let cv = 0;
          if (Cv && cs) cv = cs.length === 2 ? Cv[(cs[0] === 1 ? 0 : i) * cs[1] + (cs[1] === 1 ? 0 : j)] : Cv[cs.length === 1 && cs[0] === N ? j : 0];
          want.push(alpha * s + beta * cv);
        }
      }
      const attrs = { transA: tA, transB: tB, alpha: { float: alpha }, beta: { float: beta } };
      for (let run = 0; run < 2; run++) {
        expectClose(runOp('Gemm', 13, c ? [a, b, c] : [a, b], attrs)[0], [M, N], want, `case ${t} ${M}x${N}x${K} tA ${tA} tB ${tB} C [${cs}] run ${run}`);
      }
    }
  });

  it('computes integer Gemm', () => {
    const a = tensorFrom('int32', [2, 2], [1, 2, 3, 4]);
    const b = tensorFrom('int32', [2, 2], [5, 6, 7, 8]);
    const c = tensorFrom('int32', [2], [100, 200]);
    expect(runOp('Gemm', 13, [a, b, c])[0].toNumbers()).toEqual([119, 222, 143, 250]);
    const a64 = tensorFrom('int64', [1, 1], [3]);
    expect(runOp('Gemm', 13, [a64, tensorFrom('int64', [1, 1], [4]), tensorFrom('int64', [1], [5])])[0].toNumbers()).toEqual([17]);
  });

  it('infers [M, N] and rejects a C that does not broadcast', () => {
    expect(inferOp('Gemm', 13, [{ dtype: 'float32', shape: ['N', 512] }, { dtype: 'float32', shape: [1000, 512] }], { transB: 1 })[0].shape).toEqual(['N', 1000]);
    expect(() => runOp('Gemm', 13, [new Tensor('float32', [2, 3]), new Tensor('float32', [3, 4]), new Tensor('float32', [3])])).toThrow(/does not broadcast/);
  });
});
