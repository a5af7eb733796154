import { PtqError } from '../errors';
import { Dim } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { normAxis } from '../kernels/shape';
import { splitAt } from '../kernels/reduction';
import { OpContext, OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */

/**
 * ArgMax / ArgMin: int64 index of the largest / smallest element along `axis` (default 0),
 * first occurrence unless `select_last_index` (opset 12). NaN counts as the extreme, as in numpy.
 */
function argOp(type: 'ArgMax' | 'ArgMin'): OpDef {
  const max = type === 'ArgMax';
  return {
    type,
    quant: 'cpu',
    infer: (ctx, [x]) => [{ dtype: 'int64', shape: inferArg(ctx, x?.shape) }],
    run: (ctx, [x]) => [argReduce(ctx, x!, max)],
  };
}

function inferArg({ node }: OpContext, shape: Dim[] | undefined): Dim[] | undefined {
  if (!shape) return undefined;
  const axis = normAxis(node.int('axis', 0), shape.length, node);
  const keep = node.int('keepdims', 1) !== 0;
  return keep ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
}

function argReduce(ctx: OpContext, x: Tensor, max: boolean): Tensor {
  const { node } = ctx;
  if (x.dtype === 'string' || x.dtype === 'bool') {
    throw new PtqError('E_MODEL_DTYPE', `node '${node.label}' (${node.opType}): input of type ${x.dtype} is not supported`, {
      subject: node.label,
      fix: 'insert a Cast to a numeric type before the node',
    });
  }
  const axis = normAxis(node.int('axis', 0), x.rank, node);
  const last = node.int('select_last_index', 0) !== 0;
  const { outer, n, inner } = splitAt(x.dims, axis);
  if (n === 0 && outer * inner > 0) {
    throw new PtqError('E_MODEL_SHAPE', `node '${node.label}' (${node.opType}): axis ${axis} has size 0, there is no element to select`, {
      subject: node.label,
      fix: 'check the input shapes given to the model (input_shape)',
    });
  }
  const dims = inferArg(ctx, x.dims) as number[];
  const out = new Tensor('int64', dims);
  const res = out.array as BigInt64Array;
  const data = x.array as any;
  const block = n * inner;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * block + i;
      let best: any = data[base];
      let at = 0;
      for (let j = 1; j < n; j++) {
        const v: any = data[base + j * inner];
        if (best !== best) {
          // a NaN already holds the place; a later NaN only wins when the last index is asked for
          if (last && v !== v) at = j;
          continue;
        }
        if (v !== v) {
          best = v;
          at = j;
          continue;
        }
        const better = max ? v > best : v < best;
        if (better || (last && v === best)) {
          best = v;
          at = j;
        }
      }
      res[o * inner + i] = BigInt(at);
    }
  }
  return out;
}

export const ops: OpDef[] = [argOp('ArgMax'), argOp('ArgMin')];
