import { allocData, gatherAxes, OUTSIDE } from '../kernels/copy';
import { normAxes, opError, storedValue, UNKNOWN_DIM } from '../kernels/op-args';
import { stridesOf } from '../kernels/shape';
import { DType, isBigInt, isFloat } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { OpContext, OpDef, ValueFacts } from './registry';

/**
 * Resize (opsets 10–19) and the deprecated Upsample (7–9).
 *
 * Nearest mode only picks input elements, so it runs on the stored elements of any dtype (one
 * gather with per-axis index tables). Linear and cubic are separable: one 1-D pass per resized
 * axis with precomputed taps (index + weight per output position), in double precision.
 *
 * Quantisation role: one OpDef carries one role, and Resize is registered 'passive' — exact for
 * nearest (the common case in detection necks). Linear/cubic Resize interpolates and would
 * requantise ('active'); the quantizer has to look at `mode` for those.
 */

type Mode = 'nearest' | 'linear' | 'cubic';

const COORD_MODES = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn', 'tf_crop_and_resize'];
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil', 'simple'];

interface Plan {
  mode: Mode;
  coord: string;
  /** round_prefer_floor, …, or 'simple' (Resize-10 / Upsample: floor when enlarging, ceil when shrinking) */
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  antialias: boolean;
  extrapolation: number;
  /** per axis of the input */
  scales: number[];
  outDims: number[];
  /** unrounded output lengths (in · scale, or the given sizes) that the coordinate formulas use */
  lengths: number[];
  roiStart: number[];
  roiEnd: number[];
}

interface Attrs {
  mode: Mode;
  coord: string;
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  antialias: boolean;
  extrapolation: number;
  policy: string;
  axes?: number[];
}

function readAttrs(node: Node, opset: number, legacy: boolean): Attrs {
  let mode = node.str('mode', 'nearest');
  if (mode === 'bilinear' || mode === 'trilinear') mode = 'linear';
  if (mode !== 'nearest' && mode !== 'linear' && (mode !== 'cubic' || legacy)) {
    throw opError(node, 'E_MODEL_ATTR', `mode '${mode}' is not supported`, legacy ? 'use nearest or linear' : 'use nearest, linear or cubic');
  }
  // Upsample and Resize-10 have no coordinate attributes: asymmetric, "simple" nearest rounding
  const coord = legacy ? 'asymmetric' : node.str('coordinate_transformation_mode', 'half_pixel');
  if (!COORD_MODES.includes(coord)) throw opError(node, 'E_MODEL_ATTR', `coordinate_transformation_mode '${coord}' is unknown`, `use one of ${COORD_MODES.join(', ')}`);
  const nearest = legacy ? 'simple' : node.str('nearest_mode', 'round_prefer_floor');
  if (!NEAREST_MODES.includes(nearest)) throw opError(node, 'E_MODEL_ATTR', `nearest_mode '${nearest}' is unknown`, 'use round_prefer_floor, round_prefer_ceil, floor or ceil');
  const policy = opset >= 18 ? node.str('keep_aspect_ratio_policy', 'stretch') : 'stretch';
  if (!['stretch', 'not_larger', 'not_smaller'].includes(policy)) {
    throw opError(node, 'E_MODEL_ATTR', `keep_aspect_ratio_policy '${policy}' is unknown`, 'use stretch, not_larger or not_smaller');
  }
  return {
    mode: mode as Mode,
    coord,
    nearest,
    cubicA: node.float('cubic_coeff_a', -0.75),
    excludeOutside: node.int('exclude_outside', 0) !== 0,
    antialias: opset >= 18 && node.int('antialias', 0) !== 0,
    extrapolation: node.float('extrapolation_value', 0),
    policy,
    axes: opset >= 18 ? node.ints('axes') : undefined,
  };
}

/** The inputs that decide the output size: roi, scales, sizes (absent or empty = not given). */
interface SizeInputs {
  roi?: number[];
  scales?: number[];
  sizes?: number[];
}

