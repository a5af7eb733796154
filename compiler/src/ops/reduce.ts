import { PtqError } from '../errors';
import { DType, integerRange, isBigInt, isFloat, NumericArray } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { normAxis } from '../kernels/shape';
import { reductionIndex } from '../kernels/reduction';
import { OpContext, OpDef, QuantRole, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- bigint accumulators of int64/uint64 */

export type ReduceKind = 'sum' | 'mean' | 'max' | 'min' | 'prod' | 'l1' | 'l2' | 'logsum' | 'logsumexp' | 'sumsquare';

/**
 * Reduce* over a set of axes (all axes when none are given), keepdims default 1.
 * The axes are an attribute before opset 13 (ReduceSum) / 18 (the others) and an optional
 * int64 input afterwards, where empty axes with `noop_with_empty_axes` reduce nothing.
 * Sums accumulate in double. A reduction over an empty set gives the identity of the operation:
 * 0 for sums and norms, 1 for the product, -inf (or the type's minimum) for max, +inf (or the
 * type's maximum) for min, -inf for the log-sums, NaN for the mean.
 *
 * ReduceMean is 'active' (over H, W it is an average pool on the BPU, it requantises),
 * ReduceMax 'passive' (selects a value, keeps the input scale), the others run on the CPU.
 */
function reduceOp(type: string, kind: ReduceKind, quant: QuantRole): OpDef {
  return {
    type,
    quant,
    infer: (ctx, [x, axes]) => [{ dtype: x?.dtype, shape: inferReduce(ctx, x?.shape, axes) }],
    run: (ctx, [x, axesT]) => {
      const { node } = ctx;
      const axes = reduceAxes(ctx, x!.rank, axesT);
      // no axes: each element is reduced alone, which only changes it for the norms and log-sum
      if (axes.size === 0 && (kind === 'sum' || kind === 'mean' || kind === 'max' || kind === 'min' || kind === 'prod')) return [x!];
      return [reduce(node, kind, x!, axes, node.int('keepdims', 1) !== 0)];
    },
  };
}

/** Axes arrive as an input (opset 13 for ReduceSum, 18 for the others) rather than an attribute. */
function axesAsInput(node: Node, opset: number): boolean {
  return node.opType === 'ReduceSum' ? opset >= 13 : opset >= 18;
}

/**
 * The axes to reduce (normalised). Empty axes with noop_with_empty_axes give the empty set:
 * every element is then reduced on its own (ReduceL1 → |x|, ReduceSumSquare → x², the others
 * leave it unchanged), as ONNX's reference and onnxruntime compute it.
 */
function reduceAxes({ node, opset }: OpContext, rank: number, axesT: Tensor | undefined): Set<number> {
  let list: number[] | undefined;
  if (axesAsInput(node, opset)) {
    list = axesT ? axesT.toNumbers() : node.ints('axes');
    if ((list === undefined || list.length === 0) && node.int('noop_with_empty_axes', 0) !== 0) return new Set();
  } else {
    list = node.ints('axes');
  }
  if (list === undefined || list.length === 0) return new Set(Array.from({ length: rank }, (_, i) => i));
  const set = new Set<number>();
  for (const a of list) {
    const k = normAxis(a, rank, node);
    if (set.has(k)) {
      throw new PtqError('E_MODEL_ATTR', `node '${node.label}' (${node.opType}): axis ${a} is listed twice in axes [${list.join(',')}]`, {
        subject: node.label,
        fix: 'list each axis once',
      });
    }
    set.add(k);
  }
  return set;
}

function inferReduce(ctx: OpContext, shape: Dim[] | undefined, axesF: ValueFacts | undefined): Dim[] | undefined {
  if (!shape) return undefined;
  const { node, opset } = ctx;
  const keep = node.int('keepdims', 1) !== 0;
  if (axesAsInput(node, opset) && axesF && !axesF.value) {
    // axes computed at run time: the rank is known only when keepdims or the axes count is
    if (keep) return shape.map(() => '?');
    const n = axesF.shape?.[0];
    return typeof n === 'number' && n > 0 ? new Array<Dim>(shape.length - n).fill('?') : undefined;
  }
  const axes = reduceAxes(ctx, shape.length, axesF?.value);
  return keep ? shape.map((d, i) => (axes.has(i) ? 1 : d)) : shape.filter((_, i) => !axes.has(i));
}

/** Smallest and largest values of an integer dtype (the empty-set max / min). */
function intRange(d: DType): [number, number] {
  return integerRange(d) ?? [-Infinity, Infinity];
}

/** Reduce `x` over `axes` (normalised; the empty set reduces each element alone). */
export function reduce(node: Node, kind: ReduceKind, x: Tensor, axes: ReadonlySet<number>, keep: boolean): Tensor {
  if (x.dtype === 'string' || x.dtype === 'bool') {
    throw new PtqError('E_MODEL_DTYPE', `node '${node.label}' (${node.opType}): input of type ${x.dtype} is not supported`, {
      subject: node.label,
      fix: 'insert a Cast to a numeric type before the node',
    });
  }
  const keptDims = x.dims.map((d, i) => (axes.has(i) ? 1 : d));
  const outDims = keep ? keptDims : x.dims.filter((_, i) => !axes.has(i));
  let count = 1;
  for (const a of axes) count *= x.dims[a];
  if (isBigInt(x.dtype) && kind !== 'l2' && kind !== 'logsum' && kind !== 'logsumexp') return reduceBigInt(kind, x, axes, outDims, count);
  const src = isBigInt(x.dtype) ? Float64Array.from(x.toNumbers()) : (x.array as NumericArray);
  const acc = reduceDouble(kind, src, x.dims, axes, keptDims, count);
  if (isBigInt(x.dtype)) return tensorFrom(x.dtype, outDims, acc);
  const out = new Tensor(x.dtype, outDims);
  const res = out.array as NumericArray;
  if (count === 0 && !isFloat(x.dtype) && (kind === 'max' || kind === 'min')) {
    const [lo, hi] = intRange(x.dtype);
    res.fill(kind === 'max' ? lo : hi);
  } else {
    res.set(acc);
  }
  return out;
}

/** The reduction in double precision: one accumulator per output element. */
function reduceDouble(kind: ReduceKind, x: NumericArray, dims: number[], axes: ReadonlySet<number>, keptDims: number[], count: number): Float64Array {
  let outSize = 1;
  for (const d of keptDims) outSize *= d;
  const idx = reductionIndex(dims, axes);
  const n = idx.length;
  const init = kind === 'prod' ? 1 : kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0;
  const acc = new Float64Array(outSize).fill(init);
  switch (kind) {
    case 'sum':
    case 'mean':
    case 'logsum':
      for (let i = 0; i < n; i++) acc[idx[i]] += x[i];
      break;
    case 'l1':
      for (let i = 0; i < n; i++) acc[idx[i]] += Math.abs(x[i]);
      break;
    case 'l2':
    case 'sumsquare':
      for (let i = 0; i < n; i++) acc[idx[i]] += x[i] * x[i];
      break;
    case 'prod':
      for (let i = 0; i < n; i++) acc[idx[i]] *= x[i];
      break;
    case 'max':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const j = idx[i];
        if (v > acc[j] || v !== v) acc[j] = v; // NaN sticks: nothing compares greater than it
      }
      break;
    case 'min':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const j = idx[i];
        if (v < acc[j] || v !== v) acc[j] = v;
      }
      break;
    case 'logsumexp': {
      // log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the slice maximum
      const m = new Float64Array(outSize).fill(-Infinity);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const j = idx[i];
        if (v > m[j] || v !== v) m[j] = v;
      }
      for (let i = 0; i < n; i++) {
        const j = idx[i];
        if (Number.isFinite(m[j])) acc[j] += Math.exp(x[i] - m[j]);
      }
      for (let j = 0; j < outSize; j++) {
        // an infinite or NaN maximum (or the empty set, -inf) is the result itself
        acc[j] = Number.isFinite(m[j]) ? m[j] + Math.log(acc[j]) : m[j];
      }
      break;
    }
  }
  if (kind === 'mean') for (let j = 0; j < outSize; j++) acc[j] /= count;
  else if (kind === 'l2') for (let j = 0; j < outSize; j++) acc[j] = Math.sqrt(acc[j]);
  else if (kind === 'logsum') for (let j = 0; j < outSize; j++) acc[j] = Math.log(acc[j]);
  return acc;
}

