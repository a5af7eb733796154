import * as path from 'path';
import { PtqError } from '../../errors';
import type { StageName } from '../../stages';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq watch [MODEL...]`: keeps models converted while you edit them. Watches each model's
 * YAML, model file(s), custom op files and calibration folders; after a burst of saves settles
 * it reruns only the stages the edit affects — through Nx (its cache stays the single truth)
 * or, with --no-nx, in this process — and prints one status line per model. A YAML that does
 * not load is reported and the watcher keeps going; the next good save rebuilds.
 */
const STAGES = ['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify'];

const OPTIONS: OptionSpec[] = [
  { name: 'no-nx', type: 'boolean', description: 'run the stages in this process instead of through `nx run-many`' },
  { name: 'until', type: 'list', value: 'STAGE', description: `keep these stages (and those before them) up to date; default: all (${STAGES.join(', ')})` },
  { name: 'debounce', type: 'string', value: 'MS', default: '300', description: 'quiet time after the last change before rerunning, in milliseconds' },
  { name: 'target', type: 'list', value: 'STAGE=NAME', description: "Nx target name of a stage when the plugin renames it, e.g. --target compile=makertbin" },
  { name: 'no-initial-build', type: 'boolean', description: 'do not build the models at start; only react to changes' },
  { name: 'verbose', alias: 'v', type: 'boolean', description: "also print the stages' (or Nx's) output" },
];

export const command: Command = {
  summary: 'rebuild the affected stages of models as their files change (watch mode)',
  help: () =>
    [
      'Usage: ptq watch [MODEL...] [--no-nx] [--until STAGE[,...]] [--debounce MS] [--target STAGE=NAME]...',
      '',
      'MODEL: a model.yaml, a folder holding one, or an Nx project name; default: every model.yaml of the',
      'workspace (the folder with nx.json, else the current folder). Ctrl-C stops.',
      '',
      'What reruns: a change of model.yaml reruns the stages whose slice of the configuration changed',
      '(compiler_parameters: compile, perf, verify; calibration_parameters: calibrate and after; ...);',
      'a change of the model file reruns everything, of the calibration data preprocess and after.',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const { options, positionals } = parseArgs(argv, OPTIONS, 'watch');
    const until = ((options.until as string[] | undefined) ?? []).map((s) => stageArg(s, '--until'));
    const debounceMs = Number(options.debounce);
    if (!Number.isInteger(debounceMs) || debounceMs < 0) {
      throw new PtqError('E_CLI_ARGS', `watch: --debounce must be a whole number of milliseconds, got '${options.debounce}'`, { fix: 'e.g. --debounce 300' });
    }
    const targetNames: Partial<Record<StageName, string>> = {};
    for (const t of (options.target as string[] | undefined) ?? []) {
      const m = /^([a-z]+)=(.+)$/.exec(t);
      if (!m) throw new PtqError('E_CLI_ARGS', `watch: --target takes STAGE=NAME, got '${t}'`, { fix: 'e.g. --target compile=makertbin' });
      targetNames[stageArg(m[1], '--target')] = m[2];
    }
    const { DirectRunner, findWorkspaceRoot, ModelWatcher, NxRunner, resolveModels, StatusBoard } = await import('../../watch');
    const cwd = process.cwd();
    const useNx = !options['no-nx'];
    const workspaceRoot = findWorkspaceRoot(cwd);
    if (useNx && !workspaceRoot) {
      throw new PtqError('E_WATCH_NX', `no nx.json in ${cwd} or above: the watcher reruns stages through Nx`, {
        fix: 'run it inside the Nx workspace, or pass --no-nx to run the stages in this process',
      });
    }
    const models = resolveModels(positionals, cwd, workspaceRoot ?? cwd);
    if (useNx) {
      const outside = models.find((m) => path.relative(workspaceRoot!, m.configFile).startsWith('..'));
      if (outside) {
        throw new PtqError('E_WATCH_NX', `${outside.configFile} is outside the Nx workspace ${workspaceRoot}`, { fix: 'watch it with --no-nx, or move it into the workspace' });
      }
    }
    const verbose = Boolean(options.verbose);
    const runner = useNx
      ? new NxRunner({ workspaceRoot: workspaceRoot!, targetNames, output: verbose ? (text) => process.stderr.write(text) : undefined })
      : new DirectRunner(verbose ? (name, line) => io.err(`[${name}] ${line}`) : undefined);
    const tty = io === (await import('../main')).processIO && Boolean(process.stdout.isTTY);
    const stream = tty ? process.stdout : { write: (text: string) => text.split('\n').slice(0, -1).forEach((l) => io.out(l)), isTTY: false };
    const status = new StatusBoard(stream, models.map((m) => m.name), { tty });
    const watcher = new ModelWatcher({ models, runner, status, until, debounceMs, initialBuild: !options['no-initial-build'] });
    const upTo = until.length ? `stages up to ${until.join(', ')}` : 'all stages';
    status.log(`ptq watch: ${models.length} model(s), ${upTo}, ${runner.description}; Ctrl-C to stop`);
    await watcher.start();
    await stopSignal();
    await watcher.close();
    return 0;
  },
};

function stageArg(s: string, flag: string): StageName {
  if (!STAGES.includes(s)) throw new PtqError('E_CLI_ARGS', `watch: ${flag}: unknown stage '${s}'`, { fix: `use one of: ${STAGES.join(', ')}` });
  return s as StageName;
}

/** Resolves on Ctrl-C or SIGTERM (Nx stops continuous tasks with it). */
function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
