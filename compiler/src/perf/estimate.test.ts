import { March } from '../check/table';
import { isPtqError } from '../errors';
import { GraphBuilder, Value } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { checkModel, CheckResult } from '../stages/check';
import { marchCosts, MarchCosts, validateCosts } from './costs';
import { estimatePerf, PerfEstimate, PerfOptions } from './estimate';
import { nv12Input } from './calibration-models.test.util';

/** Small hand-built models: unit tests of the cost model's mechanics (the calibration is in calibration.test.ts). */

interface Checked {
  model: Model;
  checked: CheckResult;
}

function check(model: Model, opts: { march?: March; runOnCpu?: string[]; nv12?: boolean } = {}): Checked {
  const input = model.graph.realInputs[0];
  const checked = checkModel(model, {
    march: opts.march ?? 'bernoulli2',
    inputShapes: { [input.name]: input.type!.shape as number[] },
    overrides: { runOnCpu: opts.runOnCpu ?? [], runOnBpu: [], nodeInfo: {} },
    preprocess: opts.nv12 ? [nv12Input(input.name)] : [],
  });
  return { model, checked };
}

function estimate(c: Checked, opts: Partial<PerfOptions> = {}): PerfEstimate {
  return estimatePerf(c.checked.optimized, c.checked.placement, { march: c.checked.placement.march, ...opts });
}

function op(e: PerfEstimate, name: string) {
  const found = e.ops.find((o) => o.name === name);
  if (!found) throw new Error(`no op '${name}' in the estimate (ops: ${e.ops.map((o) => o.name).join(', ')})`);
  return found;
}

function ptqCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isPtqError(e)) return e.code;
    throw e;
  }
  return undefined;
}

/** conv_a (3x3, 3→16) → relu_a → conv_b (3x3, 16→32) → relu_b → conv_c (1x1, 32→32) → relu_c → dw (3x3 depthwise) → head (1x1 → 8). */
function chain(size = 32, width = 1): Model {
  const b = new GraphBuilder('chain', { seed: 7 });
  const x = b.input('input', 'float32', [1, 3, size, size]);
  let y: Value = b.relu(b.conv(x, { outChannels: 16 * width, kernel: 3, pad: 1, name: 'conv_a' }), 'relu_a');
  y = b.relu(b.conv(y, { outChannels: 32 * width, kernel: 3, pad: 1, name: 'conv_b' }), 'relu_b');
  y = b.relu(b.conv(y, { outChannels: 32 * width, kernel: 1, name: 'conv_c' }), 'relu_c');
  y = b.conv(y, { outChannels: 32 * width, kernel: 3, pad: 1, group: 32 * width, name: 'dw' });
  b.output(b.conv(y, { outChannels: 8, kernel: 1, name: 'head' }), 'out');
  return b.build();
}

/** A residual block and an inception-style concat: stem → (c1 → c2) + stem → relu → [b1, b2] concat → head. */
function residualConcat(): Model {
  const b = new GraphBuilder('res_concat', { seed: 8 });
  const x = b.input('input', 'float32', [1, 16, 16, 16]);
  const stem = b.relu(b.conv(x, { outChannels: 32, kernel: 3, pad: 1, name: 'stem' }), 'stem_relu');
  const c1 = b.relu(b.conv(stem, { outChannels: 32, kernel: 3, pad: 1, name: 'c1' }), 'c1_relu');
  const c2 = b.conv(c1, { outChannels: 32, kernel: 3, pad: 1, name: 'c2' });
  const sum = b.relu(b.add(c2, stem, 'add'), 'add_relu');
  const b1 = b.conv(sum, { outChannels: 16, kernel: 1, name: 'b1' });
  const b2 = b.conv(sum, { outChannels: 16, kernel: 3, pad: 1, name: 'b2' });
  const cat = b.concat([b1, b2], 1, 'cat');
  b.output(b.conv(cat, { outChannels: 8, kernel: 1, name: 'head' }), 'out');
  return b.build();
}

