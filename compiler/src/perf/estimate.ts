import type { Placement } from '../check/placement';
import { fusionsAt } from '../compile/fuse';
import { PtqError } from '../errors';
import { Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { ValueFacts } from '../ops/registry';
import { readPreprocessRecords, RtType } from '../preprocess/hz-preprocess';
import { bytesPerPixel, estimateBorders } from './borders';
import { marchCosts, MarchCosts, OpClass } from './costs';
import { elementsOf, isMacClass, isPreprocessNode, knownShape, nchw, OpGeometry, opGeometry, paddedBytes } from './op-model';
import type { OpPerf, PerfEstimate, PerfOptions, SubgraphPerf } from './types';

export type { BorderKind, BorderPerf, OpPerf, PerfEstimate, PerfOptions, PerfTotals, SubgraphPerf } from './types';

/**
 * The static BPU cost model (what `hb_perf` reports, plus CPU-side estimates): per op, the
 * operations, the DDR bytes the chosen tiling loads and stores, and a latency from the MAC
 * throughput × op efficiency, the DDR bandwidth and fixed per-layer / per-function-call
 * overheads; per subgraph and in total, with Quantize/Dequantize and layout conversions at
 * the subgraph borders. Inputs: the optimized float model and its placement (check stage) —
 * no `.bin` needed. Constants per march: perf/marchs/<march>.json. Deterministic.
 *
 * The schedule it models:
 *  - BPU nodes form layers, fused as the compiler fuses them at the optimize_level
 *    (`fusionsAt` of compile/fuse.ts): at O1+ a Relu/Clip fuses into its producer and an Add
 *    into the conv producing one of its inputs; at O0 each is a layer of its own. The
 *    HzPreprocess nodes form one layer at every level. At O1+ (the march's `fuseLayers`) a
 *    Concat whose inputs come only from BPU layers is written in place by them (no copy).
 *  - At O2+ a value feeding only the next layer stays on-chip (no DDR traffic) when it fits
 *    the compile mode's share of the on-chip memory; compile_mode bandwidth also holds
 *    shortcut/branch values and streams single-consumer chains of any size through row
 *    buffers (fewer bytes, at the cost of halo recompute and less compute/DMA overlap).
 *  - A layer whose working set exceeds the on-chip memory is tiled by rows (weights reloaded
 *    per tile when they do not fit their share; halo rows reloaded) or by output channels
 *    (input reloaded per group), whichever moves fewer bytes.
 *  - latency = max(compute, data) + (1 − overlap) · min(compute, data) + per-layer overhead;
 *    a subgraph adds one function-call overhead per call (max_time_per_fc splits calls).
 *  - core_num 2 splits layers with enough rows over both cores (compute ÷ the march's dual-core
 *    speed-up, weights read by both, a sync cost per layer): faster on large inputs, slower on
 *    tiny ones.
 */

/** A group of BPU nodes executed as one unit: the head and the ops fused into it. */
interface Layer {
  index: number;
  head: Node;
  members: Node[];
  subgraph: number;
  geo: OpGeometry;
  /** activation values read from outside the layer */
  inputs: string[];
  /** values the layer produces for others */
  outputs: string[];
  inPlace: boolean;
  functionCall: number;
  // filled by costLayer
  loaded: number;
  stored: number;
  computeMs: number;
  dataMs: number;
  latencyMs: number;
  efficiency: number;
  tiling: { kind: 'none' | 'rows' | 'channels'; tiles: number };
}

const BYTES: Record<string, number> = { int8: 1, int16: 2, float32: 4 };

/** Estimate the performance of `model` placed as `placement` with the compiler options `opts`. */
export function estimatePerf(model: Model, placement: Placement, opts: PerfOptions): PerfEstimate {
  const costs = opts.costs ?? marchCosts(opts.march);
  const o = resolveOptions(opts, costs, model);
  const mode = costs.compileMode[o.compileMode];
  const level = costs.optimizeLevel[o.optimizeLevel];
  const fusions = fusionsAt(o.optimizeLevel);
  const notes: string[] = [];
  const g = model.graph;
  const facts = inferShapes(model, { apply: false });

  const byLabel = new Map<string, Node>();
  for (const n of g.nodes) byLabel.set(n.label, n);
  const folded = new Set(placement.folded);
  const constants = new Set<string>(g.initializers.keys());
  for (const n of g.nodes) if (folded.has(n.label)) for (const out of n.outputs) if (out) constants.add(out);
  const isConst = (v: string): boolean => constants.has(v);

  const placed = placement.nodes.map((p) => {
    const node = byLabel.get(p.name);
    if (!node) throw new Error(`perf: placement names node '${p.name}', which is not in the model`);
    return { p, node };
  });
  const placeOf = new Map(placed.map(({ p, node }) => [node, p]));
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const { node } of placed) {
    for (const out of node.outputs) if (out) producer.set(out, node);
    for (const i of new Set(node.inputs)) if (i && !isConst(i)) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(node);
  }
  const graphOutputs = new Set(g.outputs.map((v) => v.name));

  // ---------------------------------------------------------------- layers
  const layers: Layer[] = [];
  const layerOf = new Map<Node, Layer>();
  for (const { p, node } of placed) {
    if (p.on !== 'BPU') continue;
    const geo = opGeometry(node, facts, isConst, costs);
    if (geo.unknownShape) notes.push(`node '${p.name}' (${p.op}): shapes not fully known, its cost is a lower bound`);
    const target = fuseTarget(node, geo.opClass, p.subgraph!);
    if (target) {
      target.members.push(node);
      layerOf.set(node, target);
      continue;
    }
    const layer: Layer = {
      index: layers.length, head: node, members: [node], subgraph: p.subgraph!, geo, inputs: [], outputs: [],
      inPlace: inPlace(node, geo.opClass, p.subgraph!), functionCall: 0,
      loaded: 0, stored: 0, computeMs: 0, dataMs: 0, latencyMs: 0, efficiency: 0, tiling: { kind: 'none', tiles: 1 },
    };
    layers.push(layer);
    layerOf.set(node, layer);
  }
  for (const l of layers) {
    const inside = new Set(l.members.flatMap((m) => m.outputs));
    l.inputs = [...new Set(l.members.flatMap((m) => m.inputs.filter((i) => i && !isConst(i) && !inside.has(i))))];
    const last = l.members[l.members.length - 1];
    const produced = l.members.flatMap((m) => m.outputs.filter((v) => v && (m === last || graphOutputs.has(v) || (consumers.get(v) ?? []).some((c) => layerOf.get(c) !== l))));
    l.outputs = [...new Set(produced)];
  }

  /** single BPU consumer in the same subgraph, not a model output */
  function soleConsumer(value: string, node: Node, subgraph: number): boolean {
    const prod = producer.get(value);
    if (!prod || graphOutputs.has(value)) return false;
    const pp = placeOf.get(prod)!;
    const cs = consumers.get(value) ?? [];
    return pp.on === 'BPU' && pp.subgraph === subgraph && cs.length === 1 && cs[0] === node;
  }

  function fuseTarget(node: Node, cls: OpClass, subgraph: number): Layer | undefined {
    const data = node.inputs.filter((i) => i && !isConst(i));
    const preprocessTail = cls === 'preprocess' && data.length === 1 && producer.get(data[0]) !== undefined && isPreprocessNode(producer.get(data[0])!);
    if ((cls === 'relu' && fusions.clamps) || preprocessTail) {
      if (data.length !== 1 || !soleConsumer(data[0], node, subgraph)) return undefined;
      const l = layerOf.get(producer.get(data[0])!);
      return l && !l.inPlace ? l : undefined;
    }
    if (fusions.convAdd && (node.opType === 'Add' || node.opType === 'Sum') && data.length === 2) {
      const candidates = data
        .filter((v) => soleConsumer(v, node, subgraph))
        .map((v) => layerOf.get(producer.get(v)!))
        .filter((l): l is Layer => l !== undefined && isMacClass(l.geo.opClass) && !l.inPlace && l.members.length === 1);
      return candidates.sort((a, b) => b.index - a.index)[0];
    }
    return undefined;
  }

  function inPlace(node: Node, cls: OpClass, subgraph: number): boolean {
    const data = node.inputs.filter((i) => i && !isConst(i));
    if (cls === 'concat' && level.fuseLayers) return data.length > 0 && data.every((v) => soleConsumer(v, node, subgraph));
    if (cls === 'reshape' || (cls === 'relu' && data.length === 1)) {
      // a reshape of a vector (1×1 spatial) only relabels the native layout; a lone Dropout/Identity is a no-op
      const s = knownShape(facts, data[0]);
      return cls === 'relu' ? node.opType === 'Dropout' || node.opType === 'Identity' : s !== undefined && nchw(s).h === 1 && nchw(s).w === 1;
    }
    return false;
  }

  // ---------------------------------------------------------------- residency, tiling, latency
  const dequantized = new Set(placement.boundaries.filter((bd) => bd.kind === 'dequantize').map((bd) => bd.value));
  const bytesMemo = new Map<string, number>();
  const bytesOf = (v: string): number => {
    let n = bytesMemo.get(v);
    if (n === undefined) {
      n = valueBytes(v);
      bytesMemo.set(v, n);
    }
    return n;
  };
  const records = readPreprocessRecords(model);
  const valueBytes = (v: string): number => {
    const rt = o.inputTypeRt[v];
    if (rt && rt !== 'featuremap') return imagePixels(v) * bytesPerPixel(rt); // the BPU reads the runtime image as is
    const prod = producer.get(v);
    const p = prod ? placeOf.get(prod) : undefined;
    // a conv leaving the BPU for a Dequantize writes its int32 accumulators (the checker's int8/int32)
    const t = p?.on !== 'BPU' ? 1 : dequantized.has(v) && isMacClass(layerOf.get(prod!)?.geo.opClass ?? 'other') ? 4 : BYTES[p.outputType] ?? 1;
    return paddedBytes(knownShape(facts, v), costs, t);
  };
  function imagePixels(input: string): number {
    const shape = knownShape(facts, input);
    const layout = records.find((r) => r.input === input)?.layout ?? 'NCHW';
    return shape && shape.length === 4 ? shape[0] * (layout === 'NHWC' ? shape[1] * shape[2] : shape[2] * shape[3]) : elementsOf(shape);
  }
  const onChip = costs.bpu.onChipKiB * 1024;
  const consumerLayers = (v: string): Layer[] => [...new Set((consumers.get(v) ?? []).map((c) => layerOf.get(c)).filter((l): l is Layer => l !== undefined))];

  /**
   * The value never goes through DDR between its producing layer and its consumers: it feeds
   * only the next layer and fits the mode's share of the on-chip memory (or that chain is
   * streamed), or — bandwidth mode — it is held on-chip for later layers (shortcuts, branches).
   */
  const residentMemo = new Map<string, boolean>();
  function resident(v: string): boolean {
    let r = residentMemo.get(v);
    if (r === undefined) {
      r = decideResident(v);
      residentMemo.set(v, r);
    }
    return r;
  }
  function decideResident(v: string): boolean {
    if (!level.onChipReuse || graphOutputs.has(v)) return false;
    const prod = producer.get(v);
    const pl = prod ? layerOf.get(prod) : undefined;
    if (!pl) return false; // model input or CPU result
    const cs = consumers.get(v) ?? [];
    if (cs.some((c) => placeOf.get(c)!.on !== 'BPU' || placeOf.get(c)!.subgraph !== pl.subgraph)) return false;
    const cls = consumerLayers(v);
    if (cls.some((l) => l.functionCall !== pl.functionCall)) return false;
    // written in place into a concat (or a view): follows the concat's output
    if (cls.length === 1 && cls[0].inPlace && cls[0] !== pl) return cls[0].outputs.every((ov) => resident(ov));
    const bytes = bytesOf(v);
    if (bytes <= onChip * mode.holdFraction) return true;
    const next = cls.length === 1 && cls[0].index === pl.index + 1;
    return next && (bytes <= onChip * mode.residentFraction || mode.streamChains);
  }

  const peakMacsPerMs = costs.bpu.macsPerCycle * costs.bpu.clockGHz * 1e6;
  const vectorPerMs = costs.bpu.vectorElementsPerCycle * costs.bpu.clockGHz * 1e6;
  const ddrBytesPerMs = costs.bpu.ddrGBps * costs.bpu.ddrEfficiency * 1e6;
  const dual = o.coreNum === 2;

  function costLayer(l: Layer): void {
    if (l.inPlace) {
      Object.assign(l, { loaded: 0, stored: 0, computeMs: 0, dataMs: 0, latencyMs: 0, efficiency: 0, tiling: { kind: 'none', tiles: 1 } });
      return;
    }
    const geo = l.geo;
    const inAll = l.inputs.reduce((s, v) => s + bytesOf(v), 0);
    const inDdr = l.inputs.reduce((s, v) => s + (resident(v) ? 0 : bytesOf(v)), 0);
    const outAll = l.outputs.reduce((s, v) => s + bytesOf(v), 0);
    const outDdr = l.outputs.reduce((s, v) => s + (resident(v) ? 0 : bytesOf(v)), 0);
    const w = geo.weightBytes;
    let loaded = inDdr + w;
    let tiling: Layer['tiling'] = { kind: 'none', tiles: 1 };
    if (inAll + outAll + w > onChip) {
      const wBuf = onChip * costs.bpu.weightShare;
      const actBudget = onChip - Math.min(w, wBuf);
      const tiles = Math.max(1, Math.ceil((inAll + outAll) / actBudget));
      const inRows = Math.max(1, geo.outRows * geo.strideH);
      const halo = tiles > 1 ? 1 + (Math.max(0, geo.kernelH - geo.strideH) * (tiles - 1)) / inRows : 1;
      const rows = inDdr * halo + (w <= wBuf ? w : w * tiles);
      const groups = Math.max(1, Math.ceil(w / wBuf));
      const channels = inAll <= onChip - wBuf ? inDdr + w : inDdr * groups + w;
      if (rows <= channels) {
        loaded = rows;
        tiling = { kind: tiles > 1 ? 'rows' : 'none', tiles };
      } else {
        loaded = channels;
        tiling = { kind: 'channels', tiles: groups };
      }
    }
    const mac = isMacClass(geo.opClass);
    const efficiency = (costs.efficiency[geo.opClass] * level.efficiencyScale) / mode.computeScale;
    let computeMs = mac ? geo.paddedMacs / (peakMacsPerMs * efficiency) : geo.vectorWork / (vectorPerMs * efficiency);
    let overheadUs = costs.bpu.opOverheadUs;
    if (dual) {
      if (geo.outRows >= 2 * costs.bpu.dualCoreMinRows) {
        computeMs /= costs.bpu.dualCoreComputeSpeedup;
        loaded += w; // both cores read the weights
      }
      overheadUs += costs.bpu.dualCoreSyncUs;
    }
    const dataMs = (loaded + outDdr) / ddrBytesPerMs;
    const overlap = mode.overlap * level.overlapScale;
    const latencyMs = Math.max(computeMs, dataMs) + (1 - overlap) * Math.min(computeMs, dataMs) + overheadUs / 1000;
    Object.assign(l, { loaded, stored: outDdr, computeMs, dataMs, latencyMs, efficiency, tiling });
  }

  for (const l of layers) costLayer(l);
  // max_time_per_fc: split each subgraph into function calls, then re-cost (values crossing calls go through DDR)
  const callsPerSubgraph = new Map<number, number>();
  for (const sg of placement.subgraphs) {
    const sgLayers = layers.filter((l) => l.subgraph === sg.id);
    callsPerSubgraph.set(sg.id, splitCalls(sgLayers, o.maxTimePerFc, costs.bpu.functionCallOverheadUs));
  }
  if (o.maxTimePerFc > 0) {
    residentMemo.clear();
    for (const l of layers) costLayer(l);
  }

  // ---------------------------------------------------------------- per-op entries
  const entries: OpPerf[] = [];
  for (const { p, node } of placed) {
    if (p.on === 'CPU') {
      entries.push(cpuOp(p.name, p.op, p.type, node, facts, isConst, costs));
      continue;
    }
    const l = layerOf.get(node)!;
    const geo = l.head === node ? l.geo : opGeometry(node, facts, isConst, costs);
    const head = l.head === node;
    const padded = isMacClass(geo.opClass) ? 2 * geo.paddedMacs : geo.vectorWork;
    entries.push({
      name: p.name, op: p.op, type: p.type, on: 'BPU', subgraph: p.subgraph, opClass: geo.opClass,
      ops: geo.ops, paddedOps: padded,
      loadedBytes: head ? l.loaded : 0, storedBytes: head ? l.stored : 0,
      computeMs: head ? l.computeMs : 0, dataMs: head ? l.dataMs : 0, latencyMs: head ? l.latencyMs : 0,
      efficiency: head ? l.efficiency : 0,
      utilization: head && isMacClass(geo.opClass) && l.latencyMs > 0 ? geo.macs / (peakMacsPerMs * o.coreNum * l.latencyMs) : 0,
      ...(head ? {} : { fusedInto: l.head.label }),
      ...(head && l.inPlace ? { inPlace: true } : {}),
      ...(head && !l.inPlace ? { tiling: l.tiling } : {}),
      functionCall: l.functionCall,
      estimate: false,
    });
  }

  // ---------------------------------------------------------------- borders and input conversion
  const sgName = (id: number): string => `${placement.graphName}_subgraph_${id}`;
  const borders = estimateBorders({
    placement, costs, facts, inputTypeRt: o.inputTypeRt, subgraphName: sgName, imagePixels,
    subgraphOf: (label) => placeOf.get(byLabel.get(label)!)?.subgraph,
    producerSubgraph: (value) => placeOf.get(producer.get(value)!)!.subgraph!,
    inputs: g.realInputs.map((v) => v.name),
  });

  // ---------------------------------------------------------------- totals
  const subgraphs: SubgraphPerf[] = placement.subgraphs.map((sg) => {
    const sgLayers = layers.filter((l) => l.subgraph === sg.id);
    const calls = callsPerSubgraph.get(sg.id) ?? 1;
    const sgOps = entries.filter((e) => e.on === 'BPU' && e.subgraph === sg.id);
    const loadedBytes = sum(sgLayers.map((l) => l.loaded));
    const storedBytes = sum(sgLayers.map((l) => l.stored));
    return {
      id: sg.id, name: sgName(sg.id), nodes: sg.nodes.length,
      latencyMs: sum(sgLayers.map((l) => l.latencyMs)) + (calls * (costs.bpu.functionCallOverheadUs + (dual ? costs.bpu.dualCoreSyncUs : 0))) / 1000,
      ops: sum(sgOps.map((e) => e.ops)),
      loadedBytes, storedBytes, ddrBytes: loadedBytes + storedBytes, functionCalls: calls,
      borderMs: sum(borders.filter((bd) => bd.subgraph === sg.id && bd.kind !== 'preprocess').map((bd) => bd.latencyMs)),
    };
  });
  const bpuMs = sum(subgraphs.map((s) => s.latencyMs));
  const cpuMs = sum(entries.filter((e) => e.on === 'CPU').map((e) => e.latencyMs));
  const borderMs = sum(borders.filter((bd) => bd.kind !== 'preprocess').map((bd) => bd.latencyMs));
  const inputMs = sum(borders.filter((bd) => bd.kind === 'preprocess').map((bd) => bd.latencyMs));
  const runtimeMs = costs.runtime.perInferenceUs / 1000;
  const loadedBytes = sum(subgraphs.map((s) => s.loadedBytes));
  const storedBytes = sum(subgraphs.map((s) => s.storedBytes));
  return {
    march: opts.march,
    model: placement.graphName,
    options: o,
    ops: entries,
    subgraphs,
    borders,
    totals: {
      bpuMs, cpuMs, borderMs, inputMs, runtimeMs,
      endToEndMs: bpuMs + cpuMs + borderMs + inputMs + runtimeMs,
      ops: sum(subgraphs.map((s) => s.ops)),
      loadedBytes, storedBytes, ddrBytes: loadedBytes + storedBytes,
      ddrMBPerFrame: (loadedBytes + storedBytes) / (1024 * 1024),
      functionCalls: sum(subgraphs.map((s) => s.functionCalls)),
    },
    notes,
  };
}

