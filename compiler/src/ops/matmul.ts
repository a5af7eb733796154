import { cachedPacker, gemmPacked, matmulAny, MR, NR, rowMajorSource, stridedPacker } from '../kernels/gemm';
import { broadcastDims, broadcastIndex, broadcastShape } from '../kernels/shape';
import { product, shapeError } from '../kernels/window';
import { arrayCtor } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * MatMul with numpy semantics: [..., M, K] · [..., K, N] with broadcast batch dims; a 1-D A
 * is a row vector and a 1-D B a column vector, their unit dim dropped from the result.
 * float32 goes through the packed GEMM; a B shared by the whole batch (the usual weight) is
 * packed once and cached, and the batch of A is folded into M.
 */
export const ops: OpDef[] = [
  {
    type: 'MatMul',
    quant: 'active',
    infer: ({ node }, [a, b]) => [{ dtype: a?.dtype ?? b?.dtype, shape: matmulDims(node, a, b) }],
    run: ({ node }, [a, b]) => [matmul(node, a!, b!)],
  },
];

function matmulDims(node: Node, a?: ValueFacts, b?: ValueFacts): Dim[] | undefined {
  const as = a?.shape;
  const bs = b?.shape;
  if (!as || !bs || as.length === 0 || bs.length === 0) return undefined;
  const A = as.length === 1 ? [1, as[0]] : as;
  const B = bs.length === 1 ? [bs[0], 1] : bs;
  const batch = broadcastDims([A.slice(0, -2), B.slice(0, -2)]);
  if (!batch) return undefined;
  const out: Dim[] = [...batch];
  if (as.length > 1) out.push(A[A.length - 2]);
  if (bs.length > 1) out.push(B[B.length - 1]);
  void node;
  return out;
}

function matmul(node: Node, a: Tensor, b: Tensor): Tensor {
  if (a.rank === 0 || b.rank === 0) throw shapeError(node, 'MatMul inputs must have at least one dimension');
  const ad = a.rank === 1 ? [1, a.dims[0]] : a.dims;
  const bd = b.rank === 1 ? [b.dims[0], 1] : b.dims;
  const M = ad[ad.length - 2], K = ad[ad.length - 1];
  const Kb = bd[bd.length - 2], N = bd[bd.length - 1];
  if (K !== Kb) throw shapeError(node, `inner dimensions differ: [${a.dims}] · [${b.dims}]`);
  const aBatch = ad.slice(0, -2), bBatch = bd.slice(0, -2);
  const batch = broadcastShape(aBatch, bBatch, node);
  const outDims = [...batch];
  if (a.rank > 1) outDims.push(M);
  if (b.rank > 1) outDims.push(N);
  const nb = product(batch);
  const aBatchN = product(aBatch), bBatchN = product(bBatch);
  const aIdx = aBatchN === nb ? undefined : broadcastIndex(aBatch, batch);
  const bIdx = bBatchN === nb ? undefined : broadcastIndex(bBatch, batch);
  const out = new (arrayCtor(a.dtype))(nb * M * N);
  if (a.dtype !== 'float32') {
    for (let q = 0; q < nb; q++) {
      const ao = (aIdx ? aIdx[q] : q) * M * K, bo = (bIdx ? bIdx[q] : q) * K * N;
      matmulAny(M, N, K, a.array, ao, K, 1, b.array, bo, N, 1, out, q * M * N);
    }
    return new Tensor(a.dtype, outDims, out);
  }
  const x = a.array as Float32Array;
  const w = b.array as Float32Array;
  const y = out as Float32Array;
  if (bBatchN === 1) {
    // one B for every batch (then A's batch is the whole batch): fold it into the rows of one tall A
    const packB = cachedPacker(b, 'matmulB', w, stridedPacker(NR, w, 0, 1, N), NR, N, K);
    const packA = cachedPacker(a, 'matmulA', x, stridedPacker(MR, x, 0, K, 1), MR, nb * M, K);
    gemmPacked(nb * M, N, K, packA, packB, y, 0, N);
    return new Tensor('float32', outDims, y);
  }
  for (let q = 0; q < nb; q++) {
    const ao = (aIdx ? aIdx[q] : q) * M * K, bo = (bIdx ? bIdx[q] : q) * K * N;
    gemmPacked(M, N, K, stridedPacker(MR, x, ao, K, 1), rowMajorSource(w, bo, N, K, N), y, q * M * N, N);
  }
  return new Tensor('float32', outDims, y);
}
