import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function where(c: Tensor, x: Tensor, y: Tensor): Tensor {
  const node = new Node({ opType: 'Where', name: 'w', inputs: ['c', 'x', 'y'], outputs: ['z'] });
  return findOp('', 'Where')!.run({ node, opset: 16 }, [c, x, y])[0];
}

describe('Where', () => {
  it('selects with three-way broadcasting', () => {
    const c = tensorFrom('bool', [2, 1], [1, 0]);
    const x = tensorFrom('float32', [3], [1, 2, 3]);
    const y = tensorFrom('float32', [], [-1]);
    const z = where(c, x, y);
    expect(z.dims).toEqual([2, 3]);
    expect(z.toNumbers()).toEqual([1, 2, 3, -1, -1, -1]);
  });
  it('keeps int64 and strings intact', () => {
    const c = tensorFrom('bool', [2], [0, 1]);
    const z = where(c, tensorFrom('int64', [2], [2n ** 62n, 5n]), tensorFrom('int64', [2], [-(2n ** 62n), 6n]));
    expect(Array.from(z.data as BigInt64Array)).toEqual([-(2n ** 62n), 5n]);
    const s = where(c, new Tensor('string', [2], ['a', 'b']), new Tensor('string', [2], ['c', 'd']));
    expect(s.data).toEqual(['c', 'b']);
  });
  it('needs a bool condition and one type for X and Y', () => {
    expect(() => where(tensorFrom('int32', [1], [1]), tensorFrom('float32', [1], [1]), tensorFrom('float32', [1], [1]))).toThrow(/bool/);
    expect(() => where(tensorFrom('bool', [1], [1]), tensorFrom('float32', [1], [1]), tensorFrom('int32', [1], [1]))).toThrow(/X is float32 and Y is int32/);
  });
  it('infers the broadcast shape of all three', () => {
    const node = new Node({ opType: 'Where', inputs: ['c', 'x', 'y'], outputs: ['z'] });
    const f = findOp('', 'Where')!.infer({ node, opset: 16 }, [{ dtype: 'bool', shape: ['N', 1] }, { dtype: 'float32', shape: [4] }, { dtype: 'float32', shape: [] }]);
    expect(f).toEqual([{ dtype: 'float32', shape: ['N', 4] }]);
  });
});
