import { PtqError } from '../errors';
import { Dim, Node } from '../onnx/ir';

/** Bound once: global lookups inside hot loops are slow in some hosts (jest's vm contexts). */
const imul = Math.imul;

/**
 * 8-bit integer GEMM with int32 accumulation: C[m][n] = Σ_k (A[m][k] − za) · (B[k][n] − zb).
 *
 * Both operands are first packed into Int16Array rows of length K with their zero points
 * subtracted (A as M rows, B transposed as N rows), so the kernel is a set of contiguous
 * dot products with no allocation inside. Every multiply-add is int32 (Math.imul, | 0): V8
 * keeps it in integer registers, and modular arithmetic makes the result the exact sum
 * wrapped to int32 once, as a 32-bit accumulator holds it.
 */

/** Any integer element source (Int8Array, Uint8Array, Int32Array, …). */
export type IntArray = ArrayLike<number>;

/**
 * Pack `rows × K` values from `src` into `out[outOff + r*K + k] = src[off + r*rowStride + k*colStride] − zp`.
 * `zp` has one value (per tensor) or `rows` values (per row of the packed result).
 */
export function packRows(
  src: IntArray,
  off: number,
  rows: number,
  K: number,
  rowStride: number,
  colStride: number,
  zp: IntArray | undefined,
  out: Int16Array,
  outOff = 0,
): Int16Array {
  const perRow = zp !== undefined && zp.length > 1;
  let o = outOff;
  for (let r = 0; r < rows; r++) {
    const z = zp === undefined ? 0 : zp[perRow ? r : 0];
    let s = off + r * rowStride;
    if (colStride === 1) {
      for (let k = 0; k < K; k++) out[o++] = src[s++] - z;
    } else {
      for (let k = 0; k < K; k++, s += colStride) out[o++] = src[s] - z;
    }
  }
  return out;
}

/**
 * C[cOff + m*ldc + n] = Σ_k A[aOff + m*K + k] · Bt[bOff + n*K + k] for packed operands
 * (A: M rows of K; Bt: N rows of K, i.e. B transposed), wrapped to int32.
 */
export function gemmPacked(
  M: number,
  N: number,
  K: number,
  A: Int16Array,
  aOff: number,
  Bt: Int16Array,
  bOff: number,
  C: Int32Array,
  cOff: number,
  ldc: number,
): void {
  // 2 rows × 4 columns per step: 8 running sums share 6 loads per k
  const M2 = M - (M % 2);
  const N4 = N - (N % 4);
  let m = 0;
  for (; m < M2; m += 2) {
    const a0 = aOff + m * K;
    const a1 = a0 + K;
    const c0 = cOff + m * ldc;
    const c1 = c0 + ldc;
    let n = 0;
    for (; n < N4; n += 4) {
      const b0 = bOff + n * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k];
        const x1 = A[a1 + k];
        const y0 = Bt[b0 + k];
        const y1 = Bt[b1 + k];
        const y2 = Bt[b2 + k];
        const y3 = Bt[b3 + k];
        s00 = (s00 + imul(x0, y0)) | 0;
        s01 = (s01 + imul(x0, y1)) | 0;
        s02 = (s02 + imul(x0, y2)) | 0;
        s03 = (s03 + imul(x0, y3)) | 0;
        s10 = (s10 + imul(x1, y0)) | 0;
        s11 = (s11 + imul(x1, y1)) | 0;
        s12 = (s12 + imul(x1, y2)) | 0;
        s13 = (s13 + imul(x1, y3)) | 0;
      }
      C[c0 + n] = s00 | 0;
      C[c0 + n + 1] = s01 | 0;
      C[c0 + n + 2] = s02 | 0;
      C[c0 + n + 3] = s03 | 0;
      C[c1 + n] = s10 | 0;
      C[c1 + n + 1] = s11 | 0;
      C[c1 + n + 2] = s12 | 0;
      C[c1 + n + 3] = s13 | 0;
    }
    for (; n < N; n++) {
      const b0 = bOff + n * K;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < K; k++) {
        const y = Bt[b0 + k];
        s0 = (s0 + imul(A[a0 + k], y)) | 0;
        s1 = (s1 + imul(A[a1 + k], y)) | 0;
      }
      C[c0 + n] = s0 | 0;
      C[c1 + n] = s1 | 0;
    }
  }
  for (; m < M; m++) {
    const a0 = aOff + m * K;
    const c0 = cOff + m * ldc;
    let n = 0;
    for (; n < N4; n += 4) {
      const b0 = bOff + n * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const a = A[a0 + k];
        s0 = (s0 + imul(a, Bt[b0 + k])) | 0;
        s1 = (s1 + imul(a, Bt[b1 + k])) | 0;
        s2 = (s2 + imul(a, Bt[b2 + k])) | 0;
        s3 = (s3 + imul(a, Bt[b3 + k])) | 0;
      }
      C[c0 + n] = s0 | 0;
      C[c0 + n + 1] = s1 | 0;
      C[c0 + n + 2] = s2 | 0;
      C[c0 + n + 3] = s3 | 0;
    }
    for (; n < N; n++) {
      const b0 = bOff + n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s = (s + imul(A[a0 + k], Bt[b0 + k])) | 0;
      C[c0 + n] = s | 0;
    }
  }
}

