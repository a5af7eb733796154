/**
 * Tensor-level helpers shared by the elementwise operator modules (ops/unary-math.ts,
 * activations.ts, compare.ts, where.ts, …), on top of kernels/elementwise.ts.
 */
import { PtqError } from '../errors';
import { arrayCtor, DType, isBigInt, isFloat, TypedArray } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { unaryOp } from './elementwise';
import { floatToInt32, floatToInt64, floatToUint32, floatToUint64 } from './scalar-math';
import { broadcastIndex, broadcastShape } from './shape';

/* eslint-disable @typescript-eslint/no-explicit-any -- kernels are generic over number, bigint and string arrays */

/**
 * How a float result is stored into an array of `dtype`: unchanged for floats and bool, else
 * converted as C casts do on x86-64 (truncation; NaN and out-of-range give the minimum),
 * which is what onnxruntime computes there. Typed arrays then keep the low bits of narrower types.
 */
export function floatToIntOf(dtype: DType): (v: number) => number | bigint {
  switch (dtype) {
    case 'int64':
      return floatToInt64;
    case 'uint64':
      return floatToUint64;
    case 'uint32':
      return floatToUint32;
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
      return floatToInt32;
    default:
      return (v) => v;
  }
}

/**
 * y = f(x) for a float function on any numeric tensor: float dtypes directly (a float32
 * result is rounded once when stored), integer dtypes through float64 and back
 * (see floatToIntOf), into `outDtype` (default: the input's).
 */
export function mapFloat(x: Tensor, f: (v: number) => number, outDtype: DType = x.dtype): Tensor {
  if (isFloat(outDtype) || outDtype === 'bool') {
    return isBigInt(x.dtype) ? unaryOp(x, (v: bigint) => f(Number(v)), outDtype) : unaryOp(x, f, outDtype);
  }
  const back = floatToIntOf(outDtype);
  return isBigInt(x.dtype) ? unaryOp(x, (v: bigint) => back(f(Number(v))), outDtype) : unaryOp(x, (v: number) => back(f(v)), outDtype);
}

/** A PtqError for an input of an element type the operator does not take. */
export function typeError(node: Node, what: string, dtype: DType, allowed: string): PtqError {
  return new PtqError('E_MODEL_TYPE', `node '${node.label}' (${node.opType}): ${what} has element type ${dtype}, the operator takes ${allowed}`, {
    subject: node.label,
    fix: 'insert a Cast before the node, or fix the exporter so the model is valid ONNX',
  });
}

/** All given tensors have one element type (ONNX's single type variable T), or a PtqError. */
export function requireSameType(node: Node, ts: (Tensor | undefined)[]): DType {
  const first = ts.find((t) => t !== undefined);
  if (!first) throw new Error(`node '${node.label}' (${node.opType}): no inputs`);
  for (const t of ts) {
    if (t && t.dtype !== first.dtype) {
      throw new PtqError('E_MODEL_TYPE', `node '${node.label}' (${node.opType}): inputs have different element types (${first.dtype} and ${t.dtype})`, {
        subject: node.label,
        fix: 'insert a Cast so both inputs have the same type',
      });
    }
  }
  return first.dtype;
}

/** The input must be a float tensor (float32/float64; halves arrive widened), or a PtqError. */
export function requireFloat(node: Node, x: Tensor, what = 'input'): void {
  if (!isFloat(x.dtype)) throw typeError(node, what, x.dtype, 'float tensors');
}

/**
 * Opset < 7 binary ops (Add, Mul, And, Equal, …) broadcast only with `broadcast=1`, and then
 * B's dims line up with A's starting at `axis` (default: the trailing dims, as numpy).
 * Returns B reshaped so numpy broadcasting gives that result.
 */
export function legacyBroadcast(node: Node, opset: number, a: Tensor, b: Tensor): Tensor {
  if (opset >= 7 || node.int('broadcast', 0) !== 1 || !node.has('axis')) return b;
  const rank = a.rank;
  let axis = node.int('axis', 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis + b.rank > rank) {
    throw new PtqError('E_MODEL_ATTR', `node '${node.label}' (${node.opType}): broadcast axis ${node.int('axis', 0)} does not fit shapes [${a.dims}] and [${b.dims}]`, {
      subject: node.label,
      fix: 'set axis so the second input lines up with the first',
    });
  }
  return b.reshape([...b.dims, ...new Array<number>(rank - axis - b.rank).fill(1)]);
}

/** out[i] = f(c[i], a[i], b[i]) with numpy broadcasting of all three (Where); strings allowed in a, b. */
export function ternaryOp(c: Tensor, a: Tensor, b: Tensor, outDtype: DType, f: (c: any, x: any, y: any) => any, node?: Node): Tensor {
  const dims = broadcastShape(broadcastShape(c.dims, a.dims, node), b.dims, node);
  const n = dims.reduce((p, q) => p * q, 1);
  const out: any = outDtype === 'string' ? new Array<string>(n) : new (arrayCtor(outDtype))(n);
  const ic = c.size === n ? null : broadcastIndex(c.dims, dims);
  const ia = a.size === n ? null : broadcastIndex(a.dims, dims);
  const ib = b.size === n ? null : broadcastIndex(b.dims, dims);
  const cd = c.data as any;
  const ad = a.data as any;
  const bd = b.data as any;
  for (let i = 0; i < n; i++) out[i] = f(cd[ic ? ic[i] : i], ad[ia ? ia[i] : i], bd[ib ? ib[i] : i]);
  return new Tensor(outDtype, dims, out as TypedArray | string[]);
}

/** A copy of `x` (same dtype, dims, fresh storage). */
export function copyTensor(x: Tensor): Tensor {
  const d = x.data;
  return new Tensor(x.dtype, x.dims, Array.isArray(d) ? d.slice() : (d.slice() as TypedArray));
}
