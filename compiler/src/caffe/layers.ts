import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { AttrInit, float, LayerContext } from './emit';
import { lowerPooling } from './pooling';
import { ConvolutionParameter } from './schema';

/**
 * One function per Caffe layer type: reads the layer's parameters and blobs, adds the ONNX
 * nodes (opset 13) that compute exactly what Caffe computes in the TEST phase, and returns
 * the ids of its tops (an existing id when the layer is an identity in TEST, e.g. Dropout).
 */
export type LayerConverter = (c: LayerContext, state: ConvertState) => string[];

/** What conversions leave for the passes after all layers are converted. */
export interface ConvertState {
  /** BatchNormalization nodes with unit scale and zero bias (a following Scale may fold in). */
  plainBatchNorms: Set<Node>;
  /** Per-channel Scale layers, by the node producing their output. */
  channelScales: Map<Node, ChannelScale>;
}

export interface ChannelScale {
  input: string;
  nodes: Node[];
  scale: Float32Array;
  bias?: Float32Array;
}

// ------------------------------------------------------------------ helpers

function f32(dims: number[], values: ArrayLike<number>): Tensor {
  return new Tensor('float32', dims, Float32Array.from(values));
}

function i64(values: number[]): Tensor {
  return new Tensor('int64', [values.length], BigInt64Array.from(values.map(BigInt)));
}

/** Caffe's CanonicalAxisIndex: -rank ≤ axis < rank. */
function axisOf(c: LayerContext, axis: number, rank: number, what = 'axis'): number {
  if (axis < -rank || axis >= rank) throw c.error(`${what} ${axis} is out of range for a ${rank}-D input`);
  return axis < 0 ? axis + rank : axis;
}

