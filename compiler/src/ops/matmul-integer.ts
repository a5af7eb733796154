import { Tensor } from '../onnx/tensor';
import { gemmPacked, matmulOutputDims, matmulPlanOrThrow, packRows } from '../kernels/igemm';
import { expectQ8, matrixParam, matrixParamSlice, required } from '../kernels/qparams';
import { OpDef, ValueFacts } from './registry';

/**
 * MatMulInteger: int32 y = (A − a_zero_point)(B − b_zero_point), numpy-broadcast batches;
 * a_zero_point per tensor or per row of A, b_zero_point per tensor or per column of B.
 */
export const ops: OpDef[] = [
  {
    type: 'MatMulInteger',
    sinceOpset: 10,
    quant: 'active',
    infer: (_ctx, ins): ValueFacts[] => [{ dtype: 'int32', shape: matmulOutputDims(ins[0]?.shape, ins[1]?.shape) }],
    run: ({ node }, [aT, bT, aZpT, bZpT]) => {
      const a = required(node, aT, 'A');
      const b = required(node, bT, 'B');
      expectQ8(node, a, 'A');
      expectQ8(node, b, 'B');
      const plan = matmulPlanOrThrow(node, a.dims, b.dims);
      const { M, N, K } = plan;
      const aZp = matrixParam(node, aZpT, a.dims, 'row', 'a_zero_point');
      const bZp = matrixParam(node, bZpT, b.dims, 'col', 'b_zero_point');
      const nb = plan.aOffsets.length;
      const out = new Int32Array(nb * M * N);
      const pa = new Int16Array(M * K);
      const pb = new Int16Array(N * K);
      for (let i = 0; i < nb; i++) {
        packRows(a.data as Int8Array, plan.aOffsets[i], M, K, K, 1, matrixParamSlice(aZp, plan.aBatch[i]), pa);
        packRows(b.data as Int8Array, plan.bOffsets[i], N, K, 1, N, matrixParamSlice(bZp, plan.bBatch[i]), pb);
        gemmPacked(M, N, K, pa, 0, pb, 0, out, i * M * N, N);
      }
      return [new Tensor('int32', plan.dims, out)];
    },
  },
];
