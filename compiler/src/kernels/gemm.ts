/**
 * Packed, cache-blocked float32 GEMM: C (M×N) = A (M×K) · B (K×N), with alpha/beta and a
 * per-row or per-column bias in the epilogue.
 *
 * A is packed into MR-row panels (k-major) per depth block (K cut into equal blocks of at
 * most KC); B is packed into NR-column panels the same way, or read row-major in place when
 * it comes as a `BlockSource` (a matrix copied into scratch memory, or an image unfolded
 * block by block for a convolution). The micro-kernel (MR×NR accumulators) is WebAssembly
 * SIMD when available (kernels/wasm-simd.ts), else a scalar JS loop over the same layout.
 * A constant operand (a weight) is packed once and cached on its tensor (`cachedPacker`).
 *
 * Blocking: the B block (KC × NC) stays in L2/L3, an A block (MC × KC) in L2, one B panel
 * (KC × NR) in L1 while the A panels of the block stream past it. No allocation happens in
 * the loops: all operands live in one scratch memory, regions laid out once per call.
 */
import { MacroKernel, MR, NR, wasmKernels } from './wasm-simd';

export { MR, NR };

/** Deepest block of K; the depth is split into equal blocks of at most this (`depthBlock`). */
export const KC = 320;
/** Rows of A per cache block (multiple of MR). */
const MC = 128;
/** Widest block of B / C (multiple of NR). */
const NC_MAX = 4096;
/** Floats of the C block (bounds the scratch memory for very tall A). */
const C_BUDGET = 1 << 22;

/**
 * Writes the operand's indices [i0, i0+n) (rows of A, or columns of B) × depth [k0, k0+kc)
 * into `dst` from float index `off`, as ceil(n / width) panels of kc × width floats
 * (k-major); indices past i0+n are zeros. `width` is MR for A and NR for B.
 */
export type PanelPacker = (dst: Float32Array, off: number, k0: number, kc: number, i0: number, n: number) => void;

/**
 * A B operand the micro-kernel reads row-major from scratch memory instead of packed panels:
 * a matrix copied in once (`rowMajorSource`) or an image unfolded block by block (conv).
 */
export interface BlockSource {
  /** scratch floats the source keeps for the whole call (its copy of the data, tables) */
  readonly extra: number;
  /** once per GEMM call, before any block: fill the source's region at float offset `at` */
  init(view: Float32Array, at: number): void;
  /**
   * Rows [k0, k0+kc) × columns [j0, j0+nc) of B, row-major: returns the byte address of
   * (k0, j0) and the row stride in bytes. The source may write the block to float offset
   * `buf` (room for kc rows of `bufLd` floats). Columns up to the next multiple of NR are
   * read too (their values do not matter).
   */
  block(view: Float32Array, k0: number, kc: number, j0: number, nc: number, buf: number, bufLd: number): { ptr: number; ld: number };
}

export type BOperand = PanelPacker | BlockSource;

/** A whole operand packed block by block: depth block at k0 starts at k0 · countPadded. */
export interface PackedOperand {
  width: number;
  count: number;
  depth: number;
  data: Float32Array;
}

export interface Epilogue {
  /** scales A·B (default 1) */
  alpha?: number;
  /** out = alpha·A·B + beta·out; 0 (default) ignores what `out` held */
  beta?: number;
  /** added to row i (index rowBiasOffset + i) */
  rowBias?: Float32Array;
  rowBiasOffset?: number;
  /** added to column j */
  colBias?: Float32Array;
}

export type GemmBackend = 'wasm-simd' | 'js';

let backend: GemmBackend | undefined;

/** The micro-kernel in use: WebAssembly SIMD when the runtime has it. */
export function gemmBackend(): GemmBackend {
  if (!backend) backend = wasmKernels() ? 'wasm-simd' : 'js';
  return backend;
}

/** Force a backend (tests and benchmarks compare them); 'wasm-simd' throws when unavailable. */
export function setGemmBackend(b: GemmBackend): void {
  if (b === 'wasm-simd' && !wasmKernels()) throw new Error('WebAssembly SIMD is not available');
  backend = b;
}

// --- scratch memory: the wasm module's memory, or a plain buffer for the JS kernel ---

let jsScratch = new Float32Array(0);

/**
 * A float view of at least `floats` floats of the backend's scratch memory (the wasm
 * memory for 'wasm-simd'). Views from earlier calls may be stale after this grows it.
 */