function product(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A per-axis list given as 0 values (default), 1 value (all axes) or one per axis. */
function perAxis(c: LayerContext, v: number[] | undefined, n: number, def: number, what: string): number[] {
  if (!v || v.length === 0) return new Array<number>(n).fill(def);
  if (v.length === 1) return new Array<number>(n).fill(v[0]);
  if (v.length === n) return v.slice();
  throw c.error(`${what} has ${v.length} values; give 1 or one per spatial axis (${n})`);
}

/** Shape of a parameter aligned at `axis` of an input of `rank`, padded with trailing 1s to broadcast. */
function broadcastShape(dims: readonly number[], axis: number, rank: number): number[] {
  if (dims.length === 0) return [1];
  return [...dims, ...new Array<number>(rank - axis - dims.length).fill(1)];
}

// ------------------------------------------------------------ convolution

interface ConvGeometry {
  kernel: number[];
  stride: number[];
  pad: number[];
  dilation: number[];
}

function convGeometry(c: LayerContext, p: ConvolutionParameter, nsp: number): ConvGeometry {
  let kernel: number[];
  if (p.kernel_h !== undefined || p.kernel_w !== undefined) {
    if (nsp !== 2) throw c.error('kernel_h/kernel_w are for 2-D convolution only');
    if (p.kernel_size?.length) throw c.error('give kernel_size, or kernel_h and kernel_w (not both)');
    if (p.kernel_h === undefined || p.kernel_w === undefined) throw c.error('needs both kernel_h and kernel_w');
    kernel = [p.kernel_h, p.kernel_w];
  } else {
    if (!p.kernel_size?.length) throw c.error('needs kernel_size (or kernel_h and kernel_w)');
    kernel = perAxis(c, p.kernel_size, nsp, 0, 'kernel_size');
  }
  let stride: number[];
  if (p.stride_h !== undefined || p.stride_w !== undefined) {
    if (nsp !== 2) throw c.error('stride_h/stride_w are for 2-D convolution only');
    if (p.stride?.length) throw c.error('give stride, or stride_h and stride_w (not both)');
    if (p.stride_h === undefined || p.stride_w === undefined) throw c.error('needs both stride_h and stride_w');
    stride = [p.stride_h, p.stride_w];
  } else stride = perAxis(c, p.stride, nsp, 1, 'stride');
  let pad: number[];
  if (p.pad_h !== undefined || p.pad_w !== undefined) {
    if (nsp !== 2) throw c.error('pad_h/pad_w are for 2-D convolution only');
    if (p.pad?.length) throw c.error('give pad, or pad_h and pad_w (not both)');
    pad = [p.pad_h ?? 0, p.pad_w ?? 0];
  } else pad = perAxis(c, p.pad, nsp, 0, 'pad');
  const dilation = perAxis(c, p.dilation, nsp, 1, 'dilation');
  if (kernel.some((k) => k <= 0) || stride.some((s) => s <= 0) || dilation.some((d) => d <= 0)) {
    throw c.error('kernel size, stride and dilation must be positive');
  }
  return { kernel, stride, pad, dilation };
}

function convolution(c: LayerContext, transposed: boolean): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.convolution_param ?? {};
  const x = c.inShape();
  if (axisOf(c, p.axis ?? 1, x.length) !== 1) throw c.error('only axis 1 (channels) is supported');
  const nsp = x.length - 2;
  if (nsp < 1) throw c.error(`needs an input with spatial axes (N,C,H,W), got [${x.join(',')}]`);
  const g = convGeometry(c, p, nsp);
  const group = p.group ?? 1;
  const cout = p.num_output;
  if (!cout) throw c.error('needs num_output');
  const cin = x[1];
  if (group <= 0 || cin % group !== 0 || cout % group !== 0) {
    throw c.error(`group ${group} must divide the input channels (${cin}) and num_output (${cout})`);
  }
  const span = g.kernel.map((k, i) => g.dilation[i] * (k - 1) + 1);
  const outSp = x.slice(2).map((n, i) =>
    transposed ? g.stride[i] * (n - 1) + span[i] - 2 * g.pad[i] : Math.floor((n + 2 * g.pad[i] - span[i]) / g.stride[i]) + 1,
  );
  if (outSp.some((n) => n <= 0)) throw c.error(`the output would be empty for the input [${x.join(',')}]`, 'check the input shape and the kernel/stride/pad');
  const wDims = transposed ? [cin, cout / group, ...g.kernel] : [cout, cin / group, ...g.kernel];
  const inputs = [c.bottoms[0], c.constant('weight', c.blob(0, wDims, 'weight'))];
  if (p.bias_term ?? true) inputs.push(c.constant('bias', c.blob(1, [cout], 'bias')));
  const attrs = { kernel_shape: g.kernel, strides: g.stride, pads: [...g.pad, ...g.pad], dilations: g.dilation, group };
  return c.main(transposed ? 'ConvTranspose' : 'Conv', inputs, attrs, [[x[0], cout, ...outSp]]);
}

function innerProduct(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.inner_product_param ?? {};
  const x = c.inShape();
  const axis = axisOf(c, p.axis ?? 1, x.length);
  const n = p.num_output;
  if (!n) throw c.error('needs num_output');
  const k = product(x.slice(axis));
  const transpose = p.transpose ?? false;
  const w = c.constant('weight', c.blob(0, transpose ? [k, n] : [n, k], 'weight'));
  const inputs = [x.length === 2 && axis === 1 ? c.bottoms[0] : c.helper('flatten', 'Flatten', [c.bottoms[0]], { axis }, [product(x.slice(0, axis)), k]), w];
  if (p.bias_term ?? true) inputs.push(c.constant('bias', c.blob(1, [n], 'bias')));
  const outShape = [...x.slice(0, axis), n];
  const gemmAttrs = { transB: transpose ? 0 : 1 };
  if (outShape.length === 2) return c.main('Gemm', inputs, gemmAttrs, [outShape]);
  const y = c.helper('gemm', 'Gemm', inputs, gemmAttrs, [product(x.slice(0, axis)), n]);
  return c.main('Reshape', [y, c.constant('shape', i64(outShape))], {}, [outShape]);
}

// ------------------------------------------------------------ normalisation

