import { PtqError } from '../errors';
import { arrayCtor } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';
import { convGeometry, convOutputDims, iconv } from '../kernels/iconv';
import { channelParam, expectQ8, paramValues, required, scalarParam } from '../kernels/qparams';
import { qRange, requantizeBlock, requantMultipliers } from '../kernels/requant';
import { OpContext, OpDef, ValueFacts } from './registry';

/**
 * QLinearConv: int8/uint8 convolution (groups, depthwise, strides, pads, dilations, auto_pad),
 * per-tensor or per-output-channel weight scales and zero points, optional int32 bias with
 * scale x_scale·w_scale[c]; int32 accumulation and the float-scale requantisation of
 * kernels/requant.ts (onnxruntime's).
 */
function qlinearConv(ctx: OpContext, inputs: (Tensor | undefined)[]): Tensor[] {
  const { node } = ctx;
  const [xT, xScaleT, xZpT, wT, wScaleT, wZpT, yScaleT, yZpT, bT] = inputs;
  const x = required(node, xT, 'x');
  const w = required(node, wT, 'w');
  expectQ8(node, x, 'x');
  expectQ8(node, w, 'w');
  if (xZpT && xZpT.dtype !== x.dtype) throw mismatch(ctx, 'x_zero_point', xZpT.dtype, x.dtype);
  if (wZpT && wZpT.dtype !== w.dtype) throw mismatch(ctx, 'w_zero_point', wZpT.dtype, w.dtype);
  const yDtype = yZpT?.dtype ?? x.dtype;
  expectQ8(node, yZpT ?? x, 'y_zero_point');
  const M = w.dims[0];
  const sIn = scalarParam(node, xScaleT, 'x_scale');
  const xZp = scalarParam(node, xZpT, 'x_zero_point', 0);
  const sW = channelParam(node, wScaleT, M, 'w_scale');
  const wZp = channelParam(node, wZpT, M, 'w_zero_point', 0);
  const sOut = scalarParam(node, yScaleT, 'y_scale');
  const yZp = scalarParam(node, yZpT, 'y_zero_point', 0);
  let bias: ArrayLike<number> | undefined;
  if (bT) {
    if (bT.dtype !== 'int32' || bT.dims.length !== 1 || bT.dims[0] !== M) {
      throw new PtqError('E_MODEL_QPARAM', `node '${node.label}' (QLinearConv): bias must be int32 of shape [${M}], got ${bT.dtype} [${bT.dims}]`, {
        subject: node.label,
        fix: 'quantize the bias to int32 with scale x_scale·w_scale and zero point 0',
      });
    }
    bias = paramValues(bT);
  }
  const g = convGeometry(node, x.dims, w.dims);
  const acc = iconv(x.data as Int8Array, x.dims, xZp, w.data as Int8Array, w.dims, wZp, g);
  const mult = requantMultipliers(sIn, sW, sOut);
  const [lo, hi] = qRange(yDtype);
  const N = x.dims[0];
  const P = g.outSpatial.reduce((p, q) => p * q, 1);
  const out = new (arrayCtor(yDtype))(N * M * P) as Int8Array;
  for (let n = 0; n < N; n++) requantizeBlock(acc, n * M * P, P, M, P, 'row', bias, mult, yZp, lo, hi, out, n * M * P, P);
  return [new Tensor(yDtype, [N, M, ...g.outSpatial], out)];
}

function mismatch(ctx: OpContext, what: string, got: string, want: string): PtqError {
  return new PtqError('E_MODEL_QPARAM', `node '${ctx.node.label}' (${ctx.node.opType}): ${what} has type ${got}, expected ${want}`, {
    subject: ctx.node.label,
    fix: `give ${what} the type of the tensor it belongs to`,
  });
}

export const ops: OpDef[] = [
  {
    type: 'QLinearConv',
    sinceOpset: 10,
    quant: 'active',
    infer: (ctx, ins): ValueFacts[] => [{ dtype: ins[7]?.dtype ?? ins[0]?.dtype, shape: convOutputDims(ctx.node, ins[0]?.shape, ins[3]?.shape) }],
    run: qlinearConv,
  },
];