/** Which input slot holds what: Upsample-9 / Resize-10 (X, scales), Resize-11+ (X, roi, scales, sizes). */
function sizeInputSlots(type: string, opset: number): { roi?: number; scales?: number; sizes?: number } {
  if (type === 'Upsample') return opset >= 9 ? { scales: 1 } : {};
  return opset >= 11 ? { roi: 1, scales: 2, sizes: 3 } : { scales: 1 };
}

const nonEmpty = (v: number[] | undefined): number[] | undefined => (v && v.length > 0 ? v : undefined);

/**
 * Output dims and per-axis scales. `inDims` may hold symbols (shape inference): a symbolic input
 * dim gives a symbolic output dim unless `sizes` fixes it or its scale is 1.
 */
function outputSize(
  node: Node,
  a: Attrs,
  inDims: readonly Dim[],
  inp: SizeInputs,
): { scales: number[]; outDims: Dim[]; lengths: number[]; roiStart: number[]; roiEnd: number[] } {
  const r = inDims.length;
  const axes = a.axes ? normAxes(a.axes, r, node) : Array.from({ length: r }, (_, i) => i);
  const roiStart = new Array<number>(r).fill(0);
  const roiEnd = new Array<number>(r).fill(1);
  const roi = a.coord === 'tf_crop_and_resize' ? nonEmpty(inp.roi) : undefined;
  if (roi) {
    if (roi.length !== 2 * axes.length) throw opError(node, 'E_MODEL_SHAPE', `roi has ${roi.length} values for ${axes.length} axes`, 'roi holds the starts then the ends of every resized axis');
    axes.forEach((ax, i) => {
      roiStart[ax] = roi[i];
      roiEnd[ax] = roi[i + axes.length];
    });
  }
  const scales = new Array<number>(r).fill(1);
  const outDims: Dim[] = inDims.slice();
  const lengths = inDims.map((d) => (typeof d === 'number' ? d : NaN));
  const sizes = nonEmpty(inp.sizes);
  const sc = nonEmpty(inp.scales);
  if (sizes && sc) throw opError(node, 'E_MODEL_ATTR', 'both scales and sizes are given', 'give only one of scales and sizes');
  if (sizes) {
    if (sizes.length !== axes.length) throw opError(node, 'E_MODEL_SHAPE', `sizes has ${sizes.length} values for ${axes.length} axes`, 'give one size per resized axis');
    if (a.policy === 'stretch') {
      axes.forEach((ax, i) => {
        outDims[ax] = sizes[i];
        lengths[ax] = sizes[i];
        const d = inDims[ax];
        scales[ax] = typeof d === 'number' ? sizes[i] / d : NaN;
      });
    } else {
      // one scale for all resized axes, so the aspect ratio is kept
      const ratios = axes.map((ax, i) => (typeof inDims[ax] === 'number' ? sizes[i] / (inDims[ax] as number) : NaN));
      const s = a.policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((ax) => {
        scales[ax] = s;
        const d = inDims[ax];
        outDims[ax] = typeof d === 'number' && !Number.isNaN(s) ? Math.floor(s * d + 0.5) : UNKNOWN_DIM;
        lengths[ax] = typeof d === 'number' ? s * d : NaN;
      });
    }
  } else if (sc) {
    if (sc.length !== axes.length) throw opError(node, 'E_MODEL_SHAPE', `scales has ${sc.length} values for ${axes.length} axes`, 'give one scale per resized axis');
    axes.forEach((ax, i) => {
      if (!(sc[i] > 0)) throw opError(node, 'E_MODEL_ATTR', `scale ${sc[i]} is not positive`, 'scales must be > 0');
      scales[ax] = sc[i];
      const d = inDims[ax];
      // float32 arithmetic as the scales are float32 (2.3 × 10 gives 23, not 22)
      // (the roi does not scale the output size: onnxruntime and ONNX's reference agree on that)
      if (typeof d === 'number') {
        outDims[ax] = Math.floor(Math.fround(d * sc[i]));
        lengths[ax] = d * sc[i];
      } else outDims[ax] = sc[i] === 1 ? d : UNKNOWN_DIM;
    });
  } else {
    throw opError(node, 'E_MODEL_GRAPH', 'neither scales nor sizes is given', 'give Resize its scales or sizes');
  }
  return { scales, outDims, lengths, roiStart, roiEnd };
}