function batchNorm(c: LayerContext, st: ConvertState): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.batch_norm_param ?? {};
  const x = c.inShape();
  if (x.length < 2) throw c.error(`needs an input with a channel axis, got [${x.join(',')}]`);
  const ch = x[1];
  const eps = p.eps ?? 1e-5;
  // In the TEST phase Caffe uses the stored statistics unless told otherwise.
  if (!(p.use_global_stats ?? true)) return batchStatsNorm(c, x, eps);
  const mean = c.blob(0, [ch], 'mean').array as Float32Array;
  const variance = c.blob(1, [ch], 'variance').array as Float32Array;
  const factor = c.rawBlob(2, 'moving-average factor').data;
  if (factor.length !== 1) throw c.error(`the third blob (moving-average factor) must hold 1 value, it holds ${factor.length}`);
  // The stored sums are divided by the accumulated weight; a zero weight means "no statistics".
  const s = factor[0] === 0 ? 0 : Math.fround(1 / factor[0]);
  const m = new Float32Array(ch);
  const v = new Float32Array(ch);
  for (let i = 0; i < ch; i++) {
    m[i] = mean[i] * s;
    v[i] = variance[i] * s;
  }
  const inputs = [
    c.bottoms[0],
    c.constant('scale', f32([ch], new Float32Array(ch).fill(1))),
    c.constant('bias', f32([ch], new Float32Array(ch))),
    c.constant('mean', new Tensor('float32', [ch], m)),
    c.constant('var', new Tensor('float32', [ch], v)),
  ];
  const out = c.main('BatchNormalization', inputs, { epsilon: float(eps) }, [x]);
  st.plainBatchNorms.add(c.lastNode);
  return out;
}

/** use_global_stats: false — Caffe normalises with the statistics of the batch itself. */
function batchStatsNorm(c: LayerContext, x: number[], eps: number): string[] {
  const axes = x.map((_, i) => i).filter((i) => i !== 1);
  const statShape = x.map((d, i) => (i === 1 ? d : 1));
  const mean = c.helper('mean', 'ReduceMean', [c.bottoms[0]], { axes, keepdims: 1 }, statShape);
  const d = c.helper('centered', 'Sub', [c.bottoms[0], mean], {}, x);
  const sq = c.helper('square', 'Mul', [d, d], {}, x);
  const variance = c.helper('var', 'ReduceMean', [sq], { axes, keepdims: 1 }, statShape);
  const ve = c.helper('var_eps', 'Add', [variance, c.constant('eps', f32([1], [eps]))], {}, statShape);
  const sd = c.helper('std', 'Sqrt', [ve], {}, statShape);
  return c.main('Div', [d, sd], {}, [x]);
}

/**
 * Scale (and Bias): multiply (add) a parameter aligned at `axis`, either learned (a blob
 * covering `num_axes` axes) or the second bottom. A per-channel learned Scale right after a
 * BatchNorm is folded into the BatchNormalization node later (see foldScales).
 */
function scale(c: LayerContext, st: ConvertState): string[] {
  c.expectBottoms(1, 2);
  c.expectTops(1);
  const p = c.layer.scale_param ?? {};
  const x = c.inShape();
  const axis = axisOf(c, p.axis ?? 1, x.length);
  const biasTerm = p.bias_term ?? false;
  let factor: string;
  let sDims: number[];
  let biasBlob = 1;
  let learned: Float32Array | undefined;
  if (c.bottoms.length === 2) {
    sDims = c.inShape(1);
    checkAligned(c, x, sDims, axis);
    factor = reshapeForBroadcast(c, c.bottoms[1], sDims, axis, x.length);
    biasBlob = 0;
  } else {
    sDims = paramDims(c, x, axis, p.num_axes ?? 1);
    const t = c.blob(0, sDims, 'scale');
    learned = t.array as Float32Array;
    factor = c.constant('scale', new Tensor('float32', broadcastShape(sDims, axis, x.length), learned));
  }
  const nodes: Node[] = [];
  let y: string;
  let bias: Float32Array | undefined;
  if (biasTerm) {
    const b = c.blob(biasBlob, sDims, 'bias');
    bias = b.array as Float32Array;
    const prod = c.helper('mul', 'Mul', [c.bottoms[0], factor], {}, x);
    nodes.push(c.lastNode);
    y = c.main('Add', [prod, c.constant('bias', new Tensor('float32', broadcastShape(sDims, axis, x.length), bias))], {}, [x])[0];
  } else {
    y = c.main('Mul', [c.bottoms[0], factor], {}, [x])[0];
  }
  nodes.push(c.lastNode);
  if (learned && axis === 1 && sDims.length === 1) st.channelScales.set(c.lastNode, { input: c.bottoms[0], nodes, scale: learned, bias });
  return [y];
}

