import { PtqError } from '../errors';
import { binaryOp } from '../kernels/elementwise';
import { requireSameType } from '../kernels/elementwise-ext';
import { isBigInt } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/**
 * The slope as it broadcasts to X. ONNX broadcasts it unidirectionally (numpy rules, output
 * shape = X's shape). Before opset 7 a 1-D slope of C values is one value per channel
 * (axis 1), as Caffe's PReLU: it is reshaped to [C, 1, …] there.
 */
export function preluSlope(node: Node, opset: number, x: Tensor, slope: Tensor): Tensor {
  const r = x.rank;
  if (opset < 7 && slope.rank === 1 && slope.size > 1 && r >= 2 && slope.dims[0] === x.dims[1]) {
    return slope.reshape([slope.dims[0], ...new Array<number>(r - 2).fill(1)]);
  }
  const fits = slope.rank <= r && slope.dims.every((d, i) => d === 1 || d === x.dims[r - slope.rank + i]);
  if (fits) return slope;
  throw new PtqError('E_MODEL_SHAPE', `node '${node.label}' (PRelu): slope of shape [${slope.dims}] does not broadcast to input [${x.dims}]`, {
    subject: node.label,
    fix: 'give the slope a shape that broadcasts to the input, e.g. [C, 1, 1] for NCHW',
  });
}

/**
 * PRelu: y = x < 0 ? slope·x : x. 'active' in the integer contract: the slope is a per-channel
 * weight and the negative side is requantised (HzPRelu), unlike LeakyRelu's single alpha table.
 */
export const ops: OpDef[] = [
  {
    type: 'PRelu',
    quant: 'active',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: ({ node, opset }, [x, s]) => {
      const X = x as Tensor;
      requireSameType(node, [X, s]);
      const slope = preluSlope(node, opset, X, s as Tensor);
      const out = isBigInt(X.dtype)
        ? binaryOp(X, slope, X.dtype, (v: bigint, a: bigint) => (v < 0n ? v * a : v), node)
        : binaryOp(X, slope, X.dtype, (v: number, a: number) => (v < 0 ? v * a : v), node);
      return [out];
    },
  },
];
