import { PtqError } from '../errors';
import { arrayCtor, DType, dtypeFromOnnx } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { paramValues } from '../kernels/qparams';
import { dequantizeValue, qRange, quantizeValue } from '../kernels/requant';
import { normAxis } from '../kernels/shape';
import { OpContext, OpDef, ValueFacts } from './registry';

/**
 * QuantizeLinear  y = saturate(roundHalfEven(x / y_scale) + y_zero_point)
 * DequantizeLinear y = (x − x_zero_point) · x_scale
 * Per tensor (opset 10), per axis (opset 13: 1-D scale along `axis`), blocked (opset 21:
 * `block_size` along `axis`). Both are CPU boundary ops of the integer contract.
 */

const QUANT_OUT: readonly DType[] = ['int8', 'uint8', 'int16', 'uint16'];
const DEQUANT_IN: readonly DType[] = ['int8', 'uint8', 'int16', 'uint16', 'int32'];

function qError(node: Node, msg: string, fix: string): PtqError {
  return new PtqError('E_MODEL_QPARAM', `node '${node.label}' (${node.opType}): ${msg}`, { subject: node.label, fix });
}

/**
 * How the elements of x (viewed as [outer, D, inner] around `axis`) find their scale:
 * param index = ((o * nb) + floor(a / block)) * inner + i, with nb = 1 and block = D per
 * tensor, inner = 1 and block = 1 per axis.
 */
interface ParamLayout {
  outer: number;
  D: number;
  inner: number;
  block: number;
  /** blocks along the axis */
  nb: number;
  /** the param index ignores outer/inner (per tensor / per axis) */
  innerParam: boolean;
  perTensor: boolean;
}

function layoutOf(ctx: OpContext, x: Tensor, scale: Tensor, zp: Tensor | undefined): ParamLayout {
  const { node, opset } = ctx;
  if (zp && zp.dims.join(',') !== scale.dims.join(',')) {
    throw qError(node, `zero point shape [${zp.dims}] differs from scale shape [${scale.dims}]`, 'give the zero point the shape of the scale');
  }
  const size = x.size;
  if (scale.size === 1 && scale.dims.length <= 1) {
    return { outer: 1, D: size, inner: 1, block: Math.max(1, size), nb: 1, innerParam: true, perTensor: true };
  }
  if (opset < 13) throw qError(node, `scale must be a scalar before opset 13, got shape [${scale.dims}]`, 'use a per-tensor scale or opset >= 13');
  const axis = normAxis(node.int('axis', 1), x.dims.length, node);
  const D = x.dims[axis];
  const outer = x.dims.slice(0, axis).reduce((p, q) => p * q, 1);
  const inner = x.dims.slice(axis + 1).reduce((p, q) => p * q, 1);
  const block = node.int('block_size', 0);
  if (block > 0) {
    const nb = Math.ceil(D / block);
    const ok = scale.dims.length === x.dims.length && scale.dims.every((d, i) => (i === axis ? d === nb : d === x.dims[i]));
    if (!ok) throw qError(node, `blocked scale has shape [${scale.dims}], expected x's shape [${x.dims}] with ${nb} blocks on axis ${axis}`, 'fix the scale shape or block_size');
    return { outer, D, inner, block, nb, innerParam: false, perTensor: false };
  }
  if (scale.dims.length !== 1 || scale.dims[0] !== D) {
    throw qError(node, `per-axis scale has shape [${scale.dims}], expected [${D}] (axis ${axis} of x [${x.dims}])`, 'give one scale per element of the quantisation axis');
  }
  return { outer, D, inner, block: 1, nb: D, innerParam: true, perTensor: false };
}

/** Apply `f(value, paramIndex)` over x in order, with the param index of each element. */
function forEachParam(l: ParamLayout, f: (i: number, p: number) => void): void {
  if (l.perTensor) {
    const n = l.outer * l.D * l.inner;
    for (let i = 0; i < n; i++) f(i, 0);
    return;
  }
  let i = 0;
  for (let o = 0; o < l.outer; o++) {
    for (let a = 0; a < l.D; a++) {
      const b = Math.floor(a / l.block);
      if (l.innerParam) {
        for (let k = 0; k < l.inner; k++) f(i++, b);
      } else {
        const base = (o * l.nb + b) * l.inner;
        for (let k = 0; k < l.inner; k++) f(i++, base + k);
      }
    }
  }
}

