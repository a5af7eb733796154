/**
 * The nx-ptq Nx plugin: every model.yaml becomes a project with the seven conversion stages
 * as cached targets (preprocess, check → calibrate → quantize → compile → perf, verify).
 *
 *   nx.json: "plugins": [{ "plugin": "./plugins/nx-ptq/index.ts", "options": { … } }]
 *
 * Project name: the YAML's folder name, or `nx-ptq: { name: … }` in the YAML. Tags:
 * `march:<march>` plus `nx-ptq: { tags: [...] }`. A model.yaml that does not load is
 * reported (file, line, fix) and the other models stay in the graph.
 */
import * as path from 'path';
import {
  AggregateCreateNodesError,
  createNodesFromFiles,
  CreateNodesContextV2,
  CreateNodesResult,
  CreateNodesResultV2,
  CreateNodesV2,
  ProjectConfiguration,
} from '@nx/devkit';
import { minimatch } from 'minimatch';
import { isPtqError, PtqError } from '../../compiler/src/errors';
import { ConfigError } from '../../compiler/src/config';
import { StageName, STAGE_NAMES } from '../../compiler/src/stages';
import { readModelConfig } from './model-config';
import { buildTargets, TargetSettings, toPosix } from './targets';

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
  /** named input holding the toolchain's sources (default `toolchain`; used when nx.json defines it) */
  toolchainInput?: string;
  /** where the executors live, as Nx resolves them (default: the repository's executors/ folder) */
  executors?: string;
}

/** Every YAML file reaches the plugin; `configGlob` picks the models among them. */
const YAML_GLOB = '**/*.{yaml,yml}';

/** This repository's folders, relative to which the defaults are computed. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const TOOLCHAIN_SOURCES = ['compiler/src', 'compiler/proto', 'executors', 'plugins'];

interface NormalizedOptions {
  configGlob: string;
  toolchainInput: string;
  executors?: string;
  names: Record<StageName, string>;
}

function normalizeOptions(options: NxPtqPluginOptions | undefined): NormalizedOptions {
  const o = options ?? {};
  const names = Object.fromEntries(
    STAGE_NAMES.map((s) => [s, o[`${s}TargetName` as keyof NxPtqPluginOptions] ?? s]),
  ) as Record<StageName, string>;
  const dup = STAGE_NAMES.find((s, i) => STAGE_NAMES.findIndex((t) => names[t] === names[s]) !== i);
  if (dup) throw new Error(`nx-ptq plugin options: two stages are named '${names[dup]}'; give each stage its own target name`);
  return { configGlob: o.configGlob ?? '**/model.yaml', toolchainInput: o.toolchainInput ?? 'toolchain', executors: o.executors, names };
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
  return { names: opts.names, executors: opts.executors ?? rel('executors'), toolchain };
}

/** One model.yaml → one project. */
function createModelProject(configFile: string, opts: NormalizedOptions, context: CreateNodesContextV2, settings: TargetSettings): CreateNodesResult {
  const root = toPosix(path.dirname(configFile));
  const abs = path.join(context.workspaceRoot, configFile);
  const { cfg, block } = readModelConfig(abs, configFile);
  const name = block.name ?? (root === '.' ? path.basename(context.workspaceRoot) : path.basename(root));
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
      (file) => {
        try {
          return createModelProject(file, opts, context, settings);
        } catch (e) {
          throw isPtqError(e) ? describe(e) : e;
        }
      },
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
function describe(e: PtqError): Error {
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
  const clash = new Set([...byName.values()].filter((fs) => fs.length > 1).flat());
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

export const createNodes: CreateNodesV2<NxPtqPluginOptions> = [YAML_GLOB, createNodesInternal];
/** Nx 22 prefers this name; Nx 23+ calls `createNodes`. Same function. */
export const createNodesV2 = createNodes;
