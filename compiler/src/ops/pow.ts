import { binaryOp } from '../kernels/elementwise';
import { floatToIntOf, legacyBroadcast } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { isBigInt, isFloat } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */

/** base^exp in 64-bit two's complement (wrapping), by squaring; negative exponents truncate toward 0. */
export function powInt64(base: bigint, exp: bigint): bigint {
  if (exp < 0n) {
    if (base === 1n) return 1n;
    if (base === -1n) return exp % 2n === 0n ? 1n : -1n;
    return 0n; // |base| > 1: the true result is a fraction that truncates to 0 (0^negative too, rather than a trap)
  }
  let r = 1n;
  let b = BigInt.asIntN(64, base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = BigInt.asIntN(64, r * b);
    b = BigInt.asIntN(64, b * b);
    e >>= 1n;
  }
  return r;
}

/** base^exp in 32-bit integers (wrapping), by squaring. */
export function powInt32(base: number, exp: number): number {
  if (exp < 0) {
    if (base === 1) return 1;
    if (base === -1) return exp % 2 === 0 ? 1 : -1;
    return 0;
  }
  let r = 1;
  let b = base | 0;
  let e = Math.floor(exp);
  while (e > 0) {
    if (e % 2 === 1) r = Math.imul(r, b);
    b = Math.imul(b, b);
    e = Math.floor(e / 2);
  }
  return r;
}

/**
 * Pow: Z = X ^ Y with numpy broadcasting. Since opset 12 the exponent may have another element
 * type than the base; Z has the base's type. Integer bases with integer exponents are computed
 * exactly (wrapping like C integer arithmetic); with float exponents through float64 then cast back
 * as C does on x86 (truncation; NaN, e.g. a negative base to a fractional power, gives the minimum).
 */
export const ops: OpDef[] = [
  {
    type: 'Pow',
    quant: 'cpu',
    infer: (_ctx, [x, y]) => [{ dtype: x?.dtype, shape: broadcastDims([x?.shape, y?.shape]) }],
    run: ({ node, opset }, [x, y]) => {
      const X = x as Tensor;
      const Y = legacyBroadcast(node, opset, X, y as Tensor);
      const bx = isBigInt(X.dtype);
      const by = isBigInt(Y.dtype);
      const num = (v: any): number => (typeof v === 'bigint' ? Number(v) : v);
      let f: (a: any, b: any) => any;
      if (isFloat(X.dtype)) {
        f = (a: number, b: any) => Math.pow(a, num(b));
      } else if (isFloat(Y.dtype)) {
        // float64 pow, then a C cast back to the base type (x86 semantics: NaN → the minimum)
        const back = floatToIntOf(X.dtype);
        f = bx ? (a: bigint, b: number) => back(Math.pow(Number(a), b)) : (a: number, b: number) => back(Math.pow(a, b));
      } else if (bx) {
        const wrap = X.dtype === 'uint64' ? (v: bigint) => BigInt.asUintN(64, v) : (v: bigint) => v;
        f = by ? (a: bigint, b: bigint) => wrap(powInt64(a, b)) : (a: bigint, b: number) => wrap(powInt64(a, BigInt(b)));
      } else {
        f = (a: number, b: any) => powInt32(a, num(b));
      }
      return [binaryOp(X, Y, X.dtype, f, node)];
    },
  },
];
