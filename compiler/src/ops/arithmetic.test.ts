import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function run(type: string, inputs: Tensor[], attrs: Record<string, Attribute> = {}, opset = 17): Tensor {
  const node = new Node({ opType: type, name: 'n', inputs: inputs.map((_, i) => `x${i}`), outputs: ['y'], attrs });
  return findOp('', type)!.run({ node, opset }, inputs)[0];
}
const big = (t: Tensor): bigint[] => Array.from(t.data as BigInt64Array);

describe('Add, Sub, Mul, Div', () => {
  it('broadcast numpy-style', () => {
    const a = tensorFrom('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
    const b = tensorFrom('float32', [3], [10, 20, 30]);
    const y = run('Add', [a, b]);
    expect(y.dims).toEqual([2, 3]);
    expect(y.toNumbers()).toEqual([11, 22, 33, 14, 25, 36]);
    expect(run('Sub', [b, a]).toNumbers()).toEqual([9, 18, 27, 6, 15, 24]);
  });

  it('wrap integers to their width', () => {
    expect(run('Add', [tensorFrom('uint8', [2], [250, 3]), tensorFrom('uint8', [2], [10, 4])]).toNumbers()).toEqual([4, 7]);
    expect(run('Sub', [tensorFrom('uint8', [1], [3]), tensorFrom('uint8', [1], [5])]).toNumbers()).toEqual([254]);
    expect(run('Mul', [tensorFrom('int8', [1], [100]), tensorFrom('int8', [1], [3])]).toNumbers()).toEqual([44]);
    // 123456789 * 987654321 = 121932631112635269; mod 2^32 as int32 = -67153019 (float64 math would lose the low bits)
    expect(run('Mul', [tensorFrom('int32', [1], [123456789]), tensorFrom('int32', [1], [987654321])]).toNumbers()).toEqual([-67153019]);
    expect(big(run('Mul', [tensorFrom('int64', [1], [2n ** 62n]), tensorFrom('int64', [1], [4n])]))).toEqual([0n]);
  });

  it('Div truncates integers toward zero and does not trap on zero divisors', () => {
    expect(run('Div', [tensorFrom('int8', [4], [7, -7, 7, -128]), tensorFrom('int8', [4], [2, 2, 0, -1])]).toNumbers()).toEqual([3, -3, 0, -128]);
    expect(run('Div', [tensorFrom('uint8', [3], [255, 9, 1]), tensorFrom('uint8', [3], [16, 3, 0])]).toNumbers()).toEqual([15, 3, 0]);
    expect(big(run('Div', [tensorFrom('int64', [3], [-7n, 9n, 5n]), tensorFrom('int64', [3], [2n, 0n, -5n])]))).toEqual([-3n, 0n, -1n]);
    expect(run('Div', [tensorFrom('float32', [2], [1, -1]), tensorFrom('float32', [2], [0, 3])]).toNumbers()).toEqual([Infinity, Math.fround(-1 / 3)]);
  });

  it('opset < 7 broadcast=1 with axis lines B up from that axis', () => {
    const a = tensorFrom('float32', [1, 2, 2, 2], [0, 0, 0, 0, 0, 0, 0, 0]);
    const bias = tensorFrom('float32', [2], [1, 2]);
    const y = run('Add', [a, bias], { broadcast: { type: 'int', value: 1 }, axis: { type: 'int', value: 1 } }, 6);
    expect(y.toNumbers()).toEqual([1, 1, 1, 1, 2, 2, 2, 2]);
  });

  it('rejects mixed element types with a PtqError naming the node', () => {
    expect(() => run('Add', [tensorFrom('float32', [1], [1]), tensorFrom('int64', [1], [1n])])).toThrow(PtqError);
    expect(() => run('Add', [tensorFrom('float32', [1], [1]), tensorFrom('int64', [1], [1n])])).toThrow(/node 'n' \(Add\)/);
  });
});

describe('Mod', () => {
  const fmod = { fmod: { type: 'int', value: 1 } as Attribute };
  it('fmod=0 takes the divisor\'s sign (Python %), fmod=1 the dividend\'s (C fmod)', () => {
    const x = tensorFrom('int32', [6], [-4, 7, 5, 4, -7, 8]);
    const y = tensorFrom('int32', [6], [2, -3, 8, -2, 3, 5]);
    expect(run('Mod', [x, y]).toNumbers()).toEqual([0, -2, 5, 0, 2, 3]);
    expect(run('Mod', [x, y], fmod).toNumbers()).toEqual([0, 1, 5, 0, -1, 3]);
    const bx = tensorFrom('int64', [3], [-7n, 7n, 5n]);
    const by = tensorFrom('int64', [3], [3n, -3n, 0n]);
    expect(big(run('Mod', [bx, by]))).toEqual([2n, -2n, 0n]);
    expect(big(run('Mod', [bx, by], fmod))).toEqual([-1n, 1n, 0n]);
  });
  it('works on floats with fmod=1', () => {
    const r = run('Mod', [tensorFrom('float64', [2], [-4.5, 7.5]), tensorFrom('float64', [2], [2, -2])], fmod).toNumbers();
    expect(r).toEqual([-0.5, 1.5]);
  });
});
