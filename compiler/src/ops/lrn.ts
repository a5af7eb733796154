import { product, shapeError } from '../kernels/window';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/**
 * LRN (local response normalisation across channels):
 * Y = X / (bias + alpha / size · Σ_{c' ∈ [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]} X[c']²)^beta.
 * Runs on the CPU in the integer contract.
 */
export const ops: OpDef[] = [
  {
    type: 'LRN',
    quant: 'cpu',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: ({ node }, [x]) => {
      const X = x!;
      if (X.rank < 2) throw shapeError(node, `input X has rank ${X.rank}, LRN needs [N, C, …]`);
      const size = node.int('size');
      if (size === undefined || size < 1) throw shapeError(node, 'attribute size is missing or not positive', 'set size to the (odd) channel window');
      const alpha = node.float('alpha', 1e-4), beta = node.float('beta', 0.75), bias = node.float('bias', 1);
      const [N, C] = X.dims;
      const inner = product(X.dims.slice(2));
      const before = Math.floor((size - 1) / 2), after = Math.ceil((size - 1) / 2);
      const wide = X.dtype === 'float64';
      const xd = wide ? (X.array as Float64Array) : X.toFloat32();
      const y = wide ? new Float64Array(X.size) : new Float32Array(X.size);
      const sq = new Float64Array(inner);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          sq.fill(0);
          for (let k = Math.max(0, c - before); k <= Math.min(C - 1, c + after); k++) {
            const o = (n * C + k) * inner;
            for (let i = 0; i < inner; i++) sq[i] += xd[o + i] * xd[o + i];
          }
          const o = (n * C + c) * inner;
          for (let i = 0; i < inner; i++) y[o + i] = xd[o + i] / Math.pow(bias + (alpha / size) * sq[i], beta);
        }
      }
      return [new Tensor(wide ? 'float64' : 'float32', X.dims, y)];
    },
  },
];