describe('cost constants', () => {
  it.each(['bernoulli2', 'bayes'] as const)('perf/marchs/%s.json is complete', (march) => {
    expect(validateCosts(marchCosts(march))).toEqual([]);
    expect(marchCosts(march).march).toBe(march);
  });

  it('validateCosts names what is wrong', () => {
    const broken = JSON.parse(JSON.stringify(marchCosts('bernoulli2'))) as MarchCosts;
    broken.bpu.ddrEfficiency = 1.5;
    delete (broken.efficiency as Partial<MarchCosts['efficiency']>).depthwise;
    const problems = validateCosts(broken);
    expect(problems.some((p) => p.startsWith('bpu.ddrEfficiency'))).toBe(true);
    expect(problems.some((p) => p.startsWith('efficiency.depthwise'))).toBe(true);
  });

  it('bernoulli2 cites the published numbers it was fitted to', () => {
    const c = marchCosts('bernoulli2') as MarchCosts & { sources: Record<string, string> };
    const targets = c.calibration!.targets;
    expect(targets.map((t) => [t.model, t.metric, t.ms])).toEqual([
      ['mobilenetv1', 'bpuMs', 3.43],
      ['mobilenetv1', 'endToEndMs', 4.0],
      ['mobilenetv2', 'endToEndMs', 2.41],
      ['resnet18', 'endToEndMs', 8.87],
      ['googlenet', 'endToEndMs', 8.34],
    ]);
    for (const t of targets) expect(Object.keys(c.sources)).toContain(t.source);
  });
});

describe('op geometry', () => {
  const c = check(chain());
  const e = estimate(c);

  it('counts 2 × MACs per conv, as an independent count of the layer shapes gives', () => {
    expect(op(e, 'conv_a').ops).toBe(2 * 32 * 32 * 16 * 3 * 9);
    expect(op(e, 'conv_b').ops).toBe(2 * 32 * 32 * 32 * 16 * 9);
    expect(op(e, 'conv_c').ops).toBe(2 * 32 * 32 * 32 * 32);
    expect(op(e, 'dw').ops).toBe(2 * 32 * 32 * 32 * 9);
    const macClasses = e.ops.filter((o) => ['conv1x1', 'conv3x3', 'convKxK', 'depthwise', 'fc'].includes(o.opClass));
    const macs = 32 * 32 * (16 * 3 * 9 + 32 * 16 * 9 + 32 * 32 + 32 * 9 + 8 * 32);
    expect(macClasses.reduce((s, o) => s + o.ops, 0)).toBe(2 * macs);
  });

  it('classifies convs and pads channels to the march alignment', () => {
    expect(op(e, 'conv_a').opClass).toBe('conv3x3');
    expect(op(e, 'conv_c').opClass).toBe('conv1x1');
    expect(op(e, 'dw').opClass).toBe('depthwise');
    // 3 input channels: the kernel columns are packed into the 8 lanes (3·3 = 9 → 16), 16 outputs stay 16
    expect(op(e, 'conv_a').paddedOps).toBe(2 * 32 * 32 * 16 * 16 * 3);
    // head: 8 outputs padded to 16
    expect(op(e, 'head').paddedOps).toBe(2 * 32 * 32 * 16 * 32);
  });

  it('fuses each Relu into its conv (no cost of its own)', () => {
    for (const r of ['relu_a', 'relu_b', 'relu_c']) {
      const o = op(e, r);
      expect(o.fusedInto).toBe(`conv_${r.slice(-1)}`);
      expect([o.latencyMs, o.loadedBytes, o.storedBytes]).toEqual([0, 0, 0]);
    }
  });

  it('keeps the per-op numbers consistent with the totals', () => {
    const bpu = e.ops.filter((o) => o.on === 'BPU');
    const sg = e.subgraphs[0];
    expect(e.subgraphs).toHaveLength(1);
    expect(sg.latencyMs).toBeCloseTo(bpu.reduce((s, o) => s + o.latencyMs, 0) + marchCosts('bernoulli2').bpu.functionCallOverheadUs / 1000, 9);
    expect(sg.loadedBytes).toBe(bpu.reduce((s, o) => s + o.loadedBytes, 0));
    expect(sg.storedBytes).toBe(bpu.reduce((s, o) => s + o.storedBytes, 0));
    const t = e.totals;
    expect(t.ddrBytes).toBe(t.loadedBytes + t.storedBytes);
    expect(t.ddrMBPerFrame).toBeCloseTo(t.ddrBytes / 2 ** 20, 12);
    expect(t.endToEndMs).toBeCloseTo(t.bpuMs + t.cpuMs + t.borderMs + t.inputMs + t.runtimeMs, 12);
    for (const o of bpu) if (!o.fusedInto) expect(o.latencyMs).toBeGreaterThanOrEqual(Math.max(o.computeMs, o.dataMs));
  });

  it('is deterministic', () => {
    expect(JSON.stringify(estimate(check(chain())))).toBe(JSON.stringify(e));
  });
});

