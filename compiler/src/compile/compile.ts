import { BIN_FORMAT_VERSION, BinIo, BinModel, BinOp, BinOpPerf, BinParamGroup, BinSegment, BinSegmentPerf, BinTensor, BinValue } from './bin-format';
import { Model } from '../onnx/ir';
import type { OpPerf, PerfEstimate } from '../perf/types';
import { fuse, levelNumber, OptimizeLevel } from './fuse';
import { addLayerDumps, applyOutputNodes, removeNodes } from './io-passes';
import { assignLayouts } from './layout';
import { LowerInput, lowerQuantizedModel } from './lower';
import { physicalDims, POp, Program } from './program';
import { schedule, Schedule } from './schedule';
import { COMPILER_VERSION, NX_PTQ_VERSION, RUNTIME_VERSION } from './versions';

/**
 * Compile `***_quantized_model.onnx` into one model of a `.bin`: lower the quantized
 * patterns (lower.ts), expose / remove boundary nodes (io-passes.ts), choose layouts
 * (layout.ts), fuse (fuse.ts), order, partition and plan memory (schedule.ts), attach the
 * static perf estimate, and emit the container's records. Deterministic: the same model and
 * options give the same BinModel (and the same bytes once encoded).
 */

export interface CompileOptions {
  /** the model's name in the `.bin` (output_model_file_prefix) */
  name?: string;
  march?: 'bernoulli2' | 'bayes';
  /** nodes placed on the CPU by the check stage (check.json) */
  cpuNodes?: ReadonlySet<string>;
  /** per model input: input_type_rt, input_layout_rt, … */
  inputs?: Record<string, LowerInput>;
  optimizeLevel?: OptimizeLevel;
  compileMode?: 'latency' | 'bandwidth';
  coreNum?: number;
  /** µs, 0 = no limit */
  maxTimePerFc?: number;
  debug?: boolean;
  layerOutDump?: boolean;
  outputNodes?: readonly string[];
  removeNodeType?: readonly string[];
  removeNodeName?: readonly string[];
  /** the four YAML groups as model-info prints them */
  params?: BinParamGroup[];
  /** the static estimate (perf/ estimatePerf on the optimized model and its placement) */
  perf?: PerfEstimate;
}

export interface CompileResult {
  model: BinModel;
  /** what the passes did, for the log */
  notes: string[];
}

export function compileQuantizedModel(quantized: Model, opts: CompileOptions = {}): CompileResult {
  const level = opts.optimizeLevel ?? 'O3';
  const p = lowerQuantizedModel(quantized, { name: opts.name, cpuNodes: opts.cpuNodes, inputs: opts.inputs });
  applyOutputNodes(p, opts.outputNodes ?? []);
  const keep = opts.layerOutDump ? addLayerDumps(p) : new Set<string>();
  assignLayouts(p);
  fuse(p, level, keep);
  removeNodes(p, opts.removeNodeType ?? [], opts.removeNodeName ?? []);
  const sched = schedule(p, { level: levelNumber(level), bandwidth: opts.compileMode === 'bandwidth' });
  const model = emit(p, sched, quantized, opts);
  return { model, notes: p.notes };
}

function layoutName(v: { layout: string; dims: number[] }): string {
  return v.layout === 'nhwc' ? 'NHWC' : v.dims.length === 4 ? 'NCHW' : '';
}

function emit(p: Program, s: Schedule, quantized: Model, opts: CompileOptions): BinModel {
  const values: BinValue[] = [];
  for (const [name, v] of p.values) {
    const m = s.memory.get(name);
    values.push({
      name, dtype: v.dtype, shape: physicalDims(v), layout: layoutName(v), scale: v.scale,
      offset: m?.offset ?? -1, bytes: m?.bytes ?? 0, firstUse: m?.firstUse ?? 0, lastUse: m?.lastUse ?? 0,
    });
  }
  const tensors: BinTensor[] = [];
  for (const [name, t] of p.consts) {
    const raw = t.rawBytes();
    tensors.push({ name, dtype: t.dtype, dims: t.dims.slice(), raw: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) });
  }
  const io = (name: string, value: string, extra: Partial<BinIo> = {}): BinIo => {
    const v = p.values.get(value)!;
    return {
      name, value, dtype: v.dtype, shape: physicalDims(v), layout: layoutName(v), typeRt: '', typeTrain: '', spaceAndRange: '', source: '',
      scale: v.scale, zeroPoint: 0, ...extra,
    };
  };
  const inputs = p.inputs.map((i) => {
    const v = p.values.get(i.value)!;
    const image = v.dtype === 'uint8' && i.typeRt !== 'featuremap';
    return io(i.name, i.value, {
      layout: image ? i.layoutRt : layoutName(v), typeRt: i.typeRt, typeTrain: i.typeTrain, spaceAndRange: i.spaceAndRange, source: i.source,
    });
  });
  const outputs = p.outputs.map((o) => io(o.name, o.value));
  const perf = opts.perf ? perfRecords(p, s, opts.perf, !!opts.debug) : undefined;
  const segments: BinSegment[] = s.segments.map((seg) => {
    const inside = new Set(seg.ops.flatMap((op) => op.outputs.filter((o) => o)));
    const reads = new Set<string>();
    for (const op of seg.ops) for (const i of op.inputs) if (i && p.values.has(i) && !inside.has(i)) reads.add(i);
    const outsideReads = new Set<string>([...p.outputs.map((o) => o.value)]);
    for (const other of s.segments) if (other !== seg) for (const op of other.ops) for (const i of op.inputs) if (i) outsideReads.add(i);
    return {
      name: seg.name,
      kind: seg.kind,
      ops: seg.ops.map((op) => binOp(op, perf?.ops.get(op))),
      inputs: [...reads],
      outputs: [...inside].filter((o) => outsideReads.has(o)),
      ...(perf?.segments.get(seg.name) ? { perf: perf.segments.get(seg.name) } : {}),
    };
  });
  return {
    name: p.name,
    march: opts.march ?? ((JSON.parse(quantized.metadataProps.nx_ptq_quantization ?? '{}') as { march?: string }).march || 'bernoulli2'),
    deps: { nxPtqVersion: NX_PTQ_VERSION, compilerVersion: COMPILER_VERSION, runtimeVersion: RUNTIME_VERSION, formatVersion: BIN_FORMAT_VERSION },
    params: opts.params ?? [],
    inputs,
    outputs,
    values,
    tensors,
    segments,
    arenaBytes: s.arenaBytes,
    deletedNodes: p.deleted,
    perfJson: perf?.json ?? '',
    debug: !!opts.debug,
    graphName: p.graphName,
  };
}

