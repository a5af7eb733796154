import { allocData, permuteData } from '../kernels/copy';
import { opError, UNKNOWN_DIM } from '../kernels/op-args';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * DepthToSpace and SpaceToDepth on NCHW: a reshape to 6-D, a transpose and a reshape back,
 * done as one permuted copy. Passive: they only move values.
 */

function blockSize(node: Node): number {
  const b = node.int('blocksize');
  if (b === undefined || b < 1) throw opError(node, 'E_MODEL_ATTR', `blocksize ${b ?? '(missing)'} is not a positive integer`, 'set blocksize >= 1');
  return b;
}

function depthMode(node: Node): 'DCR' | 'CRD' {
  const m = node.str('mode', 'DCR');
  if (m !== 'DCR' && m !== 'CRD') throw opError(node, 'E_MODEL_ATTR', `mode '${m}' is not DCR or CRD`, 'use mode DCR or CRD');
  return m;
}

function check4d(node: Node, dims: readonly Dim[]): void {
  if (dims.length !== 4) throw opError(node, 'E_MODEL_SHAPE', `input has rank ${dims.length}, expected 4 (NCHW)`, 'give a 4-D NCHW input');
}

const times = (d: Dim, k: number): Dim => (typeof d === 'number' ? d * k : UNKNOWN_DIM);
const div = (d: Dim, k: number): Dim => (typeof d === 'number' ? d / k : UNKNOWN_DIM);

function depthToSpaceShape(node: Node, s: readonly Dim[]): Dim[] {
  check4d(node, s);
  const b = blockSize(node);
  if (typeof s[1] === 'number' && s[1] % (b * b) !== 0) {
    throw opError(node, 'E_MODEL_SHAPE', `channels ${s[1]} are not a multiple of blocksize² = ${b * b}`, 'check the blocksize');
  }
  return [s[0], div(s[1], b * b), times(s[2], b), times(s[3], b)];
}

function spaceToDepthShape(node: Node, s: readonly Dim[]): Dim[] {
  check4d(node, s);
  const b = blockSize(node);
  if ((typeof s[2] === 'number' && s[2] % b !== 0) || (typeof s[3] === 'number' && s[3] % b !== 0)) {
    throw opError(node, 'E_MODEL_SHAPE', `height ${s[2]} and width ${s[3]} are not multiples of blocksize ${b}`, 'check the blocksize');
  }
  return [s[0], times(s[1], b * b), div(s[2], b), div(s[3], b)];
}

function runDepthToSpace(node: Node, X: Tensor): Tensor {
  const outDims = depthToSpaceShape(node, X.dims) as number[];
  const b = blockSize(node);
  const [n, c, h, w] = X.dims;
  const cc = c / (b * b);
  const out = allocData(X.dtype, X.size);
  if (depthMode(node) === 'DCR') permuteData(X.data, [n, b, b, cc, h, w], [0, 3, 4, 1, 5, 2], out);
  else permuteData(X.data, [n, cc, b, b, h, w], [0, 1, 4, 2, 5, 3], out);
  return new Tensor(X.dtype, outDims, out);
}

function runSpaceToDepth(node: Node, X: Tensor): Tensor {
  const outDims = spaceToDepthShape(node, X.dims) as number[];
  const b = blockSize(node);
  const [n, c, h, w] = X.dims;
  const out = allocData(X.dtype, X.size);
  permuteData(X.data, [n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], out);
  return new Tensor(X.dtype, outDims, out);
}

const shapeOf =
  (f: (node: Node, s: readonly Dim[]) => Dim[]) =>
  ({ node }: { node: Node }, [x]: (ValueFacts | undefined)[]): ValueFacts[] => [{ dtype: x?.dtype, shape: x?.shape ? f(node, x.shape) : undefined }];

export const ops: OpDef[] = [
  {
    type: 'DepthToSpace',
    quant: 'passive',
    nativeHalf: true,
    infer: shapeOf(depthToSpaceShape),
    run: ({ node }, [x]) => [runDepthToSpace(node, x!)],
  },
  {
    type: 'SpaceToDepth',
    quant: 'passive',
    nativeHalf: true,
    infer: shapeOf(spaceToDepthShape),
    run: ({ node }, [x]) => [runSpaceToDepth(node, x!)],
  },
];
