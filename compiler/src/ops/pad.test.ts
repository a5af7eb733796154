import { PtqError } from '../errors';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { f32, i64, inferOp, iota, known, runOp, values } from './tensor-shape.test.util';

/** Expected values computed with numpy.pad on numpy.arange(12).reshape(3, 4). */
const NUMPY = {
  // pads ((2, 1), (3, 5))
  reflect: [[11, 10, 9, 8, 9, 10, 11, 10, 9, 8, 9, 10], [7, 6, 5, 4, 5, 6, 7, 6, 5, 4, 5, 6], [3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2], [7, 6, 5, 4, 5, 6, 7, 6, 5, 4, 5, 6], [11, 10, 9, 8, 9, 10, 11, 10, 9, 8, 9, 10], [7, 6, 5, 4, 5, 6, 7, 6, 5, 4, 5, 6]],
  edge: [[0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3], [0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3], [0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3], [4, 4, 4, 4, 5, 6, 7, 7, 7, 7, 7, 7], [8, 8, 8, 8, 9, 10, 11, 11, 11, 11, 11, 11], [8, 8, 8, 8, 9, 10, 11, 11, 11, 11, 11, 11]],
  // x[1:, :2] padded ((0, 1), (2, 0)): ONNX pads (-1, 2, 1, -2) crop first, then pad
  cropReflect: [[4, 5, 4, 5], [8, 9, 8, 9], [4, 5, 4, 5]],
  cropEdge: [[4, 4, 4, 5], [8, 8, 8, 9], [8, 8, 8, 9]],
  cropConstant: [[-1, -1, 4, 5], [-1, -1, 8, 9], [-1, -1, -1, -1]],
};

describe('Pad', () => {
  const x = f32([3, 4], iota(12));
  const pads = i64([2, 3, 1, 5]);

  it('reflect and edge match numpy.pad, including pads wider than the axis', () => {
    for (const mode of ['reflect', 'edge'] as const) {
      const [y] = runOp('Pad', 19, [x, pads], { mode });
      expect(y.dims).toEqual([6, 12]);
      expect(values(y)).toEqual(NUMPY[mode].flat());
    }
  });

  it('wrap (opset 19) reads the input as a torus: y[i][j] = x[(i - 2) mod 3][(j - 3) mod 4]', () => {
    // (numpy's iterative wrap differs once a pad exceeds the axis; onnxruntime agrees with the torus)
    const [y] = runOp('Pad', 19, [x, pads], { mode: 'wrap' });
    const mod = (a: number, n: number): number => ((a % n) + n) % n;
    const want: number[] = [];
    for (let i = 0; i < 6; i++) for (let j = 0; j < 12; j++) want.push(mod(i - 2, 3) * 4 + mod(j - 3, 4));
    expect(values(y)).toEqual(want);
  });

  it('negative pads crop before padding', () => {
    const p = i64([-1, 2, 1, -2]);
    expect(values(runOp('Pad', 13, [x, p], { mode: 'reflect' })[0])).toEqual(NUMPY.cropReflect.flat());
    expect(values(runOp('Pad', 13, [x, p], { mode: 'edge' })[0])).toEqual(NUMPY.cropEdge.flat());
    expect(values(runOp('Pad', 13, [x, p, f32([], [-1])])[0])).toEqual(NUMPY.cropConstant.flat());
  });

  it('reads pads and value attributes before opset 11, and axes from opset 18', () => {
    const a = runOp('Pad', 2, [x], { pads: [0, 1, 0, 0], value: 9.5 })[0];
    expect(a.dims).toEqual([3, 5]);
    expect(values(a).slice(0, 5)).toEqual([9.5, 0, 1, 2, 3]);
    const b = runOp('Pad', 18, [x, i64([1, 2]), undefined, i64([-1])])[0];
    expect(b.dims).toEqual([3, 7]);
    expect(values(b).slice(0, 7)).toEqual([0, 0, 1, 2, 3, 0, 0]);
  });

  it('pads int64, float16 (bit patterns) and strings', () => {
    const big = runOp('Pad', 13, [tensorFrom('int64', [2], [5n, 6n]), i64([1, 0]), tensorFrom('int64', [], [-9223372036854775808n])])[0];
    expect(Array.from(big.data as BigInt64Array)).toEqual([-9223372036854775808n, 5n, 6n]);
    const h = runOp('Pad', 13, [new Tensor('float16', [1], Uint16Array.of(0x7e01)), i64([1, 1]), new Tensor('float16', [], Uint16Array.of(0xbc00))])[0];
    expect(Array.from(h.data as Uint16Array)).toEqual([0xbc00, 0x7e01, 0xbc00]);
    const s = runOp('Pad', 13, [new Tensor('string', [1], ['q']), i64([0, 2]), new Tensor('string', [], ['-'])])[0];
    expect(s.data).toEqual(['q', '-', '-']);
  });

  it('rejects reflect padding of an empty axis and unknown modes', () => {
    expect(() => runOp('Pad', 13, [f32([0], []), i64([1, 1])], { mode: 'reflect' })).toThrow(PtqError);
    expect(() => runOp('Pad', 13, [x, pads], { mode: 'mirror' })).toThrow(/mode 'mirror'/);
  });

  it('infers padded sizes; symbols survive only unpadded', () => {
    const s = { dtype: 'float32' as const, shape: ['N', 3, 8, 8] };
    expect(inferOp('Pad', 13, [s, known(i64([0, 0, 1, 1, 0, 0, 1, 1]))])[0].shape).toEqual(['N', 3, 10, 10]);
    expect(inferOp('Pad', 13, [s, known(i64([1, 0, 0, 0, 0, 0, 0, 0]))])[0].shape).toEqual(['?', 3, 8, 8]);
    expect(inferOp('Pad', 13, [s, { dtype: 'int64', shape: [8] }])[0].shape).toEqual(['?', '?', '?', '?']);
    expect(inferOp('Pad', 18, [s, { dtype: 'int64', shape: [4] }, undefined, known(i64([2, 3]))])[0].shape).toEqual(['N', 3, '?', '?']);
  });
});
