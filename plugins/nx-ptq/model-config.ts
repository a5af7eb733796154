/**
 * Reading one model.yaml for the plugin: the optional top-level `nx-ptq:` block (project
 * name, extra tags) is the plugin's own and is read here; the rest goes through the
 * compiler's config loader, so the graph and the stages agree on every value and default.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, ConfigIssue, parseConfig, parseYaml, PtqConfig } from '../../compiler/src/config';
import { parseVerifyBlock } from '../../compiler/src/verify/settings';

/** The top-level group the plugin owns. */
export const BLOCK = 'nx-ptq';

/** `nx-ptq: { name: mobilenet, tags: [zoo, vision] }` */
export interface NxPtqBlock {
  /** project name (default: the YAML's folder name) */
  name?: string;
  /** extra project tags (the march tag is always added) */
  tags?: string[];
}

export interface ModelConfig {
  cfg: PtqConfig;
  block: NxPtqBlock;
}

/** Nx project names: no spaces, no `:` (task ids are `project:target`), nothing that reads as a path or option. */
const PROJECT_NAME = /^[A-Za-z0-9_@][A-Za-z0-9._@/-]*$/;

/**
 * Reads `file` (absolute). `displayFile` names it in messages (workspace-relative). Throws a
 * ConfigError (PtqError E_CONFIG) listing every problem, with YAML lines.
 */
export function readModelConfig(file: string, displayFile: string): ModelConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(displayFile, [{ message: `cannot read the configuration: ${(e as Error).message}` }]);
  }
  const { doc, lines } = parseYaml(text, displayFile);
  let block: NxPtqBlock = {};
  if (isMapping(doc) && BLOCK in doc) block = readBlock(doc[BLOCK], lines, displayFile);
  // the whole text: the loader keeps the `nx-ptq` group for the stages (verify's settings are
  // part of its slice, which must be the one the executor computes)
  return { cfg: parseConfig(text, { file: displayFile, dir: path.dirname(file) }), block };
}

/** The `nx-ptq.name` of a YAML that may be invalid otherwise; undefined when it cannot be read. */
export function readProjectName(file: string): string | undefined {
  try {
    const { doc, lines } = parseYaml(fs.readFileSync(file, 'utf8'));
    return isMapping(doc) && BLOCK in doc ? readBlock(doc[BLOCK], lines, file).name : undefined;
  } catch {
    return undefined;
  }
}

function readBlock(value: unknown, lines: Record<string, number>, file: string): NxPtqBlock {
  if (value === null || value === undefined) return {};
  const issues: ConfigIssue[] = [];
  const issue = (key: string | undefined, message: string, fix?: string): void => {
    issues.push({ group: BLOCK, key, line: (key && lines[`${BLOCK}.${key}`]) || lines[BLOCK], message, fix });
  };
  const block: NxPtqBlock = {};
  if (!isMapping(value)) {
    issue(undefined, 'must be a mapping (keys: name, tags, verify)', `write e.g. '${BLOCK}: { name: mobilenet }'`);
  } else {
    for (const [key, v] of Object.entries(value)) {
      if (key === 'name') {
        if (typeof v === 'string' && PROJECT_NAME.test(v)) block.name = v;
        else issue(key, `must be a project name (letters, digits, '.', '_', '-', '@', '/'), got ${JSON.stringify(v)}`);
      } else if (key === 'tags') {
        const tags = typeof v === 'string' ? v.split(/[;,]/).map((t) => t.trim()).filter(Boolean) : v;
        if (Array.isArray(tags) && tags.every((t) => typeof t === 'string' && t.trim() !== '')) block.tags = tags as string[];
        else issue(key, 'must be a list of tags (strings)', "write e.g. 'tags: [zoo, vision]'");
      } else if (key === 'verify') {
        // the verify stage's settings: checked here so a bad value shows in the project graph
        try {
          parseVerifyBlock(v, lines, file, path.dirname(path.resolve(file)));
        } catch (e) {
          if (e instanceof ConfigError) issues.push(...e.issues);
          else throw e;
        }
      } else {
        issue(key, 'unknown key; allowed keys: name, tags, verify');
      }
    }
  }
  if (issues.length) throw new ConfigError(file, issues);
  return block;
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
