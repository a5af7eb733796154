import { PtqError } from '../errors';
import { copyTensor, floatToIntOf } from '../kernels/elementwise-ext';
import { bfloat16ToFloat, halfToFloat } from '../kernels/float16';
import { toBfloat16Bits, toHalfBits } from '../kernels/scalar-math';
import { arrayCtor, DType, dtypeFromOnnx, isBigInt, ONNX_TYPE_NAMES, TypedArray } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- elements of any type */

/** A decimal string as a number: plain and scientific forms, NaN, INF, +INF, -INF (any case). */
export function parseNumber(s: string): number {
  const t = s.trim();
  const u = t.toUpperCase();
  if (u === 'NAN' || u === '+NAN' || u === '-NAN') return NaN;
  if (u === 'INF' || u === '+INF' || u === 'INFINITY' || u === '+INFINITY') return Infinity;
  if (u === '-INF' || u === '-INFINITY') return -Infinity;
  if (u === 'TRUE') return 1;
  if (u === 'FALSE') return 0;
  return t === '' ? NaN : Number(t);
}

/** The shortest decimal that reads back as `v` in the source precision (`same`), NaN/INF/-INF for the specials. */
function shortest(v: number, same: (w: number) => boolean): string {
  if (v !== v) return 'NaN';
  if (v === Infinity) return 'INF';
  if (v === -Infinity) return '-INF';
  for (let p = 1; p < 17; p++) {
    const w = Number(v.toPrecision(p));
    if (same(w)) return String(w);
  }
  return String(v);
}

/** How an element of `from` is written as a string. */
function formatter(from: DType): (v: any) => string {
  switch (from) {
    case 'float32':
      return (v: number) => shortest(v, (w) => Math.fround(w) === v);
    case 'float16':
      return (h: number) => shortest(halfToFloat(h), (w) => toHalfBits(w) === h);
    case 'bfloat16':
      return (h: number) => shortest(bfloat16ToFloat(h), (w) => toBfloat16Bits(w) === h);
    case 'float64':
      return (v: number) => shortest(v, (w) => w === v);
    case 'bool':
      return (v: number) => (v ? '1' : '0'); // as onnxruntime writes bools
    default:
      return (v: number | bigint) => String(v);
  }
}

/** How an element of `from` is read: halves decoded, strings parsed (to bigint when the target is a 64-bit integer and the text is one). */
function reader(from: DType, to: DType): (v: any) => number | bigint {
  if (from === 'float16') return halfToFloat;
  if (from === 'bfloat16') return bfloat16ToFloat;
  if (from === 'string') {
    if (isBigInt(to)) return (s: string) => (/^\s*[+-]?\d+\s*$/.test(s) ? BigInt(s.trim()) : parseNumber(s));
    return parseNumber;
  }
  return (v: number | bigint) => v;
}

/**
 * How a number or bigint is stored into an array of `to`. Floats go to integers as C casts do on
 * x86-64 (floatToIntOf: what onnxruntime gives, NaN and out-of-range values included); bigints are
 * cut to the target width (typed arrays keep the low bits).
 */
function writer(to: DType): (v: number | bigint) => number | bigint {
  switch (to) {
    case 'float32':
    case 'float64':
      return (v) => (typeof v === 'bigint' ? Number(v) : v);
    case 'float16':
      return (v) => toHalfBits(Number(v));
    case 'bfloat16':
      return (v) => toBfloat16Bits(Number(v));
    case 'bool':
      return (v) => (typeof v === 'bigint' ? (v !== 0n ? 1 : 0) : v !== 0 ? 1 : 0); // NaN is true, as in C
    case 'int64':
    case 'uint64': {
      const conv = floatToIntOf(to);
      return (v) => (typeof v === 'bigint' ? v : conv(v));
    }
    default: {
      // int8 … uint32: a bigint is first cut to 32 bits, exactly representable as a number
      const conv = floatToIntOf(to);
      return (v) => (typeof v === 'bigint' ? Number(BigInt.asIntN(32, v)) : conv(v));
    }
  }
}

/** `x` converted to element type `to` (every pair of ONNX types we hold, strings included). */
export function castTensor(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return copyTensor(x);
  const src = x.data as any;
  const n = x.size;
  if (to === 'string') {
    const fmt = formatter(x.dtype);
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = fmt(src[i]);
    return new Tensor('string', x.dims, out);
  }
  const read = reader(x.dtype, to);
  const write = writer(to);
  const out = new (arrayCtor(to))(n) as any;
  for (let i = 0; i < n; i++) out[i] = write(read(src[i]));
  return new Tensor(to, x.dims, out as TypedArray);
}

function targetOf(node: Node): DType {
  const code = node.int('to');
  const d = code === undefined ? undefined : dtypeFromOnnx(code);
  if (d === undefined) {
    const name = code === undefined ? 'missing' : ONNX_TYPE_NAMES[code] ?? String(code);
    throw new PtqError('E_UNSUPPORTED_TYPE', `node '${node.label}' (Cast): target type 'to' = ${name} is not supported`, {
      subject: node.label,
      fix: 'cast to one of FLOAT, DOUBLE, FLOAT16, BFLOAT16, (U)INT8/16/32/64, BOOL or STRING',
    });
  }
  return d;
}

/**
 * Cast (to = attribute) and CastLike (to = the second input's type). Float → integer truncates
 * toward zero as C on x86-64 does; → float16/bfloat16 rounds to nearest even; → string gives the
 * shortest decimal that reads back exactly (as numpy, and ONNX's test data). CPU ops.
 */
export const ops: OpDef[] = [
  {
    type: 'Cast',
    quant: 'cpu',
    nativeHalf: true,
    infer: ({ node }, [x]) => [{ dtype: targetOf(node), shape: x?.shape }],
    run: ({ node }, [x]) => [castTensor(x as Tensor, targetOf(node))],
  },
  {
    type: 'CastLike',
    quant: 'cpu',
    nativeHalf: true,
    sinceOpset: 15,
    infer: (_ctx, [x, like]) => [{ dtype: like?.dtype, shape: x?.shape }],
    run: (_ctx, [x, like]) => [castTensor(x as Tensor, (like as Tensor).dtype)],
  },
];