function binOp(op: POp, perf: { perf?: BinOpPerf; functionCall: number } | undefined): BinOp {
  return {
    name: op.name, type: op.type, domain: op.domain, inputs: op.inputs.slice(), outputs: op.outputs.slice(), attrs: op.attrs.map((a) => ({ ...a })),
    sourceNodes: op.sources.slice(), functionCall: perf?.functionCall ?? 0, ...(perf?.perf ? { perf: perf.perf } : {}),
  };
}

interface PerfRecords {
  ops: Map<POp, { perf?: BinOpPerf; functionCall: number }>;
  segments: Map<string, BinSegmentPerf>;
  json: string;
}

/**
 * The static estimate attached to the ops and segments: per op, the estimate of the
 * quantized-model nodes it stands for (debug only) and its BPU function call (from the
 * max_time_per_fc split); per BPU segment, the estimate of the placement subgraph it is (or,
 * when the partitions differ, the sum of its ops); the whole estimate as perf_json with the
 * subgraphs named as the segments.
 */
function perfRecords(p: Program, s: Schedule, est: PerfEstimate, debug: boolean): PerfRecords {
  const byName = new Map<string, OpPerf>();
  for (const e of est.ops) byName.set(e.name, e);
  const ops = new Map<POp, { perf?: BinOpPerf; functionCall: number }>();
  const segments = new Map<string, BinSegmentPerf>();
  const segOfSub = new Map<number, Set<string>>();
  for (const seg of s.segments) {
    if (seg.kind !== 'bpu') continue;
    let call = 0;
    const subs = new Map<number, number>();
    let sum: BinSegmentPerf = { latencyMs: 0, ops: 0, loadedBytes: 0, storedBytes: 0, functionCalls: 1 };
    for (const op of seg.ops) {
      const es = op.sources.map((n) => byName.get(n)).filter((e): e is OpPerf => !!e && e.on === 'BPU');
      if (es.length) {
        call = es[0].functionCall ?? call;
        for (const e of es) if (e.subgraph !== undefined) subs.set(e.subgraph, (subs.get(e.subgraph) ?? 0) + 1);
      }
      const agg: BinOpPerf = { ops: 0, computeMs: 0, dataMs: 0, latencyMs: 0, loadedBytes: 0, storedBytes: 0 };
      for (const e of es) {
        agg.ops += e.ops;
        agg.computeMs += e.computeMs;
        agg.dataMs += e.dataMs;
        agg.latencyMs += e.latencyMs;
        agg.loadedBytes += e.loadedBytes;
        agg.storedBytes += e.storedBytes;
      }
      ops.set(op, { functionCall: call, ...(debug && es.length ? { perf: agg } : {}) });
      sum = {
        latencyMs: sum.latencyMs + agg.latencyMs, ops: sum.ops + agg.ops, loadedBytes: sum.loadedBytes + agg.loadedBytes,
        storedBytes: sum.storedBytes + agg.storedBytes, functionCalls: Math.max(sum.functionCalls, call + 1),
      };
    }
    const main = [...subs.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
    if (main !== undefined) (segOfSub.get(main) ?? segOfSub.set(main, new Set()).get(main)!).add(seg.name);
    segments.set(seg.name, sum);
  }
  // a placement subgraph that is exactly one segment: its own numbers (function-call overheads included)
  const names = new Map<number, string>();
  for (const [id, segs] of segOfSub) {
    if (segs.size !== 1) continue;
    const seg = [...segs][0];
    names.set(id, seg);
    const sg = est.subgraphs.find((x) => x.id === id);
    if (sg) segments.set(seg, { latencyMs: sg.latencyMs, ops: sg.ops, loadedBytes: sg.loadedBytes, storedBytes: sg.storedBytes, functionCalls: sg.functionCalls });
  }
  const oldName = (id: number): string => est.subgraphs.find((x) => x.id === id)?.name ?? '';
  const renamed: PerfEstimate = {
    ...est,
    model: p.name,
    subgraphs: est.subgraphs.map((sg) => ({ ...sg, name: names.get(sg.id) ?? sg.name })),
    borders: est.borders.map((b) => {
      if (b.subgraph === undefined || !names.has(b.subgraph)) return b;
      const from = oldName(b.subgraph);
      return from && b.name.startsWith(from) ? { ...b, name: `${names.get(b.subgraph)}${b.name.slice(from.length)}` } : b;
    }),
  };
  return { ops, segments, json: JSON.stringify(renamed) };
}
