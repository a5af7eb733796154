import { ARCHITECTURES, ArchName, ArchOptions } from '../../../scripts/fixtures/architectures';
import { GraphBuilder, Value } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { archFixture, checked, Fixture } from './report/fixtures.test.util';
import { estimatePerf } from './estimate';
import type { PerfEstimate, PerfOptions } from './types';

/**
 * Monotonicity of the cost model beyond what estimate.test.ts (O0 ≥ … ≥ O3 on a chain, one CPU
 * op in a chain) and calibration.test.ts (input size on MobileNetV1, options on the full-size
 * calibration models) check: on every fixture architecture (small, so the file stays fast),
 * more work must never be estimated as less time.
 */

const ARCHS: ArchName[] = ['mobilenetv1', 'mobilenetv2', 'resnet18', 'resnet50', 'googlenet'];
const LEVELS = ['O0', 'O1', 'O2', 'O3'] as const;

/** Fixtures are built once per (arch, options): building and checking dominates this file's time. */
const built = new Map<string, Fixture>();
function fixture(arch: ArchName, o: ArchOptions = {}): Fixture {
  const key = JSON.stringify([arch, o]);
  if (!built.has(key)) built.set(key, archFixture(arch, o));
  return built.get(key)!;
}
const BASE = { inputSize: 64, width: 0.25 } as const;

/** `arch` at BASE with its middle BPU convolution forced onto the CPU. */
function withCpuConv(arch: ArchName, which = [0.5]): Fixture {
  const convs = fixture(arch, BASE).checked.placement.nodes.filter((n) => n.on === 'BPU' && n.op === 'Conv').map((n) => n.name);
  return checked(ARCHITECTURES[arch]({ numClasses: 10, ...BASE }).model, { runOnCpu: which.map((q) => convs[Math.floor(convs.length * q)]) });
}

function again(f: Fixture, opts: Partial<PerfOptions>): PerfEstimate {
  return estimatePerf(f.checked.optimized, f.checked.placement, { march: f.checked.placement.march, ...opts });
}

/** n 3x3 convs (16 channels) with Relu, on a 32x32 input. */
function chainOf(n: number): Model {
  const b = new GraphBuilder(`chain${n}`, { seed: 4 });
  let y: Value = b.input('x', 'float32', [1, 16, 32, 32]);
  for (let i = 0; i < n; i++) y = b.relu(b.conv(y, { outChannels: 16, kernel: 3, pad: 1, name: `c${i}` }), `r${i}`);
  b.output(y, 'y');
  return b.build();
}

describe('more work takes longer', () => {
  it.each(ARCHS)('%s: a bigger input takes longer, computes more and moves at least as many bytes', (arch) => {
    const es = [32, 48, 64].map((s) => fixture(arch, { ...BASE, inputSize: s }).estimate);
    for (let i = 1; i < es.length; i++) {
      expect(es[i].totals.bpuMs).toBeGreaterThan(es[i - 1].totals.bpuMs);
      expect(es[i].totals.endToEndMs).toBeGreaterThan(es[i - 1].totals.endToEndMs);
      expect(es[i].totals.ops).toBeGreaterThan(es[i - 1].totals.ops);
      expect(es[i].totals.ddrBytes).toBeGreaterThanOrEqual(es[i - 1].totals.ddrBytes);
      // op by op too: no layer gets cheaper on a bigger input
      const prev = new Map(es[i - 1].ops.map((o) => [o.name, o] as const));
      for (const o of es[i].ops) expect(o.latencyMs).toBeGreaterThanOrEqual(prev.get(o.name)!.latencyMs);
    }
  });

  it.each(['mobilenetv2', 'resnet18'] as const)('%s: a wider network takes longer', (arch) => {
    const es = [0.125, 0.25, 0.375].map((w) => fixture(arch, { inputSize: 32, width: w }).estimate);
    for (let i = 1; i < es.length; i++) {
      expect(es[i].totals.bpuMs).toBeGreaterThan(es[i - 1].totals.bpuMs);
      expect(es[i].totals.ops).toBeGreaterThan(es[i - 1].totals.ops);
    }
  });

  it('batch 2 takes longer than batch 1, with exactly twice the MAC operations', () => {
    const one = fixture('mobilenetv2', { ...BASE, inputSize: 48 }).estimate;
    const two = fixture('mobilenetv2', { ...BASE, inputSize: 48, batch: 2 }).estimate;
    expect(two.totals.bpuMs).toBeGreaterThan(one.totals.bpuMs);
    expect(two.totals.ops).toBe(2 * one.totals.ops);
  });

  it('each added layer adds time, operations and nothing negative', () => {
    const es = [1, 2, 3, 4, 5, 6].map((n) => checked(chainOf(n)).estimate);
    for (let i = 1; i < es.length; i++) {
      expect(es[i].totals.bpuMs).toBeGreaterThan(es[i - 1].totals.bpuMs);
      // 2 × MACs of the 3x3 conv, plus one operation per element for its Relu
      expect(es[i].totals.ops).toBe(es[i - 1].totals.ops + 2 * 32 * 32 * 16 * 16 * 9 + 32 * 32 * 16);
    }
    for (const e of es) for (const o of e.ops) for (const k of ['latencyMs', 'computeMs', 'dataMs', 'loadedBytes', 'storedBytes'] as const) expect(o[k]).toBeGreaterThanOrEqual(0);
  });
});

