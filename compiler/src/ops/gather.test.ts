import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { f32, i32, i64, inferOp, iota, known, runOp, unravel, values } from './tensor-shape.test.util';

describe('Gather family', () => {
  const dims = [3, 4, 5];
  const x = f32(dims, iota(60));
  const flat = (i: number, j: number, k: number): number => (i * 4 + j) * 5 + k;

  it('Gather picks slices along axis with (negative) indices of any shape', () => {
    const idx = i64([2, -1, 0, 1], [2, 2]);
    const [y] = runOp('Gather', 13, [x, idx], { axis: 1 });
    expect(y.dims).toEqual([3, 2, 2, 5]);
    const pick = [2, 3, 0, 1];
    values(y).forEach((v, q) => {
      const [i, a, bb, k] = unravel(q, y.dims);
      expect(v).toBe(flat(i, pick[a * 2 + bb], k));
    });
    // a scalar index drops the axis
    expect(runOp('Gather', 13, [x, i32([1], [])])[0].dims).toEqual([4, 5]);
    expect(() => runOp('Gather', 13, [x, i64([3])])).toThrow(PtqError);
    expect(inferOp('Gather', 13, [{ dtype: 'float32', shape: ['N', 4, 5] }, { dtype: 'int64', shape: [7] }], { axis: 2 })[0].shape).toEqual(['N', 4, 7]);
  });

  it('GatherElements replaces the axis coordinate by the index', () => {
    const idx = i64(iota(3 * 2 * 5).map((v) => (v * 7) % 8 - 4), [3, 2, 5]);
    const [y] = runOp('GatherElements', 13, [x, idx], { axis: 1 });
    expect(y.dims).toEqual([3, 2, 5]);
    const ix = idx.toNumbers();
    values(y).forEach((v, q) => {
      const [i, , k] = unravel(q, y.dims);
      const j = ix[q] < 0 ? ix[q] + 4 : ix[q];
      expect(v).toBe(flat(i, j, k));
    });
  });

  it('GatherND addresses leading axes, with batch_dims', () => {
    const [y] = runOp('GatherND', 13, [x, i64([1, 2, 0, 3], [2, 2])]);
    expect(y.dims).toEqual([2, 5]);
    expect(values(y)).toEqual([...iota(5).map((k) => flat(1, 2, k)), ...iota(5).map((k) => flat(0, 3, k))]);
    const [z] = runOp('GatherND', 13, [x, i64([1, 3, 0], [3, 1])], { batch_dims: 1 });
    expect(z.dims).toEqual([3, 5]);
    expect(values(z)).toEqual([...iota(5).map((k) => flat(0, 1, k)), ...iota(5).map((k) => flat(1, 3, k)), ...iota(5).map((k) => flat(2, 0, k))]);
  });

  it('Compress keeps the slices whose condition is true (flattened without axis)', () => {
    const cond = new Tensor('bool', [3], Uint8Array.of(1, 0, 1));
    const [y] = runOp('Compress', 11, [x, cond], { axis: 0 });
    expect(y.dims).toEqual([2, 4, 5]);
    expect(values(y)).toEqual([...iota(20), ...iota(20).map((v) => 40 + v)]);
    const [z] = runOp('Compress', 11, [x, new Tensor('bool', [4], Uint8Array.of(0, 1, 1, 0))]);
    expect(values(z)).toEqual([1, 2]);
    expect(inferOp('Compress', 11, [{ dtype: 'float32', shape: ['N', 4] }, known(cond)], { axis: 1 })[0].shape).toEqual(['N', 2]);
  });

  it('works on strings and int64 data', () => {
    const s = new Tensor('string', [3], ['x', 'y', 'z']);
    expect(runOp('Gather', 13, [s, i64([2, 0])])[0].data).toEqual(['z', 'x']);
    const big = new Tensor('int64', [2], BigInt64Array.of(-9223372036854775808n, 1n));
    expect(Array.from(runOp('GatherElements', 13, [big, i64([1, 0, 0])])[0].data as BigInt64Array)).toEqual([1n, -9223372036854775808n, -9223372036854775808n]);
  });
});
