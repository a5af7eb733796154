/**
 * Streaming comparison of a reference tensor with a test tensor over many samples (float
 * model vs calibrated / quantized model): feed pairs one sample at a time, read the result.
 * Sums in float64, left to right, so the result is reproducible.
 *
 * - cosine: Σab / √(Σa² · Σb²) over all elements of all samples (1 when both are all zero,
 *   0 when only one is)
 * - l1: mean |a − b|;  l2: √(mean (a − b)²);  chebyshev: max |a − b|
 */
export class Similarity {
  private ab = 0;
  private aa = 0;
  private bb = 0;
  private l1 = 0;
  private l2 = 0;
  private cheb = 0;
  private n = 0;

  add(a: ArrayLike<number>, b: ArrayLike<number>): this {
    if (a.length !== b.length) throw new Error(`Similarity: sizes differ (${a.length} vs ${b.length})`);
    let ab = 0;
    let aa = 0;
    let bb = 0;
    let l1 = 0;
    let l2 = 0;
    let cheb = this.cheb;
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      ab += x * y;
      aa += x * x;
      bb += y * y;
      const d = x > y ? x - y : y - x;
      l1 += d;
      l2 += d * d;
      if (d > cheb) cheb = d;
    }
    this.ab += ab;
    this.aa += aa;
    this.bb += bb;
    this.l1 += l1;
    this.l2 += l2;
    this.cheb = cheb;
    this.n += a.length;
    return this;
  }

  get cosine(): number {
    if (this.aa === 0 && this.bb === 0) return 1;
    if (this.aa === 0 || this.bb === 0) return 0;
    return this.ab / Math.sqrt(this.aa * this.bb);
  }

  get metrics(): { cosine: number; l1: number; l2: number; chebyshev: number; elements: number } {
    const n = Math.max(1, this.n);
    return { cosine: this.cosine, l1: this.l1 / n, l2: Math.sqrt(this.l2 / n), chebyshev: this.cheb, elements: this.n };
  }
}

/** Fixed-point text for tables (`0.999936`), '--' for undefined. */
export function fmt(v: number | undefined, digits = 6): string {
  return v === undefined || !Number.isFinite(v) ? '--' : v.toFixed(digits);
}