/**
 * Row-major C (M×N, int32) = (A − za)(B − zb) for row-major A (M×K) and B (K×N).
 * `za` is per tensor or per row of A (length M); `zb` per tensor or per column of B (length N).
 * Scratch buffers may be passed to avoid allocation when called repeatedly.
 */
export function igemm(
  M: number,
  N: number,
  K: number,
  A: IntArray,
  aOff: number,
  za: IntArray | undefined,
  B: IntArray,
  bOff: number,
  zb: IntArray | undefined,
  C: Int32Array,
  cOff = 0,
  scratch?: { a?: Int16Array; b?: Int16Array },
): void {
  const pa = scratch?.a && scratch.a.length >= M * K ? scratch.a : new Int16Array(M * K);
  const pb = scratch?.b && scratch.b.length >= N * K ? scratch.b : new Int16Array(N * K);
  packRows(A, aOff, M, K, K, 1, za, pa);
  packRows(B, bOff, N, K, 1, N, zb, pb);
  gemmPacked(M, N, K, pa, 0, pb, 0, C, cOff, N);
}

/** numpy matmul shapes: batch dims broadcast, 1-D operands promoted (and the extra dim dropped). */
export interface MatMulPlan {
  M: number;
  N: number;
  K: number;
  /** output dims */
  dims: number[];
  /** broadcast batch dims of the output (without M, N) */
  batch: number[];
  /** per output batch index: element offset of the A matrix and of the B matrix */
  aOffsets: Int32Array;
  bOffsets: Int32Array;
  /** per output batch index: the batch index into A's and B's own batch dims (for per-matrix parameters) */
  aBatch: Int32Array;
  bBatch: Int32Array;
}

/** Plan a batched matmul of A (dims a) by B (dims b); returns undefined when K does not match or batches do not broadcast. */
export function planMatMul(a: readonly number[], b: readonly number[]): MatMulPlan | undefined {
  if (a.length === 0 || b.length === 0) return undefined;
  const aa = a.length === 1 ? [1, a[0]] : a.slice();
  const bb = b.length === 1 ? [b[0], 1] : b.slice();
  const M = aa[aa.length - 2];
  const K = aa[aa.length - 1];
  const N = bb[bb.length - 1];
  if (bb[bb.length - 2] !== K) return undefined;
  const ab = aa.slice(0, -2);
  const bbat = bb.slice(0, -2);
  const r = Math.max(ab.length, bbat.length);
  const batch: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = ab[ab.length - r + i] ?? 1;
    const y = bbat[bbat.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    batch.push(x === 1 ? y : x);
  }
  const nb = batch.reduce((p, q) => p * q, 1);
  const aBatch = new Int32Array(nb);
  const bBatch = new Int32Array(nb);
  const pos = new Array<number>(r).fill(0);
  for (let i = 0; i < nb; i++) {
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < r; d++) {
      const da = d - (r - ab.length);
      const db = d - (r - bbat.length);
      if (da >= 0) ia = ia * ab[da] + (ab[da] === 1 ? 0 : pos[d]);
      if (db >= 0) ib = ib * bbat[db] + (bbat[db] === 1 ? 0 : pos[d]);
    }
    aBatch[i] = ia;
    bBatch[i] = ib;
    for (let d = r - 1; d >= 0; d--) {
      if (++pos[d] < batch[d]) break;
      pos[d] = 0;
    }
  }
  const aOffsets = aBatch.map((x) => x * M * K);
  const bOffsets = bBatch.map((x) => x * K * N);
  const dims = [...batch];
  if (a.length > 1) dims.push(M);
  if (b.length > 1) dims.push(N);
  return { M, N, K, dims, batch, aOffsets, bOffsets, aBatch, bBatch };
}

export function matmulPlanOrThrow(node: Node, a: readonly number[], b: readonly number[]): MatMulPlan {
  const plan = planMatMul(a, b);
  if (!plan) {
    throw new PtqError('E_MODEL_SHAPE', `node '${node.label}' (${node.opType}): shapes [${a}] and [${b}] cannot be multiplied`, {
      subject: node.label,
      fix: 'check the input shapes (the last dim of A must equal the second-to-last of B; batch dims must broadcast)',
    });
  }
  return plan;
}

/** Output dims of a numpy matmul for shape inference ('?' where unknown). */
export function matmulOutputDims(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a || !b || a.length === 0 || b.length === 0) return undefined;
  const aa = a.length === 1 ? [1, a[0]] : a;
  const bb = b.length === 1 ? [b[0], 1] : b;
  const ab = aa.slice(0, -2);
  const bbat = bb.slice(0, -2);
  const r = Math.max(ab.length, bbat.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = ab[ab.length - r + i] ?? 1;
    const y = bbat[bbat.length - r + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : typeof x === 'number' ? x : y);
  }
  if (a.length > 1) out.push(aa[aa.length - 2]);
  if (b.length > 1) out.push(bb[bb.length - 1]);
  return out;
}