function bias(c: LayerContext): string[] {
  c.expectBottoms(1, 2);
  c.expectTops(1);
  const p = c.layer.bias_param ?? {};
  const x = c.inShape();
  const axis = axisOf(c, p.axis ?? 1, x.length);
  let b: string;
  if (c.bottoms.length === 2) {
    const bDims = c.inShape(1);
    checkAligned(c, x, bDims, axis);
    b = reshapeForBroadcast(c, c.bottoms[1], bDims, axis, x.length);
  } else {
    const bDims = paramDims(c, x, axis, p.num_axes ?? 1);
    b = c.constant('bias', new Tensor('float32', broadcastShape(bDims, axis, x.length), c.blob(0, bDims, 'bias').array as Float32Array));
  }
  return c.main('Add', [c.bottoms[0], b], {}, [x]);
}

/** The dims a learned Scale/Bias parameter covers: num_axes axes from `axis` (-1: all the rest). */
function paramDims(c: LayerContext, x: number[], axis: number, numAxes: number): number[] {
  if (numAxes < -1 || (numAxes >= 0 && axis + numAxes > x.length)) throw c.error(`num_axes ${numAxes} does not fit a ${x.length}-D input at axis ${axis}`);
  return numAxes === -1 ? x.slice(axis) : x.slice(axis, axis + numAxes);
}

function checkAligned(c: LayerContext, x: number[], p: number[], axis: number): void {
  if (p.length === 0) return;
  if (!sameShape(x.slice(axis, axis + p.length), p)) {
    throw c.error(`the second bottom [${p.join(',')}] does not match the first [${x.join(',')}] from axis ${axis}`);
  }
}

function reshapeForBroadcast(c: LayerContext, id: string, dims: number[], axis: number, rank: number): string {
  const target = broadcastShape(dims, axis, rank);
  if (sameShape(target, dims)) return id;
  return c.helper('reshape', 'Reshape', [id, c.constant('bshape', i64(target))], {}, target);
}

function lrn(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.lrn_param ?? {};
  if ((p.norm_region ?? 'ACROSS_CHANNELS') !== 'ACROSS_CHANNELS') throw c.error('norm_region WITHIN_CHANNEL is not supported', 'use ACROSS_CHANNELS');
  const size = p.local_size ?? 5;
  if (size % 2 === 0) throw c.error('local_size must be odd');
  return c.main('LRN', [c.bottoms[0]], { size, alpha: float(p.alpha ?? 1), beta: float(p.beta ?? 0.75), bias: float(p.k ?? 1) }, [c.inShape()]);
}

// ------------------------------------------------------------ activations

function relu(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const slope = c.layer.relu_param?.negative_slope ?? 0;
  if (slope === 0) return c.main('Relu', [c.bottoms[0]], {}, [c.inShape()]);
  return c.main('LeakyRelu', [c.bottoms[0]], { alpha: float(slope) }, [c.inShape()]);
}

function prelu(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const x = c.inShape();
  if (x.length < 2) throw c.error(`needs an input with a channel axis, got [${x.join(',')}]`);
  const shared = c.layer.prelu_param?.channel_shared ?? false;
  const n = shared ? 1 : x[1];
  const slope = c.blob(0, [n], 'slope').array as Float32Array;
  const dims = shared ? [1] : [n, ...new Array<number>(x.length - 2).fill(1)];
  return c.main('PRelu', [c.bottoms[0], c.constant('slope', new Tensor('float32', dims, slope))], {}, [x]);
}

function unary(opType: string, attrs: (c: LayerContext) => Record<string, AttrInit> = () => ({})): LayerConverter {
  return (c) => {
    c.expectBottoms(1);
    c.expectTops(1);
    return c.main(opType, [c.bottoms[0]], attrs(c), [c.inShape()]);
  };
}

