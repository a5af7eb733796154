import { allocData, copyRange, gatherAxes, OUTSIDE, permuteData, stepTable } from './copy';

/** out[i0..ik] = src[Σ t_d[i_d]] written out with explicit nested index arithmetic. */
function naiveGather(src: ArrayLike<unknown>, tables: number[][], fill: unknown): unknown[] {
  const dims = tables.map((t) => t.length);
  const n = dims.reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    let rest = i;
    let off = 0;
    let outside = false;
    for (let d = dims.length - 1; d >= 0; d--) {
      const k = rest % dims[d];
      rest = Math.floor(rest / dims[d]);
      if (tables[d][k] === OUTSIDE) outside = true;
      else off += tables[d][k];
    }
    out.push(outside ? fill : src[off]);
  }
  return out;
}

describe('gatherAxes', () => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };

  it('matches explicit index arithmetic on random tables, with and without fill', () => {
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + rnd(4);
      const src = Float32Array.from({ length: 200 }, (_, i) => i * 1.5);
      const tables = Array.from({ length: rank }, () => Array.from({ length: 1 + rnd(4) }, () => (rnd(6) === 0 && trial % 2 ? OUTSIDE : rnd(200 / (rank * 2)))));
      const fill = trial % 2 ? -7 : undefined;
      const n = tables.reduce((a, t) => a * t.length, 1);
      const out = new Float32Array(n);
      gatherAxes(src, tables, out, fill);
      const want = naiveGather(src, tables, fill);
      // without fill, tables hold no OUTSIDE entries
      expect(Array.from(out)).toEqual(want);
    }
  });

  it('copies strings and bigints as stored', () => {
    const s = ['a', 'b', 'c', 'd', 'e', 'f'];
    const out = allocData('string', 6) as string[];
    gatherAxes(s, [stepTable(3, 0, 1, 1), stepTable(2, 0, 1, 3)], out); // transpose of a [2,3]
    expect(out).toEqual(['a', 'd', 'b', 'e', 'c', 'f']);
    const b = BigInt64Array.from([1n, 2n, 9223372036854775807n]);
    const ob = allocData('int64', 4) as BigInt64Array;
    gatherAxes(b, [[2 * 1, OUTSIDE, 0, 2]], ob, -5n);
    expect(Array.from(ob)).toEqual([9223372036854775807n, -5n, 1n, 9223372036854775807n]);
  });

  it('handles empty outputs and rank 0', () => {
    const out = new Float32Array(0);
    gatherAxes(new Float32Array(3), [[0, 1], []], out);
    const one = new Float32Array(1);
    gatherAxes(Float32Array.of(42), [], one);
    expect(one[0]).toBe(42);
  });
});

describe('permuteData and copyRange', () => {
  it('permutes a [2,3,4] view like numpy.transpose(x, (2,0,1))', () => {
    const src = Int32Array.from({ length: 24 }, (_, i) => i);
    const out = new Int32Array(24);
    permuteData(src, [2, 3, 4], [2, 0, 1], out);
    // out[k][i][j] = src[i][j][k]
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expect(out[k * 6 + i * 3 + j]).toBe(i * 12 + j * 4 + k);
  });

  it('copies ranges between typed arrays and string arrays', () => {
    const d = new Uint8Array(5);
    copyRange(Uint8Array.of(9, 8, 7, 6), 1, d, 2, 3);
    expect(Array.from(d)).toEqual([0, 0, 8, 7, 6]);
    const s = ['', '', ''];
    copyRange(['x', 'y'], 0, s, 1, 2);
    expect(s).toEqual(['', 'x', 'y']);
  });
});
