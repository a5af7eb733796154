import { PtqError } from '../errors';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { sliceAxis } from './slice';
import { f32, i64, inferOp, iota, known, lcg, runOp, unravel, values } from './tensor-shape.test.util';

/** Python's range(start, stop, step) over an axis after ONNX's clamping, written as a plain loop. */
function pyIndices(start: number, end: number, step: number, dim: number): number[] {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.max(0, Math.min(s, dim));
    e = Math.max(0, Math.min(e, dim));
  } else {
    s = Math.max(0, Math.min(s, dim - 1));
    e = Math.max(-1, Math.min(e, dim - 1));
  }
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

describe('Slice', () => {
  it('matches an explicit loop for random starts/ends/steps, negative steps included', () => {
    const rnd = lcg(3);
    const pick = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
    const dims = [4, 5, 6];
    const x = f32(dims, iota(120));
    for (let trial = 0; trial < 200; trial++) {
      const axes = [0, 1, 2].filter(() => rnd() < 0.7);
      if (!axes.length) continue;
      const starts = axes.map((a) => pick(-dims[a] - 2, dims[a] + 2));
      const ends = axes.map((a) => pick(-dims[a] - 2, dims[a] + 2));
      const steps = axes.map(() => [1, 2, 3, -1, -2][pick(0, 4)]);
      const [y] = runOp('Slice', 13, [x, i64(starts), i64(ends), i64(axes), i64(steps)]);
      const picks = dims.map((d, a) => {
        const k = axes.indexOf(a);
        return k < 0 ? iota(d) : pyIndices(starts[k], ends[k], steps[k], d);
      });
      expect(y.dims).toEqual(picks.map((p) => p.length));
      const got = values(y);
      got.forEach((v, i) => {
        const idx = unravel(i, y.dims).map((k, a) => picks[a][k]);
        expect(v).toBe((idx[0] * 5 + idx[1]) * 6 + idx[2]);
      });
    }
  });

  it('treats INT64_MAX / INT64_MIN ends as "to the end"', () => {
    const x = f32([5], iota(5));
    const max = tensorFrom('int64', [1], [9223372036854775807n]);
    const min = tensorFrom('int64', [1], [-9223372036854775808n]);
    expect(values(runOp('Slice', 13, [x, i64([1]), max])[0])).toEqual([1, 2, 3, 4]);
    expect(values(runOp('Slice', 13, [x, i64([-1]), min, i64([0]), i64([-1])])[0])).toEqual([4, 3, 2, 1, 0]);
    expect(sliceAxis(0, 2 ** 63, 1, 7)).toEqual({ start: 0, count: 7 });
  });

  it('reads attributes before opset 10 and works on strings', () => {
    const x = new Tensor('string', [2, 3], ['a', 'b', 'c', 'd', 'e', 'f']);
    const [y] = runOp('Slice', 9, [x], { starts: [0, 1], ends: [1, 1000] });
    expect(y.data).toEqual(['b', 'c']);
    const [z] = runOp('Slice', 1, [x], { axes: [1], starts: [-1], ends: [3] });
    expect(z.data).toEqual(['c', 'f']);
  });

  it('rejects a zero step', () => {
    expect(() => runOp('Slice', 13, [f32([3], iota(3)), i64([0]), i64([3]), i64([0]), i64([0])])).toThrow(PtqError);
  });

  it('infers static sizes, keeps a symbol sliced whole, and marks unknown ones', () => {
    const x = { dtype: 'float32' as const, shape: ['N', 8, 10] };
    const f = inferOp('Slice', 13, [x, known(i64([0, 2])), known(i64([2147483647, -2])), known(i64([0, 2]))]);
    expect(f[0].shape).toEqual(['N', 8, 6]);
    const g = inferOp('Slice', 13, [x, known(i64([1])), known(i64([3])), known(i64([0]))]);
    expect(g[0].shape).toEqual(['?', 8, 10]);
    const h = inferOp('Slice', 13, [x, { dtype: 'int64', shape: [1] }, { dtype: 'int64', shape: [1] }, known(i64([1]))]);
    expect(h[0].shape).toEqual(['N', '?', 10]);
  });
});
