import { mapFloat } from '../kernels/elementwise-ext';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * Trigonometric and hyperbolic functions (float tensors; Math's float64 results are rounded
 * once when stored as float32). 'lut' in the integer contract, like every function of one value.
 */
const sameType = (_ctx: unknown, [x]: (ValueFacts | undefined)[]): ValueFacts[] => [{ dtype: x?.dtype, shape: x?.shape }];

function trig(type: string, f: (v: number) => number, sinceOpset: number): OpDef {
  return { type, quant: 'lut', sinceOpset, infer: sameType, run: (_ctx, [x]) => [mapFloat(x as Tensor, f)] };
}

export const ops: OpDef[] = [
  trig('Sin', Math.sin, 7),
  trig('Cos', Math.cos, 7),
  trig('Tan', Math.tan, 7),
  trig('Asin', Math.asin, 7),
  trig('Acos', Math.acos, 7),
  trig('Atan', Math.atan, 7),
  trig('Sinh', Math.sinh, 9),
  trig('Cosh', Math.cosh, 9),
  trig('Asinh', Math.asinh, 9),
  trig('Acosh', Math.acosh, 9),
  trig('Atanh', Math.atanh, 9),
];
