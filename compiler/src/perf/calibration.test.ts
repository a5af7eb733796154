import { ArchName } from '../../../scripts/fixtures/architectures';
import { placeModel } from '../check';
import { marchCosts } from './costs';
import { calibrationModel, CalibrationModel, estimateFor } from './calibration-models.test.util';
import { estimatePerf, PerfEstimate } from './estimate';

/**
 * The cost model against published RDK X3 (bernoulli2) numbers, and its monotonicity on the
 * same full-size architectures. Targets and tolerance come from perf/marchs/bernoulli2.json
 * (`calibration`), whose constants scripts/perf/fit-bernoulli2.ts fitted. The fixtures are
 * built once (building GoogLeNet/ResNet18 under jest takes tens of seconds).
 */

const costs = marchCosts('bernoulli2');
const calibration = costs.calibration!;
const ARCHS = [...new Set(calibration.targets.map((t) => t.model))] as ArchName[];

const models = new Map<ArchName, CalibrationModel>();
const base = new Map<ArchName, PerfEstimate>();

beforeAll(() => {
  for (const arch of ARCHS) {
    // the reference's profiled MobileNetV1 ends in Softmax_prob on the CPU; the zoo's others end at the classifier
    const m = calibrationModel(arch, { softmax: arch === 'mobilenetv1' });
    models.set(arch, m);
    base.set(arch, estimateFor(m));
  }
}, 240_000);

describe('calibration: bernoulli2 (RDK X3) estimates within ±25 % of the published numbers', () => {
  const rows: string[] = [];
  afterAll(() => {
    if (rows.length) {
      process.stdout.write(`\n${calibration.conditions}\nmodel         metric       published  estimate  error\n${rows.join('\n')}\n\n`);
    }
  });

  it.each(calibration.targets.map((t) => [`${t.model} ${t.metric}`, t] as const))('%s', (_label, t) => {
    const e = base.get(t.model as ArchName)!;
    const est = e.totals[t.metric];
    const err = est / t.ms - 1;
    rows.push(`${t.model.padEnd(13)} ${t.metric.padEnd(12)} ${t.ms.toFixed(2).padStart(9)} ${est.toFixed(2).padStart(9)}  ${(err * 100).toFixed(1).padStart(5)} %`);
    expect(Math.abs(err)).toBeLessThanOrEqual(calibration.tolerance);
  });

  it('the tolerance is the issue\'s ±25 %', () => {
    expect(calibration.tolerance).toBe(0.25);
  });

  it.each(ARCHS)('%s: conv/fc operations are 2 × the builder\'s independent MAC count', (arch) => {
    const e = base.get(arch)!;
    const macOps = e.ops.filter((o) => ['conv1x1', 'conv3x3', 'convKxK', 'depthwise', 'groupConv', 'fc'].includes(o.opClass)).reduce((s, o) => s + o.ops, 0);
    expect(macOps).toBe(2 * models.get(arch)!.stats.macs);
  });

  it.each(ARCHS)('%s: one BPU subgraph, the classifier output leaves through a layout conversion and a Dequantize', (arch) => {
    const e = base.get(arch)!;
    expect(e.subgraphs).toHaveLength(1);
    expect(e.borders.map((b) => b.kind).sort()).toEqual(['dequantize', 'output_layout_convert', 'preprocess']);
    expect(e.ops.filter((o) => o.on === 'CPU').every((o) => o.estimate)).toBe(true);
  });
});

