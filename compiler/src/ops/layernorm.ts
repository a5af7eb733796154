import { broadcastIndex, normAxis } from '../kernels/shape';
import { product, shapeError } from '../kernels/window';
import { Dim } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * LayerNormalization (opset 17): over the dims from `axis` on, Y = (X − μ) · invStd · Scale + B
 * with invStd = 1 / sqrt(σ² + epsilon) (population variance); Scale and B broadcast to those
 * dims. Optional outputs Mean and InvStdDev have X's shape with the normalised dims set to 1.
 * Runs on the CPU in the integer contract.
 */
export const ops: OpDef[] = [
  {
    type: 'LayerNormalization',
    sinceOpset: 17,
    quant: 'cpu',
    infer: ({ node }, [x]) => {
      const xs = x?.shape;
      const out: ValueFacts[] = [{ dtype: x?.dtype, shape: xs }];
      if (node.outputs.length > 1) {
        const axis = xs ? normAxis(node.int('axis', -1), xs.length, node) : 0;
        const stat = xs ? xs.map((d, i): Dim => (i < axis ? d : 1)) : undefined;
        out.push({ dtype: 'float32', shape: stat }, { dtype: 'float32', shape: stat && [...stat] });
      }
      return out;
    },
    run: ({ node }, [x, scale, bias]) => {
      const X = x!;
      const axis = normAxis(node.int('axis', -1), X.rank, node);
      const eps = node.float('epsilon', 1e-5);
      const normDims = X.dims.slice(axis);
      const inner = product(normDims);
      const outer = X.size / Math.max(1, inner);
      const per = (t: Tensor | undefined, name: string): { v: Float32Array | Float64Array; idx?: Int32Array } | undefined => {
        if (!t) return undefined;
        const v = t.dtype === 'float64' ? (t.array as Float64Array) : t.toFloat32();
        if (t.size === inner && t.rank <= normDims.length) return { v };
        if (t.rank > normDims.length || t.dims.some((d, i) => d !== 1 && d !== normDims[normDims.length - t.rank + i])) {
          throw shapeError(node, `${name} [${t.dims}] does not broadcast to the normalised dims [${normDims}]`);
        }
        return { v, idx: broadcastIndex(t.dims, normDims) };
      };
      const S = per(scale, 'Scale'), B = per(bias, 'B');
      const wide = X.dtype === 'float64';
      const xd = wide ? (X.array as Float64Array) : X.toFloat32();
      const y = wide ? new Float64Array(X.size) : new Float32Array(X.size);
      const mean = new Float32Array(outer), inv = new Float32Array(outer);
      for (let r = 0; r < outer; r++) {
        const o = r * inner;
        let sum = 0;
        for (let i = 0; i < inner; i++) sum += xd[o + i];
        const mu = sum / inner;
        let sq = 0;
        for (let i = 0; i < inner; i++) sq += (xd[o + i] - mu) ** 2;
        const is = 1 / Math.sqrt(sq / inner + eps);
        mean[r] = mu;
        inv[r] = is;
        for (let i = 0; i < inner; i++) {
          const sc = S ? S.v[S.idx ? S.idx[i] : i] : 1;
          const bb = B ? B.v[B.idx ? B.idx[i] : i] : 0;
          y[o + i] = (xd[o + i] - mu) * is * sc + bb;
        }
      }
      const statDims = X.dims.map((d, i) => (i < axis ? d : 1));
      return [new Tensor(wide ? 'float64' : 'float32', X.dims, y), new Tensor('float32', statDims, mean), new Tensor('float32', statDims, inv)];
    },
  },
];
