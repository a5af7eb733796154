import { product, shapeError } from '../kernels/window';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/**
 * InstanceNormalization: for each image n and channel c, Y = scale[c] · (X − μ) / sqrt(σ² + epsilon) + B[c]
 * with μ, σ² the mean and population variance over the spatial dims of that (n, c) plane.
 * Runs on the CPU in the integer contract.
 */
export const ops: OpDef[] = [
  {
    type: 'InstanceNormalization',
    quant: 'cpu',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: ({ node }, [x, scale, bias]) => {
      const X = x!;
      if (X.rank < 2) throw shapeError(node, `input X has rank ${X.rank}, InstanceNormalization needs [N, C, …]`);
      const [N, C] = X.dims;
      const s = scale!.toNumbers(), b = bias!.toNumbers();
      if (s.length !== C || b.length !== C) throw shapeError(node, `scale and B must have ${C} elements (one per channel), got ${s.length} and ${b.length}`);
      const eps = node.float('epsilon', 1e-5);
      const inner = product(X.dims.slice(2));
      const xd = X.dtype === 'float64' ? (X.array as Float64Array) : X.toFloat32();
      const y = X.dtype === 'float64' ? new Float64Array(X.size) : new Float32Array(X.size);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          const o = (n * C + c) * inner;
          let sum = 0;
          for (let i = 0; i < inner; i++) sum += xd[o + i];
          const mu = sum / inner;
          let sq = 0;
          for (let i = 0; i < inner; i++) sq += (xd[o + i] - mu) ** 2;
          const k = s[c] / Math.sqrt(sq / inner + eps);
          for (let i = 0; i < inner; i++) y[o + i] = (xd[o + i] - mu) * k + b[c];
        }
      }
      return [new Tensor(X.dtype === 'float64' ? 'float64' : 'float32', X.dims, y)];
    },
  },
];
