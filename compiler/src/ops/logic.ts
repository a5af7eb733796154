import { binaryOp, unaryOp } from '../kernels/elementwise';
import { legacyBroadcast, typeError } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/** Not, And, Or, Xor on bool tensors (numpy broadcasting; opset < 7 `broadcast`/`axis`). CPU ops. */
function logic(type: string, f: (x: boolean, y: boolean) => boolean): OpDef {
  return {
    type,
    quant: 'cpu',
    infer: (_ctx, [a, b]): ValueFacts[] => [{ dtype: 'bool', shape: broadcastDims([a?.shape, b?.shape]) }],
    run: ({ node, opset }, [a, b]) => {
      const A = a as Tensor;
      for (const t of [A, b as Tensor]) if (t.dtype !== 'bool') throw typeError(node, 'an input', t.dtype, 'bool tensors');
      const B = legacyBroadcast(node, opset, A, b as Tensor);
      return [binaryOp(A, B, 'bool', (x: number, y: number) => (f(x !== 0, y !== 0) ? 1 : 0), node)];
    },
  };
}

export const ops: OpDef[] = [
  {
    type: 'Not',
    quant: 'cpu',
    infer: (_ctx, [x]) => [{ dtype: 'bool', shape: x?.shape }],
    run: ({ node }, [x]) => {
      if (x!.dtype !== 'bool') throw typeError(node, 'input', x!.dtype, 'bool tensors');
      return [unaryOp(x!, (v: number) => (v ? 0 : 1))];
    },
  },
  logic('And', (x, y) => x && y),
  logic('Or', (x, y) => x || y),
  logic('Xor', (x, y) => x !== y),
];
