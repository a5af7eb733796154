import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { convGeometry, convOutputDims, iconv } from '../kernels/iconv';
import { channelParam, expectQ8, required, scalarParam } from '../kernels/qparams';
import { OpDef, ValueFacts } from './registry';

/** ConvInteger: int32 y = conv(x − x_zero_point, w − w_zero_point); w_zero_point per tensor or per output channel. */
export const ops: OpDef[] = [
  {
    type: 'ConvInteger',
    sinceOpset: 10,
    quant: 'active',
    infer: (ctx, ins): ValueFacts[] => [{ dtype: 'int32', shape: convOutputDims(ctx.node, ins[0]?.shape, ins[1]?.shape) }],
    run: ({ node }, [xT, wT, xZpT, wZpT]) => {
      const x = required(node, xT, 'x');
      const w = required(node, wT, 'w');
      expectQ8(node, x, 'x');
      expectQ8(node, w, 'w');
      for (const [zp, t, what] of [[xZpT, x, 'x_zero_point'], [wZpT, w, 'w_zero_point']] as const) {
        if (zp && zp.dtype !== t.dtype) {
          throw new PtqError('E_MODEL_QPARAM', `node '${node.label}' (ConvInteger): ${what} has type ${zp.dtype}, expected ${t.dtype}`, {
            subject: node.label,
            fix: `give ${what} the type of the tensor it belongs to`,
          });
        }
      }
      const g = convGeometry(node, x.dims, w.dims);
      const xZp = scalarParam(node, xZpT, 'x_zero_point', 0);
      const wZp = channelParam(node, wZpT, w.dims[0], 'w_zero_point', 0);
      const acc = iconv(x.data as Int8Array, x.dims, xZp, w.data as Int8Array, w.dims, wZp, g);
      return [new Tensor('int32', [x.dims[0], w.dims[0], ...g.outSpatial], acc)];
    },
  },
];
