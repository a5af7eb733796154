import * as fs from 'fs';
import * as path from 'path';
import { PtqConfig, stageSlices } from '../config';
import { STAGE_UPSTREAM, StageName } from '../stages';
import { fileGroups, upstreamStages } from '../stages/reads';
import { readVerifySettings } from '../verify/settings';
import { sha256File } from './hash';
import { InputHash, KeyParts } from './store';
import { toolchainId } from './toolchain';

/**
 * What a stage's memo key is computed from: the stage, the toolchain, the stage's config slice
 * and the content of every file it may read:
 * - the model files the YAML names (every stage may re-read the float model for input names
 *   and shapes, and verify runs it), named by their key (`model:onnx_model`);
 * - the calibration samples directly inside each cal_data_dir (preprocess, and everything
 *   after it through its outputs), named `cal_data_dir[<i>]:<file>`;
 * - the custom op files (check and after), named by their path under custom_op_dir;
 * - verify's own samples directly inside each folder of `nx-ptq.verify.data_dir` (verify
 *   only, when it is set), named `verify_data_dir[<i>]:<file>`;
 * - the outputs of every stage before it, transitively (quantize reads check's model and the
 *   calibration data, not only calibrate's thresholds), named `<stage>:<path in working_dir>`.
 * Which file groups a stage hashes is `fileGroups` (stages/reads.ts), the table the Nx plugin's
 * inputs and the watcher derive from too.
 * Inputs are named by role, not by absolute path: moving a project or sharing one model file
 * between projects keeps its entries. The output names (which hold output_model_file_prefix)
 * are part of the key as well, so an entry restores under the names the YAML asks for.
 */

/** The stages whose outputs a stage reads (the Nx targets' dependsOn). */
export const UPSTREAM: Readonly<Record<StageName, readonly StageName[]>> = STAGE_UPSTREAM;

/** Every stage before `stage`, each once, nearest first (the order of the upstream outputs in a key). */
export { upstreamStages };

export type KeyInputs = { ok: true; parts: KeyParts } | { ok: false; reason: string };

/**
 * The key parts of `stage` for `cfg`; `ok: false` when an input cannot be read (a missing
 * model, cal_data_dir, verify data_dir or upstream output, an invalid `nx-ptq.verify` block):
 * the stage then runs unmemoised and reports the problem itself.
 */
export function stageKeyParts(
  stage: StageName,
  cfg: PtqConfig,
  outputsOf: (s: StageName) => string[],
  env: Record<string, string | undefined> = process.env,
): KeyInputs {
  const inputs: InputHash[] = [];
  const add = (name: string, file: string): string | undefined => {
    try {
      inputs.push({ name, sha256: sha256File(file) });
      return undefined;
    } catch (e) {
      return `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
  };
  const groups = fileGroups(stage);
  const problems: (string | undefined)[] = [];
  if (groups.has('model')) {
    const m = cfg.model;
    if (m.onnxModel) problems.push(add('model:onnx_model', m.onnxModel));
    if (m.prototxt) problems.push(add('model:prototxt', m.prototxt));
    if (m.caffeModel) problems.push(add('model:caffe_model', m.caffeModel));
  }
  /** The files directly inside `dir` (sub-folders skipped), sorted, each named `<label>:<file>`. */
  const addFolder = (label: string, dir: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch (e) {
      problems.push(`cannot list ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return;
    }
    for (const n of names) {
      const f = path.join(dir, n);
      if (isFile(f)) problems.push(add(`${label}:${n}`, f));
    }
  };
  if (groups.has('calibration')) {
    cfg.inputs.forEach((inp, i) => {
      if (inp.calDataDir !== undefined) addFolder(`cal_data_dir[${i}]`, inp.calDataDir);
    });
  }
  if (groups.has('customOp') && cfg.customOp) {
    const base = cfg.customOp.dir ?? cfg.source.dir;
    for (const f of cfg.customOp.registerFiles) problems.push(add(`custom_op:${toPosix(path.relative(base, f))}`, f));
  }
  if (groups.has('verifyData')) {
    let dirs: string[] | undefined;
    try {
      dirs = readVerifySettings(cfg).dataDirs;
    } catch (e) {
      problems.push(`nx-ptq.verify is invalid (${(e as Error).message})`);
    }
    (dirs ?? []).forEach((d, i) => addFolder(`verify_data_dir[${i}]`, d));
  }
  for (const u of upstreamStages(stage)) {
    for (const o of outputsOf(u)) {
      const abs = path.join(cfg.model.workingDir, o);
      if (!fs.existsSync(abs)) {
        problems.push(`${abs} (an output of the ${u} stage) is missing`);
        continue;
      }
      for (const rel of treeFiles(abs, o)) problems.push(add(`${u}:${rel}`, path.join(cfg.model.workingDir, rel)));
    }
  }
  const problem = problems.find((p) => p !== undefined);
  if (problem) return { ok: false, reason: problem };
  return {
    ok: true,
    parts: { stage, toolchain: toolchainId(env), slice: stageSlices(cfg)[stage], inputs, outputs: outputsOf(stage) },
  };
}

/** Files under `abs` (a file or a folder), as `/`-separated paths starting with `rel`, sorted. */
function treeFiles(abs: string, rel: string): string[] {
  const st = fs.statSync(abs);
  if (!st.isDirectory()) return [rel];
  const out: string[] = [];
  for (const n of fs.readdirSync(abs).sort()) out.push(...treeFiles(path.join(abs, n), `${rel}/${n}`));
  return out;
}

function isFile(f: string): boolean {
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}
