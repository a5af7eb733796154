import { PtqError } from '../errors';

/** One option of a command: `--name value`, `--name=value`, or a boolean `--name`. */
export interface OptionSpec {
  name: string;
  /** one-letter alias (`-m`) */
  alias?: string;
  /** 'list': comma-separated values, and the option may repeat */
  type: 'string' | 'boolean' | 'list';
  required?: boolean;
  /** allowed values (string options) */
  choices?: string[];
  default?: string;
  /** placeholder in help (`FILE`) */
  value?: string;
  description: string;
}

export interface ParsedArgs {
  options: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * A small, strict parser: unknown options, missing values and missing required options are
 * PtqErrors that name the option and point at the command's help.
 */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], command: string): ParsedArgs {
  const byName = new Map<string, OptionSpec>();
  for (const s of specs) {
    byName.set(`--${s.name}`, s);
    if (s.alias) byName.set(`-${s.alias}`, s);
  }
  const options: ParsedArgs['options'] = {};
  const positionals: string[] = [];
  const err = (msg: string): PtqError =>
    new PtqError('E_CLI_ARGS', `${command}: ${msg}`, { fix: `see \`ptq ${command} --help\`` });

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(flag);
    if (!spec) throw err(`unknown option '${flag}'`);
    if (spec.type === 'boolean') {
      if (eq > 0) throw err(`option '--${spec.name}' takes no value`);
      options[spec.name] = true;
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length || (argv[i + 1].startsWith('-') && argv[i + 1] !== '-')) throw err(`option '--${spec.name}' needs a value`);
      value = argv[++i];
    }
    if (value === '') throw err(`option '--${spec.name}' needs a value`);
    if (spec.type === 'list') {
      const prev = (options[spec.name] as string[] | undefined) ?? [];
      options[spec.name] = [...prev, ...value.split(',').filter((v) => v !== '')];
    } else {
      if (options[spec.name] !== undefined) throw err(`option '--${spec.name}' is given twice`);
      if (spec.choices && !spec.choices.includes(value)) {
        throw err(`option '--${spec.name}' must be one of ${spec.choices.join(', ')} (got '${value}')`);
      }
      options[spec.name] = value;
    }
  }
  for (const s of specs) {
    if (options[s.name] === undefined && s.default !== undefined) options[s.name] = s.type === 'list' ? s.default.split(',') : s.default;
    if (s.required && options[s.name] === undefined) throw err(`missing required option '--${s.name}'`);
  }
  return { options, positionals };
}

/** The options block of a help text. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const flag = `${s.alias ? `-${s.alias}, ` : '    '}--${s.name}${s.type === 'boolean' ? '' : ` ${s.value ?? 'VALUE'}${s.type === 'list' ? '[,...]' : ''}`}`;
    const extra = [s.required ? 'required' : '', s.choices ? `one of: ${s.choices.join(', ')}` : '', s.default !== undefined ? `default: ${s.default}` : '']
      .filter(Boolean)
      .join('; ');
    return [flag, `${s.description}${extra ? ` (${extra})` : ''}`];
  });
  const w = Math.max(...rows.map((r) => r[0].length), 10) + 2;
  return rows.map(([a, b]) => `  ${a.padEnd(w)}${b}`).join('\n');
}
