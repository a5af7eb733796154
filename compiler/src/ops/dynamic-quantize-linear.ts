import { Tensor } from '../onnx/tensor';
import { required } from '../kernels/qparams';
import { quantizeValue, roundHalfEven, saturateUint8 } from '../kernels/requant';
import { OpDef, ValueFacts } from './registry';

const fround = Math.fround;

/**
 * DynamicQuantizeLinear: uint8 quantisation with a range taken from the data (widened to
 * include 0): scale = (max − min) / 255, zero point = saturate(round(0 − min / scale)),
 * y = saturate(round(x / scale) + zero point); float32 arithmetic, rounding half to even.
 * An all-zero input gets scale 1 and zero point 0 (the formula would divide 0 by 0), as
 * onnxruntime does.
 */
export const ops: OpDef[] = [
  {
    type: 'DynamicQuantizeLinear',
    sinceOpset: 11,
    quant: 'cpu',
    infer: (_ctx, [x]): ValueFacts[] => [
      { dtype: 'uint8', shape: x?.shape },
      { dtype: 'float32', shape: [] },
      { dtype: 'uint8', shape: [] },
    ],
    run: ({ node }, [xT]) => {
      const x = required(node, xT, 'x').toFloat32();
      let min = 0;
      let max = 0;
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const range = fround(max - min);
      const scale = range === 0 ? 1 : fround(range / 255);
      const zp = saturateUint8(roundHalfEven(fround(0 - fround(min / scale))));
      const y = new Uint8Array(x.length);
      for (let i = 0; i < x.length; i++) y[i] = quantizeValue(x[i], scale, zp, 0, 255);
      return [new Tensor('uint8', xT!.dims, y), new Tensor('float32', [], Float32Array.of(scale)), new Tensor('uint8', [], Uint8Array.of(zp))];
    },
  },
];
