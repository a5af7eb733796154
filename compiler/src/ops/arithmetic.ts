import { binaryOp } from '../kernels/elementwise';
import { legacyBroadcast, requireSameType } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { DType, isBigInt, isFloat } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { OpContext, OpDef, QuantRole, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */

type Fn = (x: any, y: any) => any;

/** The element kernel for a dtype: float math, 32-bit-or-narrower integer math, or bigint math. */
interface Kernels {
  float: Fn;
  int: Fn;
  big: Fn;
  /** int32/uint32 when plain float64 math could lose low bits (Mul) */
  int32?: Fn;
}

function pick(k: Kernels, dtype: DType): Fn {
  if (isFloat(dtype)) return k.float;
  if (isBigInt(dtype)) return k.big;
  if ((dtype === 'int32' || dtype === 'uint32') && k.int32) return k.int32;
  return k.int;
}

/**
 * Numpy-broadcast elementwise arithmetic. Integer results wrap to the dtype's width (the
 * typed array stores them modulo 2^bits, as C's unsigned/two's-complement arithmetic does).
 */
function arith(type: string, quant: QuantRole, kernels: (ctx: OpContext) => Kernels, sinceOpset = 1): OpDef {
  return {
    type,
    quant,
    sinceOpset,
    infer: (_ctx, [a, b]): ValueFacts[] => [{ dtype: a?.dtype ?? b?.dtype, shape: broadcastDims([a?.shape, b?.shape]) }],
    run: (ctx, [a, b]) => {
      const A = a as Tensor;
      const dtype = requireSameType(ctx.node, [A, b]);
      const B = legacyBroadcast(ctx.node, ctx.opset, A, b as Tensor);
      return [binaryOp(A, B, dtype, pick(kernels(ctx), dtype), ctx.node)];
    },
  };
}

const add: Kernels = { float: (x, y) => x + y, int: (x, y) => x + y, big: (x, y) => x + y };
const sub: Kernels = { float: (x, y) => x - y, int: (x, y) => x - y, big: (x, y) => x - y };
const mul: Kernels = { float: (x, y) => x * y, int: (x, y) => x * y, big: (x, y) => x * y, int32: (x, y) => Math.imul(x, y) };
/** Integer division truncates toward zero (C, onnxruntime); dividing by zero gives 0 rather than a crash. */
const div: Kernels = {
  float: (x, y) => x / y,
  int: (x: number, y: number) => (y === 0 ? 0 : Math.trunc(x / y)),
  big: (x: bigint, y: bigint) => (y === 0n ? 0n : x / y),
};

/** fmod=1: the remainder has the sign of the dividend (C fmod); fmod=0: of the divisor (Python %). */
const fmodK: Kernels = {
  float: (x: number, y: number) => x % y,
  int: (x: number, y: number) => (y === 0 ? 0 : x % y),
  big: (x: bigint, y: bigint) => (y === 0n ? 0n : x % y),
};
const floorModK: Kernels = {
  float: (x: number, y: number) => {
    const r = x % y;
    return r !== 0 && r < 0 !== y < 0 ? r + y : r;
  },
  int: (x: number, y: number) => {
    if (y === 0) return 0;
    const r = x % y;
    return r !== 0 && r < 0 !== y < 0 ? r + y : r;
  },
  big: (x: bigint, y: bigint) => {
    if (y === 0n) return 0n;
    const r = x % y;
    return r !== 0n && r < 0n !== y < 0n ? r + y : r;
  },
};

export const ops: OpDef[] = [
  arith('Add', 'active', () => add),
  arith('Sub', 'active', () => sub),
  arith('Mul', 'active', () => mul),
  arith('Div', 'cpu', () => div),
  // ONNX asks for fmod=1 with float inputs; fmod=0 on floats is computed as numpy.mod rather than refused.
  arith('Mod', 'cpu', ({ node }) => (node.int('fmod', 0) === 1 ? fmodK : floorModK), 10),
];
