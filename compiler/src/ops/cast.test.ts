import { PtqError } from '../errors';
import { dtypeToOnnx, DType } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { castTensor, parseNumber } from './cast';
import { findOp } from './registry';

/** Through the engine's step (Cast handles float16/bfloat16 itself: nativeHalf). */
function cast(x: Tensor, to: DType | number): Tensor {
  const code = typeof to === 'number' ? to : dtypeToOnnx(to);
  const node = new Node({ opType: 'Cast', name: 'c', inputs: ['x'], outputs: ['y'], attrs: { to: { type: 'int', value: code } } });
  return runStep({ node, op: findOp('', 'Cast')!, opset: 13 }, [x])[0];
}

describe('Cast', () => {
  it('float → integers truncates toward zero and keeps the low bits like C on x86', () => {
    const x = tensorFrom('float32', [5], [300.75, -1.5, 2.9, -2.9, NaN]);
    expect(cast(x, 'int8').toNumbers()).toEqual([44, -1, 2, -2, 0]);
    expect(cast(x, 'uint8').toNumbers()).toEqual([44, 255, 2, 254, 0]);
    expect(cast(x, 'int32').toNumbers()).toEqual([300, -1, 2, -2, -2147483648]);
  });

  it('NaN and out-of-range floats give what onnxruntime gives on x86-64 (recorded from onnxruntime-node 1.30)', () => {
    const sp = [NaN, Infinity, -Infinity, 1e10, -1e10, 3e9, -3e9, 1e30, -1e30, 2 ** 63, 1.8e19, -1.5, 4294967295, 4294967296];
    const x = tensorFrom('float64', [sp.length], sp);
    const M = -2147483648;
    expect(cast(x, 'int32').toNumbers()).toEqual([M, M, M, M, M, M, M, M, M, M, M, -1, M, M]);
    expect(cast(x, 'int16').toNumbers()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0]);
    expect(cast(x, 'uint16').toNumbers()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 65535, 0, 0]);
    expect(cast(x, 'uint32').toNumbers()).toEqual([2147483648, 0, 2147483648, 0, 2147483648, 3000000000, 2147483648, 0, 2147483648, 0, 0, 4294967295, 4294967295, 0]);
    const m = -(2n ** 63n);
    expect(Array.from(cast(x, 'int64').data as BigInt64Array)).toEqual([m, m, m, 10000000000n, -10000000000n, 3000000000n, -3000000000n, m, m, m, m, -1n, 4294967295n, 4294967296n]);
    expect(Array.from(cast(x, 'uint64').data as BigUint64Array)).toEqual([
      9223372036854775808n, 0n, 9223372036854775808n, 10000000000n, 18446744063709551616n, 3000000000n, 18446744070709551616n, 0n,
      9223372036854775808n, 9223372036854775808n, 18000000000000000000n, 18446744073709551615n, 4294967295n, 4294967296n,
    ]);
  });

  it('int64 both ways without going through 32 bits', () => {
    const big = cast(tensorFrom('float64', [2], [2 ** 62, -3.7]), 'int64');
    expect(Array.from(big.data as BigInt64Array)).toEqual([2n ** 62n, -3n]);
    expect(cast(tensorFrom('int64', [2], [2n ** 53n + 1n, -5n]), 'float64').toNumbers()).toEqual([2 ** 53, -5]);
    expect(cast(tensorFrom('int64', [2], [2n ** 32n + 7n, -1n]), 'int32').toNumbers()).toEqual([7, -1]);
    expect(Array.from(cast(tensorFrom('int32', [1], [-1]), 'uint64').data as BigUint64Array)).toEqual([2n ** 64n - 1n]);
    expect(Array.from(cast(tensorFrom('float32', [1], [2 ** 63]), 'uint64').data as BigUint64Array)).toEqual([2n ** 63n]);
  });

  it('to and from bool: nonzero (and NaN) is true', () => {
    expect(cast(tensorFrom('float32', [4], [0, -0.5, NaN, 3]), 'bool').toNumbers()).toEqual([0, 1, 1, 1]);
    expect(cast(tensorFrom('int64', [2], [0n, 5n]), 'bool').toNumbers()).toEqual([0, 1]);
    expect(cast(tensorFrom('bool', [2], [1, 0]), 'float32').toNumbers()).toEqual([1, 0]);
  });

  it('float16 / bfloat16 round to nearest even, and decode exactly (numpy bits)', () => {
    const h = cast(tensorFrom('float64', [3], [0.1, 1 + 2 ** -11 + 2 ** -40, 70000]), 'float16');
    expect(h.dtype).toBe('float16');
    expect(Array.from(h.data as Uint16Array)).toEqual([11878, 15361, 31744]);
    expect(cast(h, 'float32').toNumbers()).toEqual([0.0999755859375, 1.0009765625, Infinity]);
    const b = cast(tensorFrom('float32', [2], [1 + 3 * 2 ** -8, -7.75]), 'bfloat16');
    expect(Array.from(b.data as Uint16Array)).toEqual([16258, 49400]);
    expect(cast(b, 'float64').toNumbers()).toEqual([1.015625, -7.75]);
  });

  it('to strings: the shortest form that reads back in the source precision', () => {
    const s = cast(tensorFrom('float32', [6], [0.1, 1 / 3, 0.039187793, -2.5, NaN, -Infinity]), 'string');
    expect(s.dtype).toBe('string');
    expect(s.data).toEqual(['0.1', '0.33333334', '0.039187793', '-2.5', 'NaN', '-INF']); // numpy str() agrees
    expect(cast(tensorFrom('float64', [1], [0.1]), 'string').data).toEqual(['0.1']);
    expect(cast(tensorFrom('int64', [1], [-(2n ** 62n)]), 'string').data).toEqual(['-4611686018427387904']);
    expect(cast(tensorFrom('bool', [2], [1, 0]), 'string').data).toEqual(['1', '0']); // as onnxruntime
  });

  it('from strings: decimal, scientific, NaN and signed INF', () => {
    const x = new Tensor('string', [7], ['0.47892547', '1E8', ' -2.5 ', 'NaN', 'INF', '+INF', '-INF']);
    const y = cast(x, 'float32').toNumbers();
    expect(y[0]).toBe(Math.fround(0.47892547));
    expect(y.slice(1, 3)).toEqual([1e8, -2.5]);
    expect(y[3]).toBeNaN();
    expect(y.slice(4)).toEqual([Infinity, Infinity, -Infinity]);
    expect(Array.from(cast(new Tensor('string', [2], ['9007199254740993', '-3.9']), 'int64').data as BigInt64Array)).toEqual([9007199254740993n, -3n]);
    expect(parseNumber('')).toBeNaN();
  });

  it('same type is a copy; an unsupported target is a PtqError', () => {
    const x = tensorFrom('float32', [1], [1]);
    const y = cast(x, 'float32');
    expect(y.data).not.toBe(x.data);
    expect(y.toNumbers()).toEqual([1]);
    expect(() => cast(x, 17)).toThrow(PtqError); // FLOAT8E4M3FN
    expect(() => cast(x, 17)).toThrow(/FLOAT8E4M3FN/);
  });

  it('infers the target type', () => {
    const node = new Node({ opType: 'Cast', inputs: ['x'], outputs: ['y'], attrs: { to: { type: 'int', value: 7 } } });
    expect(findOp('', 'Cast')!.infer({ node, opset: 13 }, [{ dtype: 'float32', shape: ['N'] }])).toEqual([{ dtype: 'int64', shape: ['N'] }]);
  });
});

describe('CastLike', () => {
  it('casts to the type of its second input', () => {
    const node = new Node({ opType: 'CastLike', inputs: ['x', 'like'], outputs: ['y'] });
    const op = findOp('', 'CastLike')!;
    const y = runStep({ node, op, opset: 15 }, [tensorFrom('float32', [2], [1.5, -2.5]), tensorFrom('int32', [1], [0])])[0];
    expect(y.dtype).toBe('int32');
    expect(y.toNumbers()).toEqual([1, -2]);
    expect(op.infer({ node, opset: 15 }, [{ dtype: 'float32', shape: [2] }, { dtype: 'float16', shape: [1] }])).toEqual([{ dtype: 'float16', shape: [2] }]);
    expect(castTensor(tensorFrom('uint8', [1], [200]), 'int8').toNumbers()).toEqual([-56]);
  });
});
