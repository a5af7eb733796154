/**
 * The stage executors: thin adapters from Nx to `runStage` (compiler/src/stages). One task
 * = one `runStage(stage, { configFile })`. A PtqError (bad config, missing file, a stage not
 * implemented yet…) fails the task with its one `ERROR … (fix: …)` line and no stack;
 * anything else is a bug and propagates with its stack.
 */
import * as path from 'path';
import type { ExecutorContext } from '@nx/devkit';
import { isPtqError } from '../compiler/src/errors';
import { runStage, StageName } from '../compiler/src/stages';

export interface StageExecutorOptions {
  /** the model's YAML, relative to the workspace root (or absolute) */
  configFile: string;
}

export interface StageRun {
  success: boolean;
  /** what the task printed: the stage's log lines, or the error line */
  lines: string[];
}

/** Runs one stage; `print` receives each line as it is produced. */
export async function runOneStage(
  stage: StageName,
  options: StageExecutorOptions,
  workspaceRoot: string,
  print: (line: string, stream: 'out' | 'err') => void = () => {},
): Promise<StageRun> {
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
    print(line, 'out');
  };
  try {
    await runStage(stage, { configFile: path.resolve(workspaceRoot, options.configFile), log });
    return { success: true, lines };
  } catch (e) {
    if (!isPtqError(e)) throw e;
    const line = e.oneLine();
    lines.push(line);
    print(line, 'err');
    return { success: false, lines };
  }
}

/** The executor of one stage (`executors/<stage>/executor.ts`). */
export function stageExecutor(stage: StageName) {
  return async function executor(options: StageExecutorOptions, context: ExecutorContext): Promise<{ success: boolean }> {
    const { success } = await runOneStage(stage, options, context.root, (line, stream) =>
      (stream === 'err' ? process.stderr : process.stdout).write(`${line}\n`),
    );
    return { success };
  };
}