/** int64/uint64 reductions that stay exact: accumulators of the element type (wrapping like C). */
function reduceBigInt(kind: ReduceKind, x: Tensor, axes: ReadonlySet<number>, outDims: number[], count: number): Tensor {
  const out = new Tensor(x.dtype, outDims);
  const acc = out.array as any;
  const data = x.array as any;
  const idx = reductionIndex(x.dims, axes);
  const unsigned = x.dtype === 'uint64';
  const lo = unsigned ? 0n : -(1n << 63n);
  const hi = unsigned ? (1n << 64n) - 1n : (1n << 63n) - 1n;
  acc.fill(kind === 'prod' ? 1n : kind === 'max' ? lo : kind === 'min' ? hi : 0n);
  const n = idx.length;
  switch (kind) {
    case 'sum':
    case 'mean':
      for (let i = 0; i < n; i++) acc[idx[i]] += data[i];
      break;
    case 'l1':
      for (let i = 0; i < n; i++) acc[idx[i]] += data[i] < 0n ? -data[i] : data[i];
      break;
    case 'sumsquare':
      for (let i = 0; i < n; i++) acc[idx[i]] += data[i] * data[i];
      break;
    case 'prod':
      for (let i = 0; i < n; i++) acc[idx[i]] *= data[i];
      break;
    case 'max':
      for (let i = 0; i < n; i++) if (data[i] > acc[idx[i]]) acc[idx[i]] = data[i];
      break;
    case 'min':
      for (let i = 0; i < n; i++) if (data[i] < acc[idx[i]]) acc[idx[i]] = data[i];
      break;
    default:
      throw new Error(`reduceBigInt: ${kind} is computed in double`);
  }
  if (kind === 'mean' && count > 0) {
    const c = BigInt(count);
    for (let j = 0; j < acc.length; j++) acc[j] /= c;
  }
  return out;
}