describe('monotonicity on the calibration architectures', () => {
  it.each(ARCHS)('%s: optimize_level O0 ≥ O1 ≥ O2 ≥ O3', (arch) => {
    const ms = (['O0', 'O1', 'O2', 'O3'] as const).map((l) => estimateFor(models.get(arch)!, { optimizeLevel: l }).totals.bpuMs);
    for (let i = 1; i < ms.length; i++) expect(ms[i - 1]).toBeGreaterThanOrEqual(ms[i]);
    expect(ms[0]).toBeGreaterThan(1.2 * ms[3]);
  });

  it.each(ARCHS)('%s: compile_mode bandwidth moves fewer DDR bytes per frame and is slower than latency', (arch) => {
    const lat = base.get(arch)!;
    const bw = estimateFor(models.get(arch)!, { compileMode: 'bandwidth' });
    expect(bw.totals.ddrBytes).toBeLessThan(lat.totals.ddrBytes);
    expect(bw.totals.bpuMs).toBeGreaterThan(lat.totals.bpuMs);
  });

  it('max_time_per_fc splits ResNet18 into more function calls, none longer than the limit unless one layer is', () => {
    const m = models.get('resnet18')!;
    const unlimited = base.get('resnet18')!;
    const limited = estimateFor(m, { maxTimePerFc: 1000 });
    expect(unlimited.totals.functionCalls).toBe(1);
    expect(limited.totals.functionCalls).toBeGreaterThanOrEqual(Math.ceil(unlimited.totals.bpuMs));
    expect(limited.totals.bpuMs).toBeGreaterThanOrEqual(unlimited.totals.bpuMs + ((limited.totals.functionCalls - 1) * costs.bpu.functionCallOverheadUs) / 1000);
    // values crossing a call boundary go through DDR
    expect(limited.totals.ddrBytes).toBeGreaterThan(unlimited.totals.ddrBytes);
    const perCall = new Map<number, number[]>();
    for (const o of limited.ops) if (o.on === 'BPU' && o.latencyMs > 0) perCall.set(o.functionCall!, [...(perCall.get(o.functionCall!) ?? []), o.latencyMs * 1000]);
    for (const [, us] of perCall) {
      const total = us.reduce((a, b) => a + b, 0);
      // a call over the limit holds one layer longer than the limit (cut into several calls)
      if (total > 1000) expect(us).toHaveLength(1);
    }
  });

  it('a bigger input takes longer and moves more data', () => {
    const es = [96, 160, 224, 320].map((s) => estimateFor(calibrationModel('mobilenetv1', { inputSize: s, width: 0.25 })));
    for (let i = 1; i < es.length; i++) {
      expect(es[i].totals.bpuMs).toBeGreaterThan(es[i - 1].totals.bpuMs);
      expect(es[i].totals.endToEndMs).toBeGreaterThan(es[i - 1].totals.endToEndMs);
      expect(es[i].totals.ops).toBeGreaterThan(es[i - 1].totals.ops);
      expect(es[i].totals.ddrBytes).toBeGreaterThanOrEqual(es[i - 1].totals.ddrBytes);
    }
  }, 120_000);

  it('core_num 2: about 1.5x faster on a large input, slower on a tiny one', () => {
    // ResNet18 at half width (builds faster), 448x448
    const m = calibrationModel('resnet18', { inputSize: 448, width: 0.5 });
    const speedup = estimateFor(m).totals.bpuMs / estimateFor(m, { coreNum: 2 }).totals.bpuMs;
    expect(speedup).toBeGreaterThan(1.3);
    expect(speedup).toBeLessThanOrEqual(costs.bpu.dualCoreComputeSpeedup);
    const tiny = calibrationModel('mobilenetv1', { inputSize: 32, width: 0.25 });
    expect(estimateFor(tiny, { coreNum: 2 }).totals.bpuMs).toBeGreaterThan(estimateFor(tiny).totals.bpuMs);
  }, 120_000);
});

describe('bayes (RDK Ultra, assumed constants)', () => {
  it.each(ARCHS)('%s runs faster on bayes than on bernoulli2', (arch) => {
    const m = models.get(arch)!;
    const placement = placeModel(m.checked.optimized, { march: 'bayes', inputShapes: { input: [1, 3, 224, 224] } });
    const ultra = estimatePerf(m.checked.optimized, placement, { march: 'bayes' });
    expect(ultra.totals.bpuMs).toBeGreaterThan(0);
    expect(ultra.totals.bpuMs).toBeLessThan(base.get(arch)!.totals.bpuMs);
    expect(marchCosts('bayes').calibration).toBeUndefined();
  });
});
