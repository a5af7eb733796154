import { arrayCtor } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { gemmPacked, matmulOutputDims, matmulPlanOrThrow, packRows } from '../kernels/igemm';
import { expectQ8, matrixParam, matrixParamSlice, required, scalarParam } from '../kernels/qparams';
import { qRange, requantizeBlock, requantMultiplier } from '../kernels/requant';
import { OpDef, ValueFacts } from './registry';

/**
 * QLinearMatMul: numpy-broadcast batched int8/uint8 matmul, a per tensor or per row, b per
 * tensor or per column, int32 accumulation, float-scale requantisation (kernels/requant.ts).
 */

export const ops: OpDef[] = [
  {
    type: 'QLinearMatMul',
    sinceOpset: 10,
    quant: 'active',
    infer: (_ctx, ins): ValueFacts[] => [{ dtype: ins[7]?.dtype ?? ins[0]?.dtype, shape: matmulOutputDims(ins[0]?.shape, ins[3]?.shape) }],
    run: ({ node }, [aT, aScaleT, aZpT, bT, bScaleT, bZpT, yScaleT, yZpT]) => {
      const a = required(node, aT, 'a');
      const b = required(node, bT, 'b');
      expectQ8(node, a, 'a');
      expectQ8(node, b, 'b');
      const yDtype = yZpT?.dtype ?? a.dtype;
      expectQ8(node, yZpT ?? a, 'y_zero_point');
      const plan = matmulPlanOrThrow(node, a.dims, b.dims);
      const { M, N, K } = plan;
      const aScale = matrixParam(node, required(node, aScaleT, 'a_scale'), a.dims, 'row', 'a_scale');
      const aZp = matrixParam(node, aZpT, a.dims, 'row', 'a_zero_point');
      const bScale = matrixParam(node, required(node, bScaleT, 'b_scale'), b.dims, 'col', 'b_scale');
      const bZp = matrixParam(node, bZpT, b.dims, 'col', 'b_zero_point');
      const sOut = scalarParam(node, yScaleT, 'y_scale');
      const yZp = scalarParam(node, yZpT, 'y_zero_point', 0);
      const [lo, hi] = qRange(yDtype);
      const nb = plan.aOffsets.length;
      const out = new (arrayCtor(yDtype))(nb * M * N) as Int8Array;
      const pa = new Int16Array(M * K);
      const pb = new Int16Array(N * K);
      const acc = new Int32Array(M * N);
      const mult = new Float32Array(N);
      const ad = a.data as Int8Array;
      const bd = b.data as Int8Array;
      for (let i = 0; i < nb; i++) {
        const ai = plan.aBatch[i];
        const bi = plan.bBatch[i];
        packRows(ad, plan.aOffsets[i], M, K, K, 1, matrixParamSlice(aZp, ai), pa);
        packRows(bd, plan.bOffsets[i], N, K, 1, N, matrixParamSlice(bZp, bi), pb);
        gemmPacked(M, N, K, pa, 0, pb, 0, acc, 0, N);
        const sa = matrixParamSlice(aScale, ai);
        const sb = matrixParamSlice(bScale, bi);
        for (let m = 0; m < M; m++) {
          const s = sa[sa.length > 1 ? m : 0];
          if (m === 0 || sa.length > 1) for (let n = 0; n < sb.length; n++) mult[n] = requantMultiplier(s, sb[n], sOut);
          requantizeBlock(acc, m * N, N, 1, N, 'col', undefined, sb.length > 1 ? mult : mult.subarray(0, 1), yZp, lo, hi, out, (i * M + m) * N, N);
        }
      }
      return [new Tensor(yDtype, plan.dims, out)];
    },
  },
];
