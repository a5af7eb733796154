import { f32, i64, inferOp, iota, known, runOp, unravel, values } from './tensor-shape.test.util';

describe('Expand / Tile', () => {
  it('Expand broadcasts both ways (a 1 in the shape keeps the input size)', () => {
    const x = f32([3, 1], [1, 2, 3]);
    const [y] = runOp('Expand', 13, [x, i64([2, 1, 4])]);
    expect(y.dims).toEqual([2, 3, 4]);
    values(y).forEach((v, q) => expect(v).toBe(unravel(q, y.dims)[1] + 1));
    expect(runOp('Expand', 13, [x, i64([1])])[0].dims).toEqual([3, 1]);
    expect(() => runOp('Expand', 13, [x, i64([2, 2])])).toThrow(/broadcast/);
    expect(inferOp('Expand', 13, [{ dtype: 'float32', shape: ['N', 1] }, known(i64([1, 6]))])[0].shape).toEqual(['N', 6]);
  });

  it('Tile repeats along each axis: y[i][j] = x[i mod 2][j mod 3]', () => {
    const x = f32([2, 3], iota(6));
    const [y] = runOp('Tile', 13, [x, i64([3, 2])]);
    expect(y.dims).toEqual([6, 6]);
    values(y).forEach((v, q) => {
      const [i, j] = unravel(q, y.dims);
      expect(v).toBe((i % 2) * 3 + (j % 3));
    });
    expect(runOp('Tile', 13, [x, i64([0, 1])])[0].dims).toEqual([0, 3]);
    expect(inferOp('Tile', 13, [{ dtype: 'float32', shape: ['N', 3] }, known(i64([1, 2]))])[0].shape).toEqual(['N', 6]);
  });
});