describe('layers, fusion and DDR traffic', () => {
  const c = check(residualConcat());

  it('fuses the Add into a conv at O3, not at O0', () => {
    expect(op(estimate(c), 'add').fusedInto).toBe('c2');
    const o0 = estimate(c, { optimizeLevel: 'O0' });
    expect(op(o0, 'add').fusedInto).toBeUndefined();
    expect(op(o0, 'add').latencyMs).toBeGreaterThan(0);
  });

  it('writes the Concat in place at O3 and copies it at O0', () => {
    expect(op(estimate(c), 'cat')).toMatchObject({ inPlace: true, latencyMs: 0, loadedBytes: 0 });
    expect(op(estimate(c, { optimizeLevel: 'O0' }), 'cat').latencyMs).toBeGreaterThan(0);
  });

  it('at O0 every layer round-trips its activations through DDR; at O3 only values that cannot stay on-chip do', () => {
    const o0 = estimate(c, { optimizeLevel: 'O0' });
    const o3 = estimate(c);
    const bw = estimate(c, { compileMode: 'bandwidth' });
    const act = 16 * 16 * 32; // a 16x16x32 int8 activation (32 channels, width 16: no padding)
    expect(op(o0, 'stem').storedBytes).toBe(act);
    expect(op(o0, 'c1').storedBytes).toBe(act);
    // c1 feeds only the next layer: kept on-chip
    expect(op(o3, 'c1').storedBytes).toBe(0);
    // stem is also the shortcut of the Add three layers later: latency mode stores it, bandwidth mode holds it
    expect(op(o3, 'stem').storedBytes).toBe(act);
    expect(op(bw, 'stem').storedBytes).toBe(0);
    // the Add fused into c2 reads the shortcut back
    expect(op(o3, 'c2').loadedBytes).toBeGreaterThanOrEqual(act);
    expect(o0.totals.ddrBytes).toBeGreaterThan(o3.totals.ddrBytes);
    // weights are read at every level
    expect(op(o3, 'c1').loadedBytes).toBeGreaterThanOrEqual(32 * 32 * 9);
  });

  it('tiles a layer whose working set exceeds the on-chip memory and reloads what does not fit', () => {
    const costs = JSON.parse(JSON.stringify(marchCosts('bernoulli2'))) as MarchCosts;
    costs.bpu.onChipKiB = 8; // c1: 8 KiB in + 8 KiB out + ~9.5 KiB weights
    const tiled = estimate(c, { costs });
    const c1 = op(tiled, 'c1');
    expect(c1.tiling!.tiles).toBeGreaterThan(1);
    const weights = 32 * 32 * 9 + 32 * costs.bpu.paramBytesPerChannel;
    expect(c1.loadedBytes).toBeGreaterThan(weights + 16 * 16 * 32);
    expect(op(estimate(c), 'c1').tiling).toEqual({ kind: 'none', tiles: 1 });
  });

  it('compile_mode bandwidth moves fewer DDR bytes and takes longer than latency', () => {
    const lat = estimate(c);
    const bw = estimate(c, { compileMode: 'bandwidth' });
    expect(bw.totals.ddrBytes).toBeLessThanOrEqual(lat.totals.ddrBytes);
    expect(bw.totals.bpuMs).toBeGreaterThan(lat.totals.bpuMs);
  });
});

