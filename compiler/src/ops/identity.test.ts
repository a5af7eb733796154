import { Tensor } from '../onnx/tensor';
import { f32, iota, runOp } from './tensor-shape.test.util';

describe('Identity / Dropout', () => {
  const x = f32([2, 3], iota(6));

  it('Identity passes any tensor through', () => {
    expect(runOp('Identity', 16, [x])[0]).toBe(x);
    const s = new Tensor('string', [1], ['k']);
    expect(runOp('Identity', 16, [s])[0].data).toEqual(['k']);
  });

  it('Dropout in inference is the identity with an all-true mask (bool from opset 10)', () => {
    const [y, m] = runOp('Dropout', 13, [x, f32([], [0.7])], {}, 2);
    expect(y).toBe(x);
    expect([m.dtype, Array.from(m.data as Uint8Array)]).toEqual(['bool', [1, 1, 1, 1, 1, 1]]);
    const [, m7] = runOp('Dropout', 7, [x], { ratio: 0.3 }, 2);
    expect([m7.dtype, m7.toNumbers()]).toEqual(['float32', [1, 1, 1, 1, 1, 1]]);
    expect(runOp('Dropout', 6, [x], { is_test: 1 })[0]).toBe(x);
  });

  it('Dropout in training zeroes about ratio of the elements and scales the rest', () => {
    const big = f32([10000], new Array(10000).fill(2));
    const training = new Tensor('bool', [], Uint8Array.of(1));
    const [y, m] = runOp('Dropout', 13, [big, f32([], [0.25]), training], { seed: 3 }, 2);
    const ys = y.toNumbers();
    const ms = Array.from(m.data as Uint8Array);
    const kept = ms.filter(Boolean).length;
    expect(kept / 10000).toBeGreaterThan(0.73);
    expect(kept / 10000).toBeLessThan(0.77);
    ys.forEach((v, i) => expect(v).toBeCloseTo(ms[i] ? 2 / 0.75 : 0, 5));
    // same seed, same mask
    const [, m2] = runOp('Dropout', 13, [big, f32([], [0.25]), training], { seed: 3 }, 2);
    expect(Array.from(m2.data as Uint8Array)).toEqual(ms);
    // ratio 0 in training is still the identity
    expect(runOp('Dropout', 13, [x, f32([], [0]), training])[0]).toBe(x);
  });
});
