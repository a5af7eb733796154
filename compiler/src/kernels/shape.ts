import { PtqError } from '../errors';
import { Dim, Node } from '../onnx/ir';

/** Row-major strides of `dims`. */
export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

/** A negative axis counted from the end, checked against `rank`. */
export function normAxis(axis: number, rank: number, node?: Node): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw new PtqError('E_MODEL_ATTR', `node '${node?.label ?? '?'}' (${node?.opType ?? ''}): axis ${axis} is out of range for rank ${rank}`, {
      subject: node?.label,
      fix: `use an axis in [-${rank}, ${rank - 1}]`,
    });
  }
  return a;
}

/** Numpy-style broadcast of fixed shapes. */
export function broadcastShape(a: readonly number[], b: readonly number[], node?: Node): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new PtqError('E_MODEL_SHAPE', `node '${node?.label ?? '?'}' (${node?.opType ?? ''}): shapes [${a}] and [${b}] do not broadcast`, {
        subject: node?.label,
        fix: 'check the input shapes given to the model (input_shape)',
      });
    }
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** Broadcast of possibly symbolic shapes (unknown when they cannot be decided). */
export function broadcastDims(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const ss = shapes as Dim[][];
  const r = Math.max(0, ...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    let d: Dim = 1;
    for (const s of ss) {
      const x = s[s.length - r + i] ?? 1;
      if (x === 1) continue;
      if (d === 1) d = x;
      else if (d !== x) {
        if (typeof d === 'number' && typeof x === 'number') {
          throw new PtqError('E_MODEL_SHAPE', `shapes ${ss.map((q) => `[${q}]`).join(' and ')} do not broadcast`, {
            fix: 'check the input shapes given to the model (input_shape)',
          });
        }
        if (typeof d !== 'number') d = x; // a fixed size wins over a symbol
      }
    }
    out.push(d);
  }
  return out;
}

export function isStatic(shape: Dim[] | undefined): shape is number[] {
  return shape !== undefined && shape.every((d) => typeof d === 'number');
}

/**
 * For an output of `outDims`, the flat offsets into an input of `inDims` broadcast to it
 * (computed once per call, reused for every element).
 */
export function broadcastIndex(inDims: readonly number[], outDims: readonly number[]): Int32Array {
  const r = outDims.length;
  const inStr = stridesOf(inDims);
  const eff = new Array<number>(r).fill(0);
  for (let i = 0; i < r; i++) {
    const k = inDims.length - r + i;
    eff[i] = k >= 0 && inDims[k] !== 1 ? inStr[k] : 0;
  }
  return stridedOffsets(outDims, eff);
}

/**
 * Walking `dims` in row-major order, the offset `Σ pos[d]·step[d]` of every position, in one
 * pass with an odometer (a step of 0 repeats values along that axis).
 */
export function stridedOffsets(dims: readonly number[], step: readonly number[]): Int32Array {
  const r = dims.length;
  let n = 1;
  for (const d of dims) n *= d;
  const idx = new Int32Array(n);
  const pos = new Array<number>(r).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let d = r - 1; d >= 0; d--) {
      pos[d]++;
      off += step[d];
      if (pos[d] < dims[d]) break;
      off -= step[d] * pos[d];
      pos[d] = 0;
    }
  }
  return idx;
}
