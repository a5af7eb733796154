import { allocData, copyRange } from '../kernels/copy';
import { intsOf, opError, UNKNOWN_DIM } from '../kernels/op-args';
import { normAxis } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * The part sizes along the axis: the `split` input (opset 1 and ≥ 13) or attribute (2–12), else
 * `num_outputs` parts of ceil(size / n) with a smaller last one (opset 18), else equal parts.
 * Returns undefined when they depend on a value not known (shape inference).
 */
function partSizes(node: Node, opset: number, splitInput: number[] | undefined, splitGiven: boolean, size: Dim): number[] | undefined {
  const n = node.outputs.length;
  let split = splitInput;
  if (!split && opset < 13) split = node.ints('split');
  if (split) {
    if (split.length !== n) throw opError(node, 'E_MODEL_ATTR', `split [${split}] has ${split.length} parts for ${n} outputs`, 'give one size per output');
    if (split.some((s) => s < 0)) throw opError(node, 'E_MODEL_ATTR', `split [${split}] has a negative size`, 'sizes must be >= 0');
    if (typeof size === 'number' && split.reduce((a, b) => a + b, 0) !== size) {
      throw opError(node, 'E_MODEL_SHAPE', `split [${split}] does not add up to the axis size ${size}`, 'the sizes must sum to the size of the split axis');
    }
    return split;
  }
  if (splitGiven || typeof size !== 'number') return undefined;
  const num = opset >= 18 ? node.int('num_outputs') : undefined;
  if (num !== undefined && num !== n) throw opError(node, 'E_MODEL_ATTR', `num_outputs ${num} but the node has ${n} outputs`, 'make num_outputs equal to the number of outputs');
  if (size % n !== 0 && opset < 18) {
    throw opError(node, 'E_MODEL_SHAPE', `axis size ${size} does not split into ${n} equal parts`, "give the 'split' sizes explicitly");
  }
  const chunk = Math.ceil(size / n);
  return Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, size - i * chunk)));
}

function inferSplit(node: Node, opset: number, [x, s]: (ValueFacts | undefined)[]): ValueFacts[] {
  const n = node.outputs.length;
  if (!x?.shape) return Array.from({ length: n }, () => ({ dtype: x?.dtype }));
  const shape = x.shape;
  const axis = normAxis(node.int('axis', 0), shape.length, node);
  const sizes = partSizes(node, opset, intsOf(s?.value), s !== undefined, shape[axis]);
  return Array.from({ length: n }, (_, i) => {
    const d = shape.slice();
    d[axis] = sizes ? sizes[i] : UNKNOWN_DIM;
    return { dtype: x.dtype, shape: d };
  });
}

/** Split: cut a tensor along `axis` into consecutive parts. Passive: every part keeps the input scale. */
function runSplit(node: Node, opset: number, [x, s]: (Tensor | undefined)[]): Tensor[] {
  const X = x!;
  const axis = normAxis(node.int('axis', 0), X.rank, node);
  const sizes = partSizes(node, opset, intsOf(s), false, X.dims[axis]) as number[];
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= X.dims[d];
  let inner = 1;
  for (let d = axis + 1; d < X.rank; d++) inner *= X.dims[d];
  const row = X.dims[axis] * inner;
  let at = 0;
  return sizes.map((len) => {
    const dims = X.dims.slice();
    dims[axis] = len;
    const chunk = len * inner;
    const out = allocData(X.dtype, outer * chunk);
    for (let o = 0; o < outer; o++) copyRange(X.data, o * row + at, out, o * chunk, chunk);
    at += chunk;
    return new Tensor(X.dtype, dims, out);
  });
}

export const ops: OpDef[] = [
  {
    type: 'Split',
    quant: 'passive',
    nativeHalf: true,
    infer: ({ node, opset }, inputs) => inferSplit(node, opset, inputs),
    run: ({ node, opset }, inputs) => runSplit(node, opset, inputs),
  },
];
