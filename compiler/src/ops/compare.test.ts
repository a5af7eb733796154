import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function run(type: string, inputs: Tensor[], attrs: Record<string, Attribute> = {}, opset = 16): Tensor {
  const node = new Node({ opType: type, name: 'n', inputs: inputs.map((_, i) => `x${i}`), outputs: ['y'], attrs });
  return findOp('', type)!.run({ node, opset }, inputs)[0];
}
const bool = (v: number[]): Tensor => tensorFrom('bool', [v.length], v);

describe('comparisons', () => {
  const a = tensorFrom('float32', [2, 2], [1, 2, NaN, 4]);
  const b = tensorFrom('float32', [2], [2, 2]);
  it('give bool with broadcasting; NaN compares false', () => {
    const eq = run('Equal', [a, b]);
    expect(eq.dtype).toBe('bool');
    expect(eq.dims).toEqual([2, 2]);
    expect(eq.toNumbers()).toEqual([0, 1, 0, 0]);
    expect(run('Greater', [a, b]).toNumbers()).toEqual([0, 0, 0, 1]);
    expect(run('Less', [a, b]).toNumbers()).toEqual([1, 0, 0, 0]);
    expect(run('GreaterOrEqual', [a, b]).toNumbers()).toEqual([0, 1, 0, 1]);
    expect(run('LessOrEqual', [a, b]).toNumbers()).toEqual([1, 1, 0, 0]);
  });
  it('compare int64 exactly and strings by value', () => {
    const x = tensorFrom('int64', [2], [2n ** 60n + 1n, 3n]);
    const y = tensorFrom('int64', [2], [2n ** 60n, 3n]);
    expect(run('Greater', [x, y]).toNumbers()).toEqual([1, 0]);
    expect(run('Equal', [x, y]).toNumbers()).toEqual([0, 1]);
    expect(run('Equal', [new Tensor('string', [2], ['a', 'b']), new Tensor('string', [1], ['b'])], {}, 19).toNumbers()).toEqual([0, 1]);
  });
});

describe('logic', () => {
  const p = bool([1, 1, 0, 0]);
  const q = bool([1, 0, 1, 0]);
  it('truth tables', () => {
    expect(run('And', [p, q]).toNumbers()).toEqual([1, 0, 0, 0]);
    expect(run('Or', [p, q]).toNumbers()).toEqual([1, 1, 1, 0]);
    expect(run('Xor', [p, q]).toNumbers()).toEqual([0, 1, 1, 0]);
    expect(run('Not', [p]).toNumbers()).toEqual([0, 0, 1, 1]);
  });
  it('broadcast, and refuse non-bool inputs', () => {
    const r = run('And', [tensorFrom('bool', [2, 1], [1, 0]), tensorFrom('bool', [3], [1, 0, 1])]);
    expect(r.dims).toEqual([2, 3]);
    expect(r.toNumbers()).toEqual([1, 0, 1, 0, 0, 0]);
    expect(() => run('Or', [tensorFrom('int32', [1], [1]), tensorFrom('int32', [1], [0])])).toThrow(/bool/);
  });
});

describe('BitShift', () => {
  const dir = (d: string): Record<string, Attribute> => ({ direction: { type: 'string', value: d } });
  it('shifts unsigned integers, dropping bits past the width', () => {
    expect(run('BitShift', [tensorFrom('uint8', [3], [16, 4, 255]), tensorFrom('uint8', [3], [1, 2, 4])], dir('LEFT')).toNumbers()).toEqual([32, 16, 240]);
    expect(run('BitShift', [tensorFrom('uint32', [3], [0xffffffff, 1, 8]), tensorFrom('uint32', [3], [4, 31, 40])], dir('LEFT')).toNumbers()).toEqual([0xfffffff0, 0x80000000, 0]);
    expect(run('BitShift', [tensorFrom('uint32', [2], [0xffffffff, 8]), tensorFrom('uint32', [2], [28, 1])], dir('RIGHT')).toNumbers()).toEqual([15, 4]);
    const u = run('BitShift', [tensorFrom('uint64', [3], [2n ** 63n, 1n, 5n]), tensorFrom('uint64', [3], [1n, 63n, 64n])], dir('LEFT'));
    expect(Array.from(u.data as BigUint64Array)).toEqual([0n, 2n ** 63n, 0n]);
  });
  it('refuses a bad direction', () => {
    expect(() => run('BitShift', [tensorFrom('uint8', [1], [1]), tensorFrom('uint8', [1], [1])], dir('UP'))).toThrow(/direction/);
  });
});
