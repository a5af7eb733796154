import { isPtqError } from '../../errors';
import { binModelOf, checked, smallSplitModel } from './fixtures.test.util';
import { alignSubgraphNames, estimateFromSegments, parsePerfRecord, reportInputsFromBin } from './from-bin';

/** Reading the report's inputs from a `.bin` model: the recorded estimate, checked, or the segments' own numbers. */

const f = checked(smallSplitModel());

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isPtqError(e) ? `${e.code}: ${e.message}` : `not a PtqError: ${String(e)}`;
  }
  return undefined;
}

describe('the recorded estimate', () => {
  it('round-trips and takes the segments\' subgraph names', () => {
    const m = binModelOf(f, 'net', { debug: true });
    const { estimate, options } = reportInputsFromBin(m, 'net.bin');
    expect(estimate.subgraphs.map((s) => s.name)).toEqual(['net_subgraph_0', 'net_subgraph_1']);
    expect({ ...estimate, subgraphs: [] }).toEqual({ ...JSON.parse(JSON.stringify(f.estimate)), subgraphs: [] });
    expect(options).toMatchObject({ modelName: 'net', debug: true, source: 'net.bin' });
    expect(options.structure!.subgraphs).toEqual(['net_subgraph_0', 'net_subgraph_1']);
  });

  it('keeps the names when the segments do not hold the estimate\'s nodes one-to-one', () => {
    const m = binModelOf(f, 'net');
    for (const s of m.segments) for (const op of s.ops) op.sourceNodes = [];
    for (const s of m.segments) for (const op of s.ops) op.name = `x_${op.name}`;
    expect(alignSubgraphNames(f.estimate, m).subgraphs.map((s) => s.name)).toEqual(['small_subgraph_0', 'small_subgraph_1']);
    const merged = binModelOf(f, 'net');
    for (const s of merged.segments) if (s.kind === 'bpu') s.name = 'one';
    expect(alignSubgraphNames(f.estimate, merged).subgraphs.map((s) => s.name)).toEqual(['small_subgraph_0', 'small_subgraph_1']);
  });

  it('refuses a malformed record with one E_BIN_FORMAT error naming the model and the field', () => {
    const good = JSON.parse(JSON.stringify(f.estimate));
    const cases: [unknown, RegExp][] = [
      ['{not json', /not JSON/],
      [[1, 2], /not an object/],
      [{ ...good, totals: undefined }, /no totals/],
      [{ ...good, totals: { ...good.totals, ddrBytes: null } }, /totals\.ddrBytes is not a number/],
      [{ ...good, subgraphs: {} }, /subgraphs is not a list/],
      [{ ...good, subgraphs: [{ ...good.subgraphs[0], latencyMs: 'x' }] }, /subgraphs\[0\]\.latencyMs/],
      [{ ...good, ops: [{ ...good.ops[0], on: 'GPU' }] }, /ops\[0\] has no name, type or device/],
      [{ ...good, borders: [{ name: 'b', latencyMs: Infinity, elements: 1 }] }, /borders\[0\]/],
      [{ ...good, notes: [3] }, /notes are not strings/],
    ];
    for (const [rec, msg] of cases) {
      const got = code(() => parsePerfRecord(typeof rec === 'string' ? rec : JSON.stringify(rec), 'm.bin', 'net'));
      expect(got).toMatch(/^E_BIN_FORMAT: model 'net' in 'm\.bin' has a malformed perf record/);
      expect(got).toMatch(msg);
    }
    expect(code(() => parsePerfRecord(JSON.stringify(good), 'm.bin', 'net'))).toBeUndefined();
  });
});

describe('without a recorded estimate', () => {
  it('sums the BPU segments and lists the ops that carry per-op numbers', () => {
    const m = binModelOf(f, 'net', { perf: false, debug: true });
    const e = estimateFromSegments(m);
    expect(e.subgraphs.map((s) => [s.name, s.latencyMs, s.ops])).toEqual(f.estimate.subgraphs.map((s, i) => [`net_subgraph_${i}`, s.latencyMs, s.ops]));
    expect(e.totals.bpuMs).toBeCloseTo(f.estimate.totals.bpuMs, 12);
    expect(e.totals.ddrBytes).toBe(f.estimate.totals.ddrBytes);
    expect(e.ops.map((o) => o.name)).toEqual(f.estimate.ops.filter((o) => o.on === 'BPU').map((o) => o.name));
    expect(e.options.optimizeLevel).toBe('O3');
    expect(estimateFromSegments(binModelOf(f, 'net', { perf: false })).ops).toEqual([]);
  });
});
