import { PtqError } from '../errors';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { f32, inferOp, iota, runOp, unravel, values } from './tensor-shape.test.util';

describe('Concat', () => {
  it('joins along every axis like explicit index arithmetic', () => {
    const a = f32([2, 3, 4], iota(24));
    const b = f32([2, 3, 4], iota(24).map((v) => 100 + v));
    for (const axis of [0, 1, 2, -1]) {
      const ax = (axis + 3) % 3;
      const [y] = runOp('Concat', 13, [a, b], { axis });
      const dims = [2, 3, 4];
      dims[ax] *= 2;
      expect(y.dims).toEqual(dims);
      const got = y.toNumbers();
      for (let i = 0; i < got.length; i++) {
        const idx = unravel(i, dims);
        const fromB = idx[ax] >= a.dims[ax];
        if (fromB) idx[ax] -= a.dims[ax];
        const flat = (idx[0] * 3 + idx[1]) * 4 + idx[2];
        expect(got[i]).toBe(fromB ? 100 + flat : flat);
      }
    }
  });

  it('copies strings, int64 and float16 bit patterns as they are', () => {
    const s = runOp('Concat', 13, [new Tensor('string', [1, 2], ['a', 'b']), new Tensor('string', [1, 1], ['c'])], { axis: 1 })[0];
    expect(s.data).toEqual(['a', 'b', 'c']);
    const big = runOp('Concat', 13, [tensorFrom('int64', [1], [9223372036854775807n]), tensorFrom('int64', [2], [-1n, 2n])], { axis: 0 })[0];
    expect(Array.from(big.data as BigInt64Array)).toEqual([9223372036854775807n, -1n, 2n]);
    // a NaN with payload and -0 survive (no float32 round trip)
    const h = runOp('Concat', 13, [new Tensor('float16', [2], Uint16Array.of(0x7e01, 0x8000)), new Tensor('float16', [1], Uint16Array.of(0x3c00))], { axis: 0 })[0];
    expect(Array.from(h.data as Uint16Array)).toEqual([0x7e01, 0x8000, 0x3c00]);
  });

  it('accepts empty inputs and defaults the axis to 1 in opset 1', () => {
    const y = runOp('Concat', 13, [f32([0, 2], []), f32([1, 2], [5, 6])], { axis: 0 })[0];
    expect(y.dims).toEqual([1, 2]);
    const z = runOp('Concat', 1, [f32([1, 1], [1]), f32([1, 2], [2, 3])])[0];
    expect(values(z)).toEqual([1, 2, 3]);
  });

  it('infers sums on the axis and keeps symbols elsewhere', () => {
    const [o] = inferOp('Concat', 13, [{ dtype: 'float32', shape: ['N', 3, '?'] }, { dtype: 'float32', shape: ['N', 5, 7] }], { axis: 1 });
    expect(o).toEqual({ dtype: 'float32', shape: ['N', 8, 7] });
    expect(inferOp('Concat', 13, [{ dtype: 'float32', shape: ['N', 3] }, { dtype: 'float32', shape: [2, 3] }], { axis: 0 })[0].shape).toEqual(['?', 3]);
  });

  it('reports mismatched inputs as a PtqError naming the node', () => {
    expect(() => runOp('Concat', 13, [f32([2, 2], iota(4)), f32([3, 3], iota(9))], { axis: 0 })).toThrow(PtqError);
    expect(() => runOp('Concat', 13, [f32([2, 2], iota(4)), f32([3, 3], iota(9))], { axis: 0 })).toThrow(/concat_under_test/);
  });
});
