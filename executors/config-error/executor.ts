import type { ExecutorContext } from '@nx/devkit';

export interface ConfigErrorOptions {
  configFile: string;
  /** the error, as the plugin found it */
  message: string;
}

/**
 * The targets of a model whose YAML does not load (plugin option `invalidConfig: project`):
 * print the plugin's error and fail, without running a stage.
 */
export default async function configError(options: ConfigErrorOptions, _context: ExecutorContext): Promise<{ success: boolean }> {
  process.stderr.write(`ERROR ${options.message}\n`);
  return { success: false };
}