export function scratch(floats: number): Float32Array {
  if (gemmBackend() === 'wasm-simd') {
    const mem = wasmKernels()!.memory;
    const need = floats * 4 + 64;
    if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    return new Float32Array(mem.buffer);
  }
  if (jsScratch.length < floats + 16) jsScratch = new Float32Array(Math.max(floats + 16, jsScratch.length * 2));
  return jsScratch;
}

function macroKernel(view: Float32Array): MacroKernel {
  if (gemmBackend() === 'wasm-simd') return wasmKernels()!.macro;
  return (kc, nA, nB, pa, pb, bK, bP, pc, ldc, mode, pBias) => jsMacro(view, kc, nA, nB, pa >> 2, pb >> 2, bK >> 2, bP >> 2, pc >> 2, ldc >> 2, mode, pBias >> 2);
}

/** Scalar version of the wasm macro kernel (float indices instead of byte offsets). */
function jsMacro(m: Float32Array, kc: number, nA: number, nB: number, pa: number, pb: number, bK: number, bP: number, pc: number, ldc: number, mode: number, pBias: number): void {
  const acc = mode === 1;
  for (let jb = 0; jb < nB; jb++) {
    const panelB = pb + jb * bP;
    let panelA = pa;
    let tile = pc + jb * 8;
    for (let ia = 0; ia < nA; ia++) {
      const r0 = mode === 2 ? m[pBias + 4 * ia] : 0, r1 = mode === 2 ? m[pBias + 4 * ia + 1] : 0;
      const r2 = mode === 2 ? m[pBias + 4 * ia + 2] : 0, r3 = mode === 2 ? m[pBias + 4 * ia + 3] : 0;
      let c00 = r0, c01 = r0, c02 = r0, c03 = r0, c04 = r0, c05 = r0, c06 = r0, c07 = r0;
      let c10 = r1, c11 = r1, c12 = r1, c13 = r1, c14 = r1, c15 = r1, c16 = r1, c17 = r1;
      let c20 = r2, c21 = r2, c22 = r2, c23 = r2, c24 = r2, c25 = r2, c26 = r2, c27 = r2;
      let c30 = r3, c31 = r3, c32 = r3, c33 = r3, c34 = r3, c35 = r3, c36 = r3, c37 = r3;
      let p = panelA;
      let q = panelB;
      const end = panelA + kc * 4;
      for (; p < end; p += 4, q += bK) {
        const b0 = m[q], b1 = m[q + 1], b2 = m[q + 2], b3 = m[q + 3], b4 = m[q + 4], b5 = m[q + 5], b6 = m[q + 6], b7 = m[q + 7];
        let a = m[p];
        c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3; c04 += a * b4; c05 += a * b5; c06 += a * b6; c07 += a * b7;
        a = m[p + 1];
        c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3; c14 += a * b4; c15 += a * b5; c16 += a * b6; c17 += a * b7;
        a = m[p + 2];
        c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3; c24 += a * b4; c25 += a * b5; c26 += a * b6; c27 += a * b7;
        a = m[p + 3];
        c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3; c34 += a * b4; c35 += a * b5; c36 += a * b6; c37 += a * b7;
      }
      let r = tile;
      if (!acc) {
        m[r] = c00; m[r + 1] = c01; m[r + 2] = c02; m[r + 3] = c03; m[r + 4] = c04; m[r + 5] = c05; m[r + 6] = c06; m[r + 7] = c07;
        r += ldc;
        m[r] = c10; m[r + 1] = c11; m[r + 2] = c12; m[r + 3] = c13; m[r + 4] = c14; m[r + 5] = c15; m[r + 6] = c16; m[r + 7] = c17;
        r += ldc;
        m[r] = c20; m[r + 1] = c21; m[r + 2] = c22; m[r + 3] = c23; m[r + 4] = c24; m[r + 5] = c25; m[r + 6] = c26; m[r + 7] = c27;
        r += ldc;
        m[r] = c30; m[r + 1] = c31; m[r + 2] = c32; m[r + 3] = c33; m[r + 4] = c34; m[r + 5] = c35; m[r + 6] = c36; m[r + 7] = c37;
      } else {
        m[r] += c00; m[r + 1] += c01; m[r + 2] += c02; m[r + 3] += c03; m[r + 4] += c04; m[r + 5] += c05; m[r + 6] += c06; m[r + 7] += c07;
        r += ldc;
        m[r] += c10; m[r + 1] += c11; m[r + 2] += c12; m[r + 3] += c13; m[r + 4] += c14; m[r + 5] += c15; m[r + 6] += c16; m[r + 7] += c17;
        r += ldc;
        m[r] += c20; m[r + 1] += c21; m[r + 2] += c22; m[r + 3] += c23; m[r + 4] += c24; m[r + 5] += c25; m[r + 6] += c26; m[r + 7] += c27;
        r += ldc;
        m[r] += c30; m[r + 1] += c31; m[r + 2] += c32; m[r + 3] += c33; m[r + 4] += c34; m[r + 5] += c35; m[r + 6] += c36; m[r + 7] += c37;
      }
      panelA = end;
      tile += 4 * ldc;
    }
  }
}

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/** Depth of the blocks a depth of K is cut into (equal, at most KC): packed layouts use it too. */
export function depthBlock(K: number): number {
  return Math.ceil(K / Math.ceil(K / KC));
}