describe('optimize_level: O0 ≥ O1 ≥ O2 ≥ O3 everywhere', () => {
  it.each(ARCHS)('%s: BPU time and DDR bytes, in latency and bandwidth mode, on one and two cores', (arch) => {
    const f = fixture(arch, BASE);
    for (const compileMode of ['latency', 'bandwidth'] as const) {
      for (const coreNum of [1, 2]) {
        const es = LEVELS.map((optimizeLevel) => again(f, { optimizeLevel, compileMode, coreNum }));
        for (let i = 1; i < es.length; i++) {
          expect(es[i - 1].totals.bpuMs).toBeGreaterThanOrEqual(es[i].totals.bpuMs);
          expect(es[i - 1].totals.endToEndMs).toBeGreaterThanOrEqual(es[i].totals.endToEndMs);
          for (const [k, s] of es[i].subgraphs.entries()) expect(es[i - 1].subgraphs[k].latencyMs).toBeGreaterThanOrEqual(s.latencyMs);
        }
        expect(es[0].totals.ddrBytes).toBeGreaterThanOrEqual(es[3].totals.ddrBytes);
        expect(es[0].totals.bpuMs).toBeGreaterThan(es[3].totals.bpuMs);
      }
    }
  });
});

describe('a CPU op mid-graph adds a subgraph and border costs', () => {
  it.each(['mobilenetv1', 'mobilenetv2', 'resnet18', 'googlenet'] as const)('%s', (arch) => {
    const all = fixture(arch, BASE);
    const split = withCpuConv(arch);
    const a = all.estimate;
    const s = split.estimate;
    const cpuConv = s.ops.find((o) => o.on === 'CPU' && o.op === 'Conv')!;
    expect(cpuConv).toBeDefined();
    expect(s.subgraphs.length).toBe(a.subgraphs.length + 1);
    expect(s.totals.functionCalls).toBe(a.totals.functionCalls + 1);
    // the CPU conv's input leaves the BPU (Dequantize) and its output comes back (Quantize)
    expect(s.borders.filter((b) => b.kind === 'dequantize').length).toBeGreaterThan(a.borders.filter((b) => b.kind === 'dequantize').length);
    expect(s.borders.filter((b) => b.kind === 'quantize').length).toBeGreaterThan(a.borders.filter((b) => b.kind === 'quantize').length);
    expect(s.totals.borderMs).toBeGreaterThan(a.totals.borderMs);
    // the whole frame pays the CPU op, the borders and one more function call
    expect(s.totals.endToEndMs).toBeGreaterThan(a.totals.endToEndMs + cpuConv.latencyMs - (a.ops.find((o) => o.name === cpuConv.name)!.latencyMs));
    expect(s.totals.cpuMs).toBeGreaterThan(a.totals.cpuMs);
  });

  it('a second CPU op in another place adds another subgraph and more border time', () => {
    const one = withCpuConv('mobilenetv2', [1 / 3]).estimate;
    const two = withCpuConv('mobilenetv2', [1 / 3, 2 / 3]).estimate;
    expect(two.subgraphs.length).toBe(one.subgraphs.length + 1);
    expect(two.totals.borderMs).toBeGreaterThan(one.totals.borderMs);
    expect(two.totals.endToEndMs).toBeGreaterThan(one.totals.endToEndMs);
  });
});
