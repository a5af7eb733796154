/**
 * Reading a configuration: YAML text → (key lines, raw groups) → zod per group → normalised
 * `PtqConfig` → cross-key rules. Every problem becomes a `ConfigIssue` located by group, key
 * and line; all of them are thrown together as one `ConfigError` (a PtqError, code E_CONFIG).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { ConfigError, IssueList, quoteList, showValue } from './issues';
import { normalize } from './normalize';
import { checkRules } from './rules';
import {
  closest,
  GROUP_NAMES,
  GROUP_SCHEMAS,
  GroupName,
  groupKeys,
  modelFileKeys,
  RawConfig,
  REQUIRED_GROUPS,
  REQUIRED_KEYS,
} from './schema';
import { ModelKind, PtqConfig } from './types';

export interface ConfigOptions {
  /** Name used in messages (`model.yaml:4 …`); `loadConfig` uses the path it was given. */
  file?: string;
  /** Folder relative paths are resolved against; default: the file's folder, else the cwd. */
  dir?: string;
  /** `--model-type`: which model-file keys are required; inferred from the keys when omitted. */
  modelType?: ModelKind;
}

/** Reads and validates a configuration file. Throws a `ConfigError` (PtqError E_CONFIG). */
export function loadConfig(file: string, opts: Omit<ConfigOptions, 'file'> = {}): PtqConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message;
    throw new ConfigError(file, [{ message: `cannot read the configuration: ${reason}`, fix: 'pass the path of the model YAML' }]);
  }
  return parseConfig(text, { ...opts, file, dir: opts.dir ?? path.dirname(path.resolve(file)) });
}

/** Validates configuration text. Throws a `ConfigError` (PtqError E_CONFIG). */
export function parseConfig(text: string, opts: ConfigOptions = {}): PtqConfig {
  const dir = path.resolve(opts.dir ?? process.cwd());
  const { doc, lines } = parseYaml(text, opts.file);
  const issues = new IssueList(opts.file, lines);
  const raw = validateGroups(doc, issues, opts.modelType);
  issues.throwIfAny();
  const { cfg, given } = normalize(raw!, { file: opts.file, dir, lines, modelType: opts.modelType }, issues);
  issues.throwIfAny();
  checkRules(cfg!, given, issues);
  issues.throwIfAny();
  const nxPtq = (doc as Record<string, unknown>)['nx-ptq'];
  if (nxPtq !== undefined && nxPtq !== null) cfg!.source.nxPtq = nxPtq;
  return cfg!;
}

/**
 * Parses YAML (core schema: no custom types, no code) into a value plus the 1-based line of
 * every mapping key down to three levels (`group`, `group.key`, `group.key.sub`), read from
 * js-yaml's event stream so lines survive quoting, flow style and comments.
 */
export function parseYaml(text: string, file?: string): { doc: unknown; lines: Record<string, number> } {
  const filename = file ?? '<config>';
  let events: yaml.Event[];
  let docs: unknown[];
  try {
    events = yaml.parseEvents(text, { filename });
    docs = yaml.constructFromEvents(events, { source: text, filename, schema: yaml.CORE_SCHEMA });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      const lineText = e.mark ? (text.split(/\r?\n/)[e.mark.line] ?? '').trim() : '';
      throw new ConfigError(file, [
        {
          line: e.mark ? e.mark.line + 1 : undefined,
          message: `YAML syntax error: ${e.reason}${lineText ? ` at '${lineText.length > 60 ? lineText.slice(0, 57) + '...' : lineText}'` : ''}`,
          fix: 'check the indentation, quotes and duplicate keys around that line',
        },
      ]);
    }
    throw e;
  }
  if (docs.length !== 1) {
    throw new ConfigError(file, [
      {
        message: docs.length
          ? `expected one YAML document (with the groups ${REQUIRED_GROUPS.join(', ')}), found ${docs.length}`
          : `the file is empty; expected the groups ${REQUIRED_GROUPS.join(', ')}`,
        fix: `write the groups ${REQUIRED_GROUPS.join(', ')} in one document`,
      },
    ]);
  }
  return { doc: docs[0], lines: keyLines(text, events) };
}

