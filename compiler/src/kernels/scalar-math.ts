/**
 * Scalar functions JavaScript's Math lacks, for the elementwise operators:
 * erf/erfc, round-half-to-even, and correctly rounded float64 → float16/bfloat16 bits
 * (kernels/float16.ts rounds through float32 first, which double-rounds float64 values).
 */
import { floatToBfloat16, floatToHalf } from './float16';

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const INV_SQRT_PI = 0.5641895835477563; // 1/√π

/** Round to the nearest integer, ties to even (IEEE roundTiesToEven; numpy.round; ONNX Round). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  const r = d < 0.5 ? f : d > 0.5 || f % 2 !== 0 ? f + 1 : f;
  return r === 0 && x < 0 ? -0 : r; // -0.4 → -0, as IEEE rounding keeps the sign
}

/** erfc(a) for a >= 2.5 by its continued fraction erfc(a) = e^(-a²)/√π · 1/(a + ½/(a + 1/(a + 3⁄2/(a + …)))). */
function erfcTail(a: number): number {
  let t = a;
  for (let k = 60; k >= 1; k--) t = a + k / 2 / t;
  return (Math.exp(-a * a) * INV_SQRT_PI) / t;
}

/** erf(x) to double precision: the Maclaurin series near 0, the erfc continued fraction beyond |x| = 2.5. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a < 2.5) {
    // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) <= 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  if (a >= 6) return x > 0 ? 1 : -1; // erfc(6) ≈ 2e-17
  const c = erfcTail(a);
  return x > 0 ? 1 - c : c - 1;
}

/** erfc(x) = 1 - erf(x), without the cancellation for large x. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 2.5) return x > 27 ? 0 : erfcTail(x);
  if (x <= -2.5) return x < -27 ? 2 : 2 - erfcTail(-x);
  return 1 - erf(x);
}

/** floor(log2(a)) for finite a > 0, exact (Math.log2 may be off by one near powers of two). */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * `a` (finite, >= 0) rounded ties-to-even onto a binary grid with `mant` fraction bits
 * whose smallest normal exponent is `emin` (below it: the subnormal spacing).
 */
function roundToGrid(a: number, mant: number, emin: number): number {
  const e = a >= 2 ** emin ? exponentOf(a) : emin;
  const q = 2 ** (e - mant);
  return roundHalfEven(a / q) * q;
}

/** IEEE half bits of a float64, correctly rounded (ties to even), like numpy's astype(float16). */
export function toHalfBits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // 65520 is the tie between 65504 (max) and 2^16: rounds to even = infinity
  const r = roundToGrid(a, 10, -14);
  return sign | floatToHalf(r); // r is a half value, converted exactly
}

/** bfloat16 bits of a float64, correctly rounded (ties to even). */
export function toBfloat16Bits(v: number): number {
  if (Number.isNaN(v)) return 0x7fc0;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7f80;
  const r = roundToGrid(a, 7, -126);
  if (r >= 2 ** 128) return sign | 0x7f80;
  return sign | floatToBfloat16(r);
}

/*
 * Float → integer conversions as C casts compile on x86-64 (cvttss2si/cvttsd2si), which is
 * what onnxruntime's Cast and integer Pow produce there: truncation toward zero, and NaN or a
 * value out of the instruction's range gives the "integer indefinite" value (the minimum).
 * Narrower types take the low bits of the int32 result; unsigned 32/64-bit use the usual
 * "subtract 2^31 (2^63), convert, flip the top bit" sequence for large values.
 */
const TWO_31 = 2 ** 31;
const TWO_63 = 2 ** 63;
const INT64_MIN = -(2n ** 63n);

/** float → int32 (also the first step for int8/int16/uint8/uint16, whose arrays keep the low bits). */
export function floatToInt32(v: number): number {
  const t = Math.trunc(v);
  return t >= -TWO_31 && t < TWO_31 ? t : -TWO_31;
}

export function floatToUint32(v: number): number {
  return v >= TWO_31 ? (floatToInt32(v - TWO_31) ^ 0x80000000) >>> 0 : floatToInt32(v) >>> 0;
}

export function floatToInt64(v: number): bigint {
  const t = Math.trunc(v);
  return t >= -TWO_63 && t < TWO_63 ? BigInt(t) : INT64_MIN;
}

export function floatToUint64(v: number): bigint {
  if (v >= TWO_63) return BigInt.asUintN(64, floatToInt64(v - TWO_63)) ^ (1n << 63n);
  return BigInt.asUintN(64, floatToInt64(v));
}
