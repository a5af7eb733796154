import { ExactCompare, formatStrict, StepCompare, strictCompare } from './compare';

describe('strict comparison (hb_model_verifier)', () => {
  it('compares values written with DIGITS decimals; counts diff, nan and miss lines', () => {
    expect(strictCompare([1.234561, 2, -0.0000001], [1.234564, 2, 0.0000001], 5)).toMatchObject({ total: 3, mismatch: 0 });
    const r = strictCompare([1.23456, 2, NaN, 4, 5], [1.23457, 2, 3, NaN], 5);
    expect(r).toMatchObject({ total: 5, mismatch: 4, miss: 1, diff: 1, nan: 2, rate: 0.8 });
    expect(r.first).toEqual({ index: 0, a: 1.23456, b: 1.23457 });
    // with fewer digits the same values agree
    expect(strictCompare([1.23456], [1.23457], 4).mismatch).toBe(0);
    // 0.5 units of the last decimal apart, on both sides of a rounding boundary
    expect(strictCompare([0.123444], [0.123446], 5).diff).toBe(1);
    expect(strictCompare([], [], 5)).toMatchObject({ total: 0, mismatch: 0, rate: 0 });
  });

  it('prints the reference lines: PASSED, or the mismatch block', () => {
    expect(formatStrict('Quanti onnx', 'Bin runtime', strictCompare([1, 2], [1, 2], 5))).toEqual(['Quanti onnx and Bin runtime result Strict check PASSED']);
    const a = Array.from({ length: 327680 }, (_, i) => i / 1000);
    const b = a.slice();
    for (let i = 0; i < 39; i++) b[i * 1000] += 0.5;
    expect(formatStrict('Quanti onnx', 'Bin runtime', strictCompare(a, b, 5))).toEqual([
      'INFO Quanti onnx and Bin runtime result Strict check FAILED',
      'INFO mismatch line num: 39',
      'INFO ****************************',
      'INFO mismatch.line_miss num: 0',
      'INFO mismatch.line_diff num: 39',
      'INFO mismatch.line_nan num: 0',
      'INFO ****************************',
      'INFO total line num: 327680',
      'INFO mismatch rate: 0.0001190185546875',
    ]);
  });
});

describe('exact and one-step comparisons', () => {
  it('ExactCompare counts every differing element over samples and keeps the first', () => {
    const e = new ExactCompare().add([1, 2, 3], [1, 2, 3]).add([1, 2, 3], [1, 5, 2]);
    expect(e).toMatchObject({ exact: false, mismatched: 2, elements: 6, maxAbsDiff: 3, first: { sample: 1, index: 1, ref: 2, test: 5 } });
    expect(new ExactCompare().add([NaN], [NaN]).exact).toBe(true);
    expect(new ExactCompare().add([1], [NaN]).maxAbsDiff).toBe(Infinity);
    expect(new ExactCompare().add([1, 2], [1]).mismatched).toBe(2);
  });

  it('StepCompare accepts one step, reports the largest distance in steps', () => {
    const s = new StepCompare(0.5).add([0, 1, 2, 3], [0, 1.5, 2, 2.5]);
    expect(s).toMatchObject({ withinOneStep: true, beyond: 0, maxSteps: 1, exactShare: 0.5 });
    s.add([0], [1.25]);
    expect(s).toMatchObject({ withinOneStep: false, beyond: 1, maxSteps: 2.5 });
    expect(new StepCompare(1).add([1], [NaN]).withinOneStep).toBe(false);
  });
});
