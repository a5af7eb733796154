/**
 * Which models `ptq watch` watches: the model.yaml files named on the command line (a file, a
 * folder holding a model.yaml, or a project name), or every model.yaml under the workspace.
 * Project names follow the Nx plugin's rule (`nx-ptq: { name }` in the YAML, else the folder's
 * name), so `ptq watch mobilenet` and `nx run mobilenet:watch` mean the same model.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseYaml } from '../config';
import { PtqError } from '../errors';

export interface WatchedModel {
  /** project name (as Nx knows it) */
  name: string;
  /** absolute path of the model.yaml */
  configFile: string;
}

export const MODEL_FILE = 'model.yaml';

/** Folders never searched for models. */
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', 'tmp']);

/** The nearest folder at or above `from` holding an nx.json. */
export function findWorkspaceRoot(from: string): string | undefined {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'nx.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Every `model.yaml` under `root` (absolute paths, sorted), skipping dot folders and node_modules. */
export function discoverModels(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        if (!e.name.startsWith('.') && !SKIP_DIRS.has(e.name)) walk(path.join(dir, e.name));
      } else if (e.name === MODEL_FILE) out.push(path.join(dir, e.name));
    }
  };
  walk(path.resolve(root));
  return out.sort();
}

/** The project name of a model.yaml: `nx-ptq.name`, else its folder's name. */
export function projectName(configFile: string): string {
  try {
    const { doc } = parseYaml(fs.readFileSync(configFile, 'utf8'));
    const block = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>)['nx-ptq'] : undefined;
    const name = block !== null && typeof block === 'object' ? (block as Record<string, unknown>).name : undefined;
    if (typeof name === 'string' && name !== '') return name;
  } catch {
    // an unreadable or broken YAML is reported when it is loaded; it keeps its folder's name
  }
  return path.basename(path.dirname(path.resolve(configFile)));
}

/**
 * The models to watch. `args`: model.yaml files, folders holding one, or project names;
 * none = every model under `root`.
 */
export function resolveModels(args: readonly string[], cwd: string, root: string): WatchedModel[] {
  let all: WatchedModel[] | undefined;
  const everyModel = (): WatchedModel[] => (all ??= discoverModels(root).map((f) => ({ name: projectName(f), configFile: f })));
  const picked: WatchedModel[] = [];
  if (args.length === 0) picked.push(...everyModel());
  for (const arg of args) {
    const abs = path.resolve(cwd, arg);
    const stat = fs.statSync(abs, { throwIfNoEntry: false });
    if (stat?.isFile()) {
      picked.push({ name: projectName(abs), configFile: abs });
    } else if (stat?.isDirectory()) {
      const file = path.join(abs, MODEL_FILE);
      if (!fs.existsSync(file)) {
        throw new PtqError('E_WATCH_MODEL', `folder '${arg}' has no ${MODEL_FILE}`, { subject: arg, fix: `name a model.yaml or a folder holding one` });
      }
      picked.push({ name: projectName(file), configFile: file });
    } else {
      const found = everyModel().filter((m) => m.name === arg);
      if (found.length === 0) {
        const names = everyModel().map((m) => m.name);
        throw new PtqError('E_WATCH_MODEL', `no model file or project named '${arg}' under ${root}`, {
          subject: arg,
          fix: names.length ? `use one of: ${names.join(', ')}` : `pass the path of a ${MODEL_FILE}`,
        });
      }
      picked.push(...found);
    }
  }
  if (picked.length === 0) {
    throw new PtqError('E_WATCH_MODEL', `no ${MODEL_FILE} under ${root}`, { fix: `run in a workspace with models/<name>/${MODEL_FILE}, or name the model files` });
  }
  const byFile = new Map(picked.map((m) => [m.configFile, m]));
  const models = [...byFile.values()];
  const names = new Map<string, string>();
  for (const m of models) {
    const other = names.get(m.name);
    if (other) {
      throw new PtqError('E_WATCH_MODEL', `two models are named '${m.name}': ${path.relative(cwd, other)} and ${path.relative(cwd, m.configFile)}`, {
        fix: "name one of them with 'nx-ptq: { name: … }' in its YAML",
      });
    }
    names.set(m.name, m.configFile);
  }
  return models;
}
