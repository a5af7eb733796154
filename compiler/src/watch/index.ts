/**
 * Watch mode (`ptq watch`, the `watch` Nx target): rerun the stages an edit affects, as it is saved.
 */
export { affectedStages, changedGroups, FILE_READERS, leafStages, STAGE_UPSTREAM, stagesForFiles, watchedFiles, withDownstream, withUpstream } from './affected';
export type { WatchedFileKind } from './affected';
export { discoverModels, findWorkspaceRoot, MODEL_FILE, projectName, resolveModels } from './models';
export type { WatchedModel } from './models';
export { DirectRunner, NxRunner, parseNxOutput, resolveNx } from './runner';
export type { NxProjectTasks, NxRunnerOptions, RunOutcome, Runner, RunRequest } from './runner';
export { formatDuration, StatusBoard } from './status';
export type { ModelState, StatusLine, StatusStream } from './status';
export { ModelWatcher } from './watcher';
export type { WatcherOptions, WatchEvent } from './watcher';
