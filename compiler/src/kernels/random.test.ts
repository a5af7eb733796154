import { hashString, Rng } from './random';

describe('Rng', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(xs);
    expect(new Rng('weights').next()).toBe(new Rng(hashString('weights')).next());
  });

  it('draws uniforms in [0, 1) and standard normals with the right moments', () => {
    const r = new Rng(7);
    const n = 200000;
    let lo = 1;
    let hi = 0;
    let sum = 0;
    let sq = 0;
    let m4 = 0;
    for (let i = 0; i < n; i++) {
      const u = r.next();
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
      const z = r.normal();
      sum += z;
      sq += z * z;
      m4 += z ** 4;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(Math.abs(sum / n)).toBeLessThan(0.01);
    expect(sq / n).toBeGreaterThan(0.98);
    expect(sq / n).toBeLessThan(1.02);
    expect(m4 / n).toBeGreaterThan(2.85); // Gaussian kurtosis 3 (a uniform would give 1.8)
    expect(m4 / n).toBeLessThan(3.15);
  });

  it('fills arrays within bounds', () => {
    const a = new Rng(1).fillUniform(new Float32Array(1000), -2, 3);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...a)).toBeLessThan(3);
    const f1 = new Rng(5).fork('a').next();
    expect(new Rng(5).fork('a').next()).toBe(f1);
    expect(new Rng(5).fork('b').next()).not.toBe(f1);
  });
});
