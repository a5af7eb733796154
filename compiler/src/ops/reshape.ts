import { intsOf, normAxes, opError, staticSize, UNKNOWN_DIM } from '../kernels/op-args';
import { normAxis } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, OpContext, ValueFacts } from './registry';

/**
 * Reshape, Flatten, Squeeze, Unsqueeze: new dims over the same elements. The kernels share the
 * input's storage (kernels never write their inputs). Passive in the integer contract.
 */

/**
 * Reshape's target dims: 0 copies the input dim (unless allowzero), -1 takes what is left.
 * Works on symbolic dims too: -1 is computed when the symbols on both sides cancel out.
 */
export function reshapeDims(node: Node, target: readonly number[], input: readonly Dim[], allowzero: boolean): Dim[] {
  const out: Dim[] = [];
  let infer = -1;
  target.forEach((v, i) => {
    if (v === -1) {
      if (infer >= 0) throw opError(node, 'E_MODEL_SHAPE', `shape [${target}] has more than one -1`, 'only one dimension can be inferred');
      infer = i;
      out.push(UNKNOWN_DIM);
    } else if (v === 0 && !allowzero) {
      if (i >= input.length) throw opError(node, 'E_MODEL_SHAPE', `shape [${target}] copies dim ${i} (0) of a rank-${input.length} input`, 'use 0 only for existing input dims');
      out.push(input[i]);
    } else if (v < 0) {
      throw opError(node, 'E_MODEL_SHAPE', `shape [${target}] has the invalid size ${v}`, 'sizes are >= 0, or -1 for the inferred one');
    } else {
      out.push(v);
    }
  });
  if (allowzero && infer >= 0 && target.includes(0)) {
    throw opError(node, 'E_MODEL_SHAPE', `shape [${target}] has both 0 and -1 with allowzero=1`, 'the -1 cannot be inferred next to a literal 0');
  }
  // symbols present on both sides cancel; fixed sizes divide
  const symbolsIn = input.filter((d) => typeof d !== 'number') as string[];
  let numIn = 1;
  for (const d of input) if (typeof d === 'number') numIn *= d;
  let numOut = 1;
  const symbolsOut: string[] = [];
  out.forEach((d, i) => {
    if (i === infer) return;
    if (typeof d === 'number') numOut *= d;
    else symbolsOut.push(d);
  });
  const rest = symbolsIn.slice();
  let cancels = !symbolsIn.includes(UNKNOWN_DIM as string);
  for (const s of symbolsOut) {
    const k = rest.indexOf(s);
    if (k < 0 || s === UNKNOWN_DIM) cancels = false;
    else rest.splice(k, 1);
  }
  if (infer >= 0) {
    if (!cancels || rest.length > 0) return out; // the inferred dim stays unknown
    if (numOut === 0 || numIn % numOut !== 0) {
      throw opError(node, 'E_MODEL_SHAPE', `cannot reshape [${input}] to [${target}]`, 'the element count must stay the same');
    }
    out[infer] = numIn / numOut;
  } else if (cancels && rest.length === 0 && numIn !== numOut) {
    throw opError(node, 'E_MODEL_SHAPE', `cannot reshape [${input}] (${numIn} elements) to [${target}] (${numOut})`, 'the element count must stay the same');
  }
  return out;
}

function reshapeTarget({ node, opset }: OpContext, shape: number[] | undefined): number[] | undefined {
  if (opset < 5) {
    const s = node.ints('shape');
    if (!s) throw opError(node, 'E_MODEL_ATTR', "attribute 'shape' is missing", 're-export the model');
    return s;
  }
  return shape;
}

function runReshape(ctx: OpContext, x: Tensor, shape: Tensor | undefined): Tensor {
  const target = reshapeTarget(ctx, intsOf(shape));
  if (!target) throw opError(ctx.node, 'E_MODEL_GRAPH', "input 'shape' is missing", 'give Reshape a shape');
  const dims = reshapeDims(ctx.node, target, x.dims, ctx.opset >= 14 && ctx.node.int('allowzero', 0) === 1) as number[];
  return x.reshape(dims);
}

function inferReshape(ctx: OpContext, [x, s]: (ValueFacts | undefined)[]): ValueFacts[] {
  const target = reshapeTarget(ctx, intsOf(s?.value));
  if (!target) {
    const len = s?.shape?.[0];
    return [{ dtype: x?.dtype, shape: typeof len === 'number' ? Array.from({ length: len }, () => UNKNOWN_DIM) : undefined }];
  }
  const allowzero = ctx.opset >= 14 && ctx.node.int('allowzero', 0) === 1;
  if (!x?.shape) {
    // without the input shape, only sizes that do not depend on it are known
    return [{ dtype: x?.dtype, shape: target.map((v) => (v > 0 || (v === 0 && allowzero) ? v : UNKNOWN_DIM)) }];
  }
  return [{ dtype: x.dtype, shape: reshapeDims(ctx.node, target, x.shape, allowzero) }];
}

