import { f32, i64, iota, runOp, values } from './tensor-shape.test.util';

describe('ScatterElements / Scatter / ScatterND', () => {
  it('ScatterElements writes updates at the index along axis, with reductions', () => {
    const data = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    const idx = i64([2, -3, 2, 0], [2, 2]);
    const upd = f32([2, 2], [10, 20, 30, 40]);
    // row 0: col 2 ← 10, col 0 ← 20; row 1: col 2 ← 30, col 0 ← 40
    expect(values(runOp('ScatterElements', 16, [data, idx, upd], { axis: 1 })[0])).toEqual([20, 2, 10, 40, 5, 30]);
    expect(values(runOp('ScatterElements', 16, [data, idx, upd], { axis: 1, reduction: 'add' })[0])).toEqual([21, 2, 13, 44, 5, 36]);
    expect(values(runOp('ScatterElements', 16, [data, idx, upd], { axis: 1, reduction: 'mul' })[0])).toEqual([20, 2, 30, 160, 5, 180]);
    expect(values(runOp('ScatterElements', 18, [data, i64([0, 0], [1, 2]), f32([1, 2], [0, 9])], { reduction: 'max' })[0])).toEqual([1, 9, 3, 4, 5, 6]);
    expect(values(runOp('Scatter', 10, [data, i64([1], [1, 1]), f32([1, 1], [-1])])[0])).toEqual([1, 2, 3, -1, 5, 6]);
    // the input is not modified
    expect(values(data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('ScatterND replaces or combines whole slices', () => {
    const data = f32([3, 2], iota(6));
    const [y] = runOp('ScatterND', 16, [data, i64([2, 0], [2, 1]), f32([2, 2], [7, 8, 9, 10])]);
    expect(values(y)).toEqual([9, 10, 2, 3, 7, 8]);
    const [z] = runOp('ScatterND', 16, [data, i64([1, 1, 1, 1], [2, 2]), f32([2], [5, 6])], { reduction: 'add' });
    expect(values(z)).toEqual([0, 1, 2, 3 + 5 + 6, 4, 5]);
  });
});
