/**
 * The stage executors: thin adapters from Nx to `runStage` (compiler/src/stages). One task
 * = one `runStage(stage, { configFile })`. A PtqError (bad config, missing file, a stage not
 * implemented yet…) fails the task with its one `ERROR … (fix: …)` line and no stack;
 * anything else is a bug and propagates with its stack.
 *
 * Nx hashes a task before it runs it, but the stage reads the model.yaml when it runs: a save
 * in between would store the new YAML's results under the old hash (a poisoned cache entry).
 * So the executor takes the stage's config-slice hash that Nx hashed (the plugin's
 * `echo nx-ptq <stage> slice <sha256>` runtime input, as the task's hash details record it),
 * recomputes it from the YAML before and after the stage runs, and fails the task when they
 * differ: Nx caches no failed task, and the next run hashes the new YAML.
 */
import * as path from 'path';
import type { ExecutorContext, Task } from '@nx/devkit';
import { loadConfig, stageSlices } from '../compiler/src/config';
import { isPtqError, PtqError } from '../compiler/src/errors';
import { runStage, StageName } from '../compiler/src/stages';
import { parseSliceInput, sliceHash } from '../plugins/nx-ptq/targets';

export interface StageExecutorOptions {
  /** the model's YAML, relative to the workspace root (or absolute) */
  configFile: string;
}

export interface StageRun {
  success: boolean;
  /** what the task printed: the stage's log lines, or the error line */
  lines: string[];
}

export interface RunOneStageOptions {
  /** receives each line as it is produced */
  print?: (line: string, stream: 'out' | 'err') => void;
  /** the stage's slice hash Nx put in the task hash (`hashedSliceOf`); no check without it */
  hashedSlice?: string;
}

/** Runs one stage. */
export async function runOneStage(
  stage: StageName,
  options: StageExecutorOptions,
  workspaceRoot: string,
  { print = () => {}, hashedSlice }: RunOneStageOptions = {},
): Promise<StageRun> {
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
    print(line, 'out');
  };
  const configFile = path.resolve(workspaceRoot, options.configFile);
  try {
    if (hashedSlice !== undefined) checkSlice(stage, options.configFile, configFile, hashedSlice);
    await runStage(stage, { configFile, log });
    // a save during the run: the outputs may come from either version of the YAML
    if (hashedSlice !== undefined) checkSlice(stage, options.configFile, configFile, hashedSlice);
    return { success: true, lines };
  } catch (e) {
    if (!isPtqError(e)) throw e;
    const line = e.oneLine();
    lines.push(line);
    print(line, 'err');
    return { success: false, lines };
  }
}

/** sha256 of the stage's config slice in the YAML as it is now (the plugin's `sliceHash`). */
export function currentSliceHash(stage: StageName, configFile: string): string {
  return sliceHash(stageSlices(loadConfig(configFile))[stage]);
}

/**
 * Throws a PtqError when the YAML's slice is no longer the one Nx hashed. A YAML that does not
 * load throws its config error: the one the stage reports before a run, and after a run it
 * means the YAML changed during it.
 */
function checkSlice(stage: StageName, shownFile: string, configFile: string, hashed: string): void {
  const now = currentSliceHash(stage, configFile);
  if (now === hashed) return;
  throw new PtqError('E_CONFIG_CHANGED', `${shownFile} changed after Nx hashed this task (${stage} slice ${hashed.slice(0, 12)} -> ${now.slice(0, 12)})`, {
    subject: shownFile,
    fix: 'run the target again',
  });
}

/**
 * The slice hash Nx hashed for `stage` in this task: from the task's hash details (exactly
 * what went into the hash, even when the project graph on disk is newer), else from the
 * target's declared inputs. Undefined when the task hashes no slice (inputs overridden in a
 * project.json, or run outside Nx): then there is nothing to compare. `batchTask`: the task
 * of a batch (the context then names no project or target).
 */
export function hashedSliceOf(stage: StageName, context: ExecutorContext, batchTask?: Task): string | undefined {
  const tasks = context.taskGraph?.tasks ?? {};
  const task: Task | undefined = batchTask
    ? (tasks[batchTask.id] ?? batchTask)
    : Object.values(tasks).find((t) => t.target.project === context.projectName && t.target.target === context.targetName);
  const nodes = task?.hashDetails?.nodes;
  if (nodes) {
    for (const node of Object.keys(nodes)) {
      const input = node.startsWith('runtime:') ? parseSliceInput(node.slice('runtime:'.length)) : undefined;
      if (input?.stage === stage) return input.hash;
    }
    return undefined;
  }
  const project = task?.target.project ?? context.projectName;
  const target = task?.target.target ?? context.targetName;
  const inputs = project && target ? context.projectsConfigurations?.projects[project]?.targets?.[target]?.inputs : undefined;
  for (const input of inputs ?? []) {
    const parsed = typeof input === 'object' && 'runtime' in input ? parseSliceInput(input.runtime) : undefined;
    if (parsed?.stage === stage) return parsed.hash;
  }
  return undefined;
}

/** The executor of one stage (`executors/<stage>/executor.ts`). */
export function stageExecutor(stage: StageName) {
  return async function executor(options: StageExecutorOptions, context: ExecutorContext): Promise<{ success: boolean }> {
    const { success } = await runOneStage(stage, options, context.root, {
      print: (line, stream) => (stream === 'err' ? process.stderr : process.stdout).write(`${line}\n`),
      hashedSlice: hashedSliceOf(stage, context),
    });
    return { success };
  };
}
