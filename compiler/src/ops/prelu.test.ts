import { PtqError } from '../errors';
import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function prelu(x: Tensor, s: Tensor, opset = 16): Tensor {
  const node = new Node({ opType: 'PRelu', name: 'p', inputs: ['x', 's'], outputs: ['y'] });
  return findOp('', 'PRelu')!.run({ node, opset }, [x, s])[0];
}

describe('PRelu', () => {
  const x = tensorFrom('float32', [1, 2, 1, 2], [-1, 2, -3, -4]);
  it('per-channel slope [C,1,1] broadcasts to NCHW', () => {
    expect(prelu(x, tensorFrom('float32', [2, 1, 1], [0.5, 0.25])).toNumbers()).toEqual([-0.5, 2, -0.75, -1]);
  });
  it('trailing-dim slope broadcasts unidirectionally', () => {
    expect(prelu(x, tensorFrom('float32', [2], [0.5, 0.25])).toNumbers()).toEqual([-0.5, 2, -1.5, -1]);
  });
  it('a slope that would grow the output is refused', () => {
    expect(() => prelu(tensorFrom('float32', [2], [1, -1]), tensorFrom('float32', [2, 2], [1, 1, 1, 1]))).toThrow(PtqError);
  });
  it('opset < 7: a 1-D slope of C values is per channel', () => {
    expect(prelu(x, tensorFrom('float32', [2], [0.5, 0.25]), 6).toNumbers()).toEqual([-0.5, 2, -0.75, -1]);
  });
  it('integer inputs, int64 included', () => {
    expect(prelu(tensorFrom('int32', [2], [-4, 4]), tensorFrom('int32', [1], [3])).toNumbers()).toEqual([-12, 4]);
    const y = prelu(tensorFrom('int64', [2], [-4n, 4n]), tensorFrom('int64', [1], [3n]));
    expect(Array.from(y.data as BigInt64Array)).toEqual([-12n, 4n]);
  });
});