function readSizeInputs<T>(type: string, opset: number, node: Node, inputs: (T | undefined)[], read: (t: T | undefined) => number[] | undefined): SizeInputs | undefined {
  const slots = sizeInputSlots(type, opset);
  const out: SizeInputs = {};
  if (type === 'Upsample' && opset < 9) {
    const s = node.floats('scales');
    if (!s) throw opError(node, 'E_MODEL_ATTR', "attribute 'scales' is missing", 're-export the model');
    return { scales: s };
  }
  for (const key of ['roi', 'scales', 'sizes'] as const) {
    const k = slots[key];
    if (k === undefined || inputs[k] === undefined) continue;
    const v = read(inputs[k]);
    if (v === undefined) return undefined; // given, but its value is not known
    out[key] = v;
  }
  return out;
}

function plan(ctx: OpContext, type: string, X: Tensor, inputs: (Tensor | undefined)[]): Plan {
  const legacy = type === 'Upsample' || ctx.opset < 11;
  const a = readAttrs(ctx.node, ctx.opset, legacy);
  const inp = readSizeInputs(type, ctx.opset, ctx.node, inputs, (t) => (t ? t.toNumbers() : undefined))!;
  const { scales, outDims, lengths, roiStart, roiEnd } = outputSize(ctx.node, a, X.dims, inp);
  return { ...a, scales, outDims: outDims as number[], lengths, roiStart, roiEnd };
}

