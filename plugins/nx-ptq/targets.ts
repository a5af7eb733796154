/**
 * The seven targets of a model project, built from its configuration (pure: no file access).
 *
 * How the cache key of each stage is made exact (DESIGN §2):
 * - The config: NOT model.yaml as a file (any edit would re-run all seven stages), but the
 *   sha256 of the stage's own config slice (`stageSlices`), so a change in one group re-runs
 *   exactly the stages whose slice holds it, plus whatever their outputs change downstream.
 *   The hash goes into `inputs` as `{runtime: 'echo nx-ptq <stage> slice <sha256>'}` and not
 *   into `options`: Nx hashes the options, outputs and executor of EVERY target of a project
 *   into each task's hash (its "ProjectConfiguration" input; checked on Nx 22.7.9), so a
 *   slice hash in compile's options would re-run preprocess too. Inputs are per target.
 *   Paths are not in the slices; the files they name are inputs, the outputs they place are
 *   `outputs` (part of that project-wide hash: moving working_dir re-runs everything).
 *   The executor reads the model.yaml when it runs, later than Nx hashed the task: it finds
 *   this input in the task's hash details, recomputes the hash from the YAML it loads and
 *   fails the task (so Nx caches nothing) when a save in between changed the slice.
 * - The files a stage reads (`fileGroups`, from the table in compiler/src/stages/reads.ts the
 *   stage memo and the watcher follow too): the model (every stage may re-read it for input
 *   names and shapes), the calibration samples (preprocess and everything after it), the
 *   custom op files (check and everything after it), verify's own samples
 *   (`nx-ptq.verify.data_dir`, verify only). Downstream stages also hash all
 *   upstream outputs (`dependentTasksOutputFiles`, transitive: verify reads check's and
 *   quantize's models, not only compile's .bin).
 * - The toolchain (compiler, executors, plugin sources, lockfile): Nx never hashes a local
 *   executor's code itself.
 * A stage that reads a file outside the workspace cannot be hashed exactly: it is not cached.
 */
import * as crypto from 'crypto';
import * as path from 'path';
import type { TargetConfiguration } from '@nx/devkit';
import { canonicalJson, PtqConfig, stageSlices } from '../../compiler/src/config';
import { readVerifySettings } from '../../compiler/src/verify/settings';
import { StageName, STAGE_NAMES, STAGE_UPSTREAM, stageOutputs } from '../../compiler/src/stages';
import { fileGroups } from '../../compiler/src/stages/reads';

/**
 * What the targets need to know of a stage besides the stage graph (`STAGE_UPSTREAM`: its
 * `dependsOn`) and the files it reads (`STAGE_READS` in compiler/src/stages/reads.ts, shared
 * with the stage memo's key and the watcher).
 */
interface StageInfo {
  description: string;
}

export const STAGE_INFO: Record<StageName, StageInfo> = {
  preprocess: { description: 'Convert the calibration samples to the training input format (calibration_data/)' },
  check: { description: 'Check the float model, insert the input preprocessing, optimise it and place ops on BPU/CPU' },
  calibrate: { description: 'Calibrate activation thresholds (QDQ calibrated model)' },
  quantize: { description: 'Emit the int8 quantized model' },
  compile: { description: 'Compile the quantized model into the .bin heterogeneous model' },
  perf: { description: 'Estimate the performance of the .bin (hb_perf_result/)' },
  verify: { description: 'Verify that the float, quantized and .bin models agree' },
};

export interface TargetSettings {
  /** target name of each stage */
  names: Record<StageName, string>;
  /** target name of the continuous `ptq watch` target */
  watchName: string;
  /** the ptq CLI script, relative to the workspace root (`./compiler/bin/ptq.js`) */
  ptq: string;
  /** executor package or folder: targets use `<executors>:<stage>` */
  executors: string;
  /** the toolchain input: a named input, or the filesets themselves */
  toolchain: string | string[];
}

export interface ModelProject {
  /** workspace-relative folder of the model.yaml (the project root) */
  root: string;
  /** workspace-relative path of the model.yaml */
  configFile: string;
  workspaceRoot: string;
  cfg: PtqConfig;
}

type Input = NonNullable<TargetConfiguration['inputs']>[number];

