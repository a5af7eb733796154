import { allocData, gatherAxes, stepTable } from '../kernels/copy';
import { intsOf, opError, UNKNOWN_DIM } from '../kernels/op-args';
import { broadcastDims, broadcastShape, stridesOf } from '../kernels/shape';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/** Expand: numpy-broadcast the input to `shape` (a 1 in `shape` keeps the input's size). Passive. */
function runExpand(node: Node, x: Tensor, shape: Tensor): Tensor {
  const target = intsOf(shape)!;
  const dims = broadcastShape(x.dims, target, node);
  const st = stridesOf(x.dims);
  const lead = dims.length - x.rank;
  const tables = dims.map((len, d) => {
    const k = d - lead;
    return stepTable(len, 0, k < 0 || x.dims[k] === 1 ? 0 : 1, k < 0 ? 0 : st[k]);
  });
  const out = allocData(x.dtype, dims.reduce((a, b) => a * b, 1));
  gatherAxes(x.data, tables, out);
  return new Tensor(x.dtype, dims, out);
}

function inferExpand([x, s]: (ValueFacts | undefined)[]): ValueFacts[] {
  const target = intsOf(s?.value);
  if (!target) {
    const len = s?.shape?.[0];
    if (typeof len !== 'number' || !x?.shape) return [{ dtype: x?.dtype }];
    const r = Math.max(len, x.shape.length);
    return [{ dtype: x.dtype, shape: Array.from({ length: r }, () => UNKNOWN_DIM) }];
  }
  return [{ dtype: x?.dtype, shape: x?.shape ? broadcastDims([x.shape, target]) : undefined }];
}

function repeatsOf(node: Node, repeats: number[] | undefined, rank: number): number[] | undefined {
  if (!repeats) return undefined;
  if (repeats.length !== rank || repeats.some((r) => r < 0)) {
    throw opError(node, 'E_MODEL_SHAPE', `repeats [${repeats}] do not fit an input of rank ${rank}`, 'give one non-negative repeat count per input axis');
  }
  return repeats;
}

/**
 * Tile: repeat the input `repeats[d]` times along each axis. The output viewed as
 * [r0, d0, r1, d1, …] reads the input with stride 0 on the repeat axes. Passive.
 */
function runTile(node: Node, x: Tensor, repeats: Tensor): Tensor {
  const reps = repeatsOf(node, intsOf(repeats), x.rank)!;
  const st = stridesOf(x.dims);
  const tables: Float64Array[] = [];
  x.dims.forEach((d, i) => tables.push(stepTable(reps[i], 0, 0, 0), stepTable(d, 0, 1, st[i])));
  const dims = x.dims.map((d, i) => d * reps[i]);
  const out = allocData(x.dtype, dims.reduce((a, b) => a * b, 1));
  gatherAxes(x.data, tables, out);
  return new Tensor(x.dtype, dims, out);
}

function inferTile(node: Node, [x, r]: (ValueFacts | undefined)[]): ValueFacts[] {
  if (!x?.shape) return [{ dtype: x?.dtype }];
  const reps = repeatsOf(node, intsOf(r?.value), x.shape.length);
  return [{ dtype: x.dtype, shape: x.shape.map((d, i): Dim => (reps && typeof d === 'number' ? d * reps[i] : reps?.[i] === 1 ? d : UNKNOWN_DIM)) }];
}

export const ops: OpDef[] = [
  {
    type: 'Expand',
    quant: 'passive',
    nativeHalf: true,
    sinceOpset: 8,
    infer: (_ctx, inputs) => inferExpand(inputs),
    run: ({ node }, [x, s]) => [runExpand(node, x!, s!)],
  },
  {
    type: 'Tile',
    quant: 'passive',
    nativeHalf: true,
    sinceOpset: 6,
    infer: ({ node }, inputs) => inferTile(node, inputs),
    run: ({ node }, [x, r]) => [runTile(node, x!, r!)],
  },
];