// --- packers ---

/**
 * Packer for a strided matrix: element (i, k) at data[offset + i·strideI + k·strideK].
 * For A: i = row, k = column. For B: i = column (j), k = row.
 */
export function stridedPacker(width: number, data: Float32Array, offset: number, strideI: number, strideK: number): PanelPacker {
  return (dst, off, k0, kc, i0, n) => {
    let d = off;
    for (let p = 0; p < n; p += width) {
      const rows = Math.min(width, n - p);
      let base = offset + (i0 + p) * strideI + k0 * strideK;
      if (rows === width && width === 8) {
        const s = strideI;
        for (let k = 0; k < kc; k++, base += strideK, d += 8) {
          dst[d] = data[base]; dst[d + 1] = data[base + s]; dst[d + 2] = data[base + 2 * s]; dst[d + 3] = data[base + 3 * s];
          dst[d + 4] = data[base + 4 * s]; dst[d + 5] = data[base + 5 * s]; dst[d + 6] = data[base + 6 * s]; dst[d + 7] = data[base + 7 * s];
        }
      } else if (rows === width && width === 4) {
        const s = strideI;
        for (let k = 0; k < kc; k++, base += strideK, d += 4) {
          dst[d] = data[base]; dst[d + 1] = data[base + s]; dst[d + 2] = data[base + 2 * s]; dst[d + 3] = data[base + 3 * s];
        }
      } else {
        for (let k = 0; k < kc; k++, base += strideK, d += width) {
          for (let r = 0; r < width; r++) dst[d + r] = r < rows ? data[base + r * strideI] : 0;
        }
      }
    }
  };
}

/** Pack a whole operand of `count` indices × `depth` (to keep: weights are packed once). */
export function packOperand(packer: PanelPacker, width: number, count: number, depth: number): PackedOperand {
  const cp = roundUp(count, width);
  const data = new Float32Array(cp * depth);
  const kc = depthBlock(depth);
  for (let k0 = 0; k0 < depth; k0 += kc) packer(data, k0 * cp, k0, Math.min(kc, depth - k0), 0, count);
  return { width, count, depth, data };
}

/** Packer reading from a packed operand (the driver asks for whole panels of whole blocks). */
export function packedPacker(po: PackedOperand): PanelPacker {
  const cp = roundUp(po.count, po.width);
  return (dst, off, k0, kc, i0, n) => {
    const from = k0 * cp + i0 * kc;
    dst.set(po.data.subarray(from, from + roundUp(n, po.width) * kc), off);
  };
}

interface CacheEntry {
  fingerprint: number;
  packed?: PackedOperand;
}

const operandCache = new WeakMap<object, Map<string, CacheEntry>>();

/** A cheap checksum of a few elements, so a tensor edited in place is not served stale. */
function fingerprint(src: ArrayLike<number>): number {
  const n = src.length;
  let h = n;
  for (let t = 0; t < 16 && n > 0; t++) {
    const v = src[Math.floor((t * (n - 1)) / 15)];
    h = (Math.imul(h, 31) + Math.fround(v) * 1e6 + t) | 0;
  }
  return h;
}

/**
 * The packer for a constant operand owned by `owner` (typically the weight Tensor): packed
 * once and kept (in a WeakMap keyed by the owner) from the second use on, so a weight that
 * changes every run (a DequantizeLinear output) is not copied for nothing. `key` tells apart
 * several packings of one tensor (groups, transposes). `src` is checked for in-place edits.
 */
export function cachedPacker(owner: object, key: string, src: ArrayLike<number>, direct: PanelPacker, width: number, count: number, depth: number): PanelPacker {
  let byKey = operandCache.get(owner);
  if (!byKey) operandCache.set(owner, (byKey = new Map()));
  const fp = fingerprint(src);
  const e = byKey.get(key);
  if (!e || e.fingerprint !== fp) {
    byKey.set(key, { fingerprint: fp });
    return direct;
  }
  if (!e.packed || e.packed.width !== width || e.packed.count !== count || e.packed.depth !== depth) {
    e.packed = packOperand(direct, width, count, depth);
  }
  return packedPacker(e.packed);
}

