import { PtqError } from '../errors';
import { f32, i64, inferOp, iota, known, runOp, values } from './tensor-shape.test.util';

describe('Split', () => {
  const x = f32([2, 6], iota(12));

  it('takes the sizes from the attribute before opset 13 and from the input after', () => {
    const a = runOp('Split', 11, [x], { axis: 1, split: [1, 2, 3] }, 3);
    const b = runOp('Split', 13, [x, i64([1, 2, 3])], { axis: 1 }, 3);
    for (const parts of [a, b]) {
      expect(parts.map((p) => p.dims)).toEqual([[2, 1], [2, 2], [2, 3]]);
      expect(values(parts[1])).toEqual([1, 2, 7, 8]);
      expect(values(parts[2])).toEqual([3, 4, 5, 9, 10, 11]);
    }
  });

  it('splits into equal parts by default and allows zero-size parts', () => {
    const p = runOp('Split', 13, [x], { axis: 0 }, 2);
    expect(p.map(values)).toEqual([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]);
    const z = runOp('Split', 13, [x, i64([0, 6])], { axis: 1 }, 2);
    expect(z.map((t) => t.dims)).toEqual([[2, 0], [2, 6]]);
    expect(() => runOp('Split', 13, [f32([5], iota(5))], {}, 2)).toThrow(PtqError);
  });

  it('opset 18 num_outputs: ceil-sized parts with a smaller last one', () => {
    const p = runOp('Split', 18, [f32([7], iota(7))], { num_outputs: 3 }, 3);
    expect(p.map(values)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('infers part shapes from known sizes and leaves unknown ones symbolic', () => {
    const f = inferOp('Split', 13, [{ dtype: 'float32', shape: ['N', 6] }, known(i64([2, 4]))], { axis: 1 }, 2);
    expect(f.map((o) => o.shape)).toEqual([['N', 2], ['N', 4]]);
    const g = inferOp('Split', 13, [{ dtype: 'float32', shape: ['N', 6] }, { dtype: 'int64', shape: [2] }], { axis: 1 }, 2);
    expect(g.map((o) => o.shape)).toEqual([['N', '?'], ['N', '?']]);
    const h = inferOp('Split', 13, [{ dtype: 'float32', shape: ['N', 'C'] }], { axis: 0 }, 2);
    expect(h.map((o) => o.shape)).toEqual([['?', 'C'], ['?', 'C']]);
  });
});
