import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp } from './registry';

function run(type: string, inputs: Tensor[]): Tensor {
  const node = new Node({ opType: type, inputs: inputs.map((_, i) => `x${i}`), outputs: ['y'] });
  return runStep({ node, op: findOp('', type)!, opset: 13 }, inputs)[0];
}

describe('Max, Min, Sum, Mean', () => {
  const a = tensorFrom('float32', [2, 1], [1, 6]);
  const b = tensorFrom('float32', [3], [3, 2, 5]);
  const c = tensorFrom('float32', [], [4]);
  it('fold any number of inputs with broadcasting', () => {
    expect(run('Max', [a, b, c]).dims).toEqual([2, 3]);
    expect(run('Max', [a, b, c]).toNumbers()).toEqual([4, 4, 5, 6, 6, 6]);
    expect(run('Min', [a, b, c]).toNumbers()).toEqual([1, 1, 1, 3, 2, 4]);
    expect(run('Sum', [a, b, c]).toNumbers()).toEqual([8, 7, 10, 13, 12, 15]);
    expect(run('Mean', [a, b]).toNumbers()).toEqual([2, 1.5, 3, 4.5, 4, 5.5]);
  });
  it('one input is a copy', () => {
    const y = run('Sum', [b]);
    expect(y.toNumbers()).toEqual([3, 2, 5]);
    expect(y.data).not.toBe(b.data);
  });
  it('Max/Min propagate NaN', () => {
    const n = tensorFrom('float32', [2], [NaN, 1]);
    const m = tensorFrom('float32', [2], [0, NaN]);
    expect(run('Max', [n, m]).toNumbers().every(Number.isNaN)).toBe(true);
    expect(run('Min', [m, n]).toNumbers().every(Number.isNaN)).toBe(true);
  });
  it('integer types, uint64 and float16 included', () => {
    const u = run('Max', [tensorFrom('uint64', [2], [2n ** 63n, 1n]), tensorFrom('uint64', [2], [5n, 9n])]);
    expect(Array.from(u.data as BigUint64Array)).toEqual([2n ** 63n, 9n]);
    expect(run('Min', [tensorFrom('int8', [2], [-128, 3]), tensorFrom('int8', [2], [0, -4])]).toNumbers()).toEqual([-128, -4]);
    const h = run('Max', [tensorFrom('float16', [2], [1.5, -2]), tensorFrom('float16', [2], [0.5, 3])]);
    expect(h.dtype).toBe('float16');
    expect(h.toNumbers()).toEqual([1.5, 3]);
  });
});
