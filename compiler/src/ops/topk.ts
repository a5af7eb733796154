import { PtqError } from '../errors';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { normAxis } from '../kernels/shape';
import { splitAt } from '../kernels/reduction';
import { OpContext, OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint elements */

/**
 * TopK: the k largest (or, with largest=0 from opset 11, smallest) elements along `axis`
 * (default -1) and their int64 indices. k is an attribute before opset 10 and a 1-element int64
 * input afterwards. Equal values keep the lower index first; NaN ranks above every number.
 * The output is always sorted (with sorted=0 ONNX leaves the order open).
 */
function kOf({ node, opset }: OpContext, kT: Tensor | undefined): number | undefined {
  if (opset < 10) return node.int('k');
  if (!kT) return undefined;
  if (kT.size !== 1) {
    throw new PtqError('E_MODEL_SHAPE', `node '${node.label}' (TopK): input K must hold one value, it has shape [${kT.dims.join(',')}]`, {
      subject: node.label,
      fix: 'give K as a 1-element int64 tensor',
    });
  }
  return kT.toNumbers()[0];
}

function badK(node: Node, k: number | undefined, n: number): PtqError {
  return new PtqError('E_MODEL_ATTR', `node '${node.label}' (TopK): k = ${k ?? 'missing'} is not in [0, ${n}] (the size of axis ${node.int('axis', -1)})`, {
    subject: node.label,
    fix: 'give a k between 0 and the size of the axis',
  });
}

function topk(ctx: OpContext, x: Tensor, kT: Tensor | undefined): Tensor[] {
  const { node, opset } = ctx;
  if (x.dtype === 'string' || x.dtype === 'bool') {
    throw new PtqError('E_MODEL_DTYPE', `node '${node.label}' (TopK): input of type ${x.dtype} is not supported`, {
      subject: node.label,
      fix: 'insert a Cast to a numeric type before the node',
    });
  }
  const axis = normAxis(node.int('axis', -1), x.rank, node);
  const largest = opset < 11 || node.int('largest', 1) !== 0;
  const { outer, n, inner } = splitAt(x.dims, axis);
  const k = kOf(ctx, kT);
  if (k === undefined || !Number.isInteger(k) || k < 0 || k > n) throw badK(node, k, n);
  const dims = x.dims.map((d, i) => (i === axis ? k : d));
  const values = new Tensor(x.dtype, dims);
  const indices = new Tensor('int64', dims);
  const data = x.array as any;
  const vOut = values.array as any;
  const iOut = indices.array as BigInt64Array;
  const order = new Int32Array(n);
  const slice: any = x.dtype === 'int64' || x.dtype === 'uint64' ? new Array(n) : new Float64Array(n);
  // ranks a before b: the larger (or smaller) value, NaN as the largest, ties by the lower index
  const cmp = largest
    ? (a: number, b: number): number => {
        const va = slice[a];
        const vb = slice[b];
        if (va > vb || (va !== va && vb === vb)) return -1;
        if (va < vb || (vb !== vb && va === va)) return 1;
        return a - b;
      }
    : (a: number, b: number): number => {
        const va = slice[a];
        const vb = slice[b];
        if (va < vb || (vb !== vb && va === va)) return -1;
        if (va > vb || (va !== va && vb === vb)) return 1;
        return a - b;
      };
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      for (let j = 0; j < n; j++) {
        slice[j] = data[base + j * inner];
        order[j] = j;
      }
      order.sort(cmp);
      const ob = o * k * inner + i;
      for (let j = 0; j < k; j++) {
        vOut[ob + j * inner] = slice[order[j]];
        iOut[ob + j * inner] = BigInt(order[j]);
      }
    }
  }
  return [values, indices];
}

export const ops: OpDef[] = [
  {
    type: 'TopK',
    quant: 'cpu',
    infer: (ctx, [x, kF]) => {
      const shape = x?.shape;
      let outShape: Dim[] | undefined;
      if (shape) {
        const axis = normAxis(ctx.node.int('axis', -1), shape.length, ctx.node);
        const k: Dim = (ctx.opset < 10 ? ctx.node.int('k') : kF?.value?.toNumbers()[0]) ?? '?';
        outShape = shape.map((d, i) => (i === axis ? k : d));
      }
      return [
        { dtype: x?.dtype, shape: outShape },
        { dtype: 'int64', shape: outShape?.slice() },
      ];
    },
    run: (ctx, [x, k]) => topk(ctx, x!, k),
  },
];
