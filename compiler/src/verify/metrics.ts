import { PtqError } from '../errors';

/**
 * The error measures of the accuracy debugger (the reference's `metrics`): a float reference
 * `a` (the float model) against a test `b` (a model with some nodes quantized). Every metric is
 * taken over all elements of all compared values of all samples at once (one streaming sum in
 * float64, samples in file order, so results are reproducible), with n the element count:
 *
 *   cosine-similarity  Σ a·b / √(Σ a² · Σ b²)       1 when both are all zero, 0 when only one is
 *   mse                Σ (a − b)² / n                mean squared error
 *   mre                Σ |a − b| / Σ |a|             mean relative error: mean absolute error over
 *                                                    mean absolute reference (0 when a = b; ∞ when
 *                                                    a is all zero and b is not)
 *   sqnr               10 · log10(Σ a² / Σ (a − b)²) signal-to-quantization-noise ratio in dB
 *                                                    (+∞ when a = b; −∞ when a is all zero, b not)
 *   chebyshev          max |a − b|                   largest absolute error
 *
 * cosine-similarity and sqnr grow as b gets closer to a; mse, mre and chebyshev shrink.
 */
export const METRICS = ['cosine-similarity', 'mse', 'mre', 'sqnr', 'chebyshev'] as const;
export type MetricName = (typeof METRICS)[number];

/** Whether a larger value means a smaller error. */
export const HIGHER_IS_BETTER: Readonly<Record<MetricName, boolean>> = {
  'cosine-similarity': true,
  mse: false,
  mre: false,
  sqnr: true,
  chebyshev: false,
};

export function isMetric(s: string): s is MetricName {
  return (METRICS as readonly string[]).includes(s);
}

/** A metric name from the user (`cosine` and `cosine_similarity` are accepted for cosine-similarity). */
export function parseMetric(s: string, what = 'metric'): MetricName {
  const m = s.trim().toLowerCase().replace(/_/g, '-');
  const name = m === 'cosine' ? 'cosine-similarity' : m;
  if (!isMetric(name)) {
    throw new PtqError('E_DEBUG_METRIC', `unknown ${what} '${s}'`, { subject: s, fix: `use one of: ${METRICS.join(', ')}` });
  }
  return name;
}

const log10 = Math.log10;
const sqrt = Math.sqrt;

/** Streaming sums for every metric at once. */
export class MetricAccumulator {
  private ab = 0;
  private aa = 0;
  private bb = 0;
  private dd = 0;
  private absd = 0;
  private absa = 0;
  private max = 0;
  private nan = false;
  private n = 0;

  /** Add one pair of equally sized arrays (reference first). */
  add(a: ArrayLike<number>, b: ArrayLike<number>): this {
    const len = a.length;
    if (len !== b.length) throw new Error(`MetricAccumulator: sizes differ (${len} vs ${b.length})`);
    let ab = 0;
    let aa = 0;
    let bb = 0;
    let dd = 0;
    let absd = 0;
    let absa = 0;
    let max = this.max;
    for (let i = 0; i < len; i++) {
      const x = a[i];
      const y = b[i];
      const d = x - y;
      const ad = d < 0 ? -d : d;
      ab += x * y;
      aa += x * x;
      bb += y * y;
      dd += d * d;
      absd += ad;
      absa += x < 0 ? -x : x;
      if (ad > max) max = ad;
    }
    this.ab += ab;
    this.aa += aa;
    this.bb += bb;
    this.dd += dd;
    this.absd += absd;
    this.absa += absa;
    if (dd !== dd) this.nan = true; // a NaN anywhere poisons every metric
    this.max = max;
    this.n += len;
    return this;
  }

  get elements(): number {
    return this.n;
  }

  value(m: MetricName): number {
    if (this.nan) return NaN;
    switch (m) {
      case 'cosine-similarity':
        if (this.aa === 0 && this.bb === 0) return 1;
        if (this.aa === 0 || this.bb === 0) return 0;
        return this.ab / sqrt(this.aa * this.bb);
      case 'mse':
        return this.n ? this.dd / this.n : 0;
      case 'mre':
        if (this.absd === 0) return 0;
        return this.absa === 0 ? Infinity : this.absd / this.absa;
      case 'sqnr':
        if (this.dd === 0) return Infinity;
        return this.aa === 0 ? -Infinity : 10 * log10(this.aa / this.dd);
      case 'chebyshev':
        return this.max;
    }
  }

  values(ms: readonly MetricName[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of ms) out[m] = this.value(m);
    return out;
  }
}

/**
 * Compare two values for a ranking by error: negative when `x` is the worse (larger error) of
 * the two under metric `m`. NaN counts as the worst.
 */
export function compareWorstFirst(m: MetricName, x: number, y: number): number {
  const xn = x !== x;
  const yn = y !== y;
  if (xn || yn) return xn === yn ? 0 : xn ? -1 : 1;
  if (x === y) return 0;
  return HIGHER_IS_BETTER[m] ? (x < y ? -1 : 1) : x > y ? -1 : 1;
}

/**
 * `average_mode`: the n-th point becomes the mean of the first n points (the reference's
 * example: [1.0, 0.9, 0.9, 0.8] → [1.0, 0.95, 0.933…, 0.9]).
 */
export function averageCurve(values: readonly number[]): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    out.push(sum / (i + 1));
  }
  return out;
}

/**
 * A float as Python's `repr` writes it (the reference prints and returns its metric values
 * that way): shortest round-trip digits, positional for exponents −4…15, else `d.ddde-XX`;
 * `inf`, `-inf`, `nan`; integral values keep a `.0`.
 */
export function pyFloat(v: number): string {
  if (v !== v) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const sign = v < 0 ? '-' : '';
  // shortest digits and the decimal exponent, from JS's own shortest round-trip form
  const [mant, expText] = Math.abs(v).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(expText);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const intLen = exp + 1;
    if (digits.length <= intLen) return `${sign}${digits}${'0'.repeat(intLen - digits.length)}.0`;
    return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp);
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${e < 10 ? `0${e}` : e}`;
}