function clip(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.clip_param ?? {};
  if (p.min === undefined || p.max === undefined) throw c.error('needs clip_param min and max');
  return c.main('Clip', [c.bottoms[0], c.constant('min', f32([], [p.min])), c.constant('max', f32([], [p.max]))], {}, [c.inShape()]);
}

function swish(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const x = c.inShape();
  const beta = c.layer.swish_param?.beta ?? 1;
  const bx = beta === 1 ? c.bottoms[0] : c.helper('beta', 'Mul', [c.bottoms[0], c.constant('beta', f32([1], [beta]))], {}, x);
  const sig = c.helper('sigmoid', 'Sigmoid', [bx], {}, x);
  return c.main('Mul', [c.bottoms[0], sig], {}, [x]);
}

/** `shift + scale·x` as Mul/Add helpers (skipping the identity parts). */
function affine(c: LayerContext, x: string, shape: number[], scaleV: number, shift: number): string {
  let y = x;
  if (scaleV !== 1) y = c.helper('scale', 'Mul', [y, c.constant('scale', f32([1], [scaleV]))], {}, shape);
  if (shift !== 0) y = c.helper('shift', 'Add', [y, c.constant('shift', f32([1], [shift]))], {}, shape);
  return y;
}

/** Power: y = (shift + scale·x)^power. */
function power(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.power_param ?? {};
  const x = c.inShape();
  const pw = p.power ?? 1;
  const sc = p.scale ?? 1;
  const sh = p.shift ?? 0;
  if (pw === 1) {
    if (sc === 1 && sh === 0) return c.main('Identity', [c.bottoms[0]], {}, [x]);
    if (sh === 0) return c.main('Mul', [c.bottoms[0], c.constant('scale', f32([1], [sc]))], {}, [x]);
    const y = sc === 1 ? c.bottoms[0] : c.helper('scale', 'Mul', [c.bottoms[0], c.constant('scale', f32([1], [sc]))], {}, x);
    return c.main('Add', [y, c.constant('shift', f32([1], [sh]))], {}, [x]);
  }
  const base = affine(c, c.bottoms[0], x, sc, sh);
  return c.main('Pow', [base, c.constant('power', f32([1], [pw]))], {}, [x]);
}

/** Exp: y = base^(shift + scale·x), base e when -1. */
function exp(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.exp_param ?? {};
  const base = p.base ?? -1;
  if (base !== -1 && base <= 0) throw c.error('base must be positive (or -1 for e)');
  const ln = base === -1 ? 1 : Math.log(base);
  const x = c.inShape();
  return c.main('Exp', [affine(c, c.bottoms[0], x, (p.scale ?? 1) * ln, (p.shift ?? 0) * ln)], {}, [x]);
}

/** Log: y = log_base(shift + scale·x), natural log when base is -1. */
function log(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.log_param ?? {};
  const base = p.base ?? -1;
  if (base !== -1 && base <= 0) throw c.error('base must be positive (or -1 for e)');
  const x = c.inShape();
  const inner = affine(c, c.bottoms[0], x, p.scale ?? 1, p.shift ?? 0);
  if (base === -1) return c.main('Log', [inner], {}, [x]);
  const l = c.helper('ln', 'Log', [inner], {}, x);
  return c.main('Mul', [l, c.constant('inv_ln_base', f32([1], [1 / Math.log(base)]))], {}, [x]);
}

// ------------------------------------------------------------ structure