/**
 * MeanVarianceNormalization: (X - mean) / (sqrt(variance) + 1e-9) over `axes` (default [0, 2, 3]),
 * as the ONNX function body defines it; the variance is computed two-pass in double.
 */
function mvn({ node }: OpContext, x: Tensor): Tensor {
  if (!isFloat(x.dtype)) {
    throw new PtqError('E_MODEL_DTYPE', `node '${node.label}' (${node.opType}): input of type ${x.dtype} is not supported, a float type is required`, {
      subject: node.label,
      fix: 'insert a Cast to float before the node',
    });
  }
  const axes = new Set<number>();
  for (const a of node.ints('axes', [0, 2, 3])) axes.add(normAxis(a, x.rank, node));
  const data = x.array as NumericArray;
  const idx = reductionIndex(x.dims, axes);
  let count = 1;
  for (const a of axes) count *= x.dims[a];
  const outSize = count === 0 ? 0 : x.size / count;
  const mean = new Float64Array(outSize);
  const varc = new Float64Array(outSize);
  const n = idx.length;
  for (let i = 0; i < n; i++) mean[idx[i]] += data[i];
  for (let j = 0; j < outSize; j++) mean[j] /= count;
  for (let i = 0; i < n; i++) {
    const d = data[i] - mean[idx[i]];
    varc[idx[i]] += d * d;
  }
  for (let j = 0; j < outSize; j++) varc[j] = 1 / (Math.sqrt(varc[j] / count) + 1e-9);
  const out = new Tensor(x.dtype, x.dims);
  const res = out.array as NumericArray;
  for (let i = 0; i < n; i++) res[i] = (data[i] - mean[idx[i]]) * varc[idx[i]];
  return out;
}

export const ops: OpDef[] = [
  reduceOp('ReduceMean', 'mean', 'active'),
  reduceOp('ReduceMax', 'max', 'passive'),
  reduceOp('ReduceMin', 'min', 'cpu'),
  reduceOp('ReduceSum', 'sum', 'cpu'),
  reduceOp('ReduceProd', 'prod', 'cpu'),
  reduceOp('ReduceL1', 'l1', 'cpu'),
  reduceOp('ReduceL2', 'l2', 'cpu'),
  reduceOp('ReduceLogSum', 'logsum', 'cpu'),
  reduceOp('ReduceLogSumExp', 'logsumexp', 'cpu'),
  reduceOp('ReduceSumSquare', 'sumsquare', 'cpu'),
  {
    type: 'MeanVarianceNormalization',
    sinceOpset: 9,
    quant: 'cpu',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: (ctx, [x]) => [mvn(ctx, x!)],
  },
];