// --- the driver ---

/** A row stride (in floats) that does not map every row to the same few L1 sets. */
function goodStride(n: number): number {
  return (n * 4) % 256 === 0 ? n + 4 : n;
}

/**
 * out[outOff + i·ldo + j] = alpha · Σk A(i,k)·B(k,j) + beta · out[…] + rowBias[i] + colBias[j]
 * for i < M, j < N; `packA` packs A (width MR); B is a panel packer (width NR) or a block source.
 */
export function gemmPacked(M: number, N: number, K: number, packA: PanelPacker, b: BOperand, out: Float32Array, outOff: number, ldo: number, ep: Epilogue = {}): void {
  if (M <= 0 || N <= 0) return;
  const Mp = roundUp(M, MR);
  const Np = roundUp(N, NR);
  if (K <= 0) {
    epilogue(new Float32Array(Mp * Np), 0, Np, M, N, 0, out, outOff, ldo, ep, false);
    return;
  }
  const source = typeof b === 'function' ? undefined : b;
  const nc = Math.min(Np, Math.max(NR, Math.min(NC_MAX, Math.floor(C_BUDGET / Mp / NR) * NR)));
  const kc0 = depthBlock(K);
  const bufLd = source ? goodStride(nc) : nc;
  // float offsets of the regions, 16-byte aligned: A stripe, B block, C block, row bias, the source's own
  const aReg = 0;
  const bReg = roundUp(aReg + Mp * kc0, 4);
  const cReg = roundUp(bReg + kc0 * bufLd, 4);
  const rReg = roundUp(cReg + Mp * nc, 4);
  const sReg = roundUp(rReg + Mp, 4);
  const view = scratch(sReg + (source ? source.extra : 0) + 16);
  const macro = macroKernel(view);
  source?.init(view, sReg);
  // a bias goes into the first depth block (row bias: by the kernel; column bias: written to C first)
  const plain = (ep.alpha ?? 1) === 1 && (ep.beta ?? 0) === 0;
  const rowBias = plain && ep.rowBias && !ep.colBias;
  const preBias = plain && ep.colBias !== undefined;
  if (rowBias) {
    const o = ep.rowBiasOffset ?? 0;
    view.set(ep.rowBias!.subarray(o, o + M), rReg);
    view.fill(0, rReg + M, rReg + Mp);
  }
  const singleBlock = K <= kc0;
  if (singleBlock) packA(view, aReg, 0, K, 0, M);
  for (let jc = 0; jc < N; jc += nc) {
    const ncur = Math.min(nc, N - jc);
    const ncp = roundUp(ncur, NR);
    if (preBias) fillBias(view, cReg, ncp, M, ncur, jc, ep);
    for (let pc = 0; pc < K; pc += kc0) {
      const kcur = Math.min(kc0, K - pc);
      let pb: number, bK: number, bP: number;
      if (source) {
        const blk = source.block(view, pc, kcur, jc, ncur, bReg, bufLd);
        pb = blk.ptr;
        bK = blk.ld;
        bP = NR * 4;
      } else {
        (b as PanelPacker)(view, bReg, pc, kcur, jc, ncur);
        pb = bReg * 4;
        bK = NR * 4;
        bP = kcur * NR * 4;
      }
      if (!singleBlock) packA(view, aReg, pc, kcur, 0, M);
      const mode = pc > 0 || preBias ? 1 : rowBias ? 2 : 0;
      for (let ic = 0; ic < Mp; ic += MC) {
        const rows = Math.min(MC, Mp - ic);
        macro(kcur, rows / MR, ncp / NR, (aReg + ic * kcur) * 4, pb, bK, bP, (cReg + ic * ncp) * 4, ncp * 4, mode, (rReg + ic) * 4);
      }
    }
    epilogue(view, cReg, ncp, M, ncur, jc, out, outOff, ldo, ep, preBias || !!rowBias);
  }
}

function fillBias(c: Float32Array, cOff: number, ldc: number, M: number, n: number, jc: number, ep: Epilogue): void {
  const rb = ep.rowBias;
  const rbo = ep.rowBiasOffset ?? 0;
  const cb = ep.colBias;
  for (let i = 0; i < M; i++) {
    const s = cOff + i * ldc;
    if (!cb) c.fill(rb![rbo + i], s, s + n);
    else if (!rb) c.set(cb.subarray(jc, jc + n), s);
    else for (let j = 0, v = rb[rbo + i]; j < n; j++) c[s + j] = v + cb[jc + j];
  }
}

