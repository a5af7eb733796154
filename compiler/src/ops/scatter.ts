import { allocData, copyRange } from '../kernels/copy';
import { opError } from '../kernels/op-args';
import { normAxis, stridesOf } from '../kernels/shape';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpContext, OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- reductions are generic over number and bigint elements */

type Combine = (old: any, upd: any) => any;

/** How an update meets the value already there: `reduction` (opset 16: add/mul, 18: max/min). */
function combiner({ node, opset }: OpContext): Combine | undefined {
  const r = opset >= 16 ? node.str('reduction', 'none') : 'none';
  switch (r) {
    case 'none':
      return undefined;
    case 'add':
      return (a, b) => a + b;
    case 'mul':
      return (a, b) => a * b;
    case 'max':
      return (a, b) => (b > a ? b : a);
    case 'min':
      return (a, b) => (b < a ? b : a);
    default:
      throw opError(node, 'E_MODEL_ATTR', `reduction '${r}' is not none, add, mul, max or min`, 'use a reduction ONNX defines');
  }
}

function copyOf(t: Tensor): any {
  const out = allocData(t.dtype, t.size);
  copyRange(t.data, 0, out, 0, t.size);
  return out;
}

function checkIndex(node: Node, v: number, dim: number): number {
  const i = v < 0 ? v + dim : v;
  if (!(i >= 0 && i < dim)) throw opError(node, 'E_INDEX_RANGE', `index ${v} is out of range for an axis of size ${dim}`, `indices must lie in [-${dim}, ${dim - 1}]`);
  return i;
}

/** ScatterElements (and the deprecated Scatter): out = data; out[p with p[axis] = indices[p]] ⊕= updates[p]. */
function runScatterElements(ctx: OpContext, data: Tensor, indices: Tensor, updates: Tensor): Tensor {
  const { node } = ctx;
  const r = data.rank;
  const axis = normAxis(node.int('axis', 0), r, node);
  if (indices.rank !== r || indices.dims.join() !== updates.dims.join()) {
    throw opError(node, 'E_MODEL_SHAPE', `indices [${indices.dims}] and updates [${updates.dims}] must have one shape and the rank of data [${data.dims}]`, 'check the Scatter inputs');
  }
  const f = combiner(ctx);
  const out = copyOf(data);
  const upd = updates.data as any;
  const idx = indices.toNumbers();
  const ds = stridesOf(data.dims);
  const pos = new Int32Array(r);
  let base = 0;
  for (let k = 0; k < idx.length; k++) {
    const at = base + checkIndex(node, idx[k], data.dims[axis]) * ds[axis];
    out[at] = f ? f(out[at], upd[k]) : upd[k];
    for (let d = r - 1; d >= 0; d--) {
      pos[d]++;
      if (d !== axis) base += ds[d];
      if (pos[d] < indices.dims[d]) break;
      if (d !== axis) base -= ds[d] * pos[d];
      pos[d] = 0;
    }
  }
  return new Tensor(data.dtype, data.dims, out);
}

/** ScatterND: each index tuple (indices' last axis) addresses a slice of data that the matching updates slice replaces or combines with. */
function runScatterND(ctx: OpContext, data: Tensor, indices: Tensor, updates: Tensor): Tensor {
  const { node } = ctx;
  const k = indices.dims[indices.rank - 1];
  if (k === undefined || k > data.rank) throw opError(node, 'E_MODEL_SHAPE', `indices [${indices.dims}] cannot address data [${data.dims}]`, 'indices.shape[-1] must be <= rank(data)');
  const f = combiner(ctx);
  const out = copyOf(data);
  const upd = updates.data as any;
  const idx = indices.toNumbers();
  const ds = stridesOf(data.dims);
  const slice = data.dims.slice(k).reduce((a, b) => a * b, 1);
  const tuples = idx.length / Math.max(k, 1);
  if (updates.size !== tuples * slice) throw opError(node, 'E_MODEL_SHAPE', `updates [${updates.dims}] do not match indices [${indices.dims}] and data [${data.dims}]`, 'updates.shape = indices.shape[:-1] + data.shape[k:]');
  for (let t = 0; t < tuples; t++) {
    let off = 0;
    for (let j = 0; j < k; j++) off += checkIndex(node, idx[t * k + j], data.dims[j]) * ds[j];
    const u = t * slice;
    if (f) for (let e = 0; e < slice; e++) out[off + e] = f(out[off + e], upd[u + e]);
    else for (let e = 0; e < slice; e++) out[off + e] = upd[u + e];
  }
  return new Tensor(data.dtype, data.dims, out);
}

const sameAsData: OpDef['infer'] = (_ctx, [d]) => [{ dtype: d?.dtype, shape: d?.shape }];

export const ops: OpDef[] = [
  {
    type: 'ScatterElements',
    quant: 'cpu',
    sinceOpset: 11,
    infer: sameAsData,
    run: (ctx, [d, i, u]) => [runScatterElements(ctx, d!, i!, u!)],
  },
  {
    type: 'Scatter',
    quant: 'cpu',
    sinceOpset: 9,
    infer: sameAsData,
    run: (ctx, [d, i, u]) => [runScatterElements({ node: ctx.node, opset: 10 }, d!, i!, u!)],
  },
  {
    type: 'ScatterND',
    quant: 'cpu',
    sinceOpset: 11,
    infer: sameAsData,
    run: (ctx, [d, i, u]) => [runScatterND(ctx, d!, i!, u!)],
  },
];
