import { applyLut, buildLut, dequantizeValue, qRange, quantizeValue, requantize, requantizeBlock, requantMultiplier, roundHalfEven } from './requant';

/** Round half to even by a different route: compare the distance to floor with one half. */
function rneByFloor(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

describe('roundHalfEven', () => {
  it('sends every exact half to the even neighbour and other values to the nearest integer', () => {
    const bad: number[] = [];
    for (let n = -4001; n <= 4001; n++) {
      for (const frac of [0, 0.125, 0.25, 0.5, 0.75, 0.875]) {
        const v = n + frac;
        if (roundHalfEven(v) !== rneByFloor(v)) bad.push(v);
      }
    }
    expect(bad).toEqual([]);
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5].map((v) => roundHalfEven(v) + 0)).toEqual([0, 2, 2, 0, -2, -2, 4, -4]);
  });

  it('handles values next to halves, large magnitudes and non-finite values', () => {
    expect(roundHalfEven(0.49999999999999994)).toBe(0);
    expect(roundHalfEven(2.5000000000000004)).toBe(3);
    expect(roundHalfEven(-2.4999999999999996)).toBe(-2);
    expect(roundHalfEven(2 ** 52 + 1)).toBe(2 ** 52 + 1);
    expect(roundHalfEven(2 ** 51 + 0.5)).toBe(2 ** 51);
    expect(roundHalfEven(2 ** 51 + 1.5)).toBe(2 ** 51 + 2);
    expect(roundHalfEven(-(2 ** 60))).toBe(-(2 ** 60));
    expect(roundHalfEven(Infinity)).toBe(Infinity);
    expect(Number.isNaN(roundHalfEven(NaN))).toBe(true);
  });
});

describe('requantisation', () => {
  it('rounds ties to even and clamps to the output range', () => {
    // acc · 0.5: 3 → 1.5 → 2, 5 → 2.5 → 2, -5 → -2.5 → -2, -3 → -1.5 → -2
    expect([3, 5, -5, -3, 7].map((a) => requantize(a, 0.5, 0, -128, 127))).toEqual([2, 2, -2, -2, 4]);
    expect(requantize(1000, 0.5, 0, -128, 127)).toBe(127);
    expect(requantize(-1000, 0.5, 0, -128, 127)).toBe(-128);
    expect(requantize(5, 0.5, 10, 0, 255)).toBe(12);
    expect(requantize(-5, 0.5, 1, 0, 255)).toBe(0);
    // fused Relu: the clamp starts at the zero point
    expect(requantize(-40, 0.5, 3, 3, 127)).toBe(3);
  });

  it('converts the accumulator to float32 before scaling (int32 above 2^24 lose low bits)', () => {
    // 2^24 + 1 is not a float32: it becomes 2^24, so 2^24+1 times 2^-25 is exactly 0.5 → 0 (even)
    expect(requantize(2 ** 24 + 1, 2 ** -25, 0, -128, 127)).toBe(0);
    // in double it would be 0.50000003 → 1
    expect(Math.round((2 ** 24 + 1) * 2 ** -25)).toBe(1);
  });

  it('wraps the accumulator plus bias to int32 like a 32-bit adder', () => {
    const acc = Int32Array.of(2 ** 31 - 1);
    const out = new Int8Array(1);
    requantizeBlock(acc, 0, 1, 1, 1, 'row', [1], [2 ** -30], 0, -128, 127, out, 0, 1);
    expect(out[0]).toBe(-2); // (2^31 - 1) + 1 wraps to -2^31; · 2^-30 = -2
  });

  it('computes the multiplier as fround(fround(s_in · s_w) / s_out)', () => {
    const f = Math.fround;
    const cases: [number, number, number][] = [
      [0.1, 0.2, 0.3],
      [0.0123, 0.00456, 0.078],
      [2 ** -7, 3 * 2 ** -9, 2 ** -10],
    ];
    for (const [a, b, c] of cases) {
      const sa = f(a);
      const sb = f(b);
      const sc = f(c);
      const prod = new Float32Array([sa * sb]);
      const q = new Float32Array([prod[0] / sc]);
      expect(requantMultiplier(a, b, c)).toBe(q[0]);
    }
    expect(requantMultiplier(2 ** -7, 3 * 2 ** -9, 2 ** -10)).toBe(3 * 2 ** -6);
  });

  it('applies per-row or per-column channels with bias', () => {
    const acc = Int32Array.of(1, 2, 3, 4, 5, 6); // 2 × 3
    const rows = new Int8Array(6);
    requantizeBlock(acc, 0, 3, 2, 3, 'row', [10, 20], [1, 2], 0, -128, 127, rows, 0, 3);
    expect(Array.from(rows)).toEqual([11, 12, 13, 48, 50, 52]);
    const cols = new Uint8Array(6);
    requantizeBlock(acc, 0, 3, 2, 3, 'col', [1, 2, 3], [1, 0.5, 0.25], 100, 0, 255, cols, 0, 3);
    // col 0: (1+1)·1, (4+1)·1; col 1: (2+2)/2, (5+2)/2 = 3.5 → 4; col 2: (3+3)/4 = 1.5 → 2, (6+3)/4 = 2.25 → 2
    expect(Array.from(cols)).toEqual([102, 102, 102, 105, 104, 102]);
  });
});

describe('QuantizeLinear / DequantizeLinear scalars', () => {
  it('divides, rounds half to even, adds the zero point and saturates', () => {
    const [lo, hi] = qRange('int8');
    expect(quantizeValue(2.5, 1, 0, lo, hi)).toBe(2);
    expect(quantizeValue(3.5, 1, 0, lo, hi)).toBe(4);
    expect(quantizeValue(-2.5, 1, 0, lo, hi)).toBe(-2);
    expect(quantizeValue(0.75, 0.5, 3, lo, hi)).toBe(5); // 1.5 → 2, + 3
    expect(quantizeValue(1e9, 0.5, 0, lo, hi)).toBe(127);
    expect(quantizeValue(-Infinity, 0.5, 0, 0, 255)).toBe(0);
    expect(dequantizeValue(-128, 0.5, 2)).toBe(-65);
  });
});

describe('lookup tables', () => {
  it('identity with equal scales is the identity map; scaling by 2 doubles around the zero point', () => {
    const id = buildLut((x) => x, 'int8', 0.05, 3, 'int8', 0.05, 3);
    const all = Int8Array.from({ length: 256 }, (_, i) => i - 128);
    expect(Array.from(applyLut(id, all))).toEqual(Array.from(all));
    const dbl = buildLut((x) => 2 * x, 'uint8', 0.25, 128, 'uint8', 0.25, 128);
    const u = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(applyLut(dbl, u))).toEqual(Array.from(u, (q) => Math.min(255, Math.max(0, 2 * (q - 128) + 128))));
  });

  it('sigmoid table is within one step of the float64 function and monotone', () => {
    const sIn = 8 / 127;
    const sOut = 1 / 255;
    const lut = buildLut((x) => 1 / (1 + Math.exp(-x)), 'int8', sIn, 0, 'uint8', sOut, 0);
    expect(lut.table).toBeInstanceOf(Uint8Array);
    for (let i = 1; i < 256; i++) expect(lut.table[i]).toBeGreaterThanOrEqual(lut.table[i - 1]);
    for (let q = -128; q <= 127; q++) {
      const want = 1 / (1 + Math.exp(-q * sIn)) / sOut;
      expect(Math.abs(lut.table[q + 128] - want)).toBeLessThanOrEqual(0.5 + 1e-6);
    }
  });
});
