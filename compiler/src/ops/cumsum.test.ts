import { tensorFrom } from '../onnx/tensor';
import { f32, i32, iota, runOp, unravel, values } from './tensor-shape.test.util';

describe('CumSum', () => {
  it('sums along the axis, exclusive and/or reversed', () => {
    const dims = [2, 3, 4];
    const x = f32(dims, iota(24).map((v) => (v * 5) % 7));
    const xs = values(x) as number[];
    for (const axis of [0, 1, -1]) {
      const ax = (axis + 3) % 3;
      for (const exclusive of [0, 1]) {
        for (const reverse of [0, 1]) {
          const [y] = runOp('CumSum', 14, [x, i32([axis], [])], { exclusive, reverse });
          values(y).forEach((v, q) => {
            const p = unravel(q, dims);
            let want = 0;
            for (let k = 0; k < dims[ax]; k++) {
              const before = reverse ? k > p[ax] : k < p[ax];
              if (before || (!exclusive && k === p[ax])) {
                const r = p.slice();
                r[ax] = k;
                want += xs[(r[0] * 3 + r[1]) * 4 + r[2]];
              }
            }
            expect(v).toBe(want);
          });
        }
      }
    }
  });

  it('keeps int64 exact', () => {
    const big = tensorFrom('int64', [3], [9007199254740993n, 2n, -1n]);
    const [y] = runOp('CumSum', 14, [big, tensorFrom('int64', [], [0])]);
    expect(Array.from(y.data as BigInt64Array)).toEqual([9007199254740993n, 9007199254740995n, 9007199254740994n]);
  });
});
