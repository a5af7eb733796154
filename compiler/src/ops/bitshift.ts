import { binaryOp } from '../kernels/elementwise';
import { requireSameType, typeError } from '../kernels/elementwise-ext';
import { broadcastDims } from '../kernels/shape';
import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

const WIDTH: Record<string, number> = { uint8: 8, uint16: 16, uint32: 32, uint64: 64 };

/**
 * BitShift on unsigned integers: x << y or x >> y (direction LEFT|RIGHT). Bits shifted past
 * the type's width are dropped, and a shift by the width or more gives 0. CPU op.
 */
export const ops: OpDef[] = [
  {
    type: 'BitShift',
    quant: 'cpu',
    sinceOpset: 11,
    infer: (_ctx, [a, b]): ValueFacts[] => [{ dtype: a?.dtype ?? b?.dtype, shape: broadcastDims([a?.shape, b?.shape]) }],
    run: ({ node }, [a, b]) => {
      const dtype = requireSameType(node, [a, b]);
      const w = WIDTH[dtype];
      if (!w) throw typeError(node, 'input', dtype, 'unsigned integer tensors');
      const dir = node.str('direction', '');
      if (dir !== 'LEFT' && dir !== 'RIGHT') {
        throw new PtqError('E_MODEL_ATTR', `node '${node.label}' (BitShift): direction '${dir}' is not LEFT or RIGHT`, {
          subject: node.label,
          fix: "set direction to 'LEFT' or 'RIGHT'",
        });
      }
      const A = a as Tensor;
      const B = b as Tensor;
      if (w === 64) {
        const f = dir === 'LEFT' ? (x: bigint, s: bigint) => (s >= 64n ? 0n : x << s) : (x: bigint, s: bigint) => (s >= 64n ? 0n : x >> s);
        return [binaryOp(A, B, dtype, f, node)];
      }
      // JS shifts work on 32 bits and take the count mod 32: counts >= width are handled first;
      // a left shift's high bits are cut when stored into the narrower typed array.
      const f = dir === 'LEFT' ? (x: number, s: number) => (s >= w ? 0 : x << s) : (x: number, s: number) => (s >= w ? 0 : x >>> s);
      return [binaryOp(A, B, dtype, f, node)];
    },
  },
];
