import { allocData, copyRange } from '../kernels/copy';
import { opError, UNKNOWN_DIM } from '../kernels/op-args';
import { normAxis, stridesOf } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- element copies are generic over number, bigint and string storage */

/** Index values as numbers, negatives counted from the end, checked against `dim`. */
function indexList(node: Node, t: Tensor, dim: number): Int32Array {
  const raw = t.toNumbers();
  const out = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] < 0 ? raw[i] + dim : raw[i];
    if (!(v >= 0 && v < dim)) {
      throw opError(node, 'E_INDEX_RANGE', `index ${raw[i]} is out of range for an axis of size ${dim}`, `indices must lie in [-${dim}, ${dim - 1}]`);
    }
    out[i] = v;
  }
  return out;
}

const prod = (ds: readonly number[]): number => ds.reduce((a, b) => a * b, 1);

/** Gather: out = data[..., indices, ...] along `axis`; whole inner rows are copied at once. Passive. */
function runGather(node: Node, data: Tensor, indices: Tensor): Tensor {
  const axis = normAxis(node.int('axis', 0), data.rank, node);
  const idx = indexList(node, indices, data.dims[axis]);
  const outer = prod(data.dims.slice(0, axis));
  const inner = prod(data.dims.slice(axis + 1));
  const dims = [...data.dims.slice(0, axis), ...indices.dims, ...data.dims.slice(axis + 1)];
  const out = allocData(data.dtype, outer * idx.length * inner);
  const row = data.dims[axis] * inner;
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < idx.length; k++) {
      copyRange(data.data, o * row + idx[k] * inner, out, at, inner);
      at += inner;
    }
  }
  return new Tensor(data.dtype, dims, out);
}

function inferGather(node: Node, [d, i]: (ValueFacts | undefined)[]): ValueFacts[] {
  if (!d?.shape || !i?.shape) return [{ dtype: d?.dtype }];
  const axis = normAxis(node.int('axis', 0), d.shape.length, node);
  return [{ dtype: d.dtype, shape: [...d.shape.slice(0, axis), ...i.shape, ...d.shape.slice(axis + 1)] }];
}

/** GatherElements: out[p] = data[p with p[axis] replaced by indices[p]]; out has the indices' shape. */
function runGatherElements(node: Node, data: Tensor, indices: Tensor): Tensor {
  const r = data.rank;
  const axis = normAxis(node.int('axis', 0), r, node);
  if (indices.rank !== r) throw opError(node, 'E_MODEL_SHAPE', `indices have rank ${indices.rank}, data rank ${r}`, 'indices must have the rank of data');
  const idx = indexList(node, indices, data.dims[axis]);
  const ds = stridesOf(data.dims);
  const out = allocData(data.dtype, indices.size);
  const src = data.data as any;
  const dst = out as any;
  const pos = new Int32Array(r);
  let base = 0; // Σ pos[d]·ds[d] over d ≠ axis
  for (let k = 0; k < idx.length; k++) {
    dst[k] = src[base + idx[k] * ds[axis]];
    for (let d = r - 1; d >= 0; d--) {
      pos[d]++;
      if (d !== axis) base += ds[d];
      if (pos[d] < indices.dims[d]) break;
      if (d !== axis) base -= ds[d] * pos[d];
      pos[d] = 0;
    }
  }
  return new Tensor(data.dtype, indices.dims, out);
}

/** GatherND: indices' last axis addresses the leading data axes (after batch_dims); slices are copied. */
function runGatherND(node: Node, data: Tensor, indices: Tensor): Tensor {
  const b = node.int('batch_dims', 0);
  const k = indices.dims[indices.rank - 1];
  if (b < 0 || b >= Math.min(data.rank, indices.rank) || k === undefined || b + k > data.rank) {
    throw opError(node, 'E_MODEL_SHAPE', `indices [${indices.dims}] with batch_dims ${b} cannot address data [${data.dims}]`, 'indices.shape[-1] + batch_dims must be <= rank(data)');
  }
  for (let d = 0; d < b; d++) {
    if (data.dims[d] !== indices.dims[d]) throw opError(node, 'E_MODEL_SHAPE', `batch dim ${d} differs: data ${data.dims[d]}, indices ${indices.dims[d]}`, 'the batch dims must match');
  }
  const raw = indices.toNumbers();
  const ds = stridesOf(data.dims);
  const batches = prod(data.dims.slice(0, b));
  const batchStride = b > 0 ? ds[b - 1] : data.size;
  const slice = prod(data.dims.slice(b + k));
  const perBatch = prod(indices.dims.slice(b, indices.rank - 1));
  const out = allocData(data.dtype, batches * perBatch * slice);
  let at = 0;
  let q = 0;
  for (let bi = 0; bi < batches; bi++) {
    for (let t = 0; t < perBatch; t++) {
      let off = bi * batchStride;
      for (let j = 0; j < k; j++) {
        const dim = data.dims[b + j];
        let v = raw[q++];
        if (v < 0) v += dim;
        if (!(v >= 0 && v < dim)) throw opError(node, 'E_INDEX_RANGE', `index ${raw[q - 1]} is out of range for an axis of size ${dim}`, `indices must lie in [-${dim}, ${dim - 1}]`);
        off += v * ds[b + j];
      }
      copyRange(data.data, off, out, at, slice);
      at += slice;
    }
  }
  return new Tensor(data.dtype, [...indices.dims.slice(0, indices.rank - 1), ...data.dims.slice(b + k)], out);
}

