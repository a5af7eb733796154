/**
 * The nx-ptq Nx plugin: every model.yaml becomes a project with the seven conversion stages
 * as cached targets (preprocess, check → calibrate → quantize → compile → perf, verify).
 *
 *   nx.json: "plugins": [{ "plugin": "./plugins/nx-ptq/index.ts", "options": { … } }]
 *
 * Project name: the YAML's folder name, or `nx-ptq: { name: … }` in the YAML. Tags:
 * `march:<march>` plus `nx-ptq: { tags: [...] }`. A model.yaml that does not load is
 * reported (file, line, fix) and the other models stay in the graph and keep building
 * (option `invalidConfig`).
 * Each model also gets a continuous `watch` target (`ptq watch` on that model: reruns the
 * stages an edit affects, through Nx), outside the cached chain.
 */
import * as path from 'path';
import {
  AggregateCreateNodesError,
  createNodesFromFiles,
  CreateNodesContextV2,
  CreateNodesResult,
  CreateNodesResultV2,
  CreateNodesV2,
  logger,
  ProjectConfiguration,
  TargetConfiguration,
} from '@nx/devkit';
import { minimatch } from 'minimatch';
import { isPtqError, PtqError } from '../../compiler/src/errors';
import { ConfigError } from '../../compiler/src/config';
import { StageName, STAGE_NAMES } from '../../compiler/src/stages';
import { readModelConfig, readProjectName } from './model-config';
import { buildTargets, TargetSettings, toPosix, watchTarget } from './targets';

export interface NxPtqPluginOptions {
  /** which YAML files are models (default `**\/model.yaml`, minimatch syntax, workspace-relative) */
  configGlob?: string;
  preprocessTargetName?: string;
  checkTargetName?: string;
  calibrateTargetName?: string;
  quantizeTargetName?: string;
  compileTargetName?: string;
  perfTargetName?: string;
  verifyTargetName?: string;
  /** the continuous `ptq watch` target of each model (default `watch`; not cached, not a dependency of anything) */
  watchTargetName?: string;
  /** named input holding the toolchain's sources (default `toolchain`; used when nx.json defines it) */
  toolchainInput?: string;
  /** where the executors live, as Nx resolves them (default: the repository's executors/ folder) */
  executors?: string;
  /**
   * What a model.yaml that does not load becomes:
   * - `project` (default): a project whose targets fail with the error, plus a warning each
   *   time the graph is computed; every other model still builds. (Nx 22's CLI refuses to run
   *   anything at all while a plugin reports an error, so `error` blocks the whole zoo.)
   * - `error`: a graph error (Nx prints it and stops): for CI jobs that lint the zoo.
   */
  invalidConfig?: 'project' | 'error';
}

/** Every YAML file reaches the plugin; `configGlob` picks the models among them. */
const YAML_GLOB = '**/*.{yaml,yml}';

/** This repository's folders, relative to which the defaults are computed. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const TOOLCHAIN_SOURCES = ['compiler/src', 'compiler/proto', 'executors', 'plugins'];

interface NormalizedOptions {
  configGlob: string;
  invalidConfig: 'project' | 'error';
  toolchainInput: string;
  executors?: string;
  names: Record<StageName, string>;
  watchName: string;
}

function normalizeOptions(options: NxPtqPluginOptions | undefined): NormalizedOptions {
  const o = options ?? {};
  const names = Object.fromEntries(
    STAGE_NAMES.map((s) => [s, o[`${s}TargetName` as keyof NxPtqPluginOptions] ?? s]),
  ) as Record<StageName, string>;
  const dup = STAGE_NAMES.find((s, i) => STAGE_NAMES.findIndex((t) => names[t] === names[s]) !== i);
  if (dup) throw new Error(`nx-ptq plugin options: two stages are named '${names[dup]}'; give each stage its own target name`);
  const watchName = o.watchTargetName ?? 'watch';
  if (STAGE_NAMES.some((s) => names[s] === watchName)) {
    throw new Error(`nx-ptq plugin options: the watch target and a stage are both named '${watchName}'; give the watch target its own name (watchTargetName)`);
  }
  const invalidConfig = o.invalidConfig ?? 'project';
  if (invalidConfig !== 'project' && invalidConfig !== 'error') {
    throw new Error(`nx-ptq plugin options: invalidConfig must be 'project' or 'error', got ${JSON.stringify(invalidConfig)}`);
  }
  return { configGlob: o.configGlob ?? '**/model.yaml', invalidConfig, toolchainInput: o.toolchainInput ?? 'toolchain', executors: o.executors, names, watchName };
}

/** Settings that depend on the workspace: executor location and the toolchain input. */
function targetSettings(opts: NormalizedOptions, context: CreateNodesContextV2): TargetSettings {
  const rel = (p: string): string => {
    const r = toPosix(path.relative(context.workspaceRoot, path.join(REPO_ROOT, p)));
    return r.startsWith('..') ? r : `./${r}`;
  };
  let toolchain: string | string[];
  if (context.nxJsonConfiguration.namedInputs?.[opts.toolchainInput]) {
    toolchain = opts.toolchainInput;
  } else {
    // No named input: hash the sources directly, when they are inside this workspace.
    toolchain = [...TOOLCHAIN_SOURCES.map((d) => `${rel(d)}/**/*`), rel('package-lock.json')]
      .filter((p) => !p.startsWith('..'))
      .map((p) => `{workspaceRoot}/${p.slice(2)}`);
  }
  return { names: opts.names, watchName: opts.watchName, executors: opts.executors ?? rel('executors'), toolchain, ptq: rel('compiler/bin/ptq.js') };
}

