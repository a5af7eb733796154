import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function run(type: string, inputs: Tensor[], attrs: Record<string, Attribute> = {}, opset = 17): Tensor {
  const op = findOp('', type);
  if (!op) throw new Error(`${type} not registered`);
  const node = new Node({ opType: type, inputs: inputs.map((_, i) => `x${i}`), outputs: ['y'], attrs });
  return op.run({ node, opset }, inputs)[0];
}
const f32 = (v: number[]): Tensor => tensorFrom('float32', [v.length], v);

describe('unary math', () => {
  it('Round rounds half to even (ONNX Round), Floor/Ceil toward -inf/+inf', () => {
    const x = f32([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.6, -2.6, 7]);
    expect(run('Round', [x]).toNumbers()).toEqual([0, 2, 2, -0, -2, -2, 3, -3, 7]);
    expect(run('Floor', [x]).toNumbers()).toEqual([0, 1, 2, -1, -2, -3, 2, -3, 7]);
    expect(run('Ceil', [x]).toNumbers()).toEqual([1, 2, 3, -0, -1, -2, 3, -2, 7]);
  });

  it('Floor/Ceil/Round leave integers exact, int64 included', () => {
    const big = tensorFrom('int64', [2], [9007199254740993n, -5n]);
    expect(Array.from(run('Round', [big]).data as BigInt64Array)).toEqual([9007199254740993n, -5n]);
  });

  it('Abs, Neg and Sign work on every numeric type, wrapping like two\'s complement', () => {
    expect(run('Abs', [tensorFrom('int8', [3], [-128, -3, 4])]).toNumbers()).toEqual([-128, 3, 4]);
    expect(run('Neg', [tensorFrom('int32', [2], [5, -2147483648])]).toNumbers()).toEqual([-5, -2147483648]);
    expect(Array.from(run('Abs', [tensorFrom('int64', [2], [-(2n ** 62n), 7n])]).data as BigInt64Array)).toEqual([2n ** 62n, 7n]);
    expect(Array.from(run('Sign', [tensorFrom('int64', [3], [-9n, 0n, 12n])]).data as BigInt64Array)).toEqual([-1n, 0n, 1n]);
    const s = run('Sign', [f32([-3.5, 0, 2, NaN])]).toNumbers();
    expect(s.slice(0, 3)).toEqual([-1, 0, 1]);
    expect(s[3]).toBeNaN();
  });

  it('Sqrt, Reciprocal, Exp, Log follow IEEE special values and round to float32', () => {
    const x = f32([4, 2, 0, -1]);
    expect(run('Sqrt', [x]).toNumbers().slice(0, 3)).toEqual([2, Math.fround(Math.SQRT2), 0]);
    expect(run('Sqrt', [x]).toNumbers()[3]).toBeNaN();
    expect(run('Reciprocal', [x]).toNumbers()).toEqual([0.25, 0.5, Infinity, -1]);
    expect(run('Log', [x]).toNumbers().slice(0, 3)).toEqual([Math.fround(Math.LN2 * 2), Math.fround(Math.LN2), -Infinity]);
    expect(run('Exp', [f32([0, 1, 100])]).toNumbers()).toEqual([1, Math.fround(Math.E), Infinity]); // e^100 overflows float32
    const d = run('Exp', [tensorFrom('float64', [1], [100])]);
    expect(d.dtype).toBe('float64');
    expect(d.toNumbers()[0]).toBeCloseTo(2.6881171418161356e43, -30);
  });

  it('Erf matches math.erf', () => {
    const got = run('Erf', [tensorFrom('float64', [4], [-1, 0.5, 2, 3.5])]).toNumbers();
    const want = [-0.8427007929497149, 0.5204998778130465, 0.9953222650189527, 0.9999992569016276];
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 14));
  });

  it('IsNaN and IsInf give bool, IsInf honours detect_positive/detect_negative', () => {
    const x = f32([1, NaN, Infinity, -Infinity]);
    const n = run('IsNaN', [x]);
    expect(n.dtype).toBe('bool');
    expect(n.toNumbers()).toEqual([0, 1, 0, 0]);
    expect(run('IsInf', [x]).toNumbers()).toEqual([0, 0, 1, 1]);
    expect(run('IsInf', [x], { detect_negative: { type: 'int', value: 0 } }).toNumbers()).toEqual([0, 0, 1, 0]);
    expect(run('IsInf', [x], { detect_positive: { type: 'int', value: 0 } }).toNumbers()).toEqual([0, 0, 0, 1]);
  });

  it('infers the same type and shape (bool for IsNaN/IsInf)', () => {
    const node = new Node({ opType: 'Sqrt', inputs: ['x'], outputs: ['y'] });
    expect(findOp('', 'Sqrt')!.infer({ node, opset: 13 }, [{ dtype: 'float32', shape: ['N', 3] }])).toEqual([{ dtype: 'float32', shape: ['N', 3] }]);
    expect(findOp('', 'IsNaN')!.infer({ node, opset: 13 }, [{ dtype: 'float32', shape: [2] }])[0].dtype).toBe('bool');
  });
});