function keyLines(text: string, events: yaml.Event[]): Record<string, number> {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  const lineAt = (offset: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  interface Frame {
    map: boolean;
    path: string[];
    expectKey: boolean;
    key?: string;
  }
  const lines: Record<string, number> = {};
  const stack: Frame[] = [];
  /** Called for each node in value (or sequence item) position: returns its path. */
  const enter = (): string[] => {
    const top = stack[stack.length - 1];
    if (!top) return [];
    if (!top.map) return [...top.path, '#'];
    if (top.expectKey) {
      top.expectKey = false; // a complex key: its value comes next
      return [...top.path, '?'];
    }
    top.expectKey = true;
    return [...top.path, top.key ?? '?'];
  };
  for (const ev of events) {
    switch (ev.type) {
      case yaml.EVENT_ID.DOCUMENT:
        stack.push({ map: false, path: [], expectKey: false });
        break;
      case yaml.EVENT_ID.MAPPING:
      case yaml.EVENT_ID.SEQUENCE: {
        const p = stack.length === 1 ? [] : enter();
        stack.push({ map: ev.type === yaml.EVENT_ID.MAPPING, path: p, expectKey: true });
        break;
      }
      case yaml.EVENT_ID.SCALAR: {
        const top = stack[stack.length - 1];
        if (top && top.map && top.expectKey) {
          top.key = yaml.getScalarValue(text, ev);
          top.expectKey = false;
          const p = [...top.path, top.key];
          if (p.length <= 3 && ev.valueStart >= 0 && !p.includes('#')) lines[p.join('.')] ??= lineAt(ev.valueStart);
        } else {
          enter();
        }
        break;
      }
      case yaml.EVENT_ID.ALIAS:
        enter();
        break;
      case yaml.EVENT_ID.POP:
        stack.pop();
        break;
    }
  }
  return lines;
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Top-level structure, unknown keys, per-key values (zod) and missing keys. */
/** Top-level groups owned by other tools (the Nx plugin reads `nx-ptq`); the loader ignores them. */
const FOREIGN_GROUPS: readonly string[] = ['nx-ptq'];

function validateGroups(doc: unknown, issues: IssueList, modelType?: ModelKind): RawConfig | undefined {
  if (!isMapping(doc)) {
    issues.add(undefined, undefined, `the configuration must be a mapping of groups (${REQUIRED_GROUPS.join(', ')}), got ${showValue(doc)}`);
    return undefined;
  }
  for (const key of Object.keys(doc)) {
    if ((GROUP_NAMES as string[]).includes(key) || FOREIGN_GROUPS.includes(key)) continue;
    const owner = GROUP_NAMES.find((g) => groupKeys(g).includes(key));
    const guess = closest(key, GROUP_NAMES);
    issues.add(
      key,
      undefined,
      owner
        ? `'${key}' belongs inside the ${owner} group, not at the top level`
        : `unknown group${guess ? ` (did you mean '${guess}'?)` : ''}; allowed groups: ${GROUP_NAMES.join(', ')}`,
    );
  }
  const missingGroups = REQUIRED_GROUPS.filter((g) => !(g in doc));
  if (missingGroups.length) {
    issues.add(
      undefined,
      undefined,
      `missing group${missingGroups.length > 1 ? 's' : ''} ${quoteList(missingGroups)}; every configuration needs ${REQUIRED_GROUPS.join(', ')}`,
      `add the ${missingGroups.join(', ')} group (see the templates)`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const group of GROUP_NAMES) {
    if (!(group in doc)) continue;
    const value = doc[group] ?? {};
    if (!isMapping(value)) {
      issues.add(group, undefined, `must be a mapping of keys, got ${showValue(value)}`);
      continue;
    }
    const result = GROUP_SCHEMAS[group].safeParse(value);
    if (result.success) out[group] = result.data;
    else {
      for (const issue of result.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) unknownKey(group, key, issues);
        } else {
          const key = issue.path.length ? String(issue.path[0]) : undefined;
          issues.add(group, key, issue.message);
        }
      }
    }
    missingKeys(group, value, issues, modelType);
  }
  return issues.empty ? (out as unknown as RawConfig) : undefined;
}

function unknownKey(group: GroupName, key: string, issues: IssueList): void {
  const owner = GROUP_NAMES.find((g) => g !== group && groupKeys(g).includes(key));
  if (group === 'compiler_parameters' && key === 'custom_op') {
    issues.add(group, key, "'custom_op' is a group of its own: move it (and its keys) to the top level");
    return;
  }
  if (owner) {
    issues.add(group, key, `unknown key here: '${key}' belongs to the ${owner} group`);
    return;
  }
  const guess = closest(key, groupKeys(group));
  issues.add(group, key, `unknown key${guess ? ` (did you mean '${guess}'?)` : ''}; allowed keys: ${groupKeys(group).join(', ')}`);
}

function missingKeys(group: GroupName, value: Record<string, unknown>, issues: IssueList, modelType?: ModelKind): void {
  const present = (k: string): boolean => value[k] !== undefined && value[k] !== null && value[k] !== '';
  const required = [...REQUIRED_KEYS[group]];
  if (group === 'model_parameters') {
    const files = modelFileKeys(present, modelType);
    if (files.conflict) issues.add(group, undefined, files.conflict);
    required.push(...files.missing);
  }
  const absent = required.filter((k) => !(k in value)).sort();
  const empty = required.filter((k) => k in value && !present(k));
  if (absent.length) issues.add(group, undefined, `missing key${absent.length > 1 ? 's' : ''} ${quoteList(absent)}`);
  for (const k of empty) issues.add(group, k, 'is empty; this key is required');
}
