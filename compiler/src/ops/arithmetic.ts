import { broadcastDims } from '../kernels/shape';
import { binaryOp } from '../kernels/elementwise';
import { isBigInt } from '../onnx/dtype';
import { OpDef, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */

/** Add, Sub, Mul, Div: numpy-broadcast elementwise arithmetic (integer Div truncates, as in C). */
function arith(type: string, f: (x: any, y: any) => any, intDiv = false): OpDef {
  return {
    type,
    quant: type === 'Add' || type === 'Mul' || type === 'Sub' ? 'active' : 'cpu',
    infer: (_ctx, [a, b]): ValueFacts[] => [{ dtype: a?.dtype ?? b?.dtype, shape: broadcastDims([a?.shape, b?.shape]) }],
    run: ({ node }, [a, b]) => {
      const A = a!;
      const B = b!;
      if (intDiv && !isBigInt(A.dtype) && A.dtype !== 'float32' && A.dtype !== 'float64') {
        return [binaryOp(A, B, A.dtype, (x: number, y: number) => Math.trunc(x / y), node)];
      }
      return [binaryOp(A, B, A.dtype, f, node)];
    },
  };
}

export const ops: OpDef[] = [
  arith('Add', (x, y) => x + y),
  arith('Sub', (x, y) => x - y),
  arith('Mul', (x, y) => x * y),
  arith('Div', (x, y) => x / y, true),
];