function flattenDims(node: Node, dims: readonly Dim[]): Dim[] {
  const r = dims.length;
  let axis = node.int('axis', 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) throw opError(node, 'E_MODEL_ATTR', `axis ${node.int('axis', 1)} is out of range for rank ${r}`, `use an axis in [-${r}, ${r}]`);
  const part = (ds: readonly Dim[]): Dim => (ds.length === 1 ? ds[0] : staticSize(ds) ?? UNKNOWN_DIM);
  return [part(dims.slice(0, axis)), part(dims.slice(axis))];
}

function squeezeAxes(ctx: OpContext, axes: number[] | undefined, given: boolean): number[] | undefined | 'unknown' {
  if (ctx.opset < 13) return ctx.node.ints('axes');
  if (given && !axes) return 'unknown';
  return axes;
}

function squeezeDims(node: Node, dims: readonly Dim[], axes: number[] | undefined): Dim[] | undefined {
  if (!axes) {
    if (dims.some((d) => typeof d !== 'number')) return undefined; // a symbol might be 1
    return dims.filter((d) => d !== 1);
  }
  const drop = new Set(normAxes(axes, dims.length, node));
  for (const a of drop) {
    if (typeof dims[a] === 'number' && dims[a] !== 1) {
      throw opError(node, 'E_MODEL_SHAPE', `cannot squeeze axis ${a} of size ${dims[a]}`, 'only axes of size 1 can be squeezed');
    }
  }
  return dims.filter((_, i) => !drop.has(i));
}

function unsqueezeAxes(ctx: OpContext, axes: number[] | undefined): number[] | undefined {
  if (ctx.opset < 13) {
    const a = ctx.node.ints('axes');
    if (!a) throw opError(ctx.node, 'E_MODEL_ATTR', "attribute 'axes' is missing", 're-export the model');
    return a;
  }
  return axes;
}

function unsqueezeDims(node: Node, dims: readonly Dim[], axes: number[]): Dim[] {
  const r = dims.length + axes.length;
  const ins = new Set(normAxes(axes, r, node));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) out.push(ins.has(i) ? 1 : dims[k++]);
  return out;
}

export const ops: OpDef[] = [
  {
    type: 'Reshape',
    quant: 'passive',
    nativeHalf: true,
    infer: inferReshape,
    run: (ctx, [x, s]) => [runReshape(ctx, x!, s)],
  },
  {
    type: 'Flatten',
    quant: 'passive',
    nativeHalf: true,
    infer: ({ node }, [x]) => [{ dtype: x?.dtype, shape: x?.shape ? flattenDims(node, x.shape) : undefined }],
    run: ({ node }, [x]) => [x!.reshape(flattenDims(node, x!.dims) as number[])],
  },
  {
    type: 'Squeeze',
    quant: 'passive',
    nativeHalf: true,
    infer: (ctx, [x, a]) => {
      const axes = squeezeAxes(ctx, intsOf(a?.value), a !== undefined);
      if (axes === 'unknown' || !x?.shape) return [{ dtype: x?.dtype }];
      return [{ dtype: x.dtype, shape: squeezeDims(ctx.node, x.shape, axes) }];
    },
    run: (ctx, [x, a]) => {
      const axes = squeezeAxes(ctx, intsOf(a), a !== undefined);
      return [x!.reshape(squeezeDims(ctx.node, x!.dims, axes === 'unknown' ? undefined : axes) as number[])];
    },
  },
  {
    type: 'Unsqueeze',
    quant: 'passive',
    nativeHalf: true,
    infer: (ctx, [x, a]) => {
      const axes = unsqueezeAxes(ctx, intsOf(a?.value));
      if (!axes) {
        const n = a?.shape?.[0];
        const r = x?.shape && typeof n === 'number' ? x.shape.length + n : undefined;
        return [{ dtype: x?.dtype, shape: r === undefined ? undefined : Array.from({ length: r }, () => UNKNOWN_DIM) }];
      }
      return [{ dtype: x?.dtype, shape: x?.shape ? unsqueezeDims(ctx.node, x.shape, axes) : undefined }];
    },
    run: (ctx, [x, a]) => {
      const axes = unsqueezeAxes(ctx, intsOf(a));
      if (!axes) throw opError(ctx.node, 'E_MODEL_GRAPH', "input 'axes' is missing", 'give Unsqueeze its axes');
      return [x!.reshape(unsqueezeDims(ctx.node, x!.dims, axes) as number[])];
    },
  },
];
