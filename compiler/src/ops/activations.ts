import { mapFloat, typeError } from '../kernels/elementwise-ext';
import { erfc } from '../kernels/scalar-math';
import { PtqError } from '../errors';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * Activation functions of one input (ONNX Operators.md formulas, attribute defaults of the spec).
 * All are 'lut' in the integer contract: a function of one int8 value is a 256-entry table.
 */

const sameType = (_ctx: unknown, [x]: (ValueFacts | undefined)[]): ValueFacts[] => [{ dtype: x?.dtype, shape: x?.shape }];

/** An activation whose element function is built from the node's attributes once per run. */
function act(type: string, make: (node: Node) => (v: number) => number, sinceOpset = 1): OpDef {
  return {
    type,
    quant: 'lut',
    sinceOpset,
    infer: sameType,
    run: ({ node }, [x]) => {
      if (x!.dtype === 'string' || x!.dtype === 'bool') throw typeError(node, 'input', x!.dtype, 'numeric tensors');
      return [mapFloat(x as Tensor, make(node))];
    },
  };
}

/** 1 / (1 + e^-x), written so neither branch overflows. */
export function sigmoid(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

/** log(1 + e^x) without overflow for large x or loss for very negative x. */
export function softplus(v: number): number {
  return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
}

const SQRT_HALF = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export const ops: OpDef[] = [
  act('Sigmoid', () => sigmoid),
  act('Tanh', () => Math.tanh),
  act('HardSigmoid', (n) => {
    const alpha = n.float('alpha', 0.2);
    const beta = n.float('beta', 0.5);
    return (v) => Math.max(0, Math.min(1, alpha * v + beta));
  }),
  // x · HardSigmoid(x) with alpha = 1/6, beta = 0.5
  act('HardSwish', () => (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)), 14),
  act('Elu', (n) => {
    const alpha = n.float('alpha', 1);
    return (v) => (v < 0 ? alpha * Math.expm1(v) : v);
  }),
  act('Selu', (n) => {
    const alpha = n.float('alpha', 1.67326319217681884765625);
    const gamma = n.float('gamma', 1.05070102214813232421875);
    return (v) => (v > 0 ? gamma * v : gamma * alpha * Math.expm1(v));
  }),
  act('Celu', (n) => {
    const alpha = n.float('alpha', 1);
    return (v) => Math.max(0, v) + Math.min(0, alpha * Math.expm1(v / alpha));
  }, 12),
  act('Softplus', () => softplus),
  act('Softsign', () => (v) => v / (1 + Math.abs(v))),
  act('LeakyRelu', (n) => {
    const alpha = n.float('alpha', 0.01);
    return (v) => (v < 0 ? alpha * v : v);
  }),
  act('ThresholdedRelu', (n) => {
    const alpha = n.float('alpha', 1);
    return (v) => (v > alpha ? v : 0);
  }, 10),
  act('Shrink', (n) => {
    const lambd = n.float('lambd', 0.5);
    const bias = n.float('bias', 0);
    return (v) => (v < -lambd ? v + bias : v > lambd ? v - bias : 0);
  }, 9),
  act('Gelu', (n) => {
    const approx = n.str('approximate', 'none');
    // 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2), which keeps its precision for very negative x
    if (approx === 'none') return (v) => 0.5 * v * erfc(-v * SQRT_HALF);
    if (approx === 'tanh') return (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
    throw new PtqError('E_MODEL_ATTR', `node '${n.label}' (Gelu): approximate='${approx}' is not 'none' or 'tanh'`, {
      subject: n.label,
      fix: "set approximate to 'none' or 'tanh'",
    });
  }, 20),
];
