import { unaryOp } from '../kernels/elementwise';
import { isBigInt } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/** Relu: y = max(x, 0). Passive in the integer contract: it becomes the requantisation clamp. */
export const ops: OpDef[] = [
  {
    type: 'Relu',
    quant: 'passive',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: (_ctx, [x]) => {
      const X = x as Tensor;
      if (X.dtype === 'float32') {
        // hot path: a direct loop, no call per element (NaN stays NaN)
        const a = X.array as Float32Array;
        const y = new Float32Array(a.length);
        for (let i = 0; i < a.length; i++) y[i] = a[i] < 0 ? 0 : a[i];
        return [new Tensor('float32', X.dims, y)];
      }
      return isBigInt(X.dtype) ? [unaryOp(X, (v: bigint) => (v < 0n ? 0n : v))] : [unaryOp(X, (v: number) => (v < 0 ? 0 : v))];
    },
  },
];