/** Copy the C block (M × n, row stride ldc, at column jc of the result) out, applying the epilogue. */
function epilogue(c: Float32Array, cOff: number, ldc: number, M: number, n: number, jc: number, out: Float32Array, outOff: number, ldo: number, ep: Epilogue, biasDone: boolean): void {
  const alpha = ep.alpha ?? 1;
  const beta = ep.beta ?? 0;
  const rb = biasDone ? undefined : ep.rowBias;
  const rbo = ep.rowBiasOffset ?? 0;
  const cb = biasDone ? undefined : ep.colBias;
  if (!rb && !cb && beta === 0 && alpha === 1) {
    if (ldc === n && ldo === n) out.set(c.subarray(cOff, cOff + M * n), outOff + jc);
    else for (let i = 0; i < M; i++) out.set(c.subarray(cOff + i * ldc, cOff + i * ldc + n), outOff + i * ldo + jc);
    return;
  }
  for (let i = 0; i < M; i++) {
    const s = cOff + i * ldc;
    const d = outOff + i * ldo + jc;
    const bias = rb ? rb[rbo + i] : 0;
    if (!cb && beta === 0) {
      for (let j = 0; j < n; j++) out[d + j] = alpha * c[s + j] + bias;
    } else if (beta === 0) {
      for (let j = 0; j < n; j++) out[d + j] = alpha * c[s + j] + bias + (cb as Float32Array)[jc + j];
    } else {
      for (let j = 0; j < n; j++) out[d + j] = alpha * c[s + j] + beta * out[d + j] + bias + (cb ? cb[jc + j] : 0);
    }
  }
}

/**
 * B as a row-major K×N matrix (element (k, j) at data[offset + k·ld + j]), copied into scratch
 * once per call and read in place by the micro-kernel — no packing.
 */
export function rowMajorSource(data: Float32Array, offset: number, ld: number, K: number, N: number): BlockSource {
  const lds = goodStride(N);
  let at = 0;
  return {
    extra: K * lds + 2 * NR,
    init(view, region) {
      at = region;
      if (lds === N && ld === N) view.set(data.subarray(offset, offset + K * N), at);
      else for (let k = 0; k < K; k++) view.set(data.subarray(offset + k * ld, offset + k * ld + N), at + k * lds);
      view.fill(0, at + K * lds, at + K * lds + 2 * NR);
    },
    block: (_view, k0, _kc, j0) => ({ ptr: (at + k0 * lds + j0) * 4, ld: lds * 4 }),
  };
}

/**
 * BLAS-style sgemm on row-major arrays: C = alpha · op(A) · op(B) + beta · C, where
 * op(A) is M×K (A is K×M with lda when transA), op(B) is K×N (N×K when transB).
 */
export function sgemm(
  transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
  beta: number, C: Float32Array, cOff: number, ldc: number, extra: Pick<Epilogue, 'rowBias' | 'colBias'> = {},
): void {
  const packA = transA ? stridedPacker(MR, A, aOff, 1, lda) : stridedPacker(MR, A, aOff, lda, 1);
  const packB = transB ? stridedPacker(NR, B, bOff, ldb, 1) : stridedPacker(NR, B, bOff, 1, ldb);
  gemmPacked(M, N, K, packA, packB, C, cOff, ldc, { alpha, beta, ...extra });
}

// --- other element types (float64, integers): plain triple loop ---

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint arrays */

/**
 * out[outOff + i·N + j] = Σk a[aOff + i·aRs + k·aCs] · b[bOff + k·bRs + j·bCs] for any numeric
 * typed arrays (double accumulation for numbers, BigInt for 64-bit integers; integer results
 * wrap as the output array stores them).
 */
export function matmulAny(
  M: number, N: number, K: number, a: ArrayLike<any>, aOff: number, aRs: number, aCs: number,
  b: ArrayLike<any>, bOff: number, bRs: number, bCs: number, out: any, outOff: number,
): void {
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let ia = aOff + i * aRs;
      let ib = bOff + j * bCs;
      if (big) {
        let s = 0n;
        for (let k = 0; k < K; k++, ia += aCs, ib += bRs) s += BigInt(a[ia]) * BigInt(b[ib]);
        out[outOff + i * N + j] = s;
      } else {
        let s = 0;
        for (let k = 0; k < K; k++, ia += aCs, ib += bRs) s += a[ia] * b[ib];
        out[outOff + i * N + j] = s;
      }
    }
  }
}
