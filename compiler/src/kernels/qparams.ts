import { PtqError } from '../errors';
import { DType } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { broadcastIndex } from './shape';

/**
 * Reading quantisation parameters (scales, zero points) of the QLinear / Integer operators,
 * with the checks the ONNX operator definitions make, as PtqErrors naming the node.
 */

export const Q8_TYPES: readonly DType[] = ['int8', 'uint8'];

function paramError(node: Node, msg: string, fix: string): PtqError {
  return new PtqError('E_MODEL_QPARAM', `node '${node.label}' (${node.opType}): ${msg}`, { subject: node.label, fix });
}

/** A required input; a PtqError naming it when absent. */
export function required(node: Node, t: Tensor | undefined, what: string): Tensor {
  if (!t) throw paramError(node, `input '${what}' is missing`, `give the ${what} input the operator requires`);
  return t;
}

/** Element values as numbers (int64 converted), for small parameter tensors. */
export function paramValues(t: Tensor): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, Number);
  if (Array.isArray(d)) throw new Error('string tensor used as a quantisation parameter');
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') return t.toNumbers();
  return d;
}

/** A per-tensor parameter (one element); `def` when the tensor is absent. */
export function scalarParam(node: Node, t: Tensor | undefined, what: string, def?: number): number {
  if (!t) {
    if (def !== undefined) return def;
    throw paramError(node, `input '${what}' is missing`, `give the ${what} input the operator requires`);
  }
  if (t.size !== 1) throw paramError(node, `${what} must be a scalar (per tensor), got shape [${t.dims}]`, `make ${what} a scalar`);
  return Number(paramValues(t)[0]);
}

/** Check an 8-bit quantized tensor's dtype. */
export function expectQ8(node: Node, t: Tensor, what: string, allowed: readonly DType[] = Q8_TYPES): void {
  if (!allowed.includes(t.dtype)) {
    throw paramError(node, `${what} has type ${t.dtype}, expected ${allowed.join(' or ')}`, `quantize ${what} to ${allowed.join(' or ')}`);
  }
}

/** A per-tensor or per-channel (1-D of length n) parameter as an array of length 1 or n. */
export function channelParam(node: Node, t: Tensor | undefined, n: number, what: string, def?: number): ArrayLike<number> {
  if (!t) {
    if (def !== undefined) return [def];
    throw paramError(node, `input '${what}' is missing`, `give the ${what} input the operator requires`);
  }
  if (t.size === 1 && t.dims.length <= 1) return paramValues(t);
  if (t.dims.length === 1 && t.dims[0] === n) return paramValues(t);
  throw paramError(node, `${what} has shape [${t.dims}], expected a scalar or ${n} values (one per output channel)`, `give ${what} one value or one per channel`);
}

/**
 * A MatMul operand parameter (scale or zero point) that is per tensor, per row of A
 * (`vec: 'row'`, shape [M] or [..., M, 1]) or per column of B (`vec: 'col'`, shape [N] or
 * [..., 1, N]), for every matrix of the batched operand of dims `dims`.
 */
export interface MatrixParam {
  values: ArrayLike<number>;
  /** values per matrix: 1 (per tensor) or M/N */
  len: number;
  /** offset of the values of the operand's own batch index b (from planMatMul aBatch/bBatch) */
  offsetOf(b: number): number;
}

export function matrixParam(node: Node, t: Tensor | undefined, dims: readonly number[], vec: 'row' | 'col', what: string, def = 0): MatrixParam {
  if (!t) return { values: [def], len: 1, offsetOf: () => 0 };
  const values = paramValues(t);
  if (t.size === 1) return { values, len: 1, offsetOf: () => 0 };
  const rank = dims.length;
  const vecLen = vec === 'row' ? (rank === 1 ? 1 : dims[rank - 2]) : rank === 1 ? 1 : dims[rank - 1];
  if (t.dims.length === 1 && t.dims[0] === vecLen) return { values, len: vecLen, offsetOf: () => 0 };
  const pd = t.dims;
  const ok =
    rank >= 2 &&
    pd.length === rank &&
    (vec === 'row' ? pd[rank - 1] === 1 && (pd[rank - 2] === vecLen || pd[rank - 2] === 1) : pd[rank - 2] === 1 && (pd[rank - 1] === vecLen || pd[rank - 1] === 1)) &&
    pd.slice(0, -2).every((d, i) => d === dims[i] || d === 1);
  if (!ok) {
    const shape = vec === 'row' ? `[${dims.slice(0, -2).concat([vecLen, 1])}]` : `[${dims.slice(0, -2).concat([1, vecLen])}]`;
    throw paramError(node, `${what} has shape [${pd}], expected a scalar, [${vecLen}] or ${shape}`, `give ${what} per tensor or per ${vec === 'row' ? 'row' : 'column'}`);
  }
  const len = vec === 'row' ? pd[rank - 2] : pd[rank - 1];
  const idx = broadcastIndex(pd.slice(0, -2), dims.slice(0, -2));
  return { values, len, offsetOf: (b) => idx[b] * len };
}

/** A view of `len` values of `p` for operand batch b (no copy for typed arrays). */
export function matrixParamSlice(p: MatrixParam, b: number): ArrayLike<number> {
  const off = p.offsetOf(b);
  if (off === 0 && p.values.length === p.len) return p.values;
  const v = p.values as Int8Array;
  if (typeof v.subarray === 'function') return v.subarray(off, off + p.len);
  return Array.prototype.slice.call(p.values, off, off + p.len) as number[];
}
