import { allocData } from '../kernels/copy';
import { opError, UNKNOWN_DIM } from '../kernels/op-args';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- off/on values are copied as stored */

function oneHotAxis(node: Node, inRank: number): number {
  const a = node.int('axis', -1);
  const r = inRank + 1;
  const x = a < 0 ? a + r : a;
  if (x < 0 || x >= r) throw opError(node, 'E_MODEL_ATTR', `axis ${a} is out of range for the rank-${r} output`, `use an axis in [-${r}, ${r - 1}]`);
  return x;
}

/**
 * OneHot: a new axis of size `depth` with values[1] where it equals the index (negatives count
 * from depth; out-of-range indices give a row of values[0]). CPU.
 */
function runOneHot(node: Node, indices: Tensor, depthT: Tensor, values: Tensor): Tensor {
  const depth = Math.trunc(depthT.toNumbers()[0]);
  if (!(depth >= 1)) throw opError(node, 'E_MODEL_ATTR', `depth ${depth} is not positive`, 'depth must be >= 1');
  if (values.size !== 2) throw opError(node, 'E_MODEL_SHAPE', `values has ${values.size} elements, expected [off, on]`, 'give values as a 2-element tensor');
  const axis = oneHotAxis(node, indices.rank);
  const dims = [...indices.dims.slice(0, axis), depth, ...indices.dims.slice(axis)];
  const outer = indices.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = indices.dims.slice(axis).reduce((a, b) => a * b, 1);
  const v = values.data as any;
  const out = allocData(values.dtype, outer * depth * inner) as any;
  for (let i = 0; i < out.length; i++) out[i] = v[0];
  const idx = indices.toNumbers();
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let h = Math.trunc(idx[o * inner + i]);
      if (h < 0) h += depth;
      if (h >= 0 && h < depth) out[(o * depth + h) * inner + i] = v[1];
    }
  }
  return new Tensor(values.dtype, dims, out);
}

function inferOneHot(node: Node, [i, d, v]: (ValueFacts | undefined)[]): ValueFacts[] {
  if (!i?.shape) return [{ dtype: v?.dtype }];
  const axis = oneHotAxis(node, i.shape.length);
  const depth: Dim = d?.value ? Math.trunc(d.value.toNumbers()[0]) : UNKNOWN_DIM;
  return [{ dtype: v?.dtype, shape: [...i.shape.slice(0, axis), depth, ...i.shape.slice(axis)] }];
}

export const ops: OpDef[] = [
  {
    type: 'OneHot',
    quant: 'cpu',
    nativeHalf: true,
    sinceOpset: 9,
    infer: ({ node }, inputs) => inferOneHot(node, inputs),
    run: ({ node }, [i, d, v]) => [runOneHot(node, i!, d!, v!)],
  },
];
