import { PtqError } from '../errors';
import { isFloat, NumericArray } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { softmaxKernel } from '../kernels/reduction';
import { OpContext, OpDef, ValueFacts } from './registry';

/**
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (opset 12), for models exported
 * with their training head. Input [N, C, d1..dk], target [N, d1..dk] (int32/int64), optional
 * weight [C]. Per element: loss = -input[n, t, d] * weight[t], 0 where t == ignore_index.
 * reduction 'none' keeps the target's shape, 'sum' adds up, 'mean' (default) divides the sum
 * by the total weight of the elements not ignored. Accumulation is in double. CPU only.
 */
function checkShapes(node: Node, x: Tensor, target: Tensor, weight: Tensor | undefined): void {
  const bad = (what: string): PtqError =>
    new PtqError('E_MODEL_SHAPE', `node '${node.label}' (${node.opType}): ${what}`, {
      subject: node.label,
      fix: 'check the input shapes given to the model (input_shape)',
    });
  if (!isFloat(x.dtype)) throw new PtqError('E_MODEL_DTYPE', `node '${node.label}' (${node.opType}): input of type ${x.dtype} is not supported, a float type is required`, { subject: node.label, fix: 'insert a Cast to float before the node' });
  if (x.rank < 2) throw bad(`input has shape [${x.dims.join(',')}], at least [N, C] is required`);
  const want = [x.dims[0], ...x.dims.slice(2)];
  if (target.dims.join(',') !== want.join(',')) throw bad(`target has shape [${target.dims.join(',')}], [${want.join(',')}] is required for input [${x.dims.join(',')}]`);
  if (weight && (weight.rank !== 1 || weight.dims[0] !== x.dims[1])) throw bad(`weight has shape [${weight.dims.join(',')}], [${x.dims[1]}] is required`);
}

/** The NLL of log-probabilities `logp` laid out [N, C, D] (D = product of the spatial dims). */
function nll(node: Node, logp: NumericArray, dims: number[], target: Tensor, weight: Tensor | undefined, dtype: Tensor['dtype']): Tensor {
  const reduction = node.str('reduction', 'mean');
  if (reduction !== 'none' && reduction !== 'sum' && reduction !== 'mean') {
    throw new PtqError('E_MODEL_ATTR', `node '${node.label}' (${node.opType}): reduction '${reduction}' is not one of none, sum, mean`, {
      subject: node.label,
      fix: "use reduction 'none', 'sum' or 'mean'",
    });
  }
  const ignore = node.int('ignore_index');
  const N = dims[0];
  const C = dims[1];
  const D = dims.length > 2 ? dims.slice(2).reduce((a, b) => a * b, 1) : 1;
  const t = target.toNumbers();
  const w = weight ? weight.toNumbers() : undefined;
  const perElem = reduction === 'none' ? new Tensor(dtype, target.dims) : undefined;
  const res = perElem?.array as NumericArray | undefined;
  let sum = 0;
  let wsum = 0;
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < D; d++) {
      const p = n * D + d;
      const c = t[p];
      if (c === ignore) {
        if (res) res[p] = 0;
        continue;
      }
      if (!(c >= 0 && c < C)) {
        throw new PtqError('E_MODEL_VALUE', `node '${node.label}' (${node.opType}): target class ${c} is outside [0, ${C - 1}]`, {
          subject: node.label,
          fix: 'give class indices below the number of classes, or set ignore_index to the value used for padding',
        });
      }
      const wc = w ? w[c] : 1;
      const l = -logp[(n * C + c) * D + d] * wc;
      if (res) res[p] = l;
      sum += l;
      wsum += wc;
    }
  }
  if (perElem) return perElem;
  const out = new Tensor(dtype, []);
  (out.array as NumericArray)[0] = reduction === 'sum' ? sum : sum / wsum;
  return out;
}

function lossShape(node: Node, target: ValueFacts | undefined): Dim[] | undefined {
  return node.str('reduction', 'mean') === 'none' ? target?.shape : [];
}

export const ops: OpDef[] = [
  {
    type: 'NegativeLogLikelihoodLoss',
    sinceOpset: 12,
    quant: 'cpu',
    infer: ({ node }, [x, target]) => [{ dtype: x?.dtype, shape: lossShape(node, target) }],
    run: ({ node }, [x, target, weight]) => {
      checkShapes(node, x!, target!, weight);
      return [nll(node, x!.array as NumericArray, x!.dims, target!, weight, x!.dtype)];
    },
  },
  {
    type: 'SoftmaxCrossEntropyLoss',
    sinceOpset: 12,
    quant: 'cpu',
    infer: ({ node }, [x, target]) => [
      { dtype: x?.dtype, shape: lossShape(node, target) },
      { dtype: x?.dtype, shape: x?.shape },
    ],
    run: ({ node }: OpContext, [x, target, weight]) => {
      checkShapes(node, x!, target!, weight);
      const dims = x!.dims;
      const logProb = new Tensor(x!.dtype, dims);
      const D = dims.slice(2).reduce((a, b) => a * b, 1);
      softmaxKernel(x!.array as NumericArray, logProb.array as NumericArray, { outer: dims[0], n: dims[1], inner: D }, 'log');
      return [nll(node, logProb.array as NumericArray, dims, target!, weight, x!.dtype), logProb];
    },
  },
];
