import { allocData, copyRange } from '../kernels/copy';
import { opError, UNKNOWN_DIM } from '../kernels/op-args';
import { normAxis } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/** Concat-1 defaulted the axis to 1; from opset 4 it is required. */
function concatAxis(node: Node, opset: number): number {
  const axis = node.int('axis');
  if (axis !== undefined) return axis;
  if (opset < 4) return 1;
  throw opError(node, 'E_MODEL_ATTR', "attribute 'axis' is missing", 're-export the model; Concat needs an axis');
}

function inferConcat(node: Node, opset: number, inputs: (ValueFacts | undefined)[]): ValueFacts[] {
  const dtype = inputs.find((f) => f?.dtype)?.dtype;
  const shapes = inputs.map((f) => f?.shape);
  const known = shapes.find((s) => s !== undefined);
  if (!known) return [{ dtype }];
  const rank = known.length;
  const axis = normAxis(concatAxis(node, opset), rank, node);
  const out: Dim[] = [];
  for (let d = 0; d < rank; d++) {
    if (d === axis) {
      const sizes = shapes.map((s) => s?.[d]);
      out.push(sizes.every((x) => typeof x === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : UNKNOWN_DIM);
    } else {
      // every input has the same size here: take a fixed one when any input knows it
      const fixed = shapes.find((s) => s !== undefined && typeof s[d] === 'number');
      out.push(fixed ? fixed[d] : known[d]);
    }
  }
  return [{ dtype, shape: out }];
}

/**
 * Concat: join tensors along `axis`. Active in the integer contract: the inputs' scales differ,
 * so each is requantised to the output scale.
 */
function runConcat(node: Node, opset: number, inputs: (Tensor | undefined)[]): Tensor {
  const ts = inputs.filter((t): t is Tensor => t !== undefined);
  if (ts.length === 0) throw opError(node, 'E_MODEL_GRAPH', 'has no inputs', 'give Concat at least one input');
  const first = ts[0];
  const rank = first.rank;
  const axis = normAxis(concatAxis(node, opset), rank, node);
  const dims = first.dims.slice();
  dims[axis] = 0;
  for (const t of ts) {
    const bad = t.rank !== rank || t.dims.some((d, i) => i !== axis && d !== first.dims[i]) || t.dtype !== first.dtype;
    if (bad) {
      throw opError(node, 'E_MODEL_SHAPE', `cannot concatenate ${t.dtype}[${t.dims}] with ${first.dtype}[${first.dims}] on axis ${axis}`, 'inputs must have the same dtype and equal sizes on every other axis');
    }
    dims[axis] += t.dims[axis];
  }
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= dims[d];
  let inner = 1;
  for (let d = axis + 1; d < rank; d++) inner *= dims[d];
  const out = allocData(first.dtype, outer * dims[axis] * inner);
  const row = dims[axis] * inner;
  let at = 0;
  for (const t of ts) {
    const chunk = t.dims[axis] * inner;
    const src = t.data;
    for (let o = 0; o < outer; o++) copyRange(src, o * chunk, out, o * row + at, chunk);
    at += chunk;
  }
  return new Tensor(first.dtype, dims, out);
}

export const ops: OpDef[] = [
  {
    type: 'Concat',
    quant: 'active',
    nativeHalf: true,
    infer: ({ node, opset }, inputs) => inferConcat(node, opset, inputs),
    run: ({ node, opset }, inputs) => [runConcat(node, opset, inputs)],
  },
];
