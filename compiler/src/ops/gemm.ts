import { cachedPacker, gemmPacked, matmulAny, MR, NR, stridedPacker } from '../kernels/gemm';
import { broadcastIndex } from '../kernels/shape';
import { shapeError } from '../kernels/window';
import { arrayCtor, isBigInt } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/**
 * Gemm: Y = alpha · A' · B' + beta · C, A' = transA ? Aᵀ : A (M×K), B' = transB ? Bᵀ : B (K×N),
 * C broadcast to M×N (optional from opset 11). float32 goes through the packed GEMM with the
 * constant operand (usually B, the weights) packed once and cached; other types use a plain loop.
 */
export const ops: OpDef[] = [
  {
    type: 'Gemm',
    quant: 'active',
    infer: ({ node }, [a, b]) => {
      const as = a?.shape;
      const bs = b?.shape;
      const m: Dim = as?.length === 2 ? as[node.int('transA', 0) ? 1 : 0] : '?';
      const n: Dim = bs?.length === 2 ? bs[node.int('transB', 0) ? 0 : 1] : '?';
      return [{ dtype: a?.dtype ?? b?.dtype, shape: [m, n] }];
    },
    run: ({ node }, [a, b, c]) => [gemm(node, a!, b!, c)],
  },
];

function gemm(node: Node, a: Tensor, b: Tensor, c?: Tensor): Tensor {
  if (a.rank !== 2 || b.rank !== 2) throw shapeError(node, `A [${a.dims}] and B [${b.dims}] must be matrices`);
  const tA = node.int('transA', 0) !== 0;
  const tB = node.int('transB', 0) !== 0;
  const alpha = node.float('alpha', 1);
  const beta = node.float('beta', 1);
  const [M, K] = tA ? [a.dims[1], a.dims[0]] : a.dims;
  const [Kb, N] = tB ? [b.dims[1], b.dims[0]] : b.dims;
  if (K !== Kb) throw shapeError(node, `inner dimensions differ: A' is ${M}×${K}, B' is ${Kb}×${N} (transA ${+tA}, transB ${+tB})`);
  if (c && (c.rank > 2 || c.dims.some((d, i) => d !== 1 && d !== [M, N][i + 2 - c.rank]))) {
    throw shapeError(node, `C [${c.dims}] does not broadcast to [${M}, ${N}]`);
  }
  const useC = c !== undefined && beta !== 0;
  if (a.dtype !== 'float32') return gemmAny(a, b, useC ? c : undefined, tA, tB, M, N, K, alpha, beta);
  const ad = a.array as Float32Array;
  const bd = b.array as Float32Array;
  const y = new Float32Array(M * N);
  const packA = cachedPacker(a, `gemmA/${+tA}`, ad, tA ? stridedPacker(MR, ad, 0, 1, M) : stridedPacker(MR, ad, 0, K, 1), MR, M, K);
  const packB = cachedPacker(b, `gemmB/${+tB}`, bd, tB ? stridedPacker(NR, bd, 0, K, 1) : stridedPacker(NR, bd, 0, 1, N), NR, N, K);
  if (!useC) {
    gemmPacked(M, N, K, packA, packB, y, 0, N, { alpha });
  } else if (c.size === N && (c.rank < 2 || c.dims[0] === 1) && N > 1) {
    gemmPacked(M, N, K, packA, packB, y, 0, N, { alpha, colBias: scaled(c.toFloat32(), beta) });
  } else if (c.rank === 2 && c.dims[1] === 1 && c.dims[0] === M && M > 1) {
    gemmPacked(M, N, K, packA, packB, y, 0, N, { alpha, rowBias: scaled(c.toFloat32(), beta) });
  } else {
    const cd = c.toFloat32();
    const idx = broadcastIndex(c.dims, [M, N]);
    for (let i = 0; i < y.length; i++) y[i] = cd[idx[i]];
    gemmPacked(M, N, K, packA, packB, y, 0, N, { alpha, beta });
  }
  return new Tensor('float32', [M, N], y);
}

function scaled(v: Float32Array, s: number): Float32Array {
  return s === 1 ? v : v.map((x) => x * s);
}

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */
function gemmAny(a: Tensor, b: Tensor, c: Tensor | undefined, tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number, beta: number): Tensor {
  const out = new (arrayCtor(a.dtype))(M * N) as any;
  matmulAny(M, N, K, a.array, 0, tA ? 1 : K, tA ? M : 1, b.array, 0, tB ? 1 : N, tB ? K : 1, out, 0);
  const big = isBigInt(a.dtype);
  const cd = c?.array as any;
  const idx = c ? broadcastIndex(c.dims, [M, N]) : undefined;
  if (alpha !== 1 || c) {
    for (let i = 0; i < out.length; i++) {
      if (big) {
        const v = alpha === 1 ? out[i] : BigInt(Math.round(Number(out[i]) * alpha));
        out[i] = c ? v + (beta === 1 ? cd[idx![i]] : BigInt(Math.round(Number(cd[idx![i]]) * beta))) : v;
      } else {
        out[i] = alpha * out[i] + (c ? beta * cd[idx![i]] : 0);
      }
    }
  }
  return new Tensor(a.dtype, [M, N], out);
}
