import * as fs from 'fs';
import type { CheckJson, Placement } from '../check';
import { PtqConfig } from '../config';
import { decodeAndValidate } from '../onnx/load';
import { readCheckOutputs, readStageFile } from './artifacts';
import { StageFn, stageOutputPaths } from './index';

/**
 * The compile stage (hb_mapper makertbin's last step): `***_quantized_model.onnx` →
 * `***.bin` with compiler_parameters (compile/compile.ts), the static perf estimate of the
 * optimized model and its placement (check stage) attached. Prints the activation arena
 * size and one line per BPU subgraph. The file is written atomically.
 */
export const compileStage: StageFn = async (cfg, ctx) => {
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
    ctx.log(l);
  };
  const { compileFromConfig } = await import('../compile');
  const { writeBinFile, BIN_FORMAT_VERSION } = await import('../compile/bin-format');
  if (cfg.customOp) {
    const { loadCustomOps } = await import('../custom');
    loadCustomOps(cfg);
  }
  const chk = readCheckOutputs(cfg);
  const [qFile] = stageOutputPaths('quantize', cfg);
  const quantized = decodeAndValidate(readStageFile(cfg, 'quantize', qFile), qFile);
  const placement = placementFromJson(chk.check);
  const { model, notes, summary } = compileFromConfig(cfg, quantized, { optimized: chk.model, placement, cpuNodes: chk.cpuNodes });
  for (const n of notes) log(`INFO ${n}`);
  const [binFile] = stageOutputPaths('compile', cfg);
  fs.mkdirSync(cfg.model.workingDir, { recursive: true });
  writeBinFile(binFile, { formatVersion: BIN_FORMAT_VERSION, packed: false, models: [model] });
  for (const l of summary) log(l);
  log(`INFO compile: ${binFile} written (${fs.statSync(binFile).size} bytes)`);
  return { stage: 'compile', outputs: [binFile], lines };
};

/** check.json back into the Placement the perf model reads. */
export function placementFromJson(j: CheckJson): Placement {
  return {
    march: j.march as Placement['march'],
    opset: j.opset,
    graphName: j.graph,
    nodes: j.nodes.map((n) => ({
      name: n.name, op: n.op, on: n.on, type: n.type, inputType: n.inputType, outputType: n.outputType,
      ...(n.subgraph !== null && n.subgraph !== undefined ? { subgraph: n.subgraph } : {}),
      ...(n.reason ? { reason: n.reason } : {}),
      ...(n.inputTypes ? { inputTypes: Object.fromEntries(Object.entries(n.inputTypes).map(([k, v]) => [Number(k), v])) } : {}),
    })),
    subgraphs: j.subgraphs.map((s) => ({ id: s.id, nodes: s.nodes.slice(), inputs: s.inputs.slice(), outputs: s.outputs.slice() })),
    boundaries: j.boundaries.map((b) => ({ ...b, to: b.to.slice() })),
    folded: j.folded.slice(),
    notes: j.notes.slice(),
  };
}

export type { PtqConfig };
