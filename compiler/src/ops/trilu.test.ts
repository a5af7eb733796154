import { f32, i64, iota, runOp, unravel, values } from './tensor-shape.test.util';

describe('Trilu', () => {
  it('keeps j - i >= k (upper) or j - i <= k (lower) on every batch matrix', () => {
    const dims = [2, 3, 5];
    const x = f32(dims, iota(30).map((v) => v + 1));
    for (const upper of [0, 1]) {
      for (const k of [-4, -1, 0, 2, 7]) {
        const [y] = runOp('Trilu', 14, [x, i64([k], [])], { upper });
        values(y).forEach((v, q) => {
          const [, i, j] = unravel(q, dims);
          const keep = upper ? j - i >= k : j - i <= k;
          expect(v).toBe(keep ? q + 1 : 0);
        });
      }
    }
    // k defaults to 0, upper to 1
    expect(values(runOp('Trilu', 14, [f32([2, 2], [1, 2, 3, 4])])[0])).toEqual([1, 2, 0, 4]);
  });
});
