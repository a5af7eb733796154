import { unaryOp } from '../kernels/elementwise';
import { isBigInt } from '../onnx/dtype';
import { OpDef } from './registry';

/** Relu: y = max(x, 0). Passive in the integer contract: it becomes the requantisation clamp. */
export const ops: OpDef[] = [
  {
    type: 'Relu',
    quant: 'passive',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: (_ctx, [x]) =>
      isBigInt(x!.dtype) ? [unaryOp(x!, (v: bigint) => (v < 0n ? 0n : v))] : [unaryOp(x!, (v: number) => (v < 0 ? 0 : v))],
  },
];
