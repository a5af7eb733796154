import type { March } from '../../check/table';
import type { BinModel } from '../../compile/bin-format';
import type { CompileMode, OptimizeLevel } from '../../config/types';
import { PtqError } from '../../errors';
import type { OpPerf, PerfEstimate, SubgraphPerf } from '../types';
import type { HostProfile, PerfReportOptions } from './data';
import { structureFromBin } from './structure';

/**
 * What the report needs from one model of a `.bin`: the static estimate the compile stage
 * recorded (`perf_json`), or — for a file without one — the per-segment numbers of its BPU
 * segments; the structure of its segments; and its debug flag.
 */

const MB = 2 ** 20;

function bad(source: string, model: string, why: string): PtqError {
  return new PtqError('E_BIN_FORMAT', `model '${model}' in '${source}' has a malformed perf record (${why})`, {
    subject: source,
    fix: 'compile the model again with this version of nx-ptq (nx run <model>:compile or ptq makertbin)',
  });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const TOTALS = ['bpuMs', 'cpuMs', 'borderMs', 'inputMs', 'runtimeMs', 'endToEndMs', 'ops', 'loadedBytes', 'storedBytes', 'ddrBytes', 'ddrMBPerFrame', 'functionCalls'] as const;
const SUBGRAPH = ['id', 'nodes', 'latencyMs', 'ops', 'loadedBytes', 'storedBytes', 'ddrBytes', 'functionCalls', 'borderMs'] as const;
const OP = ['ops', 'computeMs', 'dataMs', 'latencyMs', 'loadedBytes', 'storedBytes'] as const;

/** Check the shape of a recorded PerfEstimate (numbers finite, names strings) before trusting it. */
export function parsePerfRecord(json: string, source: string, model: string): PerfEstimate {
  let e: unknown;
  try {
    e = JSON.parse(json);
  } catch (err) {
    throw bad(source, model, `not JSON: ${(err as Error).message}`);
  }
  if (!isObj(e)) throw bad(source, model, 'not an object');
  const num = (o: Record<string, unknown>, k: string, where: string): void => {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k] as number)) throw bad(source, model, `${where}.${k} is not a number`);
  };
  if (!isObj(e.totals)) throw bad(source, model, 'no totals');
  for (const k of TOTALS) num(e.totals, k, 'totals');
  if (!isObj(e.options)) throw bad(source, model, 'no options');
  for (const k of ['subgraphs', 'ops', 'borders', 'notes'] as const) if (!Array.isArray(e[k])) throw bad(source, model, `${k} is not a list`);
  (e.subgraphs as unknown[]).forEach((s, i) => {
    if (!isObj(s) || typeof s.name !== 'string') throw bad(source, model, `subgraphs[${i}] has no name`);
    for (const k of SUBGRAPH) num(s, k, `subgraphs[${i}]`);
  });
  (e.ops as unknown[]).forEach((o, i) => {
    if (!isObj(o) || typeof o.name !== 'string' || typeof o.type !== 'string' || (o.on !== 'BPU' && o.on !== 'CPU')) throw bad(source, model, `ops[${i}] has no name, type or device`);
    for (const k of OP) num(o, k, `ops[${i}]`);
  });
  (e.borders as unknown[]).forEach((b, i) => {
    if (!isObj(b) || typeof b.name !== 'string') throw bad(source, model, `borders[${i}] has no name`);
    num(b, 'latencyMs', `borders[${i}]`);
    num(b, 'elements', `borders[${i}]`);
  });
  if ((e.notes as unknown[]).some((n) => typeof n !== 'string')) throw bad(source, model, 'notes are not strings');
  return e as unknown as PerfEstimate;
}

function param(m: BinModel, keys: string[]): string | undefined {
  for (const g of m.params) {
    if (g.group !== 'compiler_parameters') continue;
    for (const p of g.params) if (keys.includes(p.key.trim().toLowerCase())) return p.value.trim();
  }
  return undefined;
}

