import { PtqError } from '../errors';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { f32, i32, i64, inferOp, known, runOp, values } from './tensor-shape.test.util';

describe('Constant', () => {
  it('reads every value_* attribute form with its ONNX type', () => {
    const t = f32([2], [1.5, 2.5]);
    expect(runOp('Constant', 13, [], { value: t })[0]).toBe(t);
    const cases: [Record<string, number | string | number[] | string[] | { float: number } | { floats: number[] }>, string, number[], unknown[]][] = [
      [{ value_float: { float: 2 } }, 'float32', [], [2]],
      [{ value_floats: { floats: [1, 2] } }, 'float32', [2], [1, 2]],
      [{ value_int: 7 }, 'int64', [], [7]],
      [{ value_ints: [3, -4] }, 'int64', [2], [3, -4]],
      [{ value_string: 'hi' }, 'string', [], ['hi']],
      [{ value_strings: ['a', 'b'] }, 'string', [2], ['a', 'b']],
    ];
    for (const [attrs, dtype, dims, vals] of cases) {
      const [y] = runOp('Constant', 13, [], attrs);
      expect([y.dtype, y.dims, values(y)]).toEqual([dtype, dims, vals]);
    }
    expect(() => runOp('Constant', 13, [], {})).toThrow(PtqError);
    expect(inferOp('Constant', 13, [], { value_ints: [1, 2] })[0].value?.toNumbers()).toEqual([1, 2]);
  });
});

describe('ConstantOfShape', () => {
  it('fills the given dims with the value tensor (default float32 zeros)', () => {
    const [a] = runOp('ConstantOfShape', 9, [i64([2, 3])]);
    expect([a.dtype, a.dims, values(a)]).toEqual(['float32', [2, 3], [0, 0, 0, 0, 0, 0]]);
    const [b] = runOp('ConstantOfShape', 9, [i64([2])], { value: tensorFrom('int64', [1], [-9223372036854775807n]) });
    expect(Array.from(b.data as BigInt64Array)).toEqual([-9223372036854775807n, -9223372036854775807n]);
    const [c] = runOp('ConstantOfShape', 9, [i64([])], { value: new Tensor('float16', [1], Uint16Array.of(0x3c00)) });
    expect([c.dtype, c.dims, Array.from(c.data as Uint16Array)]).toEqual(['float16', [], [0x3c00]]);
    expect(inferOp('ConstantOfShape', 9, [known(i64([4, 5]))])[0].shape).toEqual([4, 5]);
    expect(inferOp('ConstantOfShape', 9, [{ dtype: 'int64', shape: [3] }])[0].shape).toEqual(['?', '?', '?']);
  });
});

describe('Range', () => {
  it('counts ceil((limit - start) / delta) elements, in the input type', () => {
    expect(values(runOp('Range', 11, [f32([], [1]), f32([], [2.6]), f32([], [0.5])])[0])).toEqual([1, 1.5, 2, 2.5]);
    const [n] = runOp('Range', 11, [i32([10], []), i32([4], []), i32([-3], [])]);
    expect([n.dtype, values(n)]).toEqual(['int32', [10, 7]]);
    expect(runOp('Range', 11, [i32([0], []), i32([-4], []), i32([1], [])])[0].dims).toEqual([0]);
    const big = tensorFrom('int64', [], [9007199254740993n]);
    const [b] = runOp('Range', 11, [big, tensorFrom('int64', [], [9007199254740996n]), tensorFrom('int64', [], [2n])]);
    expect(Array.from(b.data as BigInt64Array)).toEqual([9007199254740993n, 9007199254740995n]);
  });
});

describe('EyeLike', () => {
  it('puts ones on diagonal k in the requested dtype', () => {
    const x = f32([3, 4], new Array(12).fill(5));
    const [y] = runOp('EyeLike', 9, [x], { k: 1 });
    expect(values(y)).toEqual([0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const [z] = runOp('EyeLike', 9, [x], { k: -2, dtype: 7 });
    expect(z.dtype).toBe('int64');
    expect(values(z)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    const [h] = runOp('EyeLike', 9, [new Tensor('float16', [2, 2], new Uint16Array(4))]);
    expect(Array.from(h.data as Uint16Array)).toEqual([0x3c00, 0, 0, 0x3c00]);
  });
});
