import { ternaryOp, typeError } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- elements of any type */

/**
 * Where: out = condition ? X : Y, with numpy broadcasting of all three. X and Y may be any
 * type (strings too). A CPU op: its int8 form would need X and Y on one scale.
 */
export const ops: OpDef[] = [
  {
    type: 'Where',
    quant: 'cpu',
    sinceOpset: 9,
    infer: (_ctx, [c, x, y]) => [{ dtype: x?.dtype ?? y?.dtype, shape: broadcastDims([c?.shape, x?.shape, y?.shape]) }],
    run: ({ node }, [c, x, y]) => {
      const C = c as Tensor;
      const X = x as Tensor;
      const Y = y as Tensor;
      if (C.dtype !== 'bool') throw typeError(node, 'condition', C.dtype, 'a bool condition');
      if (X.dtype !== Y.dtype) {
        throw new PtqError('E_MODEL_TYPE', `node '${node.label}' (Where): X is ${X.dtype} and Y is ${Y.dtype}`, {
          subject: node.label,
          fix: 'insert a Cast so X and Y have the same type',
        });
      }
      return [ternaryOp(C, X, Y, X.dtype, (k: number, a: any, b: any) => (k ? a : b), node)];
    },
  },
];
