import { allocData, permuteData } from '../kernels/copy';
import { opError } from '../kernels/op-args';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/** `perm` (default: reversed axes), checked to be a permutation of 0…rank-1. */
function permOf(node: Node, rank: number): number[] {
  const perm = node.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((p) => !(p >= 0 && p < rank))) {
    throw opError(node, 'E_MODEL_ATTR', `perm [${perm}] is not a permutation of the ${rank} axes`, `list each axis 0…${rank - 1} once`);
  }
  return perm;
}

/** Transpose: output axis i is input axis perm[i]. Passive: moves values. */
export const ops: OpDef[] = [
  {
    type: 'Transpose',
    quant: 'passive',
    nativeHalf: true,
    infer: ({ node }, [x]) => {
      const s = x?.shape;
      return [{ dtype: x?.dtype, shape: s ? permOf(node, s.length).map((p): Dim => s[p]) : undefined }];
    },
    run: ({ node }, [x]) => {
      const X = x!;
      const perm = permOf(node, X.rank);
      const out = allocData(X.dtype, X.size);
      permuteData(X.data, X.dims, perm, out);
      return [new Tensor(X.dtype, perm.map((p) => X.dims[p]), out)];
    },
  },
];