/** One model.yaml → one project. */
function createModelProject(configFile: string, opts: NormalizedOptions, context: CreateNodesContextV2, settings: TargetSettings): CreateNodesResult {
  const root = toPosix(path.dirname(configFile));
  const abs = path.join(context.workspaceRoot, configFile);
  const folderName = root === '.' ? path.basename(context.workspaceRoot) : path.basename(root);
  let model: ReturnType<typeof readModelConfig>;
  try {
    model = readModelConfig(abs, configFile);
  } catch (e) {
    if (!isPtqError(e)) throw e;
    const error = toNxError(e);
    if (opts.invalidConfig === 'error') throw error;
    const name = readProjectName(abs) ?? folderName;
    logger.warn(`nx-ptq: ${error.message}\n  (the targets of project '${name}' fail until ${configFile} is fixed)`);
    return { projects: { [root]: invalidProject(name, root, configFile, error.message, settings) } };
  }
  const { cfg, block } = model;
  const name = block.name ?? folderName;
  const targets = buildTargets({ root, configFile, workspaceRoot: context.workspaceRoot, cfg }, settings);
  const project: ProjectConfiguration = {
    name,
    root,
    projectType: 'application',
    tags: [`march:${cfg.model.march}`, ...(block.tags ?? [])],
    targets,
    metadata: {
      description: `${cfg.model.kind.toUpperCase()} model ${cfg.model.outputModelFilePrefix} → int8 .bin for ${cfg.model.march}`,
      technologies: ['nx-ptq', cfg.model.kind],
      targetGroups: { 'nx-ptq': STAGE_NAMES.map((s) => opts.names[s]) },
    },
  };
  return { projects: { [root]: project } };
}

/** The project of a model.yaml that does not load: each target fails with the error. */
function invalidProject(name: string, root: string, configFile: string, message: string, settings: TargetSettings): ProjectConfiguration {
  const targets: Record<string, TargetConfiguration> = Object.fromEntries(
    STAGE_NAMES.map((s) => [
      settings.names[s],
      {
        executor: `${settings.executors}:config-error`,
        options: { configFile, message },
        cache: false,
        metadata: { description: `Fails: ${configFile} does not load`, technologies: ['nx-ptq'] },
      },
    ]),
  );
  // watching a broken model shows its error and builds it once a save fixes it
  targets[settings.watchName] = watchTarget(configFile, settings);
  return {
    name,
    root,
    projectType: 'application',
    tags: ['nx-ptq:invalid-config'],
    targets,
    metadata: { description: `${configFile} does not load: ${message}`, technologies: ['nx-ptq'] },
  };
}

async function createNodesInternal(
  files: readonly string[],
  options: NxPtqPluginOptions | undefined,
  context: CreateNodesContextV2,
): Promise<CreateNodesResultV2> {
  const opts = normalizeOptions(options);
  const models = files.filter((f) => minimatch(toPosix(f), opts.configGlob, { dot: true }));
  const settings = targetSettings(opts, context);
  let results: CreateNodesResultV2;
  let errors: Array<[string | null, Error]> = [];
  try {
    results = await createNodesFromFiles(
      (file) => createModelProject(file, opts, context, settings),
      models,
      options,
      context,
    );
  } catch (e) {
    if (!(e instanceof AggregateCreateNodesError)) throw e;
    results = e.partialResults;
    errors = [...e.errors];
  }
  ({ results, errors } = dropDuplicateNames(results, errors));
  if (errors.length) throw new AggregateCreateNodesError(errors, results);
  return results;
}

/** A PtqError as Nx prints it: the located message and fix, then any further problems. */
function toNxError(e: PtqError): Error {
  const more = e instanceof ConfigError ? e.allLines().slice(1) : [];
  const first = e instanceof ConfigError ? e.allLines()[0] : e.message;
  return new Error([`${first}${e.fix ? ` (fix: ${e.fix})` : ''}`, ...more].join('\n'));
}

/** Two models with one project name would make Nx refuse the whole graph: drop both, report both. */
function dropDuplicateNames(
  results: CreateNodesResultV2,
  errors: Array<[string | null, Error]>,
): { results: CreateNodesResultV2; errors: Array<[string | null, Error]> } {
  const byName = new Map<string, string[]>();
  for (const [file, r] of results) {
    for (const p of Object.values(r.projects ?? {})) byName.set(p.name!, [...(byName.get(p.name!) ?? []), file]);
  }
  const clash = new Set([...byName.values()].filter((files) => files.length > 1).flat());
  if (!clash.size) return { results, errors };
  const out = results.filter(([file]) => !clash.has(file));
  const more = results
    .filter(([file]) => clash.has(file))
    .map(([file, r]): [string, Error] => {
      const name = Object.values(r.projects ?? {})[0].name!;
      const others = byName.get(name)!.filter((f) => f !== file);
      return [file, new Error(`project name '${name}' is also the name of ${others.join(', ')} (fix: name one of them with 'nx-ptq: { name: … }' in its YAML)`)];
    });
  return { results: out, errors: [...errors, ...more] };
}

/** The plugin's name in Nx's messages. */
export const name = 'nx-ptq';

export const createNodes: CreateNodesV2<NxPtqPluginOptions> = [YAML_GLOB, createNodesInternal];
/** Nx 22 prefers this name; Nx 23+ calls `createNodes`. Same function. */
export const createNodesV2 = createNodes;
