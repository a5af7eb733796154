import { PtqError } from '../errors';

/** Error code of every configuration problem. */
export const E_CONFIG = 'E_CONFIG';

/** One problem found in a configuration, located by group, key and YAML line. */
export interface ConfigIssue {
  /** `model_parameters`, `input_parameters`, … ; undefined for file-level problems. */
  group?: string;
  /** The key inside the group; undefined when the problem is about the group itself. */
  key?: string;
  /** 1-based line in the YAML, when known. */
  line?: number;
  /** What is wrong and what is allowed, one line. */
  message: string;
  /** One-line fix, when there is an obvious one. */
  fix?: string;
}

/** `model.yaml:4 model_parameters: missing keys 'caffe_model', 'prototxt'` */
export function formatIssue(file: string | undefined, issue: ConfigIssue): string {
  const where = `${file ?? '<config>'}:${issue.line !== undefined ? issue.line : ''}`;
  const subject = issue.group ? (issue.key ? `${issue.group}.${issue.key}` : issue.group) : undefined;
  return subject ? `${where} ${subject}: ${issue.message}` : `${where} ${issue.message}`;
}

/**
 * A PtqError (code E_CONFIG) carrying every problem found; its message is the first one,
 * followed by the keys of the others so the single line still says where to look.
 */
export class ConfigError extends PtqError {
  readonly issues: readonly ConfigIssue[];
  readonly file?: string;

  constructor(file: string | undefined, issues: readonly ConfigIssue[]) {
    const first = issues[0];
    const rest = issues.slice(1).map((i) => (i.group ? (i.key ? `${i.group}.${i.key}` : i.group) : 'file'));
    const more = rest.length ? ` (+${rest.length} more: ${[...new Set(rest)].join(', ')})` : '';
    super(E_CONFIG, formatIssue(file, first) + more, {
      subject: first.group ? (first.key ? `${first.group}.${first.key}` : first.group) : file,
      fix: first.fix,
    });
    this.issues = issues;
    this.file = file;
  }

  /** Every problem, one line each (the CLI may print these under the first line). */
  allLines(): string[] {
    return this.issues.map((i) => formatIssue(this.file, i));
  }
}

/** Collects issues, filling in YAML lines from the key → line map. */
export class IssueList {
  readonly items: ConfigIssue[] = [];

  constructor(
    readonly file: string | undefined,
    readonly lines: Readonly<Record<string, number>>,
  ) {}

  /** Line of `group.key`, else of `group`. */
  lineOf(group: string | undefined, key?: string): number | undefined {
    if (!group) return undefined;
    return (key !== undefined ? this.lines[`${group}.${key}`] : undefined) ?? this.lines[group];
  }

  add(group: string | undefined, key: string | undefined, message: string, fix?: string, line?: number): void {
    this.items.push({ group, key, message, fix, line: line ?? this.lineOf(group, key) });
  }

  get empty(): boolean {
    return this.items.length === 0;
  }

  throwIfAny(): void {
    if (this.items.length) throw new ConfigError(this.file, this.items);
  }
}

/** `'a', 'b'` */
export function quoteList(values: readonly (string | number)[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

/** Short, one-line rendering of a YAML value for messages. */
export function showValue(v: unknown): string {
  if (v === null || v === undefined) return 'an empty value';
  if (typeof v === 'string') return `'${v.length > 60 ? v.slice(0, 57) + '...' : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a YAML list';
  if (typeof v === 'object') return 'a YAML mapping';
  return String(v);
}
