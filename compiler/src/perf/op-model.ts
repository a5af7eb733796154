import { Dim, Node } from '../onnx/ir';
import { ValueFacts } from '../ops/registry';
import { HZ_PREPROCESS } from '../preprocess/hz-preprocess';
import { MAC_CLASSES, MarchCosts, OpClass } from './costs';

/**
 * Geometry of one op as the BPU sees it: its cost class, real and padded work, weight bytes.
 * Activations live in the BPU's native layout (NHWC, channels padded to the activation
 * alignment, width padded to the width alignment); the MAC array computes conv channels and
 * output rows/columns padded to the march's alignments, so a 3-channel input costs as 8.
 */
export interface OpGeometry {
  opClass: OpClass;
  /** real multiply-accumulates (MAC classes; 0 otherwise) */
  macs: number;
  /** multiply-accumulates with channel / width padding (what the MAC array spends cycles on) */
  paddedMacs: number;
  /** padded element work of the vector units (non-MAC classes) */
  vectorWork: number;
  /** reported operations: 2 × MACs for MAC classes, element operations otherwise */
  ops: number;
  /** weights + per-channel parameters as stored for the BPU (padded), bytes */
  weightBytes: number;
  /** kernel height and stride along H (halo rows of row tiling) */
  kernelH: number;
  strideH: number;
  /** output rows (a layer splits over two cores by rows) */
  outRows: number;
  /** shapes were not all known: the geometry is a lower bound */
  unknownShape: boolean;
}

/** N, C, H, W of a tensor shape (rank 2: [N, C]; rank > 4: the middle dims fold into H). */
export interface Nchw {
  n: number;
  c: number;
  h: number;
  w: number;
}

export function nchw(shape: readonly number[]): Nchw {
  const r = shape.length;
  if (r === 0) return { n: 1, c: 1, h: 1, w: 1 };
  if (r === 1) return { n: 1, c: shape[0], h: 1, w: 1 };
  if (r === 2) return { n: shape[0], c: shape[1], h: 1, w: 1 };
  let h = 1;
  for (let i = 2; i < r - 1; i++) h *= shape[i];
  return { n: shape[0], c: shape[1], h, w: shape[r - 1] };
}

export function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** The numeric dims of a value, or undefined when its rank or a dim is unknown. */
export function knownShape(facts: Map<string, ValueFacts>, value: string | undefined): number[] | undefined {
  if (!value) return undefined;
  const s: Dim[] | undefined = facts.get(value)?.shape;
  if (!s || s.some((d) => typeof d !== 'number' || d < 0)) return undefined;
  return s as number[];
}

export function elementsOf(shape: readonly number[] | undefined): number {
  if (!shape) return 0;
  let e = 1;
  for (const d of shape) e *= d;
  return e;
}

/** Bytes of a BPU activation in the native layout (channels and width padded). */
export function paddedBytes(shape: readonly number[] | undefined, costs: MarchCosts, elemBytes = 1): number {
  if (!shape) return 0;
  const t = nchw(shape);
  const spatial = t.h === 1 && t.w === 1;
  return t.n * t.h * (spatial ? 1 : align(t.w, costs.bpu.align.width)) * align(t.c, costs.bpu.align.activationChannels) * elemBytes;
}

