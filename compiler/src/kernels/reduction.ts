import { NumericArray } from '../onnx/dtype';
import { stridedOffsets } from './shape';

/**
 * Helpers shared by the reduction-style operators (Softmax family, ArgMax, Reduce*, TopK, losses).
 * A single-axis operation sees its input as [outer, n, inner]: element j of the slice (o, i)
 * lives at `o * n * inner + j * inner + i`.
 */
export interface AxisSplit {
  outer: number;
  n: number;
  inner: number;
}

function prod(dims: readonly number[], from: number, to: number): number {
  let p = 1;
  for (let i = from; i < to; i++) p *= dims[i];
  return p;
}

/** [outer, n, inner] around one axis (`axis` already normalised). */
export function splitAt(dims: readonly number[], axis: number): AxisSplit {
  return { outer: prod(dims, 0, axis), n: dims[axis] ?? 1, inner: prod(dims, axis + 1, dims.length) };
}

/** The opset < 13 Softmax view: the input coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]. */
export function coerce2D(dims: readonly number[], axis: number): AxisSplit {
  return { outer: prod(dims, 0, axis), n: prod(dims, axis, dims.length), inner: 1 };
}

export type SoftmaxMode = 'softmax' | 'log' | 'hard';

/**
 * Softmax, LogSoftmax or Hardmax along the middle axis of `s`, in double precision:
 * the slice maximum is subtracted before exponentiating, log-softmax is x - max - log(sum).
 * Hardmax puts 1 at the first maximum of each slice.
 */
export function softmaxKernel(x: NumericArray, out: NumericArray, s: AxisSplit, mode: SoftmaxMode): void {
  const { outer, n, inner } = s;
  const block = n * inner;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * block + i;
      const end = base + block;
      let max = -Infinity;
      let arg = base;
      for (let p = base; p < end; p += inner) {
        const v = x[p];
        if (v > max) {
          max = v;
          arg = p;
        }
      }
      if (mode === 'hard') {
        for (let p = base; p < end; p += inner) out[p] = 0;
        if (n > 0) out[arg] = 1;
        continue;
      }
      // all -inf (or an empty slice) has no finite maximum to shift by: keep the values as they come
      const shift = Number.isFinite(max) ? max : 0;
      let sum = 0;
      for (let p = base; p < end; p += inner) sum += Math.exp(x[p] - shift);
      if (mode === 'softmax') {
        const inv = 1 / sum;
        for (let p = base; p < end; p += inner) out[p] = Math.exp(x[p] - shift) * inv;
      } else {
        const lse = Math.log(sum);
        for (let p = base; p < end; p += inner) out[p] = x[p] - shift - lse;
      }
    }
  }
}

/**
 * For an input of `dims` reduced over `axes` (kept as size 1), the flat output offset of every
 * input element. Walks the input once in order with an odometer; reduced axes have stride 0.
 */
export function reductionIndex(dims: readonly number[], axes: ReadonlySet<number>): Int32Array {
  const r = dims.length;
  const eff = new Array<number>(r).fill(0);
  let acc = 1;
  for (let d = r - 1; d >= 0; d--) {
    if (!axes.has(d)) {
      eff[d] = acc;
      acc *= dims[d];
    }
  }
  return stridedOffsets(dims, eff);
}
