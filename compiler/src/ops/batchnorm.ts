import { product, shapeError } from '../kernels/window';
import { Tensor } from '../onnx/tensor';
import { OpContext, OpDef, ValueFacts } from './registry';

/**
 * BatchNormalization: Y = scale · (X − mean) / sqrt(var + epsilon) + B per channel (dim 1).
 *
 * Inference mode uses the given mean/var. Before opset 9 `spatial = 0` gives per-activation
 * statistics (shape [C, spatial…]). With opset 14+ `training_mode = 1` the batch statistics
 * normalise X and the outputs are Y, running_mean = mean·momentum + batch_mean·(1 − momentum)
 * and running_var likewise (population variance of the batch). Active in the integer
 * contract; the optimiser folds it into the preceding Conv.
 */
export const ops: OpDef[] = [
  {
    type: 'BatchNormalization',
    quant: 'active',
    infer: (ctx, [x, scale]) => {
      const out: ValueFacts[] = [{ dtype: x?.dtype, shape: x?.shape }];
      if (training(ctx)) {
        const c = { dtype: scale?.dtype ?? x?.dtype, shape: x?.shape ? [x.shape[1]] : undefined };
        out.push(c, { ...c });
      }
      return out;
    },
    run: (ctx, [x, scale, bias, mean, variance]) => batchNorm(ctx, x!, scale!, bias!, mean!, variance!),
  },
];

const training = (ctx: OpContext): boolean => ctx.opset >= 14 && ctx.node.int('training_mode', 0) !== 0;

function batchNorm(ctx: OpContext, x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor): Tensor[] {
  const { node } = ctx;
  if (x.rank < 2) throw shapeError(node, `input X has rank ${x.rank}, BatchNormalization needs [N, C, …]`);
  const [N, C] = x.dims;
  const inner = product(x.dims.slice(2));
  const eps = node.float('epsilon', 1e-5);
  const xd = x.dtype === 'float64' ? (x.array as Float64Array) : x.toFloat32();
  const s = scale.toNumbers(), b = bias.toNumbers();
  let m = mean.toNumbers(), v = variance.toNumbers();
  const per = s.length;
  if (per !== C && per !== C * inner) throw shapeError(node, `scale has ${per} elements, expected ${C} (one per channel)`);
  for (const [name, t] of [['B', b], ['mean', m], ['var', v]] as const) {
    if (t.length !== per) throw shapeError(node, `${name} has ${t.length} elements, scale has ${per}`);
  }
  const out: Tensor[] = [];
  let runMean: number[] | undefined, runVar: number[] | undefined;
  if (training(ctx)) {
    const momentum = node.float('momentum', 0.9);
    const bm = new Array<number>(C).fill(0), bv = new Array<number>(C).fill(0);
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let n = 0; n < N; n++) for (let i = 0, o = (n * C + c) * inner; i < inner; i++) sum += xd[o + i];
      const mu = sum / (N * inner);
      let sq = 0;
      for (let n = 0; n < N; n++) for (let i = 0, o = (n * C + c) * inner; i < inner; i++) sq += (xd[o + i] - mu) ** 2;
      bm[c] = mu;
      bv[c] = sq / (N * inner);
    }
    runMean = m.map((q, c) => q * momentum + bm[c] * (1 - momentum));
    runVar = v.map((q, c) => q * momentum + bv[c] * (1 - momentum));
    m = bm;
    v = bv;
  }
  const y = x.dtype === 'float64' ? new Float64Array(x.size) : new Float32Array(x.size);
  if (per === C) {
    const k = new Float64Array(C), a = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      k[c] = s[c] / Math.sqrt(v[c] + eps);
      a[c] = b[c] - m[c] * k[c];
    }
    if (y instanceof Float32Array) affine32(xd as Float32Array, y, N, C, inner, k, a);
    else affine64(xd as Float64Array, y, N, C, inner, k, a);
  } else {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * inner;
        for (let i = 0, e = c * inner; i < inner; i++, e++) y[o + i] = ((xd[o + i] - m[e]) * s[e]) / Math.sqrt(v[e] + eps) + b[e];
      }
    }
  }
  out.push(new Tensor(x.dtype, x.dims, y));
  if (runMean && runVar) {
    const dt = mean.dtype === 'float64' ? 'float64' : 'float32';
    const mk = (a: number[]): Tensor => new Tensor(dt, [C], dt === 'float64' ? Float64Array.from(a) : Float32Array.from(a));
    out.push(mk(runMean), mk(runVar));
  }
  return out;
}

/** y = x · k[c] + a[c] per channel (monomorphic copies for float32 and float64). */
function affine32(x: Float32Array, y: Float32Array, N: number, C: number, inner: number, k: Float64Array, a: Float64Array): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const o = (n * C + c) * inner, kc = k[c], ac = a[c];
      for (let i = o; i < o + inner; i++) y[i] = x[i] * kc + ac;
    }
  }
}

function affine64(x: Float64Array, y: Float64Array, N: number, C: number, inner: number, k: Float64Array, a: Float64Array): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const o = (n * C + c) * inner, kc = k[c], ac = a[c];
      for (let i = o; i < o + inner; i++) y[i] = x[i] * kc + ac;
    }
  }
}
