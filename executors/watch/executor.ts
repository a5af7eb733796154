import type { ExecutorContext } from '@nx/devkit';
import * as path from 'path';
import { main } from '../../compiler/src/cli/main';

/**
 * `watch`: `ptq watch` on one model as a continuous Nx task (compiler/src/watch). Thin: the
 * options become the command's flags; it returns when the watcher stops (Ctrl-C / Nx ends the
 * task). Arguments given to `nx run <model>:watch --until=quantize` arrive as options.
 */
export interface WatchExecutorOptions {
  configFile: string;
  until?: string | string[];
  targets?: string[];
  noNx?: boolean;
  debounce?: number;
  noInitialBuild?: boolean;
  verbose?: boolean;
}

export function watchArgv(options: WatchExecutorOptions, root: string): string[] {
  const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return [
    'watch',
    path.resolve(root, options.configFile),
    ...list(options.until).map((s) => `--until=${s}`),
    ...list(options.targets).map((t) => `--target=${t}`),
    ...(options.noNx ? ['--no-nx'] : []),
    ...(options.debounce !== undefined ? [`--debounce=${options.debounce}`] : []),
    ...(options.noInitialBuild ? ['--no-initial-build'] : []),
    ...(options.verbose ? ['--verbose'] : []),
  ];
}

export default async function watchExecutor(options: WatchExecutorOptions, context: ExecutorContext): Promise<{ success: boolean }> {
  const code = await main(watchArgv(options, context.root));
  return { success: code === 0 };
}
