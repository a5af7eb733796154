import type { Device } from '../check/placement';
import type { March } from '../check/table';
import type { CompileMode, OptimizeLevel } from '../config/types';
import type { RtType } from '../preprocess/hz-preprocess';
import type { MarchCosts, OpClass } from './costs';

/** Options and results of the static performance model (estimate.ts). */

export interface PerfOptions {
  march: March;
  /** `compile_mode` (default latency) */
  compileMode?: CompileMode;
  /** `optimize_level` (default O3) */
  optimizeLevel?: OptimizeLevel;
  /** `core_num` (default 1; 2 on bernoulli2 only) */
  coreNum?: number;
  /** `max_time_per_fc` in µs (default 0 = no limit; else at least 1000) */
  maxTimePerFc?: number;
  /** `input_type_rt` per input name (default: from the model's HzPreprocess records; float inputs: featuremap) */
  inputTypeRt?: Record<string, RtType>;
  /** cost constants to use instead of perf/marchs/<march>.json (fitting, experiments) */
  costs?: MarchCosts;
}

export interface OpPerf {
  /** node name (as the placement names it) */
  name: string;
  /** ONNX op type */
  op: string;
  /** BPU operator type, or the ONNX op type on the CPU */
  type: string;
  on: Device;
  subgraph?: number;
  opClass: OpClass;
  /** operations per frame: 2 × MACs for conv-like ops, element operations otherwise */
  ops: number;
  /** operations including channel / width padding */
  paddedOps: number;
  loadedBytes: number;
  storedBytes: number;
  computeMs: number;
  dataMs: number;
  latencyMs: number;
  /** efficiency applied (class × optimize level ÷ compile-mode recompute); 0 for fused ops */
  efficiency: number;
  /** achieved fraction of the MAC array's peak (MAC layers), else 0 */
  utilization: number;
  /** the layer head this op is fused into (its cost is counted there) */
  fusedInto?: string;
  /** written in place / a view: no cost of its own */
  inPlace?: boolean;
  tiling?: { kind: 'none' | 'rows' | 'channels'; tiles: number };
  /** BPU function call (0-based, within the subgraph) */
  functionCall?: number;
  /** true for CPU ops: an estimate from the CPU cost table, not a BPU model */
  estimate: boolean;
}

export type BorderKind = 'quantize' | 'dequantize' | 'input_layout_convert' | 'output_layout_convert' | 'preprocess';

export interface BorderPerf {
  /** board-profile style name: `<value>_HzQuantize`, `<subgraph>_output_layout_convert`, `Preprocess` */
  name: string;
  kind: BorderKind;
  /** the value (or model input) converted */
  value: string;
  subgraph?: number;
  elements: number;
  latencyMs: number;
  estimate: true;
}

export interface SubgraphPerf {
  id: number;
  /** `<graph>_subgraph_<id>` */
  name: string;
  nodes: number;
  latencyMs: number;
  ops: number;
  loadedBytes: number;
  storedBytes: number;
  ddrBytes: number;
  /** BPU function calls after the max_time_per_fc split */
  functionCalls: number;
  /** the subgraph's Quantize/Dequantize and layout conversions (CPU side) */
  borderMs: number;
}

export interface PerfTotals {
  /** Σ subgraph latencies: the BPU time per frame */
  bpuMs: number;
  /** Σ CPU ops (estimates) */
  cpuMs: number;
  /** Σ border ops (Quantize, Dequantize, layout conversions) */
  borderMs: number;
  /** input conversion (`Preprocess`) */
  inputMs: number;
  /** per-inference runtime overhead */
  runtimeMs: number;
  /** one frame, one thread: everything above */
  endToEndMs: number;
  /** BPU operations per frame */
  ops: number;
  loadedBytes: number;
  storedBytes: number;
  ddrBytes: number;
  /** (loaded + stored) / 2^20 */
  ddrMBPerFrame: number;
  functionCalls: number;
}

export interface PerfEstimate {
  march: March;
  model: string;
  options: { compileMode: CompileMode; optimizeLevel: OptimizeLevel; coreNum: number; maxTimePerFc: number; inputTypeRt: Record<string, RtType> };
  ops: OpPerf[];
  subgraphs: SubgraphPerf[];
  borders: BorderPerf[];
  totals: PerfTotals;
  notes: string[];
}