function inferGatherND(node: Node, [d, i]: (ValueFacts | undefined)[]): ValueFacts[] {
  const k = i?.shape?.[i.shape.length - 1];
  if (!d?.shape || !i?.shape) return [{ dtype: d?.dtype }];
  if (typeof k !== 'number') return [{ dtype: d.dtype }];
  const b = node.int('batch_dims', 0);
  return [{ dtype: d.dtype, shape: [...i.shape.slice(0, i.shape.length - 1), ...d.shape.slice(b + k)] }];
}

/** Compress: keep the slices along `axis` (or of the flattened input) whose condition is true. */
function runCompress(node: Node, data: Tensor, cond: Tensor): Tensor {
  const c = cond.data as ArrayLike<number>;
  const axisAttr = node.int('axis');
  const dims = axisAttr === undefined ? [data.size] : data.dims;
  const axis = axisAttr === undefined ? 0 : normAxis(axisAttr, data.rank, node);
  if (c.length > dims[axis]) {
    throw opError(node, 'E_MODEL_SHAPE', `condition has ${c.length} entries for an axis of size ${dims[axis]}`, 'the condition may not be longer than the axis');
  }
  const keep: number[] = [];
  for (let i = 0; i < c.length; i++) if (c[i]) keep.push(i);
  const outer = prod(dims.slice(0, axis));
  const inner = prod(dims.slice(axis + 1));
  const row = dims[axis] * inner;
  const outDims = dims.slice();
  outDims[axis] = keep.length;
  const out = allocData(data.dtype, outer * keep.length * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const i of keep) {
      copyRange(data.data, o * row + i * inner, out, at, inner);
      at += inner;
    }
  }
  return new Tensor(data.dtype, outDims, out);
}

function inferCompress(node: Node, [d, c]: (ValueFacts | undefined)[]): ValueFacts[] {
  const kept: Dim = c?.value ? Array.from(c.value.data as ArrayLike<number>).filter(Boolean).length : UNKNOWN_DIM;
  const axisAttr = node.int('axis');
  if (axisAttr === undefined) return [{ dtype: d?.dtype, shape: [kept] }];
  if (!d?.shape) return [{ dtype: d?.dtype }];
  const out = d.shape.slice();
  out[normAxis(axisAttr, out.length, node)] = kept;
  return [{ dtype: d.dtype, shape: out }];
}

export const ops: OpDef[] = [
  {
    type: 'Gather',
    quant: 'passive',
    nativeHalf: true,
    infer: ({ node }, inputs) => inferGather(node, inputs),
    run: ({ node }, [d, i]) => [runGather(node, d!, i!)],
  },
  {
    type: 'GatherElements',
    quant: 'passive',
    nativeHalf: true,
    infer: (_ctx, [d, i]) => [{ dtype: d?.dtype, shape: i?.shape }],
    run: ({ node }, [d, i]) => [runGatherElements(node, d!, i!)],
  },
  {
    type: 'GatherND',
    quant: 'cpu',
    nativeHalf: true,
    infer: ({ node }, inputs) => inferGatherND(node, inputs),
    run: ({ node }, [d, i]) => [runGatherND(node, d!, i!)],
  },
  {
    type: 'Compress',
    quant: 'cpu',
    nativeHalf: true,
    infer: ({ node }, inputs) => inferCompress(node, inputs),
    run: ({ node }, [d, c]) => [runCompress(node, d!, c!)],
  },
];