describe('CPU ops and subgraph borders', () => {
  const all = check(chain(), { nv12: true });
  const split = check(chain(), { nv12: true, runOnCpu: ['conv_c'] });

  it('a CPU op mid-graph adds a subgraph, Quantize/Dequantize and layout conversions', () => {
    const a = estimate(all);
    const s = estimate(split);
    expect(a.subgraphs).toHaveLength(1);
    expect(s.subgraphs).toHaveLength(2);
    expect(s.totals.functionCalls).toBe(2);
    const kinds = (e: PerfEstimate): string[] => e.borders.map((b) => b.kind).sort();
    expect(kinds(a)).toEqual(['dequantize', 'output_layout_convert', 'preprocess']);
    expect(kinds(s)).toEqual(['dequantize', 'dequantize', 'input_layout_convert', 'output_layout_convert', 'output_layout_convert', 'preprocess', 'quantize']);
    expect(s.borders.find((b) => b.kind === 'quantize')).toMatchObject({ name: 'conv_c_HzQuantize', subgraph: 1, elements: 32 * 32 * 32 });
    expect(s.borders.find((b) => b.kind === 'input_layout_convert')!.name).toBe('chain_subgraph_1_input_layout_convert');
    const cpu = op(s, 'conv_c');
    expect(cpu).toMatchObject({ on: 'CPU', estimate: true, opClass: 'conv1x1' });
    // CPU table: fixed cost + MACs × ns per MAC (32x32 pixels, 32 → 32 channels)
    const k = marchCosts('bernoulli2').cpu;
    expect(cpu.latencyMs).toBeCloseTo((k.ops.default.fixedUs + (32 * 32 * 32 * 32 * k.nsPerMac) / 1000) / 1000, 12);
    // borders: fixed + per element, on the 32x32x32 value crossing
    const deq = marchCosts('bernoulli2').borders.dequantize;
    expect(s.borders.find((b) => b.name === 'relu_b_HzDequantize')!.latencyMs).toBeCloseTo((deq.fixedUs + (32 * 32 * 32 * deq.nsPerElement) / 1000) / 1000, 12);
    expect(s.totals.borderMs).toBeGreaterThan(a.totals.borderMs);
    expect(s.totals.endToEndMs).toBeGreaterThan(a.totals.endToEndMs + cpu.latencyMs);
    expect(a.ops.every((o) => !o.estimate)).toBe(true);
  });

  it('costs the runtime input format: nv12 is cheaper to prepare than packed rgb', () => {
    const e = estimate(all);
    const rgb = estimate(all, { inputTypeRt: { input: 'rgb' } });
    expect(e.options.inputTypeRt).toEqual({ input: 'nv12' });
    expect(e.borders.find((b) => b.kind === 'preprocess')).toMatchObject({ name: 'Preprocess', elements: 32 * 32 * 1.5 });
    expect(rgb.totals.inputMs).toBeGreaterThan(e.totals.inputMs);
  });

  it('a featuremap (float) input is quantized and converted on the CPU', () => {
    const e = estimate(check(chain()));
    expect(e.options.inputTypeRt).toEqual({ input: 'featuremap' });
    expect(e.borders.map((b) => b.name)).toEqual(expect.arrayContaining(['input_HzQuantize', 'chain_subgraph_0_input_layout_convert']));
    expect(e.borders.some((b) => b.kind === 'preprocess')).toBe(false);
  });
});

describe('compiler options', () => {
  const c = check(chain(64, 2));

  it('optimize_level: O0 ≥ O1 ≥ O2 ≥ O3', () => {
    const ms = (['O0', 'O1', 'O2', 'O3'] as const).map((l) => estimate(c, { optimizeLevel: l }).totals.bpuMs);
    for (let i = 1; i < ms.length; i++) expect(ms[i - 1]).toBeGreaterThanOrEqual(ms[i]);
    expect(ms[0]).toBeGreaterThan(ms[3]);
  });

  it('max_time_per_fc splits the subgraph into more function calls, each adding its overhead', () => {
    const base = estimate(c);
    const limit = 1000;
    // a tiny budget relative to the model: set the call overhead so one call holds only part of it
    const costs = JSON.parse(JSON.stringify(marchCosts('bernoulli2'))) as MarchCosts;
    costs.bpu.functionCallOverheadUs = limit - base.totals.bpuMs * 1000 * 0.3;
    const split = estimate(c, { maxTimePerFc: limit, costs });
    const unsplit = estimate(c, { costs });
    expect(unsplit.totals.functionCalls).toBe(1);
    expect(split.totals.functionCalls).toBeGreaterThan(1);
    expect(split.totals.bpuMs).toBeGreaterThan(unsplit.totals.bpuMs);
    const calls = split.ops.filter((o) => o.on === 'BPU').map((o) => o.functionCall!);
    expect(calls[0]).toBe(0);
    expect(Math.max(...calls)).toBeGreaterThan(0);
    expect(Math.max(...calls)).toBeLessThan(split.totals.functionCalls);
    // calls run in order
    for (let i = 1; i < calls.length; i++) expect(calls[i]).toBeGreaterThanOrEqual(calls[i - 1]);
  });

  it('refuses values the reference does not allow', () => {
    expect(ptqCode(() => estimate(c, { maxTimePerFc: 500 }))).toBe('E_CONFIG');
    expect(ptqCode(() => estimate(check(chain(), { march: 'bayes' }), { coreNum: 2 }))).toBe('E_CONFIG');
    expect(ptqCode(() => estimate(c, { coreNum: 3 }))).toBe('E_CONFIG');
  });

  it('bayes runs the same model faster than bernoulli2 (a much larger MAC array)', () => {
    const x3 = estimate(c);
    const ultra = estimate(check(chain(64, 2), { march: 'bayes' }));
    expect(ultra.march).toBe('bayes');
    expect(ultra.totals.bpuMs).toBeLessThan(x3.totals.bpuMs);
  });
});
