import { unaryOp } from '../kernels/elementwise';
import { copyTensor, mapFloat } from '../kernels/elementwise-ext';
import { erf, roundHalfEven } from '../kernels/scalar-math';
import { isBigInt, isFloat } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { OpDef, QuantRole, ValueFacts } from './registry';

/**
 * Elementwise math of one input, same shape out: Abs, Neg, Sign (any numeric type),
 * Floor, Ceil, Round (identity on integers), Sqrt, Reciprocal, Exp, Log, Erf, and the
 * float tests IsNaN, IsInf (bool out).
 *
 * In the integer contract every function of one int8 value is a 256-entry table ('lut').
 */

const sameType = (_ctx: unknown, [x]: (ValueFacts | undefined)[]): ValueFacts[] => [{ dtype: x?.dtype, shape: x?.shape }];
const boolOut = (_ctx: unknown, [x]: (ValueFacts | undefined)[]): ValueFacts[] => [{ dtype: 'bool', shape: x?.shape }];

/** A float function (integer inputs go through float64 and are truncated back). */
function floatFn(type: string, f: (v: number) => number, sinceOpset = 1, quant: QuantRole = 'lut'): OpDef {
  return { type, quant, sinceOpset, infer: sameType, run: (_ctx, [x]) => [mapFloat(x as Tensor, f)] };
}

/** A rounding function: integers are already integral, so they are copied unchanged (int64 exactly). */
function roundingFn(type: string, f: (v: number) => number, sinceOpset = 1): OpDef {
  return {
    type,
    quant: 'lut',
    sinceOpset,
    infer: sameType,
    run: (_ctx, [x]) => [isFloat(x!.dtype) ? unaryOp(x!, f) : copyTensor(x!)],
  };
}

/** Works on every numeric type: a number kernel and a bigint kernel. */
function numericFn(type: string, f: (v: number) => number, fb: (v: bigint) => bigint, sinceOpset = 1): OpDef {
  return {
    type,
    quant: 'lut',
    sinceOpset,
    infer: sameType,
    run: (_ctx, [x]) => [isBigInt(x!.dtype) ? unaryOp(x!, fb) : unaryOp(x!, f)],
  };
}

export const ops: OpDef[] = [
  numericFn('Abs', Math.abs, (v) => (v < 0n ? -v : v)),
  numericFn('Neg', (v) => -v, (v) => -v),
  numericFn('Sign', (v) => (v > 0 ? 1 : v < 0 ? -1 : v), (v) => (v > 0n ? 1n : v < 0n ? -1n : 0n), 9),
  roundingFn('Floor', Math.floor),
  roundingFn('Ceil', Math.ceil),
  roundingFn('Round', roundHalfEven, 11),
  floatFn('Sqrt', Math.sqrt),
  floatFn('Reciprocal', (v) => 1 / v),
  floatFn('Exp', Math.exp),
  floatFn('Log', Math.log),
  floatFn('Erf', erf, 9),
  {
    type: 'IsNaN',
    quant: 'cpu',
    sinceOpset: 9,
    infer: boolOut,
    run: (_ctx, [x]) => [isFloat(x!.dtype) ? unaryOp(x!, (v: number) => (v !== v ? 1 : 0), 'bool') : new Tensor('bool', x!.dims)],
  },
  {
    type: 'IsInf',
    quant: 'cpu',
    sinceOpset: 10,
    infer: boolOut,
    run: ({ node }, [x]) => {
      const pos = node.int('detect_positive', 1) !== 0;
      const neg = node.int('detect_negative', 1) !== 0;
      if (!isFloat(x!.dtype)) return [new Tensor('bool', x!.dims)];
      return [unaryOp(x!, (v: number) => ((pos && v === Infinity) || (neg && v === -Infinity) ? 1 : 0), 'bool')];
    },
  },
];
