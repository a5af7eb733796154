import type { BorderPerf, OpPerf, PerfEstimate, SubgraphPerf } from '../types';
import type { ModelStructure } from './structure';

/**
 * The machine-readable report (`<name>.json`, `<subgraph>.json`): the numbers the HTML shows,
 * named for what they are. `bpu` is the static estimate of the BPU part (what hb_perf's Model
 * Performance Summary reports); `cpuEstimate` the CPU side from the CPU cost table;
 * `hostSimulator`, when present, time measured running the model on this machine's simulator —
 * a different quantity, never comparable to the BPU estimate.
 */

export const REPORT_FORMAT_VERSION = 1;
export const HOST_SIMULATOR_LABEL = 'host simulator (not BPU)';
export const CPU_ESTIMATE_LABEL = 'CPU side: estimates from the CPU cost table, not part of the model latency';

/** The reference's warning (hb_perf) when the model was compiled without `debug: True`. */
export const NO_LAYER_INFO_WARNING = [
  "WARNING bpu model don't have per-layer perf info.",
  'WARNING if you need per-layer perf info, please enable [compiler_parameters.debug:True] when using makertbin.',
] as const;

/** One node (or segment) of a host simulator profile. */
export interface HostProfileNode {
  name: string;
  /** op type or segment kind */
  type?: string;
  /** 'BPU' | 'CPU' or the segment kind, as the runtime names it */
  device?: string;
  averageMs: number;
  calls?: number;
}

/** Time measured by running the `.bin` on the host runtime (`exec perf`), not a BPU figure. */
export interface HostProfile {
  /** what ran it, e.g. `nx-ptq host runtime` */
  engine: string;
  frames: number;
  threads: number;
  averageMs: number;
  minMs?: number;
  maxMs?: number;
  /** frames per second over all threads */
  fps?: number;
  nodes?: HostProfileNode[];
}

export interface PerfReportOptions {
  /** the model's name (folder and file names derive from it) */
  modelName: string;
  /** compiled with `compiler_parameters.debug: True`: per-layer details are reported */
  debug: boolean;
  /** the BIN Model Structure to draw (no picture without it) */
  structure?: ModelStructure;
  /** the host simulator's measured profile */
  hostProfile?: HostProfile;
  /** the `.bin` the estimate was read from (shown in the report) */
  source?: string;
}

const round = Math.round;
const MB = 2 ** 20;

/** `x` rounded to 6 decimals (ms, MB): stable, readable JSON. */
export function r6(x: number): number {
  return round(x * 1e6) / 1e6;
}

export interface SubgraphRow {
  id: number;
  name: string;
  /** the subgraph's page (without extension) */
  file: string;
  opsPerFrame: number;
  ddrMBPerFrame: number;
  latencyMs: number;
  loadedBytesPerFrame: number;
  storedBytesPerFrame: number;
  functionCalls: number;
  nodes: number;
  borderMs: number;
}

export interface LayerRow {
  name: string;
  op: string;
  type: string;
  subgraph: number;
  opsPerFrame: number;
  computeMs: number;
  dataMs: number;
  latencyMs: number;
  loadedBytes: number;
  storedBytes: number;
  efficiency: number;
  utilization: number;
  functionCall: number;
  fusedInto?: string;
  inPlace?: boolean;
  tiling?: string;
}

export function subgraphRow(s: SubgraphPerf, file: string): SubgraphRow {
  return {
    id: s.id,
    name: s.name,
    file,
    opsPerFrame: s.ops,
    ddrMBPerFrame: r6(s.ddrBytes / MB),
    latencyMs: r6(s.latencyMs),
    loadedBytesPerFrame: s.loadedBytes,
    storedBytesPerFrame: s.storedBytes,
    functionCalls: s.functionCalls,
    nodes: s.nodes,
    borderMs: r6(s.borderMs),
  };
}

export function layerRow(o: OpPerf): LayerRow {
  return {
    name: o.name,
    op: o.op,
    type: o.type,
    subgraph: o.subgraph ?? -1,
    opsPerFrame: o.ops,
    computeMs: r6(o.computeMs),
    dataMs: r6(o.dataMs),
    latencyMs: r6(o.latencyMs),
    loadedBytes: o.loadedBytes,
    storedBytes: o.storedBytes,
    efficiency: r6(o.efficiency),
    utilization: r6(o.utilization),
    functionCall: o.functionCall ?? 0,
    ...(o.fusedInto !== undefined ? { fusedInto: o.fusedInto } : {}),
    ...(o.inPlace ? { inPlace: true } : {}),
    ...(o.tiling && o.tiling.kind !== 'none' ? { tiling: `${o.tiling.kind} x${o.tiling.tiles}` } : {}),
  };
}