function eltwise(c: LayerContext): string[] {
  c.expectBottoms(2, Infinity);
  c.expectTops(1);
  const p = c.layer.eltwise_param ?? {};
  const op = p.operation ?? 'SUM';
  const x = c.inShape();
  c.bottoms.forEach((_, i) => {
    if (!sameShape(c.inShape(i), x)) throw c.error(`bottom ${i} has shape [${c.inShape(i).join(',')}], bottom 0 [${x.join(',')}]; Eltwise needs equal shapes`);
  });
  const coeff = p.coeff ?? [];
  if (coeff.length && op !== 'SUM') throw c.error('coeff is only allowed with operation SUM');
  if (coeff.length && coeff.length !== c.bottoms.length) throw c.error(`has ${coeff.length} coeff values for ${c.bottoms.length} bottoms`);
  if (op === 'MAX') return c.main('Max', c.bottoms, {}, [x]);
  const terms = c.bottoms.map((b, i) =>
    coeff.length && coeff[i] !== 1 ? c.helper(`coeff${i}`, 'Mul', [b, c.constant(`coeff${i}`, f32([1], [coeff[i]]))], {}, x) : b,
  );
  const opType = op === 'SUM' ? 'Add' : 'Mul';
  let acc = terms[0];
  for (let i = 1; i < terms.length - 1; i++) acc = c.helper(`${opType.toLowerCase()}${i}`, opType, [acc, terms[i]], {}, x);
  return c.main(opType, [acc, terms[terms.length - 1]], {}, [x]);
}

function concat(c: LayerContext): string[] {
  c.expectBottoms(1, Infinity);
  c.expectTops(1);
  const p = c.layer.concat_param ?? {};
  const x = c.inShape();
  if (p.concat_dim !== undefined && p.axis !== undefined) throw c.error('give axis or concat_dim, not both');
  const axis = p.concat_dim !== undefined ? p.concat_dim : axisOf(c, p.axis ?? 1, x.length);
  if (axis >= x.length) throw c.error(`concat_dim ${axis} is out of range for a ${x.length}-D input`);
  if (c.bottoms.length === 1) return [c.bottoms[0]];
  const out = x.slice();
  out[axis] = 0;
  c.bottoms.forEach((_, i) => {
    const s = c.inShape(i);
    if (s.length !== x.length || s.some((d, k) => k !== axis && d !== x[k])) {
      throw c.error(`bottom ${i} [${s.join(',')}] does not match bottom 0 [${x.join(',')}] outside axis ${axis}`);
    }
    out[axis] += s[axis];
  });
  return c.main('Concat', c.bottoms, { axis }, [out]);
}

function slice(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1, Infinity);
  const p = c.layer.slice_param ?? {};
  const x = c.inShape();
  if (p.slice_dim !== undefined && p.axis !== undefined) throw c.error('give axis or slice_dim, not both');
  const axis = p.slice_dim !== undefined ? p.slice_dim : axisOf(c, p.axis ?? 1, x.length);
  if (axis >= x.length) throw c.error(`slice_dim ${axis} is out of range for a ${x.length}-D input`);
  const n = c.tops.length;
  const points = p.slice_point ?? [];
  let sizes: number[];
  if (points.length) {
    if (points.length !== n - 1) throw c.error(`has ${points.length} slice_point values for ${n} tops (needs ${n - 1})`);
    const edges = [0, ...points, x[axis]];
    sizes = Array.from({ length: n }, (_, i) => edges[i + 1] - edges[i]);
    if (sizes.some((s) => s <= 0)) throw c.error(`slice_point [${points.join(',')}] must increase within 1..${x[axis] - 1}`);
  } else {
    if (x[axis] % n !== 0) throw c.error(`axis ${axis} (size ${x[axis]}) cannot be split evenly into ${n} tops`, 'give slice_point values');
    sizes = new Array<number>(n).fill(x[axis] / n);
  }
  if (n === 1) return [c.bottoms[0]];
  const shapes = sizes.map((s) => x.map((d, k) => (k === axis ? s : d)));
  return c.main('Split', [c.bottoms[0], c.constant('split', i64(sizes))], { axis }, shapes);
}

function softmax(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const x = c.inShape();
  const axis = axisOf(c, c.layer.softmax_param?.axis ?? 1, x.length);
  return c.main('Softmax', [c.bottoms[0]], { axis }, [x]);
}

function flatten(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.flatten_param ?? {};
  const x = c.inShape();
  const start = axisOf(c, p.axis ?? 1, x.length, 'axis');
  const end = axisOf(c, p.end_axis ?? -1, x.length, 'end_axis');
  if (end < start) throw c.error(`end_axis ${end} is before axis ${start}`);
  const out = [...x.slice(0, start), product(x.slice(start, end + 1)), ...x.slice(end + 1)];
  if (start === 1 && end === x.length - 1) return c.main('Flatten', [c.bottoms[0]], { axis: 1 }, [out]);
  return c.main('Reshape', [c.bottoms[0], c.constant('shape', i64(out))], {}, [out]);
}

