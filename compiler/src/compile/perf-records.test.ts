import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { estimatePerf } from '../perf/estimate';
import { compileQuantizedModel } from './compile';
import { quantizeThroughPipeline } from './compile.test.util';

/**
 * The static estimate in the `.bin`: per BPU segment the placement subgraph's numbers, per op
 * (debug) the sum of its source nodes' estimates, function calls from the max_time_per_fc
 * split in execution order, and perf_json with the subgraphs and their borders named as the
 * segments.
 */

jest.setTimeout(60_000);

function net(size: number, ch: number): Model {
  const b = new GraphBuilder('fc', { seed: 41 });
  const x = b.input('data', 'float32', [1, 3, size, size]);
  let y = b.relu(b.conv(x, { outChannels: ch, kernel: 3, pad: 1, name: 'conv1' }));
  y = b.relu(b.conv(y, { outChannels: ch, kernel: 3, pad: 1, name: 'conv2' }));
  y = b.maxPool(y, { kernel: 2, stride: 2 });
  y = b.relu(b.conv(y, { outChannels: 2 * ch, kernel: 3, pad: 1, name: 'conv3' }));
  b.output(b.softmax(b.gemm(b.flatten(b.globalAvgPool(y, 'gap')), 10, { name: 'fc' }), 1, 'prob'), 'prob');
  return b.build();
}

describe('perf records', () => {
  const m = quantizeThroughPipeline(net(160, 32), {
    preprocess: [{ name: 'data', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'no_preprocess' }],
  });
  const perf = estimatePerf(m.optimized, m.placement, { march: 'bernoulli2', maxTimePerFc: 1000 });

  it('max_time_per_fc: function calls assigned in order, as many as the estimate splits the subgraph into', () => {
    expect(perf.subgraphs).toHaveLength(1);
    expect(perf.subgraphs[0].functionCalls).toBeGreaterThan(1);
    const { model } = compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, perf, debug: true, name: 'fcs' });
    const seg = model.segments.find((s) => s.kind === 'bpu')!;
    expect(seg.name).toBe('fcs_subgraph_0');
    expect(seg.perf).toEqual({
      latencyMs: perf.subgraphs[0].latencyMs, ops: perf.subgraphs[0].ops, loadedBytes: perf.subgraphs[0].loadedBytes,
      storedBytes: perf.subgraphs[0].storedBytes, functionCalls: perf.subgraphs[0].functionCalls,
    });
    const calls = seg.ops.map((o) => o.functionCall);
    expect(calls.every((c, i) => i === 0 || c >= calls[i - 1])).toBe(true);
    expect(Math.max(...calls)).toBe(perf.subgraphs[0].functionCalls - 1);
    // each op's function call is the estimate's for its source node
    for (const op of seg.ops) {
      const e = perf.ops.find((x) => op.sourceNodes.includes(x.name) && x.on === 'BPU');
      if (e) expect(op.functionCall).toBe(e.functionCall);
    }
    // debug: per-op numbers = Σ of the op's source nodes (a conv fused with its Relu: the conv's)
    const conv2 = seg.ops.find((o) => o.name === 'conv2')!;
    const src = perf.ops.filter((x) => conv2.sourceNodes.includes(x.name));
    expect(conv2.perf?.latencyMs).toBeCloseTo(src.reduce((a, x) => a + x.latencyMs, 0), 12);
    expect(conv2.perf?.ops).toBe(src.reduce((a, x) => a + x.ops, 0));
    // perf_json: the estimate, the subgraph and its borders named as the segment
    const j = JSON.parse(model.perfJson) as typeof perf;
    expect(j.subgraphs[0].name).toBe('fcs_subgraph_0');
    expect(j.model).toBe('fcs');
    expect(j.borders.filter((b) => b.kind === 'output_layout_convert').map((b) => b.name)).toEqual(['fcs_subgraph_0_output_layout_convert']);
    expect(j.totals).toEqual(perf.totals);
  });

  it('without debug: no per-op numbers, function calls still recorded', () => {
    const { model } = compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, perf, name: 'nd' });
    const seg = model.segments.find((s) => s.kind === 'bpu')!;
    expect(seg.ops.every((o) => o.perf === undefined)).toBe(true);
    expect(Math.max(...seg.ops.map((o) => o.functionCall))).toBe(perf.subgraphs[0].functionCalls - 1);
    expect(model.debug).toBe(false);
  });
});
