import * as fs from 'fs';
import * as path from 'path';
import { PtqConfig, stageSlices } from '../config';
import { STAGE_UPSTREAM, StageName } from '../stages';
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
 * - the outputs of every stage before it, transitively (quantize reads check's model and the
 *   calibration data, not only calibrate's thresholds), named `<stage>:<path in working_dir>`.
 * Inputs are named by role, not by absolute path: moving a project or sharing one model file
 * between projects keeps its entries. The output names (which hold output_model_file_prefix)
 * are part of the key as well, so an entry restores under the names the YAML asks for.
 */

type FileGroup = 'model' | 'calibration' | 'customOp';

/** The stages whose outputs a stage reads (the Nx targets' dependsOn). */
export const UPSTREAM: Readonly<Record<StageName, readonly StageName[]>> = STAGE_UPSTREAM;

/** Files a stage reads itself (the stages before it add theirs). */
const READS: Readonly<Record<StageName, readonly FileGroup[]>> = {
  preprocess: ['model', 'calibration'],
  check: ['model', 'customOp'],
  calibrate: [],
  quantize: [],
  compile: [],
  perf: [],
  verify: ['model'],
};

/** Every stage before `stage`, each once, nearest first. */
export function upstreamStages(stage: StageName): StageName[] {
  const out: StageName[] = [];
  const visit = (s: StageName): void => {
    for (const u of UPSTREAM[s]) {
      if (!out.includes(u)) {
        out.push(u);
        visit(u);
      }
    }
  };
  visit(stage);
  return out;
}

function fileGroups(stage: StageName): Set<FileGroup> {
  const groups = new Set<FileGroup>(READS[stage]);
  for (const u of upstreamStages(stage)) for (const g of READS[u]) groups.add(g);
  return groups;
}

export type KeyInputs = { ok: true; parts: KeyParts } | { ok: false; reason: string };

/**
 * The key parts of `stage` for `cfg`; `ok: false` when an input cannot be read (a missing
 * model, cal_data_dir or upstream output): the stage then runs unmemoised and reports the
 * problem itself.
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
  if (groups.has('calibration')) {
    cfg.inputs.forEach((inp, i) => {
      if (inp.calDataDir === undefined) return;
      let names: string[];
      try {
        names = fs.readdirSync(inp.calDataDir).sort();
      } catch (e) {
        problems.push(`cannot list ${inp.calDataDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        return;
      }
      for (const n of names) {
        const f = path.join(inp.calDataDir, n);
        if (isFile(f)) problems.push(add(`cal_data_dir[${i}]:${n}`, f));
      }
    });
  }
  if (groups.has('customOp') && cfg.customOp) {
    const base = cfg.customOp.dir ?? cfg.source.dir;
    for (const f of cfg.customOp.registerFiles) problems.push(add(`custom_op:${toPosix(path.relative(base, f))}`, f));
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