function resolveOptions(opts: PerfOptions, costs: MarchCosts, model: Model): PerfEstimate['options'] {
  const compileMode = opts.compileMode ?? 'latency';
  const optimizeLevel = opts.optimizeLevel ?? 'O3';
  const coreNum = opts.coreNum ?? 1;
  const maxTimePerFc = opts.maxTimePerFc ?? 0;
  const bad = (key: string, msg: string, fix: string): PtqError => new PtqError('E_CONFIG', `compiler_parameters: ${key} ${msg}`, { subject: `compiler_parameters.${key}`, fix });
  if (!costs.compileMode[compileMode]) throw bad('compile_mode', `'${compileMode}' is not supported`, 'use latency or bandwidth');
  if (!costs.optimizeLevel[optimizeLevel]) throw bad('optimize_level', `'${optimizeLevel}' is not supported`, 'use O0, O1, O2 or O3');
  if (!costs.bpu.coreNumSupported.includes(coreNum)) {
    throw bad('core_num', `${coreNum} is not supported on ${costs.march}`, `use ${costs.bpu.coreNumSupported.join(' or ')}${costs.bpu.coreNumSupported.length === 1 ? ' (or leave core_num out)' : ''}`);
  }
  if (!Number.isFinite(maxTimePerFc) || (maxTimePerFc !== 0 && (maxTimePerFc < 1000 || maxTimePerFc > 4294967295))) {
    throw bad('max_time_per_fc', `${maxTimePerFc} is out of range (0 or 1000-4294967295 µs)`, 'use 0 (no limit) or at least 1000');
  }
  const inputTypeRt: Record<string, RtType> = {};
  const records = readPreprocessRecords(model);
  for (const v of model.graph.realInputs) {
    const t = opts.inputTypeRt?.[v.name] ?? records.find((r) => r.input === v.name)?.typeRt ?? (v.type?.dtype === 'float32' || v.type?.dtype === 'float16' ? 'featuremap' : 'rgb');
    if (!costs.input[t]) throw bad('input_type_rt', `'${t}' of input '${v.name}' has no input cost in perf/marchs/${costs.march}.json`, 'use nv12, yuv444, rgb, bgr, gray or featuremap');
    inputTypeRt[v.name] = t;
  }
  return { compileMode, optimizeLevel, coreNum, maxTimePerFc, inputTypeRt };
}