/** Input coordinate of output position x along one axis (ONNX coordinate_transformation_mode). */
function sourceCoord(p: Plan, axis: number, x: number, inLen: number): number {
  const scale = p.scales[axis];
  const outInt = p.outDims[axis];
  const outLen = p.lengths[axis];
  switch (p.coord) {
    case 'half_pixel':
      return (x + 0.5) / scale - 0.5;
    case 'half_pixel_symmetric': {
      const adjustment = outInt / outLen;
      const offset = (inLen / 2) * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case 'pytorch_half_pixel':
      return outInt > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      // the unrounded length, as ONNX's reference (and its test data) use it
      return outLen === 1 ? 0 : (x * (inLen - 1)) / (outLen - 1);
    case 'asymmetric':
      return x / scale;
    case 'tf_half_pixel_for_nn':
      return (x + 0.5) / scale;
    case 'tf_crop_and_resize': {
      const s = p.roiStart[axis];
      const e = p.roiEnd[axis];
      return outInt > 1 ? s * (inLen - 1) + (x * (e - s) * (inLen - 1)) / (outInt - 1) : 0.5 * (s + e) * (inLen - 1);
    }
    default:
      throw new Error(`unhandled coordinate mode ${p.coord}`);
  }
}

function roundNearest(mode: string, x: number, scale: number): number {
  switch (mode) {
    case 'round_prefer_ceil':
      return Math.floor(x + 0.5);
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    case 'simple':
      return scale < 1 ? Math.ceil(x) : Math.floor(x);
    default: // round_prefer_floor
      return Math.ceil(x - 0.5);
  }
}

/** tf_crop_and_resize leaves the input range: that output position takes extrapolation_value. */
function outside(p: Plan, x: number, inLen: number): boolean {
  return p.coord === 'tf_crop_and_resize' && (x < 0 || x > inLen - 1);
}

function resizeNearest(p: Plan, X: Tensor): Tensor {
  const st = stridesOf(X.dims);
  let anyOutside = false;
  const tables = p.outDims.map((len, axis) => {
    const inLen = X.dims[axis];
    const t = new Float64Array(len);
    for (let j = 0; j < len; j++) {
      const x = sourceCoord(p, axis, j, inLen);
      if (outside(p, x, inLen)) {
        t[j] = OUTSIDE;
        anyOutside = true;
      } else {
        const i = Math.min(Math.max(roundNearest(p.nearest, x, p.scales[axis]), 0), inLen - 1);
        t[j] = i * st[axis];
      }
    }
    return t;
  });
  const out = allocData(X.dtype, p.outDims.reduce((a, b) => a * b, 1));
  gatherAxes(X.data, tables, out, anyOutside ? storedValue(X.dtype, p.extrapolation) : undefined);
  return new Tensor(X.dtype, p.outDims, out);
}

/** Keys cubic convolution kernel (Keys 1981, coefficient A) at distance |s|. */
function cubicKernel(s: number, A: number): number {
  const x = Math.abs(s);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

const linearKernel = (s: number): number => Math.max(0, 1 - Math.abs(s));

interface Taps {
  count: number;
  /** [outLen × count] input indices (clamped into range) */
  index: Int32Array;
  weight: Float64Array;
  /** output positions outside the crop (tf_crop_and_resize) */
  outside: Uint8Array;
  identity: boolean;
}

/**
 * Interpolation taps of one axis. Without antialias: 2 (linear) or 4 (cubic) neighbours of
 * floor(x). With antialias while shrinking, the kernel is stretched by 1/scale so more inputs
 * contribute (and the weights renormalised). Out-of-range neighbours read the edge element, or
 * get weight 0 with exclude_outside.
 */
function axisTaps(p: Plan, axis: number, inLen: number): Taps {
  const outLen = p.outDims[axis];
  const kscale = p.antialias ? Math.min(p.scales[axis], 1) : 1;
  const support = p.mode === 'linear' ? 1 : 2;
  const first = Math.floor(-support / kscale) + 1; // leftmost neighbour offset from floor(x)
  const count = 2 * (1 - first);
  const kernel = p.mode === 'linear' ? linearKernel : (s: number): number => cubicKernel(s, p.cubicA);
  const index = new Int32Array(outLen * count);
  const weight = new Float64Array(outLen * count);
  const out = new Uint8Array(outLen);
  let identity = outLen === inLen;
  for (let j = 0; j < outLen; j++) {
    const x = sourceCoord(p, axis, j, inLen);
    if (outside(p, x, inLen)) {
      out[j] = 1;
      identity = false;
    }
    const x0 = Math.floor(x);
    const t = x - x0;
    let sum = 0;
    for (let k = 0; k < count; k++) {
      const i = x0 + first + k;
      let w = kernel((first + k - t) * kscale);
      if (p.excludeOutside && (i < 0 || i >= inLen)) w = 0;
      index[j * count + k] = Math.min(Math.max(i, 0), inLen - 1);
      weight[j * count + k] = w;
      sum += w;
    }
    // renormalise when taps were dropped or the kernel was stretched
    if ((p.excludeOutside || kscale < 1) && sum !== 0) for (let k = 0; k < count; k++) weight[j * count + k] /= sum;
    for (let k = 0; k < count && identity; k++) {
      const w = weight[j * count + k];
      if (w !== 0 && (w !== 1 || index[j * count + k] !== j)) identity = false;
    }
  }
  return { count, index, weight, outside: out, identity };
}

/** One separable pass: resize `axis` of `src` (dims) with `taps`. */
function interpolateAxis(src: ArrayLike<number>, dims: number[], axis: number, taps: Taps, outLen: number): Float64Array {
  const inLen = dims[axis];
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= dims[d];
  let inner = 1;
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d];
  const dst = new Float64Array(outer * outLen * inner);
  const { count, index, weight } = taps;
  for (let o = 0; o < outer; o++) {
    const sBase = o * inLen * inner;
    const dBase = o * outLen * inner;
    for (let j = 0; j < outLen; j++) {
      const row = dBase + j * inner;
      for (let k = 0; k < count; k++) {
        const w = weight[j * count + k];
        if (w === 0) continue;
        const from = sBase + index[j * count + k] * inner;
        for (let i = 0; i < inner; i++) dst[row + i] += w * src[from + i];
      }
    }
  }
  return dst;
}

/** Doubles into `dtype` storage; integer types truncate toward zero (as onnxruntime and ONNX's reference cast) and saturate. */
function fromDoubles(dtype: DType, dims: number[], v: ArrayLike<number>): Tensor {
  if (isFloat(dtype)) return tensorFrom(dtype, dims, v);
  const lim: Partial<Record<DType, [number, number]>> = {
    int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1],
  };
  const [lo, hi] = lim[dtype] ?? [-Infinity, Infinity];
  const r = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) r[i] = Math.min(hi, Math.max(lo, Math.trunc(v[i])));
  return tensorFrom(dtype, dims, isBigInt(dtype) ? Array.from(r, (x) => BigInt(x)) : r);
}

