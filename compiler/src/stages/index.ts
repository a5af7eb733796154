import * as path from 'path';
import { PtqError } from '../errors';
import { loadConfig, PtqConfig, STAGES } from '../config';

/**
 * The seven stages of a conversion, as functions the CLI (`ptq makertbin`), the Nx
 * executors and the watcher all call: `runStage(name, ctx)` reads the model's YAML, does the
 * stage's work in `working_dir` and returns the files it wrote. `stageOutputs` tells, without
 * running anything, which files a stage writes (the Nx plugin declares them as outputs).
 */
export type StageName = (typeof STAGES)[number];
export const STAGE_NAMES: readonly StageName[] = STAGES;

/**
 * The stage graph, defined once: the stages whose outputs each stage reads. The Nx targets'
 * `dependsOn` and the watcher's "what is stale" follow it.
 */
export const STAGE_UPSTREAM: Readonly<Record<StageName, readonly StageName[]>> = {
  preprocess: [],
  check: [],
  calibrate: ['preprocess', 'check'],
  quantize: ['calibrate'],
  compile: ['quantize'],
  perf: ['compile'],
  verify: ['compile'],
};

/** Every stage that reads `stage`'s outputs, directly or through other stages, in pipeline order. */
export function downstreamOf(stage: StageName): StageName[] {
  const found = new Set<StageName>([stage]);
  // STAGE_NAMES is in pipeline order: a stage's upstream stages come before it
  for (const s of STAGE_NAMES) if (STAGE_UPSTREAM[s].some((u) => found.has(u))) found.add(s);
  found.delete(stage);
  return STAGE_NAMES.filter((s) => found.has(s));
}

export interface StageContext {
  /** the model's YAML (relative paths in it are resolved against its folder) */
  configFile: string;
  /** `--model-type`; inferred from the YAML's keys when absent */
  modelType?: 'onnx' | 'caffe';
  /** one line of progress/log output (default: stderr) */
  log?: (line: string) => void;
}

export interface StageResult {
  stage: StageName;
  /** absolute paths of the files written (or restored) */
  outputs: string[];
  /** the log lines the stage printed */
  lines: string[];
}

export type StageFn = (cfg: PtqConfig, ctx: Required<Pick<StageContext, 'log'>> & StageContext) => Promise<StageResult>;

/** Output files of each stage, relative to working_dir (`***` = output_model_file_prefix). */
export function stageOutputs(stage: StageName, cfg: PtqConfig): string[] {
  const p = cfg.model.outputModelFilePrefix;
  switch (stage) {
    case 'preprocess':
      return ['calibration_data'];
    case 'check':
      return [`${p}_original_float_model.onnx`, `${p}_optimized_float_model.onnx`, 'check.json', 'hb_mapper_checker.log'];
    case 'calibrate':
      return [`${p}_calibrated_model.onnx`, `${p}_calibration.json`];
    case 'quantize':
      return [`${p}_quantized_model.onnx`, `${p}_quant_info.json`];
    case 'compile':
      return [`${p}.bin`];
    case 'perf':
      return ['hb_perf_result'];
    case 'verify':
      return ['verify.json'];
  }
}

/** Absolute output paths of a stage. */
export function stageOutputPaths(stage: StageName, cfg: PtqConfig): string[] {
  return stageOutputs(stage, cfg).map((f) => path.join(cfg.model.workingDir, f));
}

const IMPLEMENTATIONS: Partial<Record<StageName, () => StageFn>> = {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- each stage loads its own (heavy) modules only when run
  check: () => require('./check').checkStage as StageFn,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  preprocess: () => require('./preprocess').preprocessStage as StageFn,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  calibrate: () => require('./calibrate').calibrateStage as StageFn,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  quantize: () => require('./quantize').quantizeStage as StageFn,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  compile: () => require('./compile').compileStage as StageFn,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  perf: () => require('./perf').perfStage as StageFn,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  verify: () => require('./verify').verifyStage as StageFn,
};

/** The stages this build of nx-ptq implements. */
export function implementedStages(): StageName[] {
  return STAGE_NAMES.filter((s) => IMPLEMENTATIONS[s] !== undefined);
}

export async function runStage(stage: StageName, ctx: StageContext): Promise<StageResult> {
  if (!STAGE_NAMES.includes(stage)) {
    throw new PtqError('E_STAGE', `unknown stage '${stage}'`, { fix: `use one of: ${STAGE_NAMES.join(', ')}` });
  }
  const impl = IMPLEMENTATIONS[stage];
  if (!impl) {
    throw new PtqError('E_STAGE_UNAVAILABLE', `the '${stage}' stage is not implemented in this version of nx-ptq`, {
      fix: `the stages available are: ${implementedStages().join(', ')}`,
    });
  }
  const cfg = loadConfig(ctx.configFile, ctx.modelType ? { modelType: ctx.modelType } : {});
  const log = ctx.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // the stage memo (compiler/src/store): restores the outputs when the stage's key is stored
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runMemoized } = require('../store/memo') as typeof import('../store/memo');
  return runMemoized(stage, cfg, { log, outputsOf: (s) => stageOutputs(s, cfg) }, (memoLog) => impl()(cfg, { ...ctx, log: memoLog }));
}
