import { PtqError } from '../errors';
import { DType, isBigInt } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor, toInt64 } from '../onnx/tensor';
import { floatToBfloat16, floatToHalf } from './float16';

/** Helpers the operator modules share for reading their inputs and reporting model errors. */

/** A dimension shape inference cannot compute. */
export const UNKNOWN_DIM: Dim = '?';

/** A PtqError about `node`, in the `node '<label>' (<Op>): …` form every operator uses. */
export function opError(node: Node, code: string, message: string, fix: string): PtqError {
  return new PtqError(code, `node '${node.label}' (${node.opType}): ${message}`, { subject: node.label, fix });
}

/**
 * The elements of an integer (index, shape, axes) tensor as numbers. int64 values beyond 2^53
 * (INT64_MAX / INT64_MIN used as "to the end") become the nearest double, which every user clamps.
 */
export function intsOf(t: Tensor | undefined): number[] | undefined {
  return t ? t.toNumbers() : undefined;
}

/** The stored element of `dtype` for the number `v` (half bit pattern, bigint, 0/1 for bool, …). */
export function storedValue(dtype: DType, v: number): number | bigint | string {
  if (dtype === 'string') return String(v);
  if (isBigInt(dtype)) return dtype === 'uint64' ? BigInt.asUintN(64, toInt64(v)) : toInt64(v);
  if (dtype === 'float16') return floatToHalf(v);
  if (dtype === 'bfloat16') return floatToBfloat16(v);
  if (dtype === 'bool') return v ? 1 : 0;
  return v;
}

/** The first element of a tensor as stored (for scalar value inputs such as Pad's constant_value). */
export function firstStored(t: Tensor): number | bigint | string {
  return (t.data as ArrayLike<number | bigint | string>)[0];
}

/** Product of fixed dims, or undefined when one is symbolic. */
export function staticSize(dims: readonly Dim[]): number | undefined {
  let n = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

/** Negative axes counted from the end; throws a PtqError naming the node when out of range or repeated. */
export function normAxes(axes: readonly number[], rank: number, node: Node): number[] {
  const out = axes.map((a) => {
    const x = a < 0 ? a + rank : a;
    if (x < 0 || x >= rank) throw opError(node, 'E_MODEL_ATTR', `axis ${a} is out of range for rank ${rank}`, `use axes in [-${rank}, ${rank - 1}]`);
    return x;
  });
  if (new Set(out).size !== out.length) throw opError(node, 'E_MODEL_ATTR', `axes [${axes.join(',')}] repeat an axis`, 'list each axis once');
  return out;
}
