import { PtqError } from '../errors';
import { isFloat, NumericArray } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { normAxis } from '../kernels/shape';
import { coerce2D, softmaxKernel, SoftmaxMode, splitAt } from '../kernels/reduction';
import { OpContext, OpDef } from './registry';

/**
 * Softmax, LogSoftmax, Hardmax. Before opset 13 the input is coerced to 2-D at `axis`
 * (default 1) and the operation runs over the whole second dimension; from opset 13 it runs
 * along the single axis `axis` (default -1). They stay on the CPU in the integer contract.
 */
function softmaxOp(type: string, mode: SoftmaxMode): OpDef {
  return {
    type,
    quant: 'cpu',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: (ctx, [x]) => [softmax(ctx, x!, mode)],
  };
}

export function softmax({ node, opset }: OpContext, x: Tensor, mode: SoftmaxMode): Tensor {
  if (!isFloat(x.dtype)) {
    throw new PtqError('E_MODEL_DTYPE', `node '${node.label}' (${node.opType}): input of type ${x.dtype} is not supported, a float type is required`, {
      subject: node.label,
      fix: 'insert a Cast to float before the node',
    });
  }
  const out = new Tensor(x.dtype, x.dims);
  if (x.size === 0) return out;
  const rank = x.rank;
  const legacy = opset < 13;
  const axis = rank === 0 ? 0 : normAxis(node.int('axis', legacy ? 1 : -1), rank, node);
  const split = legacy ? coerce2D(x.dims, axis) : splitAt(x.dims, axis);
  // JS arithmetic is double: each float32 result is rounded once, when stored
  softmaxKernel(x.array as NumericArray, out.array as NumericArray, split, mode);
  return out;
}

export const ops: OpDef[] = [softmaxOp('Softmax', 'softmax'), softmaxOp('LogSoftmax', 'log'), softmaxOp('Hardmax', 'hard')];
