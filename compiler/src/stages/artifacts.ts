import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { CheckJson } from '../check';
import { PtqConfig } from '../config';
import { PtqError } from '../errors';
import { Model } from '../onnx/ir';
import { decodeAndValidate } from '../onnx/load';
import { StageName, stageOutputPaths } from './index';

/**
 * Reading what earlier stages wrote into working_dir. A missing file means the earlier stage
 * has not run (or ran for another working_dir): the error names the file and the stage to run.
 */

export const E_STAGE_ORDER = 'E_STAGE_ORDER';

/** The Nx project of a config: the folder of its YAML (the plugin's default project name). */
function projectName(cfg: PtqConfig): string {
  return path.basename(cfg.source.dir) || '<project>';
}

/** The error for `file` (an output of `stage`) being absent. */
export function missingOutput(cfg: PtqConfig, stage: StageName, file: string, what = 'is missing'): PtqError {
  return new PtqError(E_STAGE_ORDER, `'${file}' ${what}; it is written by the ${stage} stage`, {
    subject: file,
    fix: `run the ${stage} stage first (ptq makertbin or nx run ${projectName(cfg)}:${stage})`,
  });
}

/** The bytes of an output of `stage`; a PtqError naming the stage to run when it is absent. */
export function readStageFile(cfg: PtqConfig, stage: StageName, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missingOutput(cfg, stage, file);
    throw new PtqError('E_FILE', `cannot read '${file}': ${code ?? (e as Error).message}`, { subject: file, fix: 'check the working_dir and its permissions' });
  }
}

/** A JSON output of `stage`. */
export function readStageJson<T>(cfg: PtqConfig, stage: StageName, file: string): T {
  const text = readStageFile(cfg, stage, file).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw missingOutput(cfg, stage, file, `is not valid JSON (${(e as Error).message})`);
  }
}

export interface CheckOutputs {
  /** `***_optimized_float_model.onnx` */
  model: Model;
  modelFile: string;
  /** sha256 (hex) of the optimized model file */
  modelHash: string;
  check: CheckJson;
  /** nodes the check stage put on the CPU (check.json `on: 'CPU'`) */
  cpuNodes: Set<string>;
  /** nodes whose output type is int16 (node_info OutputType / set_node_data_type, bayes) */
  int16Nodes: Set<string>;
}

/** The check stage's optimized model and check.json. */
export function readCheckOutputs(cfg: PtqConfig): CheckOutputs {
  const [, optFile, jsonFile] = stageOutputPaths('check', cfg);
  const bytes = readStageFile(cfg, 'check', optFile);
  const model = decodeAndValidate(bytes, optFile);
  const check = readStageJson<CheckJson>(cfg, 'check', jsonFile);
  if (!Array.isArray(check?.nodes)) throw missingOutput(cfg, 'check', jsonFile, 'has no nodes list');
  return {
    model,
    modelFile: optFile,
    modelHash: sha256(bytes),
    check,
    cpuNodes: new Set(check.nodes.filter((n) => n.on === 'CPU').map((n) => n.name)),
    int16Nodes: new Set(check.nodes.filter((n) => n.outputType === 'int16').map((n) => n.name)),
  };
}

export function sha256(bytes: Uint8Array | string): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}
