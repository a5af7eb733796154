/**
 * Which stages an edit affects (pure functions, no file access). A stage is affected when its
 * config slice changed (`stageSlices`), when a file it reads changed or is another file now,
 * or when it writes to other places; every stage downstream of an affected stage is affected
 * too (it reads the affected stage's outputs). This is the same rule the Nx plugin encodes in
 * its task hashes, so the watcher and the Nx cache agree on what is stale.
 */
import { canonicalJson, PtqConfig, stageSlices } from '../config';
import { downstreamOf, StageName, STAGE_NAMES, STAGE_UPSTREAM, stageOutputPaths } from '../stages';
import { FileGroup, readersOf } from '../stages/reads';
import { readVerifySettings } from '../verify/settings';

/** The stage graph: defined in compiler/src/stages, shared with the Nx plugin's dependsOn. */
export { STAGE_UPSTREAM };

/** The kinds of files a model's stages read besides the YAML (stages/reads.ts `FILE_GROUPS`). */
export type WatchedFileKind = FileGroup;

/**
 * The stages that read each kind of file themselves (the rest see it through their upstream
 * outputs), derived from `STAGE_READS` (stages/reads.ts), the table the Nx plugin's inputs and
 * the stage memo's key follow too.
 */
export const FILE_READERS: Readonly<Record<WatchedFileKind, readonly StageName[]>> = {
  model: readersOf('model'),
  calibration: readersOf('calibration'),
  customOp: readersOf('customOp'),
  verifyData: readersOf('verifyData'),
};

/** `stages` plus everything downstream of them, in pipeline order. */
export function withDownstream(stages: Iterable<StageName>): StageName[] {
  const set = new Set(stages);
  for (const s of [...set]) downstreamOf(s).forEach((d) => set.add(d));
  return STAGE_NAMES.filter((s) => set.has(s));
}

/** `stages` plus everything they need upstream, in pipeline order. */
export function withUpstream(stages: Iterable<StageName>): StageName[] {
  const set = new Set(stages);
  for (const s of [...STAGE_NAMES].reverse()) if (set.has(s)) STAGE_UPSTREAM[s].forEach((u) => set.add(u));
  return STAGE_NAMES.filter((s) => set.has(s));
}

/** The stages of `stages` that no other stage of `stages` reads: running these runs them all. */
export function leafStages(stages: readonly StageName[]): StageName[] {
  return stages.filter((s) => !stages.some((t) => STAGE_UPSTREAM[t].includes(s)));
}

/** The stages affected by a change of files of one kind. */
export function stagesForFiles(kinds: Iterable<WatchedFileKind>): StageName[] {
  const direct = new Set<StageName>();
  for (const k of kinds) FILE_READERS[k].forEach((s) => direct.add(s));
  return withDownstream(direct);
}

/** The kinds `watchedFiles` lists as folders (the files directly inside them are read). */
export const FOLDER_KINDS: readonly WatchedFileKind[] = ['calibration', 'verifyData'];

/** Absolute paths of the files of each kind a configuration names (calibration, verifyData: folders). */
export function watchedFiles(cfg: PtqConfig): Record<WatchedFileKind, string[]> {
  const { model } = cfg;
  return {
    model: [model.onnxModel, model.prototxt, model.caffeModel].filter((f): f is string => f !== undefined),
    calibration: [...new Set(cfg.inputs.map((i) => i.calDataDir).filter((d): d is string => d !== undefined))],
    customOp: cfg.customOp ? [...cfg.customOp.registerFiles] : [],
    verifyData: [...new Set(verifyDataDirs(cfg))],
  };
}

/**
 * `nx-ptq.verify.data_dir`'s folders; none when it is not set or the `nx-ptq.verify` block is
 * invalid (the verify stage reports that; its slice holds the block, so an edit of it still
 * affects verify).
 */
function verifyDataDirs(cfg: PtqConfig): string[] {
  try {
    return readVerifySettings(cfg).dataDirs ?? [];
  } catch {
    return [];
  }
}

/** What makes one stage's result: its config slice, the files it reads, the files it writes. */
function stageKey(cfg: PtqConfig, slices: ReturnType<typeof stageSlices>, files: Record<WatchedFileKind, string[]>, stage: StageName): string {
  const reads = (Object.keys(FILE_READERS) as WatchedFileKind[]).filter((k) => FILE_READERS[k].includes(stage)).map((k) => files[k]);
  return canonicalJson({ slice: slices[stage], reads, writes: stageOutputPaths(stage, cfg) });
}

/**
 * The stages to rerun after the configuration changed from `before` to `after` (pipeline
 * order); all of them when there is no `before`. Comments, key order and value spellings
 * change nothing.
 */
export function affectedStages(before: PtqConfig | undefined, after: PtqConfig): StageName[] {
  if (!before) return [...STAGE_NAMES];
  const [sa, sb] = [stageSlices(before), stageSlices(after)];
  const [fa, fb] = [watchedFiles(before), watchedFiles(after)];
  return withDownstream(STAGE_NAMES.filter((s) => stageKey(before, sa, fa, s) !== stageKey(after, sb, fb, s)));
}

/** The YAML groups whose values differ between two parsed documents (for messages: `compiler_parameters changed`). */
export function changedGroups(before: unknown, after: unknown): string[] {
  const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const [a, b] = [obj(before), obj(after)];
  const text = (v: unknown): string => {
    try {
      return canonicalJson(v ?? null);
    } catch {
      // .inf / .nan in the YAML: still comparable
      return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x));
    }
  };
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => text(a[k]) !== text(b[k])).sort();
}