function quantOutDtype(ctx: OpContext, zp: Tensor | undefined, zpFact?: DType): DType {
  if (zp) return zp.dtype;
  if (zpFact) return zpFact;
  const code = ctx.node.int('output_dtype', 0);
  if (code) {
    const d = dtypeFromOnnx(code);
    if (!d) throw qError(ctx.node, `output_dtype ${code} is not supported`, 'quantize to int8, uint8, int16 or uint16');
    return d;
  }
  return 'uint8';
}

function quantizeLinear(ctx: OpContext, [x, scale, zp]: (Tensor | undefined)[]): Tensor[] {
  const { node } = ctx;
  if (!x || !scale) throw qError(node, 'x and y_scale are required', 'give both inputs');
  const dtype = quantOutDtype(ctx, zp);
  if (!QUANT_OUT.includes(dtype)) throw qError(node, `output type ${dtype} is not supported`, 'quantize to int8, uint8, int16 or uint16');
  const l = layoutOf(ctx, x, scale, zp);
  const [lo, hi] = qRange(dtype);
  const xs = x.dtype === 'float32' ? (x.data as Float32Array) : x.toFloat32();
  const s = paramValues(scale);
  const z = zp ? paramValues(zp) : undefined;
  const out = new (arrayCtor(dtype))(x.size) as Int8Array;
  if (l.perTensor) {
    const sc = s[0];
    const zz = z ? z[0] : 0;
    for (let i = 0; i < xs.length; i++) out[i] = quantizeValue(xs[i], sc, zz, lo, hi);
  } else {
    forEachParam(l, (i, p) => (out[i] = quantizeValue(xs[i], s[p], z ? z[p] : 0, lo, hi)));
  }
  return [new Tensor(dtype, x.dims, out)];
}

function dequantizeLinear(ctx: OpContext, [x, scale, zp]: (Tensor | undefined)[]): Tensor[] {
  const { node } = ctx;
  if (!x || !scale) throw qError(node, 'x and x_scale are required', 'give both inputs');
  if (!DEQUANT_IN.includes(x.dtype)) throw qError(node, `input type ${x.dtype} is not supported`, 'dequantize int8, uint8, int16, uint16 or int32 tensors');
  if (zp && zp.dtype !== x.dtype) throw qError(node, `zero point type ${zp.dtype} differs from input type ${x.dtype}`, 'give the zero point the type of x');
  const l = layoutOf(ctx, x, scale, zp);
  const xs = x.data as Int32Array;
  const s = paramValues(scale);
  const z = zp ? paramValues(zp) : undefined;
  const out = new Float32Array(x.size);
  if (l.perTensor) {
    const sc = s[0];
    const zz = z ? z[0] : 0;
    for (let i = 0; i < out.length; i++) out[i] = dequantizeValue(xs[i], sc, zz);
  } else {
    forEachParam(l, (i, p) => (out[i] = dequantizeValue(xs[i], s[p], z ? z[p] : 0)));
  }
  return [new Tensor('float32', x.dims, out)];
}

export const ops: OpDef[] = [
  {
    type: 'QuantizeLinear',
    sinceOpset: 10,
    quant: 'cpu',
    infer: (ctx, [x, , zp]): ValueFacts[] => [{ dtype: quantOutDtype(ctx, undefined, zp?.dtype), shape: x?.shape }],
    run: quantizeLinear,
  },
  {
    type: 'DequantizeLinear',
    sinceOpset: 10,
    quant: 'cpu',
    infer: (ctx, [x, scale]): ValueFacts[] => [{ dtype: ctx.opset >= 19 && scale?.dtype ? scale.dtype : 'float32', shape: x?.shape }],
    run: dequantizeLinear,
  },
];