function reshape(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.reshape_param ?? {};
  const x = c.inShape();
  const spec = p.shape?.dim ?? [];
  const axisP = p.axis ?? 0;
  const numAxes = p.num_axes ?? -1;
  // Caffe counts a negative axis from one past the end here: -1 means "after the last axis".
  const start = axisP < 0 ? axisP + x.length + 1 : axisP;
  if (start < 0 || start > x.length) throw c.error(`axis ${axisP} is out of range for a ${x.length}-D input`);
  if (numAxes < -1 || (numAxes >= 0 && start + numAxes > x.length)) throw c.error(`num_axes ${numAxes} does not fit a ${x.length}-D input from axis ${start}`);
  const end = numAxes === -1 ? x.length : start + numAxes;
  const mid = spec.map((d, i) => {
    if (d === 0) {
      if (start + i >= x.length) throw c.error(`dim ${i} is 0 (copy) but the input has no axis ${start + i}`);
      return x[start + i];
    }
    if (d < -1) throw c.error(`dim ${d} is not allowed (only -1 and sizes ≥ 0)`);
    return d;
  });
  const inferred = mid.filter((d) => d === -1).length;
  if (inferred > 1) throw c.error('at most one dim may be -1');
  const known = product([...x.slice(0, start), ...mid.filter((d) => d !== -1), ...x.slice(end)]);
  if (inferred) {
    const rest = product(x) / known;
    if (!Number.isInteger(rest)) throw c.error(`the input [${x.join(',')}] cannot be reshaped to [${spec.join(',')}]`);
    mid[mid.indexOf(-1)] = rest;
  }
  const out = [...x.slice(0, start), ...mid, ...x.slice(end)];
  if (product(out) !== product(x)) throw c.error(`the input [${x.join(',')}] (${product(x)} values) cannot be reshaped to [${out.join(',')}]`);
  // With the whole shape given, Caffe's 0 (copy) and -1 (infer) are ONNX Reshape's own.
  const shape = start === 0 && end === x.length ? spec : out;
  return c.main('Reshape', [c.bottoms[0], c.constant('shape', i64(shape))], {}, [out]);
}

function permute(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const x = c.inShape();
  const given = c.layer.permute_param?.order ?? [];
  const perm: number[] = [];
  for (const a of given) {
    if (a >= x.length || perm.includes(a)) throw c.error(`order [${given.join(',')}] is not a permutation of the ${x.length} axes`);
    perm.push(a);
  }
  for (let a = 0; a < x.length; a++) if (!perm.includes(a)) perm.push(a);
  if (perm.every((a, i) => a === i)) return [c.bottoms[0]];
  return c.main('Transpose', [c.bottoms[0]], { perm }, [perm.map((a) => x[a])]);
}

function crop(c: LayerContext): string[] {
  c.expectBottoms(2);
  c.expectTops(1);
  const p = c.layer.crop_param ?? {};
  const x = c.inShape(0);
  const ref = c.inShape(1);
  if (ref.length !== x.length) throw c.error(`the reference bottom [${ref.join(',')}] must have the rank of bottom 0 [${x.join(',')}]`);
  const axis = axisOf(c, p.axis ?? 2, x.length);
  const offs = p.offset ?? [];
  const n = x.length - axis;
  if (offs.length > 1 && offs.length !== n) throw c.error(`has ${offs.length} offsets for ${n} cropped axes`);
  const axes: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const out = x.slice();
  for (let a = axis; a < x.length; a++) {
    const o = offs.length === 0 ? 0 : offs.length === 1 ? offs[0] : offs[a - axis];
    if (o + ref[a] > x[a]) throw c.error(`axis ${a}: offset ${o} + size ${ref[a]} exceeds the input size ${x[a]}`);
    out[a] = ref[a];
    if (o === 0 && ref[a] === x[a]) continue;
    axes.push(a);
    starts.push(o);
    ends.push(o + ref[a]);
  }
  if (!axes.length) return c.main('Identity', [c.bottoms[0]], {}, [out]);
  return c.main('Slice', [c.bottoms[0], c.constant('starts', i64(starts)), c.constant('ends', i64(ends)), c.constant('axes', i64(axes))], {}, [out]);
}

