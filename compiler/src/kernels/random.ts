/**
 * Seeded pseudo-random numbers for everything that must be reproducible (fixture weights,
 * calibration samples, tests): same seed → same sequence on every machine and Node version.
 * mulberry32 (32-bit state, period 2^32) is plenty for test data and is fast; normals come from
 * Box–Muller using both values of each pair. Never use Math.random where output is stored.
 */
export class Rng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number | string = 0) {
    this.state = typeof seed === 'string' ? hashString(seed) : seed >>> 0;
  }

  /** The next raw 32-bit value (mulberry32). */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + std * z;
    }
    let u = this.next();
    while (u === 0) u = this.next(); // log(0) would give -Infinity
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * v;
    this.spare = r * Math.sin(a);
    return mean + std * r * Math.cos(a);
  }

  /** Fill `out` with normal values; returns `out`. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, mean = 0, std = 1): T {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Fill `out` with uniform values in [lo, hi); returns `out`. */
  fillUniform<T extends Float32Array | Float64Array>(out: T, lo = 0, hi = 1): T {
    const span = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + span * (this.nextUint32() / 4294967296);
    return out;
  }

  /** An independent generator derived from this one's next value and `label` (stable sub-streams). */
  fork(label = ''): Rng {
    return new Rng((this.nextUint32() ^ hashString(label)) >>> 0);
  }
}

/** FNV-1a hash of a string, for seeds given as names. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
