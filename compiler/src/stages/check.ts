import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../errors';
import { PtqConfig } from '../config';
import { formatCheckerLog, formatCheckerTable, formatCpuReasons, placeModel, placementToJson, Placement } from '../check';
import { overridesFromConfig } from '../check/placement';
import { checkInputs, checkNoPostProcessing, checkOpset, checkOutputs } from '../check/model-checks';
import { loadCustomOps } from '../custom';
import { writeFileAtomic, saveModel } from '../onnx/encode';
import { cloneModel } from '../onnx/clone';
import { Model } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { optimizeModel } from '../optimize/pipeline';
import { insertPreprocess, InputSpec } from '../preprocess/hz-preprocess';
import { StageFn, stageOutputPaths } from './index';
import { loadFloatModel } from './model';

export interface CheckResult {
  /** the model with HzPreprocess (or the input model when there is no YAML) */
  original: Model;
  optimized: Model;
  placement: Placement;
  /** log lines: normalisation notes, optimisation passes, placement notes */
  notes: string[];
}

export interface CheckOptions {
  march: 'bernoulli2' | 'bayes';
  inputShapes?: Record<string, number[]>;
  overrides?: ReturnType<typeof overridesFromConfig>;
  /** HzPreprocess specs per image input (none for `ptq checker` without a YAML) */
  preprocess?: InputSpec[];
  /** output_nodes: names of nodes whose outputs become the model's outputs */
  outputNodes?: string[];
}

/**
 * The model checks of `hb_mapper checker` / the check stage: constraints on the model,
 * HzPreprocess insertion, optimisation, BPU/CPU placement. Pure: files are written by callers.
 */
export function checkModel(model: Model, opts: CheckOptions): CheckResult {
  const notes: string[] = [];
  checkOpset(model); // refuses opsets outside 7–21; placement logs what was normalised
  if (opts.outputNodes?.length) setOutputNodes(model, opts.outputNodes);
  checkNoPostProcessing(model.graph.nodes);
  const facts = inferShapes(model, { inputShapes: opts.inputShapes });
  checkInputs(model, facts);
  checkOutputs(model);
  let original = model;
  if (opts.preprocess?.length) {
    const r = insertPreprocess(model, opts.preprocess);
    original = r.model;
    notes.push(...r.notes);
  }
  const optimized = cloneModel(original);
  const opt = optimizeModel(optimized, { inputShapes: opts.inputShapes });
  notes.push(...opt.lines);
  inferShapes(optimized, { inputShapes: opts.inputShapes });
  const placement = placeModel(optimized, { march: opts.march, inputShapes: opts.inputShapes, ...(opts.overrides ?? {}) });
  notes.push(...placement.notes);
  return { original, optimized, placement, notes };
}

/** output_nodes: the named nodes' outputs become the whole output of the model. */
function setOutputNodes(model: Model, names: string[]): void {
  const g = model.graph;
  const outs: string[] = [];
  for (const name of names) {
    const node = g.nodes.find((n) => n.name === name);
    if (!node) {
      throw new PtqError('E_CONFIG', `model_parameters: output_nodes names '${name}', which is not a node of the model`, {
        subject: 'model_parameters.output_nodes',
        fix: 'use node names as shown by `ptq checker` (the Node column)',
      });
    }
    outs.push(...node.outputs.filter((o) => o));
  }
  g.outputs = outs.map((o) => ({ name: o, type: g.typeOf(o) }));
  g.pruneUnused();
}


/** The per-input HzPreprocess specs of a validated config. */
export function preprocessSpecs(cfg: PtqConfig): InputSpec[] {
  return cfg.inputs.map((inp) => ({
    name: inp.name as string,
    typeTrain: inp.typeTrain,
    typeRt: inp.typeRt,
    layoutTrain: inp.layoutTrain,
    spaceAndRange: inp.spaceAndRange,
    normType: inp.normType,
    mean: inp.mean,
    scale: inp.scale,
  }));
}

/** The check stage: `***_original_float_model.onnx`, `***_optimized_float_model.onnx`, check.json, the log. */
export const checkStage: StageFn = async (cfg, ctx) => {
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
    ctx.log(l);
  };
  if (cfg.customOp) {
    for (const op of loadCustomOps(cfg)) log(`custom operator ${op.key} registered from ${path.basename(op.file)}`);
  }
  const { model, cfg: vcfg } = loadFloatModel(cfg);
  const inputShapes = Object.fromEntries(vcfg.inputs.map((i) => [i.name as string, i.shape as number[]]));
  const r = checkModel(model, {
    march: vcfg.model.march,
    inputShapes,
    overrides: overridesFromConfig(vcfg.nodes),
    preprocess: preprocessSpecs(vcfg),
    outputNodes: vcfg.model.outputNodes,
  });
  const [origFile, optFile, jsonFile, logFile] = stageOutputPaths('check', vcfg);
  fs.mkdirSync(vcfg.model.workingDir, { recursive: true });
  saveModel(r.original, origFile);
  saveModel(r.optimized, optFile);
  writeFileAtomic(jsonFile, `${JSON.stringify(placementToJson(r.placement), null, 2)}\n`);
  for (const n of r.notes) log(n);
  const table = formatCheckerTable(r.placement);
  const reasons = formatCpuReasons(r.placement);
  log(table);
  if (reasons) log(reasons);
  writeFileAtomic(logFile, `${[...r.notes, formatCheckerLog(r.placement)].join('\n')}\n`);
  return { stage: 'check', outputs: [origFile, optFile, jsonFile, logFile], lines };
};