function resizeInterpolate(p: Plan, X: Tensor): Tensor {
  if (X.dtype === 'string' || X.dtype === 'bool') throw new Error(`Resize ${p.mode} on ${X.dtype}`);
  // plain numeric storage is read in place; halves and 64-bit integers are decoded first
  const direct = X.dtype !== 'float16' && X.dtype !== 'bfloat16' && !isBigInt(X.dtype);
  let data: ArrayLike<number> = direct ? (X.data as ArrayLike<number>) : X.toNumbers();
  const dims = X.dims.slice();
  const allTaps = X.dims.map((inLen, axis) => axisTaps(p, axis, inLen));
  allTaps.forEach((taps, axis) => {
    if (taps.identity) return;
    data = interpolateAxis(data, dims, axis, taps, p.outDims[axis]);
    dims[axis] = p.outDims[axis];
  });
  if (allTaps.some((t) => t.outside.some((o) => o))) {
    // positions outside the crop take extrapolation_value whatever the other axes say
    const st = stridesOf(dims);
    const tables = allTaps.map((t, axis) => Float64Array.from(t.outside, (o, j) => (o ? OUTSIDE : j * st[axis])));
    const filled = new Float64Array(data.length);
    gatherAxes(data as Float64Array, tables, filled, p.extrapolation);
    data = filled;
  }
  return fromDoubles(X.dtype, dims, data);
}

function runResize(ctx: OpContext, type: string, inputs: (Tensor | undefined)[]): Tensor {
  const X = inputs[0]!;
  const p = plan(ctx, type, X, inputs);
  if (p.mode === 'nearest') return resizeNearest(p, X);
  return resizeInterpolate(p, X);
}

function inferResize(ctx: OpContext, type: string, inputs: (ValueFacts | undefined)[]): ValueFacts[] {
  const x = inputs[0];
  if (!x?.shape) return [{ dtype: x?.dtype }];
  const legacy = type === 'Upsample' || ctx.opset < 11;
  const a = readAttrs(ctx.node, ctx.opset, legacy);
  const inp = readSizeInputs(type, ctx.opset, ctx.node, inputs, (f) => (f?.value ? f.value.toNumbers() : undefined));
  if (!inp) {
    // the resized axes get unknown sizes; with `axes`, the others keep theirs
    const resized = a.axes ? new Set(normAxes(a.axes, x.shape.length, ctx.node)) : undefined;
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (resized && !resized.has(i) ? d : UNKNOWN_DIM)) }];
  }
  return [{ dtype: x.dtype, shape: outputSize(ctx.node, a, x.shape, inp).outDims }];
}

export const ops: OpDef[] = [
  {
    type: 'Resize',
    quant: 'passive',
    nativeHalf: true,
    sinceOpset: 10,
    infer: (ctx, inputs) => inferResize(ctx, 'Resize', inputs),
    run: (ctx, inputs) => [runResize(ctx, 'Resize', inputs)],
  },
  {
    type: 'Upsample',
    quant: 'passive',
    nativeHalf: true,
    sinceOpset: 7,
    infer: (ctx, inputs) => inferResize(ctx, 'Upsample', inputs),
    run: (ctx, inputs) => [runResize(ctx, 'Upsample', inputs)],
  },
];