const RELU = new Set(['Relu', 'Clip', 'Dropout', 'Identity']);
const LUT = new Set([
  'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Softplus', 'Pow', 'Sin', 'Cos', 'Elu',
  'HardSigmoid', 'HardSwish', 'Abs', 'Atan', 'Ceil', 'Floor', 'Erf', 'Gelu', 'Selu', 'Neg',
]);
const ELEMENTWISE = new Set(['Add', 'Sum', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Equal', 'Greater', 'Less', 'Where', 'Mean']);
const RESHAPE = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);
const LAYOUT = new Set(['Transpose', 'DepthToSpace', 'SpaceToDepth', 'Pad', 'Gather', 'GatherElements', 'Expand', 'Tile', 'Cast']);
const REDUCE = new Set(['ReduceMean', 'ReduceMax', 'ReduceSum', 'ReduceMin', 'ReduceProd', 'ReduceL2']);
const ARGMAX = new Set(['ArgMax', 'ArgMin', 'TopK']);

/** A node of the HzPreprocess stage (tagged in doc_string by preprocess/hz-preprocess.ts). */
export function isPreprocessNode(n: Node): boolean {
  return n.docString?.startsWith(`${HZ_PREPROCESS}:`) ?? false;
}

/** The cost class of a node (before its geometry is known). */
export function baseClass(n: Node): OpClass {
  if (isPreprocessNode(n)) return 'preprocess';
  const t = n.opType;
  if (t === 'Conv') return 'conv3x3'; // refined by opGeometry
  if (t === 'ConvTranspose') return 'deconv';
  if (t === 'Gemm') return 'fc';
  if (t === 'MatMul') return 'matmul';
  if (t === 'MaxPool' || t === 'AveragePool' || t === 'LpPool') return 'pool';
  if (t === 'GlobalAveragePool' || t === 'GlobalMaxPool') return 'globalPool';
  if (RELU.has(t)) return 'relu';
  if (LUT.has(t)) return 'lut';
  if (ELEMENTWISE.has(t)) return 'elementwise';
  if (t === 'Resize' || t === 'Upsample') return 'resize';
  if (t === 'Concat') return 'concat';
  if (t === 'Split' || t === 'Slice') return 'split';
  if (RESHAPE.has(t)) return 'reshape';
  if (LAYOUT.has(t)) return 'layout';
  if (REDUCE.has(t)) return 'reduce';
  if (ARGMAX.has(t)) return 'argmax';
  if (t === 'Softmax' || t === 'LogSoftmax') return 'softmax';
  return 'other';
}

/**
 * The geometry of `n` on the BPU. `isConst(value)` tells weights from activations; `facts`
 * gives the shapes (after shape inference of the optimized model).
 */
export function opGeometry(n: Node, facts: Map<string, ValueFacts>, isConst: (v: string) => boolean, costs: MarchCosts): OpGeometry {
  const al = costs.bpu.align;
  const aw = (w: number): number => align(w, al.width);
  const ah = (h: number): number => align(h, al.height);
  const out = knownShape(facts, n.outputs[0]);
  const dataInputs = n.inputs.filter((i) => i && !isConst(i));
  const inShapes = dataInputs.map((i) => knownShape(facts, i));
  const unknownShape = !out || inShapes.some((s) => !s);
  const geo: OpGeometry = {
    opClass: baseClass(n), macs: 0, paddedMacs: 0, vectorWork: 0, ops: 0, weightBytes: 0, kernelH: 1, strideH: 1,
    outRows: out ? nchw(out).h : 1, unknownShape,
  };
  const constBytes = n.inputs.filter((i) => i && isConst(i)).reduce((s, i) => s + elementsOf(knownShape(facts, i)), 0);
  const paramBytes = (cout: number): number => align(cout, al.convOutputChannels) * costs.bpu.paramBytesPerChannel;

  if ((n.opType === 'Conv' || n.opType === 'ConvTranspose') && !isPreprocessNode(n)) {
    const w = knownShape(facts, n.inputs[1]);
    const x = inShapes[0];
    if (!w || !x || !out) return { ...geo, opClass: n.opType === 'Conv' ? 'conv3x3' : 'deconv', unknownShape: true };
    const g = n.int('group', 1);
    const kh = w.length > 2 ? w[2] : 1;
    const kw = w.length > 3 ? w[3] : 1;
    const xi = nchw(x);
    const yo = nchw(out);
    const strides = n.ints('strides', [1, 1]);
    geo.kernelH = kh;
    geo.strideH = strides[0] ?? 1;
    if (n.opType === 'ConvTranspose') {
      const cin = xi.c;
      const cout = yo.c;
      geo.opClass = 'deconv';
      geo.macs = xi.n * xi.h * xi.w * cin * (cout / g) * kh * kw;
      geo.paddedMacs = g * xi.n * ah(xi.h) * aw(xi.w) * align(cin / g, al.convInputChannels) * align(cout / g, al.convOutputChannels) * kh * kw;
      geo.weightBytes = g * align(cin / g, al.convInputChannels) * align(cout / g, al.convOutputChannels) * kh * kw + paramBytes(cout);
    } else {
      const cin = xi.c;
      const cout = yo.c;
      const cinG = cin / g;
      const coutG = cout / g;
      geo.macs = yo.n * yo.h * yo.w * cout * cinG * kh * kw;
      const spatialOut = yo.h === 1 && yo.w === 1;
      if (g > 1 && cinG === 1) {
        geo.opClass = 'depthwise';
        geo.paddedMacs = yo.n * ah(yo.h) * aw(yo.w) * align(cout, al.depthwiseChannels) * kh * kw;
        geo.weightBytes = align(cout, al.depthwiseChannels) * kh * kw + paramBytes(cout);
      } else {
        geo.opClass = g > 1 ? 'groupConv' : spatialOut && kh === 1 && kw === 1 ? 'fc' : kh === 1 && kw === 1 ? 'conv1x1' : kh === 3 && kw === 3 ? 'conv3x3' : 'convKxK';
        const rows = spatialOut ? yo.n : yo.n * ah(yo.h) * aw(yo.w);
        // few input channels (an image's 3): the kernel's columns are packed into the channel lanes
        const reduction = cinG < al.convInputChannels ? align(cinG * kw, al.convInputChannels) * kh : align(cinG, al.convInputChannels) * kh * kw;
        geo.paddedMacs = g * rows * align(coutG, al.convOutputChannels) * reduction;
        geo.weightBytes = g * align(coutG, al.convOutputChannels) * align(cinG, al.convInputChannels) * kh * kw + paramBytes(cout);
      }
    }
    geo.ops = 2 * geo.macs;
    return geo;
  }

  if ((n.opType === 'Gemm' || n.opType === 'MatMul') && !isPreprocessNode(n)) {
    const a = inShapes[0];
    const bConst = n.inputs[1] !== undefined && isConst(n.inputs[1]);
    const b = knownShape(facts, n.inputs[1]);
    if (!a || !b || !out) return { ...geo, unknownShape: true };
    const k = n.opType === 'Gemm' ? (n.int('transA', 0) ? a[0] : a[1]) : a[a.length - 1];
    const nOut = out[out.length - 1];
    const m = elementsOf(out) / nOut;
    geo.opClass = n.opType === 'Gemm' || bConst ? 'fc' : 'matmul';
    geo.macs = m * nOut * k;
    geo.paddedMacs = m * align(nOut, al.convOutputChannels) * align(k, al.convInputChannels);
    geo.weightBytes = bConst ? align(nOut, al.convOutputChannels) * align(k, al.convInputChannels) + paramBytes(nOut) : 0;
    geo.ops = 2 * geo.macs;
    return geo;
  }

  // vector / data-movement classes: work in padded elements
  const outPadded = paddedBytes(out, costs);
  const inPadded = inShapes.reduce((s, x) => s + paddedBytes(x, costs), 0);
  const outReal = elementsOf(out);
  const inReal = inShapes.reduce((s, x) => s + elementsOf(x), 0);
  const factor = costs.vectorWork[geo.opClass] ?? 1;
  geo.weightBytes = constBytes;
  switch (geo.opClass) {
    case 'pool': {
      const k = n.ints('kernel_shape', [1, 1]);
      const taps = k.reduce((p, v) => p * v, 1);
      geo.kernelH = k[0] ?? 1;
      geo.strideH = n.ints('strides', [1, 1])[0] ?? 1;
      geo.vectorWork = outPadded * taps * factor;
      geo.ops = outReal * taps;
      break;
    }
    case 'globalPool':
    case 'reduce':
    case 'argmax':
    case 'softmax':
      geo.vectorWork = inPadded * factor;
      geo.ops = inReal;
      break;
    case 'elementwise':
      geo.vectorWork = outPadded * Math.max(1, n.inputs.filter((i) => i).length) * factor;
      geo.ops = outReal * Math.max(1, n.inputs.filter((i) => i).length - 1);
      break;
    case 'relu':
    case 'lut':
    case 'preprocess':
      geo.vectorWork = outPadded * factor;
      geo.ops = outReal;
      break;
    case 'resize':
      geo.vectorWork = outPadded * (n.str('mode', 'nearest') === 'nearest' ? 1 : factor);
      geo.ops = outReal;
      break;
    default: // copies: concat, split, reshape, layout, other
      geo.vectorWork = Math.max(outPadded, inPadded) * factor;
      geo.ops = 0;
  }
  return geo;
}

export function isMacClass(c: OpClass): boolean {
  return MAC_CLASSES.has(c);
}
