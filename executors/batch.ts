/**
 * Batch implementations (executors.json `batchImplementation`, `preferBatch: true`): Nx hands
 * one process every ready task of a stage — e.g. `nx run-many -t compile` over a zoo runs each
 * stage's tasks for all models in one process instead of one process per task. Tasks run one
 * after the other, in dependency order; each result is reported as soon as it is known (and
 * cached per task by Nx). A task whose dependency in the same batch failed is skipped. As in
 * the one-task executor, a task whose model.yaml changed after Nx hashed it fails.
 */
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import type { StageName } from '../compiler/src/stages';
import { hashedSliceOf, runOneStage, StageExecutorOptions } from './stage-executor';

export interface BatchTaskResult {
  task: string;
  result: { success: boolean; terminalOutput: string; startTime: number; endTime: number; status?: 'success' | 'failure' | 'skipped' };
}

/** Task ids of the batch, every task after the tasks it depends on. */
export function dependencyOrder(taskGraph: TaskGraph): string[] {
  const ids = Object.keys(taskGraph.tasks);
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string): void => {
    if (state.get(id) === 'done') return;
    if (state.get(id) === 'visiting') throw new Error(`nx-ptq batch: dependency cycle through ${id}`);
    state.set(id, 'visiting');
    for (const dep of taskGraph.dependencies[id] ?? []) if (dep in taskGraph.tasks) visit(dep);
    state.set(id, 'done');
    order.push(id);
  };
  for (const id of [...(taskGraph.roots ?? []), ...ids]) visit(id);
  return order;
}

export function stageBatch(stage: StageName) {
  return async function* batch(
    taskGraph: TaskGraph,
    optionsByTask: Record<string, StageExecutorOptions>,
    _overrides: unknown,
    context: ExecutorContext,
  ): AsyncGenerator<BatchTaskResult> {
    const failed = new Set<string>();
    for (const id of dependencyOrder(taskGraph)) {
      const startTime = Date.now();
      const failedDep = (taskGraph.dependencies[id] ?? []).find((d) => failed.has(d));
      if (failedDep) {
        failed.add(id);
        const terminalOutput = `skipped: ${failedDep} failed`;
        yield { task: id, result: { success: false, status: 'skipped', terminalOutput, startTime, endTime: Date.now() } };
        continue;
      }
      let run: { success: boolean; lines: string[] };
      try {
        // each task's own hashed slice: a model.yaml saved while the batch runs fails only its tasks
        run = await runOneStage(stage, optionsByTask[id], context.root, { hashedSlice: hashedSliceOf(stage, context, taskGraph.tasks[id]) });
      } catch (e) {
        // A bug in one model's run must not cost the other tasks of the batch their results.
        run = { success: false, lines: [String((e as Error)?.stack ?? e)] };
      }
      if (!run.success) failed.add(id);
      yield { task: id, result: { success: run.success, terminalOutput: run.lines.join('\n'), startTime, endTime: Date.now() } };
    }
  };
}

export const preprocess = stageBatch('preprocess');
export const check = stageBatch('check');
export const calibrate = stageBatch('calibrate');
export const quantize = stageBatch('quantize');
export const compile = stageBatch('compile');
export const perf = stageBatch('perf');
export const verify = stageBatch('verify');
