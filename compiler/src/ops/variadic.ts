import { unaryOp, variadicOp } from '../kernels/elementwise';
import { requireSameType } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { isBigInt } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { OpDef, QuantRole, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */

/**
 * Max, Min, Sum, Mean of 1..n inputs with numpy broadcasting, folded left to right (so a
 * float32 Sum rounds after each addition, as a float32 loop does). Max/Min propagate NaN.
 * All requantise their int8 inputs to one output scale: 'active'.
 */
function variadic(type: string, num: (x: number, y: number) => number, big: (x: bigint, y: bigint) => bigint, quant: QuantRole, mean = false): OpDef {
  return {
    type,
    quant,
    infer: (_ctx, ins): ValueFacts[] => {
      const fs = ins.filter((f): f is ValueFacts => f !== undefined);
      return [{ dtype: fs[0]?.dtype, shape: broadcastDims(fs.map((f) => f.shape)) }];
    },
    run: ({ node }, ins) => {
      const ts = ins.filter((t): t is Tensor => t !== undefined);
      const dtype = requireSameType(node, ts);
      const acc = variadicOp(ts, isBigInt(dtype) ? big : num, node);
      if (!mean || ts.length === 1) return [acc];
      const n = ts.length;
      return [isBigInt(dtype) ? unaryOp(acc, (v: bigint) => v / BigInt(n)) : unaryOp(acc, (v: number) => v / n)];
    },
  };
}

const max = (x: number, y: number): number => (x > y || x !== x ? x : y);
const min = (x: number, y: number): number => (x < y || x !== x ? x : y);

export const ops: OpDef[] = [
  variadic('Max', max, (x, y) => (x > y ? x : y), 'active'),
  variadic('Min', min, (x, y) => (x < y ? x : y), 'active'),
  variadic('Sum', (x, y) => x + y, (x, y) => x + y, 'active'),
  variadic('Mean', (x, y) => x + y, (x, y) => x + y, 'active', true),
];
