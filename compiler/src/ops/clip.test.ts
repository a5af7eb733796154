import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function clip(inputs: (Tensor | undefined)[], opset = 13, attrs: Record<string, Attribute> = {}): Tensor {
  const node = new Node({ opType: 'Clip', name: 'c', inputs: ['x', 'lo', 'hi'].slice(0, inputs.length), outputs: ['y'], attrs });
  return findOp('', 'Clip')!.run({ node, opset }, inputs)[0];
}
const x = tensorFrom('float32', [5], [-3, -1, 0, 2, NaN]);

describe('Clip', () => {
  it('min/max inputs (opset 11+), each optional', () => {
    const lo = tensorFrom('float32', [], [-1]);
    const hi = tensorFrom('float32', [], [1]);
    expect(clip([x, lo, hi]).toNumbers().slice(0, 4)).toEqual([-1, -1, 0, 1]);
    expect(clip([x, lo, hi]).toNumbers()[4]).toBeNaN();
    expect(clip([x, undefined, hi]).toNumbers().slice(0, 4)).toEqual([-3, -1, 0, 1]);
    expect(clip([x, lo]).toNumbers().slice(0, 4)).toEqual([-1, -1, 0, 2]);
    expect(clip([x]).toNumbers().slice(0, 4)).toEqual([-3, -1, 0, 2]);
  });
  it('min > max gives max everywhere', () => {
    expect(clip([x, tensorFrom('float32', [], [2]), tensorFrom('float32', [], [1])]).toNumbers().slice(0, 4)).toEqual([1, 1, 1, 1]);
  });
  it('attributes before opset 11', () => {
    const y = clip([x], 6, { min: { type: 'float', value: 0 }, max: { type: 'float', value: 6 } });
    expect(y.toNumbers().slice(0, 4)).toEqual([0, 0, 0, 2]);
  });
  it('integer types (opset 12+), int64 without precision loss', () => {
    expect(clip([tensorFrom('int8', [3], [-128, 5, 127]), tensorFrom('int8', [], [-5])]).toNumbers()).toEqual([-5, 5, 127]);
    const b = clip([tensorFrom('int64', [2], [2n ** 60n + 1n, -(2n ** 60n)]), undefined, tensorFrom('int64', [], [2n ** 60n])]);
    expect(Array.from(b.data as BigInt64Array)).toEqual([2n ** 60n, -(2n ** 60n)]);
  });
  it('a non-scalar bound is a PtqError', () => {
    expect(() => clip([x, tensorFrom('float32', [2], [0, 1])])).toThrow(PtqError);
  });
});
