import type { BinModel } from '../compile/bin-format';
import { compileQuantizedModel } from '../compile/compile';
import { quantizeThroughPipeline, PipelineModels } from '../compile/compile.test.util';
import { fusionsAt } from '../compile/fuse';
import { GraphBuilder, Value } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { marchCosts } from './costs';
import { estimatePerf } from './estimate';
import type { OpPerf, PerfEstimate } from './types';

/**
 * The cost model's layers follow the compiler's fusions at every optimize_level: at O0 a
 * Relu/Clip and an Add are layers of their own (with their own cost), as they are ops of their
 * own in the `.bin`; from O1 they are fused into the conv before them, as the compiler fuses
 * them. Checked against the ops of the `.bin` the compiler writes for the same model.
 */

jest.setTimeout(60_000);

const LEVELS = ['O0', 'O1', 'O2', 'O3'] as const;

/** stem (3x3) → stem_relu → c1 → c1_relu → c2 → add(c2, stem_relu) → add_relu → clip6(dw) → head. */
function convRelu(): Model {
  const b = new GraphBuilder('conv_relu', { seed: 5 });
  const x = b.input('x', 'float32', [1, 8, 16, 16]);
  const stem = b.relu(b.conv(x, { outChannels: 16, kernel: 3, pad: 1, name: 'stem' }), 'stem_relu');
  let y: Value = b.relu(b.conv(stem, { outChannels: 16, kernel: 3, pad: 1, name: 'c1' }), 'c1_relu');
  y = b.conv(y, { outChannels: 16, kernel: 3, pad: 1, name: 'c2' });
  y = b.relu(b.add(y, stem, 'add'), 'add_relu');
  y = b.clip(b.conv(y, { outChannels: 16, kernel: 3, pad: 1, group: 16, name: 'dw' }), 0, 6, 'dw_clip');
  b.output(b.conv(y, { outChannels: 4, kernel: 1, name: 'head' }), 'y');
  return b.build();
}

let m: PipelineModels;
const est = new Map<string, PerfEstimate>();
const bins = new Map<string, BinModel>();

beforeAll(() => {
  m = quantizeThroughPipeline(convRelu());
  for (const level of LEVELS) {
    est.set(level, estimatePerf(m.optimized, m.placement, { march: 'bernoulli2', optimizeLevel: level }));
    bins.set(level, compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, optimizeLevel: level }).model);
  }
});

function op(e: PerfEstimate, name: string): OpPerf {
  const found = e.ops.find((o) => o.name === name);
  if (!found) throw new Error(`no op '${name}' in the estimate (ops: ${e.ops.map((o) => o.name).join(', ')})`);
  return found;
}

/** The `.bin` op that computes float-model node `node` (its own op or the one it was fused into). */
function binOpOf(bin: BinModel, node: string): { name: string; type: string } {
  const found = bin.segments.flatMap((s) => s.ops).find((o) => o.sourceNodes.includes(node));
  if (!found) throw new Error(`no .bin op stands for '${node}'`);
  return found;
}

const FUSIBLE = ['stem_relu', 'c1_relu', 'add', 'add_relu', 'dw_clip'];
const PRODUCER: Record<string, string> = { stem_relu: 'stem', c1_relu: 'c1', add: 'c2', add_relu: 'add', dw_clip: 'dw' };

describe('perf layers follow the compiler fusions per optimize_level', () => {
  it('the model is on the BPU as one subgraph', () => {
    const e = est.get('O3')!;
    expect(e.ops.filter((o) => o.on === 'CPU')).toEqual([]);
    expect(e.subgraphs).toHaveLength(1);
    expect(FUSIBLE.map((n) => op(e, n).on)).toEqual(FUSIBLE.map(() => 'BPU'));
  });

  it('at O0 each Relu/Clip and the Add is a layer of its own, with its own cost and DDR traffic', () => {
    const e = est.get('O0')!;
    for (const n of FUSIBLE) {
      const o = op(e, n);
      expect(o.fusedInto).toBeUndefined();
      expect(o.latencyMs).toBeGreaterThan(0);
      expect(o.computeMs).toBeGreaterThan(0);
      // O0: no on-chip reuse, the layer reads its input from DDR and writes its output back
      expect(o.loadedBytes).toBeGreaterThan(0);
      expect(o.storedBytes).toBeGreaterThan(0);
    }
    expect(op(e, 'stem_relu').opClass).toBe('relu');
    // the subgraph's latency is the sum of its layers (plus one function call): the Relus' cost is in it
    const bpu = e.ops.filter((o) => o.on === 'BPU');
    const heads = bpu.filter((o) => !o.fusedInto && !o.inPlace);
    expect(heads.map((o) => o.name)).toEqual(expect.arrayContaining(['stem', 'stem_relu', 'c1', 'c1_relu', 'c2', 'add', 'add_relu', 'dw', 'dw_clip', 'head']));
    expect(e.subgraphs[0].latencyMs).toBeCloseTo(bpu.reduce((s, o) => s + o.latencyMs, 0) + marchCosts('bernoulli2').bpu.functionCallOverheadUs / 1000, 9);
  });

  it('at O3 (and O1, O2) they are fused into the conv before them and cost nothing of their own', () => {
    for (const level of ['O1', 'O2', 'O3'] as const) {
      const e = est.get(level)!;
      expect(op(e, 'stem_relu').fusedInto).toBe('stem');
      expect(op(e, 'c1_relu').fusedInto).toBe('c1');
      expect(op(e, 'add').fusedInto).toBe('c2');
      expect(op(e, 'add_relu').fusedInto).toBe('c2');
      expect(op(e, 'dw_clip').fusedInto).toBe('dw');
      for (const n of FUSIBLE) expect([op(e, n).latencyMs, op(e, n).loadedBytes, op(e, n).storedBytes]).toEqual([0, 0, 0]);
    }
  });

  it('the O0 estimate is at least the O3 one (and O0 ≥ O1 ≥ O2 ≥ O3)', () => {
    const t = LEVELS.map((l) => est.get(l)!.totals);
    for (let i = 1; i < t.length; i++) {
      expect(t[i - 1].bpuMs).toBeGreaterThanOrEqual(t[i].bpuMs);
      expect(t[i - 1].endToEndMs).toBeGreaterThanOrEqual(t[i].endToEndMs);
      expect(t[i - 1].ddrBytes).toBeGreaterThanOrEqual(t[i].ddrBytes);
    }
    expect(t[0].bpuMs).toBeGreaterThan(t[3].bpuMs);
    // the same ops are counted at every level: fusion moves cost, it does not drop operations
    expect(new Set(t.map((x) => x.ops)).size).toBe(1);
  });

  it.each(LEVELS)('%s: a node is fused into its producer in the estimate exactly when the .bin has them in one op', (level) => {
    const e = est.get(level)!;
    const bin = bins.get(level)!;
    for (const n of FUSIBLE) {
      const fusedInBin = binOpOf(bin, n).name === binOpOf(bin, PRODUCER[n]).name;
      expect({ node: n, fused: op(e, n).fusedInto !== undefined }).toEqual({ node: n, fused: fusedInBin });
      expect(fusedInBin).toBe(fusionsAt(level).clamps);
      if (fusedInBin) expect(binOpOf(bin, n).name).toBe(binOpOf(bin, op(e, n).fusedInto!).name);
      else expect(binOpOf(bin, n).type).toBe(n === 'add' ? 'Eltwise' : 'Clip');
    }
  });
});
