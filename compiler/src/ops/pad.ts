import { allocData, gatherAxes, OUTSIDE } from '../kernels/copy';
import { firstStored, intsOf, normAxes, opError, storedValue, UNKNOWN_DIM } from '../kernels/op-args';
import { stridesOf } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpContext, OpDef, ValueFacts } from './registry';

type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';
const MODES: readonly string[] = ['constant', 'reflect', 'edge', 'wrap'];

function padMode(node: Node): PadMode {
  const m = node.str('mode', 'constant');
  if (!MODES.includes(m)) throw opError(node, 'E_MODEL_ATTR', `mode '${m}' is not one of ${MODES.join(', ')}`, 'use a Pad mode ONNX defines');
  return m as PadMode;
}

/**
 * Begin/end pads per axis of a rank-`rank` input: the `paddings` (opset 1) or `pads` (2–10)
 * attribute, else the `pads` input (11+) for the axes in `axes` (18+, default all).
 * Undefined when an input value is unknown (shape inference).
 */
function padsPerAxis(ctx: OpContext, rank: number, pads: number[] | undefined, axes: number[] | undefined): { begin: number[]; end: number[] } | undefined {
  const { node, opset } = ctx;
  let p = pads;
  if (opset < 11) p = node.ints(opset < 2 ? 'paddings' : 'pads') ?? node.ints('pads');
  if (!p) return undefined;
  const ax = axes ? normAxes(axes, rank, node) : Array.from({ length: rank }, (_, i) => i);
  if (p.length !== 2 * ax.length) {
    throw opError(node, 'E_MODEL_ATTR', `pads [${p}] has ${p.length} values for ${ax.length} axes`, 'give a begin and an end pad per padded axis');
  }
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  ax.forEach((a, i) => {
    begin[a] = p[i];
    end[a] = p[i + ax.length];
  });
  return { begin, end };
}

/** Input index for output position j along one axis, or OUTSIDE (constant fill). */
function axisSource(mode: PadMode, j: number, begin: number, lo: number, m: number): number {
  const i = j - Math.max(0, begin);
  if (i >= 0 && i < m) return lo + i;
  switch (mode) {
    case 'constant':
      return OUTSIDE;
    case 'edge':
      return lo + (i < 0 ? 0 : m - 1);
    case 'wrap':
      return lo + (((i % m) + m) % m);
    case 'reflect': {
      if (m === 1) return lo;
      const period = 2 * (m - 1);
      const r = ((i % period) + period) % period;
      return lo + (r < m ? r : period - r);
    }
  }
}

/**
 * Pad: constant / reflect / edge / wrap padding. Negative pads crop first, then the other
 * modes pad what is left. Passive: moves values (a constant pad must be representable at the
 * input scale, which the quantizer checks).
 */
function runPad(ctx: OpContext, [x, pads, value, axes]: (Tensor | undefined)[]): Tensor {
  const { node, opset } = ctx;
  const X = x!;
  const mode = padMode(node);
  const p = padsPerAxis(ctx, X.rank, intsOf(pads), opset >= 18 ? intsOf(axes) : undefined);
  if (!p) throw opError(node, 'E_MODEL_GRAPH', "input 'pads' is missing", 'give Pad its pads');
  let fill: unknown = undefined;
  if (mode === 'constant') {
    if (opset < 11) fill = storedValue(X.dtype, node.float('value', 0));
    else fill = value && value.size > 0 ? firstStored(value) : storedValue(X.dtype, 0);
    if (X.dtype === 'string' && fill === '0') fill = '';
  }
  const st = stridesOf(X.dims);
  const outDims: number[] = [];
  const tables = X.dims.map((dim, d) => {
    const b = p.begin[d];
    const e = p.end[d];
    const lo = Math.max(0, -b);
    const m = dim - lo - Math.max(0, -e);
    const len = Math.max(0, b) + Math.max(0, m) + Math.max(0, e);
    if ((m <= 0 && len > 0 && mode !== 'constant') || m < 0) {
      throw opError(node, 'E_MODEL_SHAPE', `cannot ${mode}-pad axis ${d} of size ${dim} with pads (${b}, ${e})`, 'negative pads may not remove more than the axis holds');
    }
    outDims.push(len);
    const t = new Float64Array(len);
    for (let j = 0; j < len; j++) {
      const s = axisSource(mode, j, b, lo, m);
      t[j] = s === OUTSIDE ? OUTSIDE : s * st[d];
    }
    return t;
  });
  const out = allocData(X.dtype, outDims.reduce((a, c) => a * c, 1));
  gatherAxes(X.data, tables, out, fill);
  return new Tensor(X.dtype, outDims, out);
}

function inferPad(ctx: OpContext, [x, pads, , axes]: (ValueFacts | undefined)[]): ValueFacts[] {
  const s = x?.shape;
  if (!s) return [{ dtype: x?.dtype }];
  const axesGiven = ctx.opset >= 18 && axes !== undefined;
  const axesVal = axesGiven ? intsOf(axes.value) : undefined;
  const p = axesGiven && !axesVal ? undefined : padsPerAxis(ctx, s.length, intsOf(pads?.value), axesVal);
  if (!p) {
    const padded = axesVal ? new Set(normAxes(axesVal, s.length, ctx.node)) : undefined;
    return [{ dtype: x.dtype, shape: s.map((d, i) => (padded && !padded.has(i) ? d : UNKNOWN_DIM)) }];
  }
  const out = s.map((d, i): Dim => {
    if (typeof d === 'number') return d + p.begin[i] + p.end[i];
    return p.begin[i] === 0 && p.end[i] === 0 ? d : UNKNOWN_DIM;
  });
  return [{ dtype: x.dtype, shape: out }];
}

export const ops: OpDef[] = [
  {
    type: 'Pad',
    quant: 'passive',
    nativeHalf: true,
    infer: inferPad,
    run: (ctx, inputs) => [runPad(ctx, inputs)],
  },
];
