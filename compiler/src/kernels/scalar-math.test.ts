import { erf, erfc, roundHalfEven, toBfloat16Bits, toHalfBits } from './scalar-math';

/** Reference values from Python's math.erf/math.erfc and numpy's float16 conversion (run once, pasted). */
describe('erf / erfc', () => {
  const ERF: [number, number][] = [
    [0, 0], [1e-8, 1.1283791670955126e-8], [1e-5, 1.1283791670579e-5], [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465], [1, 0.8427007929497149], [1.5, 0.9661051464753108], [2, 0.9953222650189527],
    [2.4999, 0.9995928300996666], [2.5, 0.999593047982555], [2.7, 0.9998656672600594], [3, 0.9999779095030014],
    [3.5, 0.9999992569016276], [4, 0.9999999845827421], [5, 0.9999999999984626], [5.99, 1], [6.5, 1],
    [-0.3, -0.3286267594591274], [-2.6, -0.9997639655834707], [-4.2, -0.9999999971445058],
  ];
  it.each(ERF)('erf(%p) matches math.erf to 1e-14', (x, want) => {
    expect(Math.abs(erf(x) - want)).toBeLessThanOrEqual(1e-14 * Math.max(1e-300, Math.abs(want)) + 1e-300);
  });

  const ERFC: [number, number][] = [
    [-3, 1.9999779095030015], [-2.6, 1.9997639655834707], [0.2, 0.7772974107895215], [2.5, 0.0004069520174449589],
    [3, 2.2090496998585438e-5], [5, 1.5374597944280351e-12], [10, 2.088487583762545e-45], [26, 5.663192408856143e-296],
  ];
  it.each(ERFC)('erfc(%p) matches math.erfc with a small relative error', (x, want) => {
    expect(Math.abs(erfc(x) - want) / want).toBeLessThan(1e-12);
  });

  it('is odd, bounded and NaN-preserving', () => {
    for (const x of [0.01, 0.7, 2.2, 2.5, 3.3, 7]) expect(erf(-x)).toBe(-erf(x));
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(NaN)).toBeNaN();
  });
});

describe('roundHalfEven', () => {
  it('rounds ties to the even neighbour and everything else to nearest', () => {
    const xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, 2.51, -2.51, 3.7, -3.2, 1e300];
    const want = [0, 2, 2, -0, -2, -2, 0, 3, -3, 4, -3, 1e300];
    expect(xs.map(roundHalfEven)).toEqual(want); // the sign of zero is kept, as numpy.round does
    expect(roundHalfEven(NaN)).toBeNaN();
    expect(roundHalfEven(Infinity)).toBe(Infinity);
  });
});

describe('float64 → float16 / bfloat16 bits', () => {
  // numpy: np.array(v, np.float64).astype(np.float16).view(np.uint16)
  const HALF: [number, number][] = [
    [0, 0], [-0, 32768], [1, 15360], [-2.5, 49408], [65504, 31743], [65519.99, 31743], [65520, 31744], [1e6, 31744],
    [-1e6, 64512], [6.103515625e-5, 1024], [5.960464477539063e-8, 1], [2.9802322387695312e-8, 0], [8.940696716308594e-8, 2],
    [1e-9, 0], [1 / 3, 13653], [0.1, 11878], [1 + 2 ** -11, 15360], [1 + 3 * 2 ** -11, 15362],
    // a tie after rounding to float32 first, but not in float64: double rounding would give 15360
    [1 + 2 ** -11 + 2 ** -40, 15361],
    [1024.5, 25600], [2049, 26624], [2051, 26626], [NaN, 32256], [Infinity, 31744], [-Infinity, 64512],
  ];
  it.each(HALF)('half(%p) = %p as numpy', (v, bits) => expect(toHalfBits(v)).toBe(bits));

  // exact rational rounding (Python fractions) of the float64 value to bfloat16
  const BF16: [number, number][] = [
    [0, 0], [1, 16256], [1 + 2 ** -8, 16256], [1 + 3 * 2 ** -8, 16258], [1 + 2 ** -8 + 2 ** -30, 16257], [3e38, 32610],
    [3.3961e38, 32639], [-3.4e38, 65408], [1e-39, 11], [1e-45, 0], [0.1, 15821], [-7.75, 49400],
  ];
  it.each(BF16)('bfloat16(%p) = %p', (v, bits) => expect(toBfloat16Bits(v)).toBe(bits));
  it('bfloat16 keeps NaN and infinities', () => {
    expect(toBfloat16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
    expect(toBfloat16Bits(-Infinity)).toBe(0xff80);
  });
});
