import { arrayCtor, DType } from '../onnx/dtype';
import { TensorData } from '../onnx/tensor';
import { stridesOf } from './shape';

/* eslint-disable @typescript-eslint/no-explicit-any -- element copies are generic over number, bigint and string storage */

/**
 * Element movement shared by the data-movement operators (Slice, Transpose, Expand, Tile, Pad,
 * DepthToSpace, nearest Resize, …). Everything copies stored elements as they are, so one kernel
 * serves every dtype: typed arrays (float16 as its bit pattern, int64 as bigint) and string[].
 */

/** Storage for `n` elements of `dtype` (zero-filled; '' for strings). */
export function allocData(dtype: DType, n: number): TensorData {
  return dtype === 'string' ? new Array<string>(n).fill('') : new (arrayCtor(dtype))(n);
}

/** dst[to + i] = src[from + i] for i < n (same storage type on both sides). */
export function copyRange(src: TensorData, from: number, dst: TensorData, to: number, n: number): void {
  if (n <= 0) return;
  if (Array.isArray(src) || Array.isArray(dst)) {
    const s = src as any[];
    const d = dst as any[];
    for (let i = 0; i < n; i++) d[to + i] = s[from + i];
    return;
  }
  (dst as any).set((src as any).subarray(from, from + n), to);
}

/** An entry of an axis table that selects the fill value instead of an input element. */
export const OUTSIDE = -(2 ** 45);

/**
 * out[i] = src[t0[i0] + t1[i1] + … + tk[ik]] for every row-major index (i0, …, ik) of an output whose
 * dims are the lengths of the tables. A sum that includes an OUTSIDE entry writes `fill`.
 *
 * Slice, Transpose, Expand, Tile, Pad, DepthToSpace and nearest Resize are all this loop with
 * different per-axis tables, so the tables (O(Σ dims)) are the only thing each op computes.
 */
export function gatherAxes(src: TensorData, tables: ArrayLike<number>[], out: TensorData, fill?: unknown): void {
  const n = out.length;
  if (n === 0) return;
  const s = src as any;
  const o = out as any;
  const r = tables.length;
  if (r === 0) {
    o[0] = s[0];
    return;
  }
  const last = tables[r - 1];
  const m = last.length;
  let contiguous = !Array.isArray(src) && fill === undefined;
  for (let j = 1; j < m && contiguous; j++) if (last[j] !== last[0] + j) contiguous = false;
  const pos = new Int32Array(r);
  let base = 0;
  for (let d = 0; d < r - 1; d++) base += tables[d][0];
  let k = 0;
  for (;;) {
    if (contiguous && base >= 0 && last[0] >= 0) {
      o.set(s.subarray(base + last[0], base + last[0] + m), k);
      k += m;
    } else if (fill === undefined) {
      for (let j = 0; j < m; j++) o[k++] = s[base + last[j]];
    } else {
      for (let j = 0; j < m; j++) {
        const at = base + last[j];
        o[k++] = at < 0 ? fill : s[at];
      }
    }
    if (k >= n) return;
    let d = r - 2;
    for (; d >= 0; d--) {
      const t = tables[d];
      base -= t[pos[d]];
      if (++pos[d] < t.length) {
        base += t[pos[d]];
        break;
      }
      pos[d] = 0;
      base += t[0];
    }
    if (d < 0) return;
  }
}

/** The table start·stride, (start+step)·stride, … of `len` entries. */
export function stepTable(len: number, start: number, step: number, stride: number): Float64Array {
  const t = new Float64Array(len);
  for (let k = 0; k < len; k++) t[k] = (start + k * step) * stride;
  return t;
}

/**
 * The elements of `src` viewed with `viewDims` (same element count) and its axes permuted by
 * `perm` (output axis i is view axis perm[i]): Transpose, DepthToSpace and SpaceToDepth.
 */
export function permuteData(src: TensorData, viewDims: readonly number[], perm: readonly number[], out: TensorData): void {
  const st = stridesOf(viewDims);
  gatherAxes(src, perm.map((p) => stepTable(viewDims[p], 0, 1, st[p])), out);
}
