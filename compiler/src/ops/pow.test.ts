import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { powInt32, powInt64 } from './pow';
import { findOp } from './registry';

function pow(x: Tensor, y: Tensor, opset = 15): Tensor {
  const node = new Node({ opType: 'Pow', inputs: ['x', 'y'], outputs: ['z'] });
  return findOp('', 'Pow')!.run({ node, opset }, [x, y])[0];
}

describe('Pow', () => {
  it('float base, float exponent, broadcast scalar', () => {
    const z = pow(tensorFrom('float32', [3], [1, 2, 3]), tensorFrom('float32', [], [2]));
    expect(z.dims).toEqual([3]);
    expect(z.toNumbers()).toEqual([1, 4, 9]);
    expect(pow(tensorFrom('float64', [2], [4, -8]), tensorFrom('float64', [2], [0.5, 1 / 3])).toNumbers()[0]).toBe(2);
  });

  it('mixed types (opset 12+): the result has the base type', () => {
    const a = pow(tensorFrom('float32', [3], [1, 2, 3]), tensorFrom('int64', [3], [4n, 5n, 6n]));
    expect(a.dtype).toBe('float32');
    expect(a.toNumbers()).toEqual([1, 32, 729]);
    const b = pow(tensorFrom('int32', [3], [1, 2, 3]), tensorFrom('float32', [3], [4, 5, 6]));
    expect(b.dtype).toBe('int32');
    expect(b.toNumbers()).toEqual([1, 32, 729]);
    const c = pow(tensorFrom('int64', [3], [1n, 2n, 3n]), tensorFrom('float32', [3], [4, 0.5, -1]));
    expect(Array.from(c.data as BigInt64Array)).toEqual([1n, 1n, 0n]); // 2^0.5 = 1.41 → 1, 3^-1 → 0
  });

  it('integer powers are exact and wrap like C', () => {
    const z = pow(tensorFrom('int64', [3], [3n, -2n, 7n]), tensorFrom('int64', [3], [39n, 63n, 0n]));
    expect(Array.from(z.data as BigInt64Array)).toEqual([4052555153018976267n, BigInt.asIntN(64, (-2n) ** 63n), 1n]);
    expect(powInt64(2n, 64n)).toBe(0n);
    expect(powInt64(-1n, -3n)).toBe(-1n);
    expect(powInt64(5n, -2n)).toBe(0n);
    // 3^21 = 10460353203 → mod 2^32 = 1870418611
    expect(powInt32(3, 21)).toBe(1870418611);
    expect(pow(tensorFrom('int32', [1], [3]), tensorFrom('int32', [1], [21])).toNumbers()).toEqual([1870418611]);
    expect(pow(tensorFrom('uint8', [1], [3]), tensorFrom('uint8', [1], [5])).toNumbers()).toEqual([243]);
  });
});
