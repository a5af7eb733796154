import { allocData } from '../kernels/copy';
import { intsOf, opError } from '../kernels/op-args';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- element copies are generic over the storage */

/**
 * Trilu: keep the upper (j - i >= k) or lower (j - i <= k) triangle of the last two axes,
 * zero elsewhere; leading axes are a batch. CPU.
 */
export const ops: OpDef[] = [
  {
    type: 'Trilu',
    quant: 'cpu',
    nativeHalf: true,
    sinceOpset: 14,
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: ({ node }, [x, kIn]) => {
      const X = x!;
      if (X.rank < 2) throw opError(node, 'E_MODEL_SHAPE', `input has rank ${X.rank}, expected >= 2`, 'Trilu works on matrices');
      const k = kIn ? intsOf(kIn)![0] : 0;
      const upper = node.int('upper', 1) !== 0;
      const rows = X.dims[X.rank - 2];
      const cols = X.dims[X.rank - 1];
      const src = X.data as any;
      const out = allocData(X.dtype, X.size) as any;
      for (let base = 0; base < X.size; base += rows * cols) {
        for (let i = 0; i < rows; i++) {
          // columns kept in row i: [i + k, cols) for upper, [0, i + k] for lower
          const from = upper ? Math.max(0, Math.min(cols, i + k)) : 0;
          const to = upper ? cols : Math.max(0, Math.min(cols, i + k + 1));
          const row = base + i * cols;
          for (let j = from; j < to; j++) out[row + j] = src[row + j];
        }
      }
      return [new Tensor(X.dtype, X.dims, out)];
    },
  },
];
