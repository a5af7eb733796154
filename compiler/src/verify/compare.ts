/**
 * Element-wise comparisons of two models' outputs.
 *
 * - `strictCompare`: the reference's hb_model_verifier check. Each element is written with
 *   `digits` decimals (the way the reference writes one value per line) and the lines are
 *   compared: `line_diff` counts lines that differ, `line_nan` lines where either side is NaN,
 *   `line_miss` lines one side has and the other does not (outputs of different sizes).
 * - `ExactCompare`: bit-for-bit (the `.bin` against our engine on the quantized model).
 * - `StepCompare`: within one quantisation step (onnxruntime against our engine).
 */

export interface StrictResult {
  /** total line num: elements of the longer output */
  total: number;
  /** mismatch line num = miss + diff + nan */
  mismatch: number;
  miss: number;
  diff: number;
  nan: number;
  /** mismatch / total (0 for empty outputs) */
  rate: number;
  /** first differing element: index and both values */
  first?: { index: number; a: number; b: number };
}

/** `x` with `digits` decimals, negative zero written as zero. */
function fixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

export function strictCompare(a: ArrayLike<number>, b: ArrayLike<number>, digits: number): StrictResult {
  const n = Math.min(a.length, b.length);
  const total = Math.max(a.length, b.length);
  const miss = total - n;
  let diff = 0;
  let nan = 0;
  let first: StrictResult['first'];
  const scale = 10 ** digits;
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x !== x || y !== y) {
      nan++;
      first ??= { index: i, a: x, b: y };
      continue;
    }
    // values a unit of the last decimal apart never print alike; closer ones are printed
    const d = x > y ? x - y : y - x;
    if (d * scale < 1 && fixed(x, digits) === fixed(y, digits)) continue;
    diff++;
    first ??= { index: i, a: x, b: y };
  }
  if (!first && miss) first = { index: n, a: n < a.length ? a[n] : NaN, b: n < b.length ? b[n] : NaN };
  const mismatch = miss + diff + nan;
  return { total, mismatch, miss, diff, nan, rate: total ? mismatch / total : 0, first };
}

/** The reference's lines: `<A> and <B> result Strict check PASSED`, or the mismatch block. */
export function formatStrict(a: string, b: string, r: StrictResult): string[] {
  if (r.mismatch === 0) return [`${a} and ${b} result Strict check PASSED`];
  return [
    `INFO ${a} and ${b} result Strict check FAILED`,
    `INFO mismatch line num: ${r.mismatch}`,
    'INFO ****************************',
    `INFO mismatch.line_miss num: ${r.miss}`,
    `INFO mismatch.line_diff num: ${r.diff}`,
    `INFO mismatch.line_nan num: ${r.nan}`,
    'INFO ****************************',
    `INFO total line num: ${r.total}`,
    `INFO mismatch rate: ${r.rate}`,
  ];
}

/** Bit-exact agreement over many samples. */
export class ExactCompare {
  elements = 0;
  mismatched = 0;
  maxAbsDiff = 0;
  first?: { sample: number; index: number; ref: number; test: number };
  private sample = 0;

  add(ref: ArrayLike<number>, test: ArrayLike<number>): this {
    if (ref.length !== test.length) {
      this.mismatched += Math.max(ref.length, test.length);
      this.elements += Math.max(ref.length, test.length);
      this.maxAbsDiff = Infinity;
      this.first ??= { sample: this.sample, index: Math.min(ref.length, test.length), ref: NaN, test: NaN };
      this.sample++;
      return this;
    }
    let bad = 0;
    let max = this.maxAbsDiff;
    for (let i = 0; i < ref.length; i++) {
      const x = ref[i];
      const y = test[i];
      if (x === y || (x !== x && y !== y)) continue;
      bad++;
      const d = x > y ? x - y : y - x;
      if (!(d <= max)) max = d; // NaN against a number counts as an infinite difference
      if (!this.first) this.first = { sample: this.sample, index: i, ref: x, test: y };
    }
    this.mismatched += bad;
    this.elements += ref.length;
    this.maxAbsDiff = Number.isNaN(max) ? Infinity : max;
    this.sample++;
    return this;
  }

  get exact(): boolean {
    return this.mismatched === 0;
  }
}

/** Agreement within `step` (one quantisation step of the output; NaN/size mismatches fail). */
export class StepCompare {
  elements = 0;
  exactCount = 0;
  beyond = 0;
  /** largest |ref − test| / step */
  maxSteps = 0;

  constructor(readonly step: number) {}

  add(ref: ArrayLike<number>, test: ArrayLike<number>): this {
    if (ref.length !== test.length) {
      this.beyond += Math.max(ref.length, test.length);
      this.elements += Math.max(ref.length, test.length);
      this.maxSteps = Infinity;
      return this;
    }
    const limit = this.step * (1 + 1e-6);
    let exact = 0;
    let beyond = 0;
    let max = 0;
    for (let i = 0; i < ref.length; i++) {
      const x = ref[i];
      const y = test[i];
      if (x === y) {
        exact++;
        continue;
      }
      const d = x > y ? x - y : y - x;
      if (!(d <= limit)) beyond++;
      if (!(d <= max)) max = d;
    }
    this.elements += ref.length;
    this.exactCount += exact;
    this.beyond += beyond;
    const steps = Number.isNaN(max) ? Infinity : max / this.step;
    if (steps > this.maxSteps) this.maxSteps = steps;
    return this;
  }

  get withinOneStep(): boolean {
    return this.beyond === 0;
  }

  get exactShare(): number {
    return this.elements ? this.exactCount / this.elements : 1;
  }
}
