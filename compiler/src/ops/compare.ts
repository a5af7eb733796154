import { binaryOp } from '../kernels/elementwise';
import { legacyBroadcast, requireSameType } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number, bigint or string elements */

/**
 * Comparisons with numpy broadcasting → bool. Both inputs have one type (numbers, int64 as
 * bigint, bool, and strings for Equal); NaN compares unequal to everything. CPU ops.
 */
function compare(type: string, f: (x: any, y: any) => boolean, sinceOpset = 1): OpDef {
  return {
    type,
    quant: 'cpu',
    sinceOpset,
    infer: (_ctx, [a, b]): ValueFacts[] => [{ dtype: 'bool', shape: broadcastDims([a?.shape, b?.shape]) }],
    run: ({ node, opset }, [a, b]) => {
      const A = a as Tensor;
      requireSameType(node, [A, b]);
      const B = legacyBroadcast(node, opset, A, b as Tensor);
      return [binaryOp(A, B, 'bool', (x, y) => (f(x, y) ? 1 : 0), node)];
    },
  };
}

export const ops: OpDef[] = [
  compare('Equal', (x, y) => x === y),
  compare('Greater', (x, y) => x > y),
  compare('Less', (x, y) => x < y),
  compare('GreaterOrEqual', (x, y) => x >= y, 12),
  compare('LessOrEqual', (x, y) => x <= y, 12),
];
