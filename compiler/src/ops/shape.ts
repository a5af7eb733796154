import { staticSize } from '../kernels/op-args';
import { Dim, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * Shape and Size: shape math, CPU ops. Their shape functions also give the *value* when the
 * dims are fixed, which is what lets inference fold Shape → Gather → Concat → Reshape chains.
 */

/** The [start, end) window of the dims (opset 15): negatives count from the end, then clamp. */
function shapeWindow(node: Node, opset: number, rank: number): [number, number] {
  if (opset < 15) return [0, rank];
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  return [clamp(node.int('start', 0)), clamp(node.int('end', rank))];
}

function shapeTensor(dims: readonly number[]): Tensor {
  return tensorFrom('int64', [dims.length], dims);
}

function inferShape(node: Node, opset: number, [x]: (ValueFacts | undefined)[]): ValueFacts[] {
  if (!x?.shape) return [{ dtype: 'int64', shape: ['?'] }];
  const [s, e] = shapeWindow(node, opset, x.shape.length);
  const dims: Dim[] = x.shape.slice(s, Math.max(s, e));
  const fixed = dims.every((d) => typeof d === 'number');
  return [{ dtype: 'int64', shape: [dims.length], value: fixed ? shapeTensor(dims as number[]) : undefined }];
}

function inferSize([x]: (ValueFacts | undefined)[]): ValueFacts[] {
  const n = x?.shape ? staticSize(x.shape) : undefined;
  return [{ dtype: 'int64', shape: [], value: n === undefined ? undefined : tensorFrom('int64', [], [n]) }];
}

export const ops: OpDef[] = [
  {
    type: 'Shape',
    quant: 'cpu',
    nativeHalf: true,
    infer: ({ node, opset }, inputs) => inferShape(node, opset, inputs),
    run: ({ node, opset }, [x]) => {
      const [s, e] = shapeWindow(node, opset, x!.rank);
      return [shapeTensor(x!.dims.slice(s, Math.max(s, e)))];
    },
  },
  {
    type: 'Size',
    quant: 'cpu',
    nativeHalf: true,
    infer: (_ctx, inputs) => inferSize(inputs),
    run: (_ctx, [x]) => [tensorFrom('int64', [], [x!.size])],
  },
];
