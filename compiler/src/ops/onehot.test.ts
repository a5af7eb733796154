import { f32, i64, inferOp, known, runOp, unravel, values } from './tensor-shape.test.util';

describe('OneHot', () => {
  it('puts on at the index along the new axis, off elsewhere (negative indices from depth)', () => {
    const idx = i64([0, -1, 5, 2, 1, -4], [2, 3]);
    const depth = f32([], [4]);
    const vals = f32([2], [-2, 3]);
    for (const axis of [-1, 0, 1]) {
      const [y] = runOp('OneHot', 11, [idx, depth, vals], { axis });
      const ax = axis < 0 ? 2 : axis;
      const want = [2, 3];
      want.splice(ax, 0, 4);
      expect(y.dims).toEqual(want);
      const ix = idx.toNumbers();
      values(y).forEach((v, q) => {
        const p = unravel(q, y.dims);
        const h = p.splice(ax, 1)[0];
        let i = ix[p[0] * 3 + p[1]];
        if (i < 0) i += 4;
        expect(v).toBe(i === h ? 3 : -2);
      });
    }
    expect(inferOp('OneHot', 11, [{ dtype: 'int64', shape: ['N'] }, known(f32([], [10])), { dtype: 'float32', shape: [2] }])[0].shape).toEqual(['N', 10]);
  });
});