/** A PerfEstimate from the segments' own perf records (a `.bin` without `perf_json`). */
export function estimateFromSegments(m: BinModel): PerfEstimate {
  const subgraphs: SubgraphPerf[] = [];
  const ops: OpPerf[] = [];
  for (const s of m.segments) {
    if (s.kind === 'bpu') {
      // segments of one name are one subgraph (a writer may split it around independent CPU ops)
      let sg = subgraphs.find((x) => x.name === s.name);
      if (!sg) {
        sg = { id: subgraphs.length, name: s.name, nodes: 0, latencyMs: 0, ops: 0, loadedBytes: 0, storedBytes: 0, ddrBytes: 0, functionCalls: 0, borderMs: 0 };
        subgraphs.push(sg);
      }
      const id = sg.id;
      const p = s.perf ?? { latencyMs: 0, ops: 0, loadedBytes: 0, storedBytes: 0, functionCalls: 0 };
      sg.nodes += s.ops.length;
      sg.latencyMs += p.latencyMs;
      sg.ops += p.ops;
      sg.loadedBytes += p.loadedBytes;
      sg.storedBytes += p.storedBytes;
      sg.ddrBytes += p.loadedBytes + p.storedBytes;
      sg.functionCalls += p.functionCalls;
      for (const op of s.ops) {
        if (!op.perf) continue;
        ops.push({
          name: op.name, op: op.type, type: op.type, on: 'BPU', subgraph: id, opClass: 'other', ops: op.perf.ops, paddedOps: op.perf.ops,
          loadedBytes: op.perf.loadedBytes, storedBytes: op.perf.storedBytes, computeMs: op.perf.computeMs, dataMs: op.perf.dataMs,
          latencyMs: op.perf.latencyMs, efficiency: 0, utilization: 0, functionCall: op.functionCall, estimate: false,
        });
      }
    }
  }
  const sum = (f: (s: SubgraphPerf) => number): number => subgraphs.reduce((a, s) => a + f(s), 0);
  const loaded = sum((s) => s.loadedBytes);
  const stored = sum((s) => s.storedBytes);
  const bpuMs = sum((s) => s.latencyMs);
  const num = (v: string | undefined, d: number): number => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : d);
  return {
    march: m.march as March,
    model: m.graphName || m.name,
    options: {
      compileMode: (param(m, ['compile_mode']) as CompileMode | undefined) ?? 'latency',
      optimizeLevel: (param(m, ['optimize_level']) as OptimizeLevel | undefined) ?? 'O3',
      coreNum: num(param(m, ['core_num']), 1),
      maxTimePerFc: num(param(m, ['max_time_per_fc']), 0),
      inputTypeRt: Object.fromEntries(m.inputs.map((i) => [i.name, (i.typeRt || 'featuremap') as PerfEstimate['options']['inputTypeRt'][string]])),
    },
    ops,
    subgraphs,
    borders: [],
    totals: {
      bpuMs, cpuMs: 0, borderMs: 0, inputMs: 0, runtimeMs: 0, endToEndMs: bpuMs, ops: sum((s) => s.ops), loadedBytes: loaded, storedBytes: stored,
      ddrBytes: loaded + stored, ddrMBPerFrame: (loaded + stored) / MB, functionCalls: sum((s) => s.functionCalls),
    },
    notes: ['the .bin has no static perf record: the numbers are its BPU segments\' own; CPU-side estimates are not available'],
  };
}

/**
 * The estimate names its subgraphs after the graph (`<graph>_subgraph_<id>`, placement order);
 * the `.bin` after its segments. Match each estimated subgraph to the BPU segment holding most
 * of its nodes (through the ops' source nodes) and take the segment's name, so the Details table
 * and the picture's boxes agree. Left as is unless the match is one-to-one.
 */
export function alignSubgraphNames(e: PerfEstimate, m: BinModel): PerfEstimate {
  const segOfNode = new Map<string, string>();
  for (const s of m.segments) if (s.kind === 'bpu') for (const op of s.ops) for (const n of [op.name, ...op.sourceNodes]) if (!segOfNode.has(n)) segOfNode.set(n, s.name);
  const names = new Map<number, string>();
  for (const sg of e.subgraphs) {
    const votes = new Map<string, number>();
    for (const o of e.ops) {
      const seg = o.on === 'BPU' && o.subgraph === sg.id ? segOfNode.get(o.name) : undefined;
      if (seg) votes.set(seg, (votes.get(seg) ?? 0) + 1);
    }
    let best: string | undefined;
    for (const [seg, v] of votes) if (best === undefined || v > votes.get(best)!) best = seg;
    if (best === undefined) return e;
    names.set(sg.id, best);
  }
  if (new Set(names.values()).size !== names.size) return e;
  return { ...e, subgraphs: e.subgraphs.map((s) => ({ ...s, name: names.get(s.id)! })) };
}

/** The estimate and report options of one model of a `.bin`. */
export function reportInputsFromBin(m: BinModel, source: string, hostProfile?: HostProfile): { estimate: PerfEstimate; options: PerfReportOptions } {
  const estimate = m.perfJson ? alignSubgraphNames(parsePerfRecord(m.perfJson, source, m.name), m) : estimateFromSegments(m);
  return {
    estimate,
    options: { modelName: m.name, debug: m.debug, structure: structureFromBin(m), source, ...(hostProfile ? { hostProfile } : {}) },
  };
}