function borderRow(b: BorderPerf): Record<string, unknown> {
  return { name: b.name, kind: b.kind, value: b.value, ...(b.subgraph !== undefined ? { subgraph: b.subgraph } : {}), elements: b.elements, latencyMs: r6(b.latencyMs) };
}

function cpuRow(o: OpPerf): Record<string, unknown> {
  return { name: o.name, op: o.op, opsPerFrame: o.ops, latencyMs: r6(o.latencyMs) };
}

/** The BPU op rows of the layer details, in execution order. */
export function layerRows(e: PerfEstimate, subgraph?: number): LayerRow[] {
  return e.ops.filter((o) => o.on === 'BPU' && (subgraph === undefined || o.subgraph === subgraph)).map(layerRow);
}

export function hostSection(h: HostProfile): Record<string, unknown> {
  return {
    label: HOST_SIMULATOR_LABEL,
    note: 'wall time of the nx-ptq host runtime on this machine; it says nothing about BPU latency',
    engine: h.engine,
    frames: h.frames,
    threads: h.threads,
    averageMs: r6(h.averageMs),
    ...(h.minMs !== undefined ? { minMs: r6(h.minMs) } : {}),
    ...(h.maxMs !== undefined ? { maxMs: r6(h.maxMs) } : {}),
    ...(h.fps !== undefined ? { fps: r6(h.fps) } : {}),
    ...(h.nodes ? { nodes: h.nodes.map((n) => ({ name: n.name, ...(n.type ? { type: n.type } : {}), ...(n.device ? { device: n.device } : {}), averageMs: r6(n.averageMs), ...(n.calls !== undefined ? { calls: n.calls } : {}) })) } : {}),
  };
}

/** `<name>.json`. */
export function modelJson(e: PerfEstimate, opts: PerfReportOptions, files: ReadonlyMap<number, string>, warnings: readonly string[]): Record<string, unknown> {
  const t = e.totals;
  return {
    tool: 'ptq perf',
    formatVersion: REPORT_FORMAT_VERSION,
    model: opts.modelName,
    ...(opts.source ? { source: opts.source } : {}),
    march: e.march,
    options: e.options,
    debug: opts.debug,
    bpu: {
      label: 'static estimate of the BPU part (what hb_perf reports); CPU operators are not included',
      summary: {
        modelName: opts.modelName,
        modelLatencyMs: r6(t.bpuMs),
        totalDdrMBPerFrame: r6(t.ddrMBPerFrame),
        loadedBytesPerFrame: t.loadedBytes,
        storedBytesPerFrame: t.storedBytes,
        opsPerFrame: t.ops,
        functionCalls: t.functionCalls,
      },
      subgraphs: e.subgraphs.map((s) => subgraphRow(s, files.get(s.id)!)),
      ...(opts.debug ? { layers: layerRows(e) } : {}),
    },
    cpuEstimate: {
      label: CPU_ESTIMATE_LABEL,
      cpuMs: r6(t.cpuMs),
      borderMs: r6(t.borderMs),
      inputMs: r6(t.inputMs),
      runtimeMs: r6(t.runtimeMs),
      endToEndMs: r6(t.endToEndMs),
      ops: e.ops.filter((o) => o.on === 'CPU').map(cpuRow),
      borders: e.borders.map(borderRow),
    },
    ...(opts.hostProfile ? { hostSimulator: hostSection(opts.hostProfile) } : {}),
    ...(opts.structure
      ? {
          structure: {
            subgraphs: opts.structure.subgraphs,
            nodes: opts.structure.nodes.map((n) => ({ id: n.id, name: n.label, type: n.type, kind: n.kind, ...(n.subgraph ? { subgraph: n.subgraph } : {}) })),
            edges: opts.structure.edges.map((x) => ({ from: x.from, to: x.to, value: x.value })),
          },
        }
      : {}),
    notes: e.notes,
    warnings,
  };
}

/** `<subgraph>.json`. */
export function subgraphJson(e: PerfEstimate, s: SubgraphPerf, opts: PerfReportOptions, file: string): Record<string, unknown> {
  return {
    tool: 'ptq perf',
    formatVersion: REPORT_FORMAT_VERSION,
    model: opts.modelName,
    march: e.march,
    debug: opts.debug,
    subgraph: subgraphRow(s, file),
    borders: e.borders.filter((b) => b.subgraph === s.id).map(borderRow),
    ...(opts.debug ? { layers: layerRows(e, s.id) } : {}),
  };
}
