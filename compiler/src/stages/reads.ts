/**
 * Which input files each stage reads, declared once. Three consumers derive from this table
 * and must agree, or a stale result survives an edit:
 * - the Nx plugin's target `inputs` (plugins/nx-ptq/targets.ts): the filesets of `fileGroups`;
 * - the stage memo's key (store/key.ts): the content hashes of the files of `fileGroups`;
 * - the watcher (watch/affected.ts): `FILE_READERS` (`readersOf`) says which stages an edit of
 *   a file, or a different file named in the YAML, affects directly; the stages downstream of
 *   them follow (`stagesReading`).
 * A stage also sees every file of the stages before it through their outputs (calibrate reads
 * check's optimized model, itself made of the float model), so each consumer hashes or watches
 * the groups of the upstream stages too: `fileGroups(stage)`. Only the groups a stage reads
 * ITSELF go into `STAGE_READS`; whether an entry is also implied by an upstream stage changes
 * nothing, but keep the table true to the stage code so that a change to the stage graph
 * (`STAGE_UPSTREAM`) keeps the hashes exact.
 */
import { StageName, STAGE_NAMES, STAGE_UPSTREAM } from './index';

/**
 * The kinds of files a model's stages read besides model.yaml and upstream outputs, in the
 * order every consumer lists them:
 * - `model`: the float model file(s) the YAML names (onnx_model, or prototxt + caffe_model);
 * - `calibration`: the raw samples directly inside each cal_data_dir;
 * - `customOp`: the custom op files (custom_op.op_register_files);
 * - `verifyData`: the raw samples directly inside each folder of `nx-ptq.verify.data_dir`
 *   (verify/settings.ts `readVerifySettings(cfg).dataDirs`), when it is set.
 */
export const FILE_GROUPS = ['model', 'calibration', 'customOp', 'verifyData'] as const;
export type FileGroup = (typeof FILE_GROUPS)[number];

/** The file groups each stage reads itself (not through an upstream stage's outputs). */
export const STAGE_READS: Readonly<Record<StageName, readonly FileGroup[]>> = {
  // input names and shapes from the model; the samples it converts
  preprocess: ['model', 'calibration'],
  // the model it checks and optimises; the custom ops it registers
  check: ['model', 'customOp'],
  // check's optimized model (also with calibration_type load) and calibration_data/ only
  calibrate: [],
  quantize: [],
  // registers the custom ops again to lower them
  compile: ['customOp'],
  perf: [],
  // runs the float model on its own samples: nx-ptq.verify.data_dir (else calibration_data/)
  verify: ['model', 'verifyData'],
};

/** Every stage before `stage`, each once, nearest first (depth-first along `STAGE_UPSTREAM`). */
export function upstreamStages(stage: StageName): StageName[] {
  const out: StageName[] = [];
  const visit = (s: StageName): void => {
    for (const u of STAGE_UPSTREAM[s]) {
      if (!out.includes(u)) {
        out.push(u);
        visit(u);
      }
    }
  };
  visit(stage);
  return out;
}

/** The file groups `stage` depends on: its own and those of every stage before it, in `FILE_GROUPS` order. */
export function fileGroups(stage: StageName): Set<FileGroup> {
  const all = new Set<FileGroup>(STAGE_READS[stage]);
  for (const u of upstreamStages(stage)) for (const g of STAGE_READS[u]) all.add(g);
  return new Set(FILE_GROUPS.filter((g) => all.has(g)));
}

/** The stages that read `group` themselves, in pipeline order. */
export function readersOf(group: FileGroup): StageName[] {
  return STAGE_NAMES.filter((s) => STAGE_READS[s].includes(group));
}

/** The stages that depend on `group` (`fileGroups` holds it), in pipeline order: its readers and everything downstream of them. */
export function stagesReading(group: FileGroup): StageName[] {
  return STAGE_NAMES.filter((s) => fileGroups(s).has(group));
}
