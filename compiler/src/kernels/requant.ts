/**
 * Integer requantisation, the numerics contract of shared/DESIGN.md §3, written to agree bit
 * for bit with onnxruntime's CPU QLinear kernels (MLAS on x86-64):
 *
 *   M   = fround(fround(s_in · s_w[c]) / s_out)            one float32 multiplier per channel
 *   acc = int32(Σ (x − zx)(w − zw) + bias[c])               int32, wraps like the hardware adder
 *   y   = clamp(roundHalfEven(fround(fround(acc) · M)) + zy, lo, hi)
 *
 * fround(acc) is the int32→float32 conversion (round to nearest even), the product is
 * rounded once to float32 (a product of two float32 values is exact in a double, so
 * Math.fround of it is the correctly rounded float32 product), and the final rounding is
 * half to even (the x86 default rounding mode). Clamping in float before rounding — what
 * MLAS does — gives the same integers because the bounds are integers.
 */
import { integerRange } from '../onnx/dtype';

export type QuantDType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32';

/** Typed arrays holding 8-bit quantized values. */
export type Q8Array = Int8Array | Uint8Array;

const fround = Math.fround;
const round = Math.round;

/** Round to the nearest integer, ties to even (JS Math.round sends ties towards +∞). */
export function roundHalfEven(x: number): number {
  const r = round(x);
  // r - x is exact: |r - x| <= 0.5 and both are within a factor of two of each other (or x is an integer).
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** [lo, hi] of an integer element type. */
export function qRange(dtype: QuantDType | string): [number, number] {
  const r = integerRange(dtype);
  if (!r) throw new Error(`${dtype} is not an integer quantisation type`);
  return r;
}

/** min(max(v, lo), hi). */
export function saturate(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

export function saturateInt8(v: number): number {
  return v < -128 ? -128 : v > 127 ? 127 : v;
}

export function saturateUint8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Wrap to int32 as a 32-bit adder does. */
export function wrapInt32(v: number): number {
  return v | 0;
}

/** The float32 requantisation multiplier fround(fround(sIn · sW) / sOut), as onnxruntime computes it. */
export function requantMultiplier(sIn: number, sW: number, sOut: number): number {
  return fround(fround(fround(sIn) * fround(sW)) / fround(sOut));
}

/** Per-channel multipliers for a per-tensor input scale, per-channel weight scales and a per-tensor output scale. */
export function requantMultipliers(sIn: number, sW: ArrayLike<number>, sOut: number): Float32Array {
  const m = new Float32Array(sW.length);
  for (let i = 0; i < sW.length; i++) m[i] = requantMultiplier(sIn, sW[i], sOut);
  return m;
}

/** One accumulator (bias already added) to the output integer: clamp(rne(fround(fround(acc) · m)) + zp, lo, hi). */
export function requantize(acc: number, m: number, zp: number, lo: number, hi: number): number {
  const v = roundHalfEven(fround(fround(acc | 0) * m)) + zp;
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Requantise a block of int32 accumulators laid out as `rows × cols` (row stride `ld`) into `out`
 * (same layout at `outOff`, stride `ldOut`). The channel of an element is its row when
 * `channelAxis === 'row'` (NCHW conv output: channel × pixels) and its column otherwise
 * (MatMul output: rows × channels). `bias` and `mult` are per channel (or length 1).
 */
export function requantizeBlock(
  acc: Int32Array,
  accOff: number,
  ld: number,
  rows: number,
  cols: number,
  channelAxis: 'row' | 'col',
  bias: ArrayLike<number> | undefined,
  mult: ArrayLike<number>,
  zp: number,
  lo: number,
  hi: number,
  out: Q8Array | Int16Array | Uint16Array | Int32Array,
  outOff: number,
  ldOut: number,
): void {
  const perChMult = mult.length > 1;
  const perChBias = bias !== undefined && bias.length > 1;
  for (let r = 0; r < rows; r++) {
    const a = accOff + r * ld;
    const o = outOff + r * ldOut;
    if (channelAxis === 'row') {
      const m = mult[perChMult ? r : 0];
      const b = bias === undefined ? 0 : bias[perChBias ? r : 0];
      for (let c = 0; c < cols; c++) {
        const v = roundHalfEven(fround(fround((acc[a + c] + b) | 0) * m)) + zp;
        out[o + c] = v < lo ? lo : v > hi ? hi : v;
      }
    } else {
      for (let c = 0; c < cols; c++) {
        const m = mult[perChMult ? c : 0];
        const b = bias === undefined ? 0 : bias[perChBias ? c : 0];
        const v = roundHalfEven(fround(fround((acc[a + c] + b) | 0) * m)) + zp;
        out[o + c] = v < lo ? lo : v > hi ? hi : v;
      }
    }
  }
}

/**
 * QuantizeLinear of one value: saturate(roundHalfEven(fround(x / scale)) + zp). NaN maps to `lo`
 * (what the SSE max/min clamp of onnxruntime produces); ±∞ saturate.
 */
export function quantizeValue(x: number, scale: number, zp: number, lo: number, hi: number): number {
  const q = fround(x / scale);
  if (q !== q) return lo;
  const v = roundHalfEven(q) + zp;
  return v < lo ? lo : v > hi ? hi : v;
}

/** DequantizeLinear of one value: fround(fround(q − zp) · scale). */
export function dequantizeValue(q: number, scale: number, zp: number): number {
  return fround(fround(q - zp) * scale);
}

/** A 256-entry table for an elementwise function of an 8-bit quantized tensor (HzLut). */
export interface Lut8 {
  /** 'int8' tables are indexed by q + 128, 'uint8' tables by q. */
  inDtype: 'int8' | 'uint8';
  outDtype: 'int8' | 'uint8';
  table: Q8Array;
}

/**
 * Build the lookup table of `f` for 8-bit inputs with (inScale, inZp) and outputs with
 * (outScale, outZp): entry q = quantize(f(dequantize(q))). `f` is evaluated on the float32
 * dequantized value and its result taken as float32, as a float kernel between DQ and Q would.
 */
export function buildLut(
  f: (x: number) => number,
  inDtype: 'int8' | 'uint8',
  inScale: number,
  inZp: number,
  outDtype: 'int8' | 'uint8',
  outScale: number,
  outZp: number,
): Lut8 {
  const [ilo] = qRange(inDtype);
  const [olo, ohi] = qRange(outDtype);
  const table = outDtype === 'int8' ? new Int8Array(256) : new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    const x = dequantizeValue(ilo + i, inScale, inZp);
    table[i] = quantizeValue(fround(f(x)), outScale, outZp, olo, ohi);
  }
  return { inDtype, outDtype, table };
}

/** Apply a table built by buildLut to `input` (its dtype must be the table's input dtype). */
export function applyLut(lut: Lut8, input: Q8Array, out?: Q8Array): Q8Array {
  const o = out ?? (lut.outDtype === 'int8' ? new Int8Array(input.length) : new Uint8Array(input.length));
  const t = lut.table;
  const shift = lut.inDtype === 'int8' ? 128 : 0;
  for (let i = 0; i < input.length; i++) o[i] = t[input[i] + shift];
  return o;
}
