/**
 * The stage memo: a content-addressed store of stage results (DESIGN §2).
 *
 * Every `runStage` (ptq makertbin, the Nx executors, ptq watch) keys the stage on
 *   sha256(stage, nx-ptq version [+ a fingerprint of the compiler sources in a source checkout],
 *          the stage's config slice (config/slices.ts), the output names,
 *          the content hashes of every file it may read: model files, calibration samples,
 *          custom op files and the outputs of the stages before it)
 * and, when the store holds that key, restores the outputs into working_dir (hard links,
 * copies across file systems) and replays the stage's log instead of computing. So editing
 * `compiler_parameters` recomputes compile (and perf/verify when the .bin changed), while
 * preprocess, check, calibrate and quantize are restored — even when Nx's own cache misses
 * (a cleared cache, another machine's checkout sharing a store, `--skip-nx-cache`).
 *
 * Location: `NX_PTQ_STORE` (a folder; relative to the cwd), else `<workspace>/.nx-ptq/store`
 * where the workspace is the nearest folder above the model's YAML holding an nx.json, else
 * `<cwd>/.nx-ptq/store`. Add `.nx-ptq/` to .gitignore.
 * `NX_PTQ_NO_MEMO=1` turns the memo off (the test suites turn it off in jest.setup.js unless NX_PTQ_STORE is set).
 * `NX_PTQ_STAGE_LOG=<file>` appends `<stage> <model> computed|memo-hit|failed` per stage run.
 * `NX_PTQ_MEMO_TOOLCHAIN=<id>` replaces the toolchain part of the key (tests of the memo run
 * while the sources change; stores shared by checkouts known to compute the same).
 *
 * Writes are atomic (an entry is built in tmp/ and renamed into place); every read verifies
 * the manifest and the sha256 of every file; a corrupt entry is discarded with a WARN line and
 * the stage recomputes. `ptq cache info` shows the store; `ptq cache prune` trims it.
 */
export { MemoStore, memoKey, MANIFEST } from './store';
export type { EntryInfo, FileRecord, InputHash, KeyParts, Lookup, Manifest, PruneOptions, PruneResult } from './store';
export { runMemoized, storeDir, workspaceRoot, memoEnabled, logStageEvent, detachOutputs, modelName } from './memo';
export type { MemoContext, MemoEnv, StageEvent } from './memo';
export { stageKeyParts, upstreamStages, UPSTREAM } from './key';
export { toolchainId, sourceFingerprint, compilerRoot } from './toolchain';
export { sha256File } from './hash';
