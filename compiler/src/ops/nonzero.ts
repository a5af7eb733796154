import { UNKNOWN_DIM } from '../kernels/op-args';
import { stridesOf } from '../kernels/shape';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- truthiness over number, bigint and string storage */

/** NonZero: the indices of the non-zero elements, one row per axis ([rank, count], int64, row-major order). CPU. */
function runNonZero(x: Tensor): Tensor {
  const d = x.data as any;
  const hits: number[] = [];
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v !== 0 && v !== 0n && v !== '') hits.push(i); // NaN counts as non-zero, -0 does not
  }
  const r = x.rank;
  const st = stridesOf(x.dims);
  const out = new BigInt64Array(r * hits.length);
  hits.forEach((flat, k) => {
    let rest = flat;
    for (let a = 0; a < r; a++) {
      out[a * hits.length + k] = BigInt(Math.floor(rest / st[a]));
      rest %= st[a];
    }
  });
  return new Tensor('int64', [r, hits.length], out);
}

export const ops: OpDef[] = [
  {
    type: 'NonZero',
    quant: 'cpu',
    sinceOpset: 9,
    infer: (_ctx, [x]) => [{ dtype: 'int64', shape: [x?.shape ? x.shape.length : UNKNOWN_DIM, UNKNOWN_DIM] }],
    run: (_ctx, [x]) => [runNonZero(x!)],
  },
];