/**
 * Assign layers to function calls: a call closes before a layer that would push it past
 * `maxUs` (µs of layer latency); a layer longer than `maxUs` is cut into several calls.
 * Returns the number of calls (1 without a limit).
 */
function splitCalls(layers: Layer[], maxUs: number, callOverheadUs: number): number {
  if (maxUs <= 0 || !layers.length) return 1;
  const budget = Math.max(1, maxUs - callOverheadUs);
  let call = 0;
  let used = 0;
  for (const l of layers) {
    const us = l.latencyMs * 1000;
    if (used > 0 && used + us > budget) {
      call++;
      used = 0;
    }
    l.functionCall = call;
    if (us > budget) {
      const extra = Math.ceil(us / budget) - 1;
      call += extra;
      used = us - extra * budget;
    } else used += us;
  }
  return call + 1;
}

function cpuOp(name: string, op: string, type: string, node: Node, facts: Map<string, ValueFacts>, isConst: (v: string) => boolean, costs: MarchCosts): OpPerf {
  const c = costs.cpu;
  const geo = opGeometry(node, facts, isConst, costs);
  const inElems = sum(node.inputs.filter((i) => i && !isConst(i)).map((i) => elementsOf(knownShape(facts, i))));
  const outElems = sum(node.outputs.filter((v) => v).map((v) => elementsOf(knownShape(facts, v))));
  const cost = c.ops[node.opType] ?? c.ops.default;
  const computeNs = isMacClass(geo.opClass) ? geo.macs * c.nsPerMac : Math.max(inElems, outElems) * cost.nsPerElement;
  const latencyMs = (cost.fixedUs + computeNs / 1000) / 1000;
  return {
    name, op, type, on: 'CPU', opClass: geo.opClass, ops: geo.ops, paddedOps: geo.ops, loadedBytes: 0, storedBytes: 0,
    computeMs: computeNs / 1e6, dataMs: 0, latencyMs, efficiency: 0, utilization: 0, estimate: true,
  };
}

function sum(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