/** The targets of one model project, keyed by target name. */
export function buildTargets(model: ModelProject, settings: TargetSettings): Record<string, TargetConfiguration> {
  const slices = stageSlices(model.cfg);
  const targets: Record<string, TargetConfiguration> = {};
  for (const stage of STAGE_NAMES) {
    const files = stageFiles(stage, model);
    const outputs = stageOutputs(stage, model.cfg).map((f) => workspacePath(path.join(model.cfg.model.workingDir, f), model));
    const unhashable = [...files, ...outputs].some((f) => f === undefined);
    const inputs: Input[] = [
      ...(typeof settings.toolchain === 'string' ? [settings.toolchain] : settings.toolchain),
      ...files.filter((f): f is string => f !== undefined),
      { runtime: sliceInput(stage, sliceHash(slices[stage])) },
    ];
    if (STAGE_UPSTREAM[stage].length) inputs.push({ dependentTasksOutputFiles: '**/*', transitive: true });
    targets[settings.names[stage]] = {
      executor: `${settings.executors}:${stage}`,
      options: { configFile: model.configFile },
      inputs,
      outputs: outputs.filter((f): f is string => f !== undefined),
      dependsOn: STAGE_UPSTREAM[stage].map((s) => settings.names[s]),
      cache: !unhashable,
      metadata: {
        description: STAGE_INFO[stage].description + (unhashable ? ' (not cached: it reads or writes files outside the workspace)' : ''),
        technologies: ['nx-ptq', model.cfg.model.kind],
        help: { command: 'npx ptq --help', example: { options: { configFile: model.configFile } } },
      },
    };
  }
  targets[settings.watchName] = watchTarget(model.configFile, settings, [model.cfg.model.kind]);
  return targets;
}

/**
 * `nx run <model>:watch`: `ptq watch` on this model through the `watch` executor, a continuous
 * task outside the cached chain. It reruns the stages an edit affects through `nx run-many`,
 * so the results land in Nx's cache. Extra arguments become options
 * (`nx run m1:watch --until=quantize`).
 */
export function watchTarget(configFile: string, settings: TargetSettings, technologies: string[] = []): TargetConfiguration {
  const renamed = STAGE_NAMES.filter((s) => settings.names[s] !== s).map((s) => `${s}=${settings.names[s]}`);
  return {
    executor: `${settings.executors}:watch`,
    options: { configFile, ...(renamed.length ? { targets: renamed } : {}) },
    continuous: true,
    cache: false,
    metadata: {
      description: 'Watch the model: rerun the stages an edit of its YAML, model file or calibration data affects (ptq watch; Ctrl-C stops)',
      technologies: ['nx-ptq', ...technologies],
      help: { command: `node ${shellWord(settings.ptq)} watch --help`, example: { options: { until: 'quantize' } } },
    },
  };
}

/** A word for `sh -c`: quoted when it holds anything but plain path characters. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** sha256 of a slice's canonical JSON (what the stage memo hashes too). */
export function sliceHash(slice: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(slice)).digest('hex');
}

/** The runtime input that puts a stage's slice hash into its task hash (its output is what Nx hashes). */
export function sliceInput(stage: StageName, hash: string): string {
  return `echo nx-ptq ${stage} slice ${hash}`;
}

/** The stage and hash of a `sliceInput` command; undefined for any other command. */
export function parseSliceInput(command: string): { stage: StageName; hash: string } | undefined {
  const m = /^echo nx-ptq (\S+) slice ([0-9a-f]{64})$/.exec(command);
  if (!m || !(STAGE_NAMES as readonly string[]).includes(m[1])) return undefined;
  return { stage: m[1] as StageName, hash: m[2] };
}

/** The file groups a stage hashes: its own and those of every stage before it (compiler/src/stages/reads.ts). */
export { fileGroups };

/** Fileset inputs of a stage; undefined for a file outside the workspace. */
function stageFiles(stage: StageName, model: ModelProject): (string | undefined)[] {
  const { cfg } = model;
  const groups = fileGroups(stage);
  const files: (string | undefined)[] = [];
  if (groups.has('model')) {
    for (const f of [cfg.model.onnxModel, cfg.model.prototxt, cfg.model.caffeModel]) if (f) files.push(workspacePath(f, model));
  }
  if (groups.has('calibration')) {
    // The preprocess stage reads the files directly inside each cal_data_dir (sub-folders skipped).
    for (const inp of cfg.inputs) if (inp.calDataDir) files.push(globIn(workspacePath(inp.calDataDir, model), '*'));
  }
  if (groups.has('customOp') && cfg.customOp) {
    for (const f of cfg.customOp.registerFiles) files.push(workspacePath(f, model));
  }
  if (groups.has('verifyData')) {
    // The verify stage reads the files directly inside each `nx-ptq.verify.data_dir` folder.
    for (const d of readVerifySettings(cfg).dataDirs ?? []) files.push(globIn(workspacePath(d, model), '*'));
  }
  return [...new Set(files)];
}

function globIn(dir: string | undefined, glob: string): string | undefined {
  return dir === undefined ? undefined : `${dir}/${glob}`;
}

/** `{projectRoot}/…` inside the project, `{workspaceRoot}/…` elsewhere in the workspace, undefined outside. */
export function workspacePath(abs: string, model: Pick<ModelProject, 'root' | 'workspaceRoot'>): string | undefined {
  const rel = toPosix(path.relative(model.workspaceRoot, abs));
  if (rel === '' || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) return undefined;
  const root = model.root === '.' ? '' : model.root;
  if (root === '') return `{projectRoot}/${rel}`;
  if (rel.startsWith(`${root}/`)) return `{projectRoot}/${rel.slice(root.length + 1)}`;
  return `{workspaceRoot}/${rel}`;
}

export function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}
