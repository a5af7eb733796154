import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { f32, i64, inferOp, iota, known, runOp, values } from './tensor-shape.test.util';

describe('Reshape', () => {
  const x = f32([2, 3, 4], iota(24));

  it('copies dims for 0, infers -1, and keeps the element order', () => {
    const [y] = runOp('Reshape', 14, [x, i64([0, -1])]);
    expect(y.dims).toEqual([2, 12]);
    expect(values(y)).toEqual(iota(24));
    expect(runOp('Reshape', 14, [x, i64([-1, 0, 2])])[0].dims).toEqual([4, 3, 2]);
    expect(runOp('Reshape', 5, [x, i64([4, 6])])[0].dims).toEqual([4, 6]);
    expect(runOp('Reshape', 1, [x], { shape: [24] })[0].dims).toEqual([24]);
  });

  it('allowzero=1 (opset 14) makes 0 a real size', () => {
    const empty = f32([0, 3], []);
    expect(runOp('Reshape', 14, [empty, i64([3, 0])], { allowzero: 1 })[0].dims).toEqual([3, 0]);
    // without allowzero the 0 copies the input's dim
    expect(runOp('Reshape', 14, [empty, i64([0, 3])])[0].dims).toEqual([0, 3]);
  });

  it('rejects impossible shapes with a PtqError naming the node', () => {
    expect(() => runOp('Reshape', 14, [x, i64([5, -1])])).toThrow(PtqError);
    expect(() => runOp('Reshape', 14, [x, i64([-1, -1])])).toThrow(/more than one -1/);
    expect(() => runOp('Reshape', 14, [x, i64([7, 7])])).toThrow(/reshape_under_test/);
  });

  it('infers -1 through symbols that cancel (batch N kept by 0)', () => {
    const s = { dtype: 'float32' as const, shape: ['N', 512, 1, 1] };
    expect(inferOp('Reshape', 14, [s, known(i64([0, -1]))])[0].shape).toEqual(['N', 512]);
    expect(inferOp('Reshape', 14, [s, known(i64([-1, 512]))])[0].shape).toEqual(['?', 512]);
    expect(inferOp('Reshape', 14, [{ dtype: 'float32', shape: ['N', 'C', 4] }, known(i64([0, 0, 2, 2]))])[0].shape).toEqual(['N', 'C', 2, 2]);
    // shape value unknown: only its length is known
    expect(inferOp('Reshape', 14, [s, { dtype: 'int64', shape: [3] }])[0].shape).toEqual(['?', '?', '?']);
  });
});

describe('Flatten, Squeeze, Unsqueeze', () => {
  const x = f32([2, 3, 4, 5], iota(120));

  it('Flatten splits the dims at axis (negative axes count from the end)', () => {
    expect(runOp('Flatten', 13, [x], { axis: 0 })[0].dims).toEqual([1, 120]);
    expect(runOp('Flatten', 13, [x])[0].dims).toEqual([2, 60]);
    expect(runOp('Flatten', 13, [x], { axis: -1 })[0].dims).toEqual([24, 5]);
    expect(runOp('Flatten', 13, [x], { axis: 4 })[0].dims).toEqual([120, 1]);
    expect(inferOp('Flatten', 13, [{ dtype: 'float32', shape: ['N', 3, 4, 5] }])[0].shape).toEqual(['N', 60]);
    expect(inferOp('Flatten', 13, [{ dtype: 'float32', shape: ['N', 3, 4, 5] }], { axis: 2 })[0].shape).toEqual(['?', 20]);
  });

  it('Squeeze takes axes as an attribute before opset 13 and as an input after', () => {
    const y = f32([1, 3, 1, 2], iota(6));
    expect(runOp('Squeeze', 11, [y], { axes: [0, -2] })[0].dims).toEqual([3, 2]);
    expect(runOp('Squeeze', 13, [y, i64([2])])[0].dims).toEqual([1, 3, 2]);
    expect(runOp('Squeeze', 13, [y])[0].dims).toEqual([3, 2]);
    expect(() => runOp('Squeeze', 13, [y, i64([1])])).toThrow(PtqError);
    // a symbol might be 1: squeezing "all ones" leaves the rank unknown
    expect(inferOp('Squeeze', 13, [{ dtype: 'float32', shape: ['N', 1, 4] }])[0].shape).toBeUndefined();
    expect(inferOp('Squeeze', 13, [{ dtype: 'float32', shape: ['N', 1, 4] }, known(i64([1]))])[0].shape).toEqual(['N', 4]);
  });

  it('Unsqueeze inserts ones at output positions, unsorted and negative axes included', () => {
    const y = f32([3, 4], iota(12));
    expect(runOp('Unsqueeze', 13, [y, i64([2, 0])])[0].dims).toEqual([1, 3, 1, 4]);
    expect(runOp('Unsqueeze', 11, [y], { axes: [-1] })[0].dims).toEqual([3, 4, 1]);
    expect(runOp('Unsqueeze', 13, [new Tensor('string', [], ['s']), i64([0])])[0].data).toEqual(['s']);
    expect(inferOp('Unsqueeze', 13, [{ dtype: 'float32', shape: ['N', 4] }, known(i64([1]))])[0].shape).toEqual(['N', 1, 4]);
    expect(inferOp('Unsqueeze', 13, [{ dtype: 'float32', shape: ['N', 4] }, { dtype: 'int64', shape: [2] }])[0].shape).toEqual(['?', '?', '?', '?']);
  });
});
