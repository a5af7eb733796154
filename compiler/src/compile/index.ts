import type { Placement } from '../check/placement';
import type { PtqConfig } from '../config';
import type { Model } from '../onnx/ir';
import { estimatePerf } from '../perf/estimate';
import type { RtType } from '../preprocess/hz-preprocess';
import type { BinModel } from './bin-format';
import { compileQuantizedModel, CompileOptions } from './compile';
import { LowerInput } from './lower';
import { paramGroups } from './params';

/**
 * compile/: lowering `***_quantized_model.onnx` to the `.bin` (bin-format.ts, the container;
 * compile.ts, the pipeline of passes). `compileFromConfig` is what the compile stage runs.
 */
export { compileQuantizedModel } from './compile';
export type { CompileOptions, CompileResult } from './compile';
export { paramGroups } from './params';

export interface CompileInputs {
  /** `***_optimized_float_model.onnx` and its placement (check stage): the static perf estimate's input */
  optimized?: Model;
  placement?: Placement;
  /** nodes the check stage put on the CPU */
  cpuNodes?: ReadonlySet<string>;
}

/** The compiler options of a config (compiler_parameters, model_parameters, the inputs). */
export function compileOptions(cfg: PtqConfig): CompileOptions {
  const inputs: Record<string, LowerInput> = {};
  for (const i of cfg.inputs) {
    if (!i.name) continue;
    inputs[i.name] = { typeRt: i.typeRt, typeTrain: i.typeTrain, layoutTrain: i.layoutTrain, layoutRt: i.layoutRt, spaceAndRange: i.spaceAndRange, source: i.source };
  }
  return {
    name: cfg.model.outputModelFilePrefix,
    march: cfg.model.march,
    inputs,
    optimizeLevel: cfg.compiler.optimizeLevel,
    compileMode: cfg.compiler.compileMode,
    coreNum: cfg.compiler.coreNum,
    maxTimePerFc: cfg.compiler.maxTimePerFc,
    debug: cfg.compiler.debug,
    layerOutDump: cfg.model.layerOutDump,
    outputNodes: cfg.model.outputNodes,
    removeNodeType: cfg.model.removeNodeType,
    removeNodeName: cfg.model.removeNodeName,
    params: paramGroups(cfg),
  };
}

export function compileFromConfig(cfg: PtqConfig, quantized: Model, ins: CompileInputs = {}): { model: BinModel; notes: string[]; summary: string[] } {
  const opts = compileOptions(cfg);
  if (ins.cpuNodes) opts.cpuNodes = ins.cpuNodes;
  if (ins.optimized && ins.placement) {
    const inputTypeRt: Record<string, RtType> = {};
    for (const i of cfg.inputs) if (i.name) inputTypeRt[i.name] = i.typeRt;
    opts.perf = estimatePerf(ins.optimized, ins.placement, {
      march: cfg.model.march, compileMode: cfg.compiler.compileMode, optimizeLevel: cfg.compiler.optimizeLevel,
      coreNum: cfg.compiler.coreNum, maxTimePerFc: cfg.compiler.maxTimePerFc, inputTypeRt,
    });
  }
  const { model, notes } = compileQuantizedModel(quantized, opts);
  return { model, notes, summary: summaryLines(model, opts) };
}

/** The stage's closing lines: the model, the arena, one line per BPU subgraph. */
export function summaryLines(m: BinModel, opts: Pick<CompileOptions, 'optimizeLevel' | 'compileMode'> = {}): string[] {
  const bpu = m.segments.filter((s) => s.kind === 'bpu');
  const cpuOps = m.segments.filter((s) => s.kind === 'cpu').reduce((n, s) => n + s.ops.length, 0);
  const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  const out = [
    `INFO compile: model '${m.name}' (${m.march}, ${opts.optimizeLevel ?? 'O3'}, ${opts.compileMode ?? 'latency'}): ${bpu.length} BPU subgraph(s), ${cpuOps} CPU op(s), activation arena ${m.arenaBytes} bytes (${kib(m.arenaBytes)})`,
  ];
  for (const s of bpu) {
    const kinds = new Map<string, number>();
    for (const op of s.ops) kinds.set(op.type, (kinds.get(op.type) ?? 0) + 1);
    const byCount = [...kinds].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, n]) => `${n} ${k}`).join(', ');
    const perf = s.perf ? `, ${s.perf.functionCalls} function call(s), estimated ${s.perf.latencyMs.toFixed(3)} ms, ${(s.perf.ops / 1e6).toFixed(2)} MOPs` : '';
    out.push(`INFO   ${s.name}: ${s.ops.length} op(s) (${byCount})${perf}`);
  }
  if (m.deletedNodes.length) out.push(`INFO   deleted nodes: ${m.deletedNodes.map((d) => d.name).join(', ')}`);
  return out;
}
