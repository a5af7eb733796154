import { Tensor } from '../onnx/tensor';
import { f32, inferOp, runOp, unravel } from './tensor-shape.test.util';

describe('NonZero', () => {
  it('lists the coordinates of non-zero elements, one row per axis, in row-major order', () => {
    const vals = [0, 3, 0, -0, NaN, 1, 0, 2, 0, 0, 5, 0];
    const [y] = runOp('NonZero', 13, [f32([3, 4], vals)]);
    const hits = vals.map((v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0);
    expect(y.dtype).toBe('int64');
    expect(y.dims).toEqual([2, hits.length]);
    const got = y.toNumbers();
    hits.forEach((flat, k) => expect([got[k], got[hits.length + k]]).toEqual(unravel(flat, [3, 4])));
    expect(runOp('NonZero', 13, [new Tensor('bool', [3], Uint8Array.of(0, 1, 1))])[0].toNumbers()).toEqual([1, 2]);
    expect(inferOp('NonZero', 13, [{ dtype: 'float32', shape: [3, 4] }])[0].shape).toEqual([2, '?']);
  });
});
