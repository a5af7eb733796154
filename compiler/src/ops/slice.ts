import { allocData, gatherAxes, stepTable } from '../kernels/copy';
import { intsOf, normAxes, opError, UNKNOWN_DIM } from '../kernels/op-args';
import { stridesOf } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

interface SliceSpec {
  starts: number[];
  ends: number[];
  /** undefined: 0 … starts.length-1 */
  axes?: number[];
  steps?: number[];
}

/** An end at least this large means "to the end" (INT_MAX / INT64_MAX from exporters). */
const TO_END = 2 ** 31 - 1;

/**
 * starts/ends/axes are attributes before opset 10 and inputs (with steps) from 10 on.
 * `known` is false when an input is given but its value is not known.
 */
function sliceSpec(node: Node, opset: number, ins: (number[] | undefined)[], given: boolean[]): { spec?: SliceSpec; known: boolean } {
  if (opset < 10) {
    const starts = node.ints('starts');
    const ends = node.ints('ends');
    if (!starts || !ends) throw opError(node, 'E_MODEL_ATTR', "attributes 'starts' and 'ends' are required", 're-export the model');
    return { spec: { starts, ends, axes: node.ints('axes') }, known: true };
  }
  const [starts, ends, axes, steps] = ins;
  if (!starts || !ends || (given[2] && !axes) || (given[3] && !steps)) return { known: false };
  return { spec: { starts, ends, axes, steps }, known: true };
}

interface AxisRange {
  axis: number;
  start: number;
  step: number;
  count: number;
}

function checkSpec(node: Node, spec: SliceSpec, rank: number): number[] {
  const n = spec.starts.length;
  const axes = normAxes(spec.axes ?? Array.from({ length: n }, (_, i) => i), rank, node);
  const lens = [spec.ends.length, axes.length, spec.steps?.length ?? n];
  if (lens.some((l) => l !== n)) {
    throw opError(node, 'E_MODEL_ATTR', `starts, ends, axes and steps have different lengths (${n}, ${lens.join(', ')})`, 'give one value per sliced axis in each');
  }
  if (spec.steps?.some((s) => s === 0)) throw opError(node, 'E_MODEL_ATTR', 'a step is 0', 'steps must be non-zero');
  return axes;
}

/** The ONNX clamping rules: negative positions count from the end, then clamp per the step's sign. */
export function sliceAxis(start: number, end: number, step: number, dim: number): { start: number; count: number } {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
}

function ranges(node: Node, spec: SliceSpec, dims: readonly number[]): AxisRange[] {
  const axes = checkSpec(node, spec, dims.length);
  return axes.map((axis, i) => {
    const step = spec.steps ? spec.steps[i] : 1;
    return { axis, step, ...sliceAxis(spec.starts[i], spec.ends[i], step, dims[axis]) };
  });
}

function inferSlice(node: Node, opset: number, inputs: (ValueFacts | undefined)[]): ValueFacts[] {
  const [x] = inputs;
  const shape = x?.shape;
  if (!shape) return [{ dtype: x?.dtype }];
  const { spec } = sliceSpec(
    node,
    opset,
    inputs.slice(1).map((f) => intsOf(f?.value)),
    inputs.slice(1).map((f) => f !== undefined),
  );
  if (!spec) {
    // which axes are sliced is known when `axes` is; their sizes are not
    const axesFact = inputs[3];
    const axes = axesFact ? intsOf(axesFact.value) : undefined;
    if (!axes) return [{ dtype: x.dtype, shape: shape.map(() => UNKNOWN_DIM) }];
    const sliced = new Set(normAxes(axes, shape.length, node));
    return [{ dtype: x.dtype, shape: shape.map((d, i) => (sliced.has(i) ? UNKNOWN_DIM : d)) }];
  }
  const axes = checkSpec(node, spec, shape.length);
  const out: Dim[] = shape.slice();
  axes.forEach((axis, i) => {
    const d = shape[axis];
    const step = spec.steps ? spec.steps[i] : 1;
    if (typeof d === 'number') out[axis] = sliceAxis(spec.starts[i], spec.ends[i], step, d).count;
    else out[axis] = spec.starts[i] === 0 && step === 1 && spec.ends[i] >= TO_END ? d : UNKNOWN_DIM;
  });
  return [{ dtype: x.dtype, shape: out }];
}

/** Slice: strided sub-block (negative steps walk backwards). Passive: selects values. */
function runSlice(node: Node, opset: number, inputs: (Tensor | undefined)[]): Tensor {
  const X = inputs[0]!;
  const { spec } = sliceSpec(
    node,
    opset,
    inputs.slice(1).map((t) => intsOf(t)),
    inputs.slice(1).map((t) => t !== undefined),
  );
  const st = stridesOf(X.dims);
  const start = X.dims.map(() => 0);
  const step = X.dims.map(() => 1);
  const count = X.dims.slice();
  for (const r of ranges(node, spec!, X.dims)) {
    start[r.axis] = r.start;
    step[r.axis] = r.step;
    count[r.axis] = r.count;
  }
  const out = allocData(X.dtype, count.reduce((a, b) => a * b, 1));
  gatherAxes(X.data, count.map((c, d) => stepTable(c, start[d], step[d], st[d])), out);
  return new Tensor(X.dtype, count, out);
}

export const ops: OpDef[] = [
  {
    type: 'Slice',
    quant: 'passive',
    nativeHalf: true,
    infer: ({ node, opset }, inputs) => inferSlice(node, opset, inputs),
    run: ({ node, opset }, inputs) => [runSlice(node, opset, inputs)],
  },
];
