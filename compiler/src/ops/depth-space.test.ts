import { Tensor } from '../onnx/tensor';
import { f32, inferOp, iota, runOp, values } from './tensor-shape.test.util';

describe('DepthToSpace / SpaceToDepth', () => {
  const [n, c, h, w, b] = [2, 8, 2, 3, 2];
  const x = f32([n, c, h, w], iota(n * c * h * w));
  const at = (ni: number, ci: number, hi: number, wi: number): number => ((ni * c + ci) * h + hi) * w + wi;

  it('DCR: y[n, k, h·b + i, w·b + j] = x[n, (i·b + j)·C/b² + k, h, w]', () => {
    const [y] = runOp('DepthToSpace', 13, [x], { blocksize: b });
    const cc = c / (b * b);
    expect(y.dims).toEqual([n, cc, h * b, w * b]);
    const got = values(y);
    let q = 0;
    for (let ni = 0; ni < n; ni++)
      for (let k = 0; k < cc; k++)
        for (let yy = 0; yy < h * b; yy++)
          for (let xx = 0; xx < w * b; xx++) {
            const [hi, i, wi, j] = [Math.floor(yy / b), yy % b, Math.floor(xx / b), xx % b];
            expect(got[q++]).toBe(at(ni, (i * b + j) * cc + k, hi, wi));
          }
  });

  it('CRD: y[n, k, h·b + i, w·b + j] = x[n, k·b² + i·b + j, h, w]', () => {
    const [y] = runOp('DepthToSpace', 13, [x], { blocksize: b, mode: 'CRD' });
    const cc = c / (b * b);
    const got = values(y);
    let q = 0;
    for (let ni = 0; ni < n; ni++)
      for (let k = 0; k < cc; k++)
        for (let yy = 0; yy < h * b; yy++)
          for (let xx = 0; xx < w * b; xx++) {
            const [hi, i, wi, j] = [Math.floor(yy / b), yy % b, Math.floor(xx / b), xx % b];
            expect(got[q++]).toBe(at(ni, k * b * b + i * b + j, hi, wi));
          }
  });

  it('SpaceToDepth inverts DCR DepthToSpace', () => {
    const [y] = runOp('DepthToSpace', 13, [x], { blocksize: b });
    const [z] = runOp('SpaceToDepth', 13, [y], { blocksize: b });
    expect(z.dims).toEqual(x.dims);
    expect(values(z)).toEqual(values(x));
  });

  it('moves strings, checks divisibility and infers shapes', () => {
    const s = new Tensor('string', [1, 4, 1, 1], ['a', 'b', 'c', 'd']);
    expect(runOp('DepthToSpace', 13, [s], { blocksize: 2 })[0].data).toEqual(['a', 'b', 'c', 'd']);
    expect(() => runOp('DepthToSpace', 13, [f32([1, 3, 1, 1], [1, 2, 3])], { blocksize: 2 })).toThrow(/blocksize/);
    expect(inferOp('SpaceToDepth', 13, [{ dtype: 'float32', shape: ['N', 3, 'H', 8] }], { blocksize: 2 })[0].shape).toEqual(['N', 12, '?', 4]);
  });
});
