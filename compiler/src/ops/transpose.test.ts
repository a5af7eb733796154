import { Tensor } from '../onnx/tensor';
import { f32, inferOp, iota, ravel, runOp, unravel, values } from './tensor-shape.test.util';

describe('Transpose', () => {
  it('moves input axis perm[i] to output axis i, for every permutation of rank 4', () => {
    const dims = [2, 3, 4, 5];
    const x = f32(dims, iota(120));
    const perms: number[][] = [];
    const permute = (rest: number[], acc: number[]): void => {
      if (!rest.length) perms.push(acc);
      rest.forEach((r, i) => permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, r]));
    };
    permute([0, 1, 2, 3], []);
    for (const perm of perms) {
      const [y] = runOp('Transpose', 13, [x], { perm });
      expect(y.dims).toEqual(perm.map((p) => dims[p]));
      const got = values(y);
      got.forEach((v, i) => {
        const o = unravel(i, y.dims);
        const src = new Array<number>(4);
        perm.forEach((p, k) => (src[p] = o[k]));
        expect(v).toBe(ravel(src, dims));
      });
    }
  });

  it('reverses the axes by default and moves strings', () => {
    const [y] = runOp('Transpose', 13, [new Tensor('string', [2, 2], ['a', 'b', 'c', 'd'])]);
    expect(y.data).toEqual(['a', 'c', 'b', 'd']);
    expect(inferOp('Transpose', 13, [{ dtype: 'float32', shape: ['N', 3, 'H', 'W'] }], { perm: [0, 2, 3, 1] })[0].shape).toEqual(['N', 'H', 'W', 3]);
    expect(() => runOp('Transpose', 13, [f32([2, 2], iota(4))], { perm: [0, 0] })).toThrow(/not a permutation/);
  });
});