function dropout(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.dropout_param ?? {};
  // TEST phase: identity, except that without train-time scaling Caffe scales by (1 − ratio) here.
  if (p.scale_train ?? true) return [c.bottoms[0]];
  const keep = Math.fround(1 - (p.dropout_ratio ?? 0.5));
  return c.main('Mul', [c.bottoms[0], c.constant('keep', f32([1], [keep]))], {}, [c.inShape()]);
}

/** Axpy (SENet/MobileNet ports): top = a·x + y, with a of shape (N,C,1,1). */
function axpy(c: LayerContext): string[] {
  c.expectBottoms(3);
  c.expectTops(1);
  const [a, x, y] = [0, 1, 2].map((i) => c.inShape(i));
  if (!sameShape(x, y)) throw c.error(`x [${x.join(',')}] and y [${y.join(',')}] must have the same shape`);
  if (a.length !== x.length || a[0] !== x[0] || a[1] !== x[1] || a.slice(2).some((d) => d !== 1)) {
    throw c.error(`the scale bottom [${a.join(',')}] must be (N,C,1,1) for x [${x.join(',')}]`);
  }
  const ax = c.helper('mul', 'Mul', [c.bottoms[0], c.bottoms[1]], {}, x);
  return c.main('Add', [ax, c.bottoms[2]], {}, [x]);
}

/** Upsample (YOLO-style ports): nearest-neighbour, each pixel repeated scale_h × scale_w times. */
function upsample(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1);
  const p = c.layer.upsample_param ?? {};
  const x = c.inShape();
  if (x.length !== 4) throw c.error(`needs a 4-D input, got [${x.join(',')}]`);
  const sh = p.scale_h ?? p.scale ?? 1;
  const sw = p.scale_w ?? p.scale ?? 1;
  if (sh <= 0 || sw <= 0) throw c.error('scale must be positive');
  const out = [x[0], x[1], x[2] * sh, x[3] * sw];
  const scales = c.constant('scales', f32([4], [1, 1, sh, sw]));
  const roi = c.constant('roi', f32([0], []));
  return c.main('Resize', [c.bottoms[0], roi, scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, [out]);
}

function split(c: LayerContext): string[] {
  c.expectBottoms(1);
  c.expectTops(1, Infinity);
  return c.tops.map(() => c.bottoms[0]);
}

function silence(c: LayerContext): string[] {
  c.expectTops(0);
  return [];
}

/** Caffe layer type → conversion. */
export const LAYER_CONVERTERS: Readonly<Record<string, LayerConverter>> = {
  Convolution: (c) => convolution(c, false),
  Deconvolution: (c) => convolution(c, true),
  InnerProduct: innerProduct,
  BatchNorm: batchNorm,
  Scale: scale,
  Bias: bias,
  LRN: lrn,
  ReLU: relu,
  PReLU: prelu,
  ELU: unary('Elu', (c) => ({ alpha: float(c.layer.elu_param?.alpha ?? 1) })),
  Sigmoid: unary('Sigmoid'),
  TanH: unary('Tanh'),
  AbsVal: unary('Abs'),
  BNLL: unary('Softplus'),
  Clip: clip,
  Swish: swish,
  Power: power,
  Exp: exp,
  Log: log,
  Pooling: (c) => {
    c.expectBottoms(1);
    c.expectTops(1);
    return [lowerPooling(c, c.bottoms[0], c.layer.pooling_param ?? {})];
  },
  Eltwise: eltwise,
  Concat: concat,
  Slice: slice,
  Split: split,
  Softmax: softmax,
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  Crop: crop,
  Dropout: dropout,
  Axpy: axpy,
  Upsample: upsample,
  Silence: silence,
};
