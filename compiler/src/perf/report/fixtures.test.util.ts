import { ARCHITECTURES, ArchName, ArchOptions } from '../../../../scripts/fixtures/architectures';
import type { BinFile, BinModel, BinSegment, BinValue } from '../../compile/bin-format';
import { BIN_FORMAT_VERSION } from '../../compile/bin-format';
import { GraphBuilder, Value } from '../../onnx/builder';
import { Model } from '../../onnx/ir';
import { checkModel, CheckResult } from '../../stages/check';
import { estimatePerf } from '../estimate';
import type { PerfEstimate, PerfOptions } from '../types';

/**
 * Test inputs of the report: generated models through the check stage and the cost model, and a
 * `.bin` assembled from them (one segment per run of BPU subgraph / CPU nodes in execution order,
 * activations only — enough structure for the report, which never reads weights).
 */

export interface Fixture {
  model: Model;
  checked: CheckResult;
  estimate: PerfEstimate;
}

export function checked(model: Model, opts: { runOnCpu?: string[]; march?: 'bernoulli2' | 'bayes' } = {}, perf: Partial<PerfOptions> = {}): Fixture {
  const input = model.graph.realInputs[0];
  const c = checkModel(model, {
    march: opts.march ?? 'bernoulli2',
    inputShapes: { [input.name]: input.type!.shape as number[] },
    overrides: { runOnCpu: opts.runOnCpu ?? [], runOnBpu: [], nodeInfo: {} },
  });
  return { model, checked: c, estimate: estimatePerf(c.optimized, c.placement, { march: c.placement.march, ...perf }) };
}

/** A fixture architecture, optionally with its middle BPU convolution forced onto the CPU. */
export function archFixture(arch: ArchName, o: ArchOptions & { cpuMidConv?: boolean } = {}, perf: Partial<PerfOptions> = {}): Fixture {
  const build = (): Model => ARCHITECTURES[arch]({ inputSize: 64, width: 0.25, numClasses: 10, ...o }).model;
  if (!o.cpuMidConv) return checked(build(), {}, perf);
  const convs = checked(build()).checked.placement.nodes.filter((n) => n.on === 'BPU' && n.op === 'Conv');
  return checked(build(), { runOnCpu: [convs[Math.floor(convs.length / 2)].name] }, perf);
}

/** conv → relu → conv → [softmax on the CPU] → conv: a small model with two BPU subgraphs. */
export function smallSplitModel(name = 'small'): Model {
  const b = new GraphBuilder(name, { seed: 3 });
  const x = b.input('data', 'float32', [1, 3, 16, 16]);
  let y: Value = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  y = b.conv(y, { outChannels: 8, kernel: 3, pad: 1, name: 'conv2' });
  y = b.softmax(y, 1, 'soft');
  b.output(b.conv(y, { outChannels: 4, kernel: 1, name: 'conv3' }), 'out');
  return b.build();
}

/** A `.bin` model for fixture `f` named `name`. */
export function binModelOf(f: Fixture, name: string, opts: { debug?: boolean; perf?: boolean } = {}): BinModel {
  const { optimized, placement } = f.checked;
  const g = optimized.graph;
  const byLabel = new Map(g.nodes.map((n) => [n.label, n] as const));
  const consts = new Set(g.initializers.keys());
  const values = new Map<string, BinValue>();
  const value = (v: string): void => {
    if (!values.has(v)) values.set(v, { name: v, dtype: 'int8', shape: [], layout: '', scale: 0, offset: -1, bytes: 0, firstUse: 0, lastUse: 0 });
  };
  for (const v of g.realInputs) value(v.name);
  const segments: BinSegment[] = [];
  for (const p of placement.nodes) {
    const node = byLabel.get(p.name)!;
    const key = p.on === 'BPU' ? `${name}_subgraph_${p.subgraph}` : `${name}_cpu_${segments.length}`;
    let seg = segments[segments.length - 1];
    if (!seg || seg.name !== key) {
      seg = { name: key, kind: p.on === 'BPU' ? 'bpu' : 'cpu', ops: [], inputs: [], outputs: [] };
      segments.push(seg);
    }
    const outputs = node.outputs.filter((o) => o !== '');
    outputs.forEach(value);
    const perfOp = f.estimate.ops.find((o) => o.name === p.name);
    seg.ops.push({
      name: p.name,
      type: p.on === 'BPU' ? p.type : p.op,
      domain: '',
      inputs: node.inputs.filter((i) => i !== '' && !consts.has(i) && values.has(i)),
      outputs,
      attrs: [],
      sourceNodes: [p.name],
      functionCall: perfOp?.functionCall ?? 0,
      ...(opts.debug && perfOp && p.on === 'BPU'
        ? { perf: { ops: perfOp.ops, computeMs: perfOp.computeMs, dataMs: perfOp.dataMs, latencyMs: perfOp.latencyMs, loadedBytes: perfOp.loadedBytes, storedBytes: perfOp.storedBytes } }
        : {}),
    });
  }
  const withPerf = new Set<string>();
  for (const s of segments) {
    const sg = f.estimate.subgraphs.find((x) => `${name}_subgraph_${x.id}` === s.name);
    // a subgraph split into several runs carries its numbers once
    if (sg && !withPerf.has(s.name) && withPerf.add(s.name)) s.perf = { latencyMs: sg.latencyMs, ops: sg.ops, loadedBytes: sg.loadedBytes, storedBytes: sg.storedBytes, functionCalls: sg.functionCalls };
  }
  const io = (v: string, float: boolean) => ({
    name: v, value: v, dtype: float ? ('float32' as const) : ('int8' as const), shape: [], layout: '', typeRt: '', typeTrain: '', spaceAndRange: '', source: '', scale: 0, zeroPoint: 0,
  });
  // recorded as the cost model names it (`<graph>_subgraph_<id>`): the reader aligns the names with the segments
  const estimate: PerfEstimate = f.estimate;
  return {
    name,
    march: placement.march,
    deps: { nxPtqVersion: '0.1.0', compilerVersion: '0.1.0', runtimeVersion: '0.1.0', formatVersion: BIN_FORMAT_VERSION },
    params: [{ group: 'compiler_parameters', input: '', params: [{ key: 'optimize_level', value: estimate.options.optimizeLevel }] }],
    inputs: g.realInputs.map((v) => io(v.name, true)),
    outputs: g.outputs.map((v) => io(v.name, true)),
    values: [...values.values()],
    tensors: [],
    segments,
    arenaBytes: 0,
    deletedNodes: [],
    perfJson: opts.perf === false ? '' : JSON.stringify(estimate),
    debug: opts.debug ?? false,
    graphName: g.name,
  };
}

export function binFileOf(models: BinModel[]): BinFile {
  return { formatVersion: BIN_FORMAT_VERSION, packed: models.length > 1, models };
}
