import { allocData } from '../kernels/copy';
import { intsOf, opError } from '../kernels/op-args';
import { normAxis } from '../kernels/shape';
import { isBigInt } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- sums over number or bigint storage */

/**
 * CumSum: running sum along `axis`; `exclusive` starts each sum at 0 before the element,
 * `reverse` runs from the end. Sums accumulate in double (bigint for int64) and are stored in
 * the input type. CPU.
 */
export const ops: OpDef[] = [
  {
    type: 'CumSum',
    quant: 'cpu',
    sinceOpset: 11,
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: ({ node }, [x, a]) => {
      const X = x!;
      const axisVal = intsOf(a);
      if (!axisVal || axisVal.length !== 1) throw opError(node, 'E_MODEL_SHAPE', 'axis must be a scalar', 'give CumSum a scalar axis');
      const axis = normAxis(axisVal[0], X.rank, node);
      const exclusive = node.int('exclusive', 0) !== 0;
      const reverse = node.int('reverse', 0) !== 0;
      const len = X.dims[axis];
      let inner = 1;
      for (let d = axis + 1; d < X.rank; d++) inner *= X.dims[d];
      const outer = X.size / Math.max(1, len * inner);
      const src = X.data as any;
      const out = allocData(X.dtype, X.size) as any;
      const big = isBigInt(X.dtype);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let acc: any = big ? 0n : 0;
          for (let s = 0; s < len; s++) {
            const k = reverse ? len - 1 - s : s;
            const at = (o * len + k) * inner + i;
            if (exclusive) {
              out[at] = acc;
              acc += src[at];
            } else {
              acc += src[at];
              out[at] = acc;
            }
          }
        }
      }
      return [new Tensor(X.dtype, X.dims, out)];
    },
  },
];
