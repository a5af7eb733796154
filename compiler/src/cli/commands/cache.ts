import * as path from 'path';
import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq cache info|prune`: the stage memo's store (compiler/src/store). `info` shows where it
 * is, how big, and its entries per stage; `prune` trims it by age and/or size (least recently
 * used entries first) and always removes broken entries and abandoned writes.
 */
const DIR: OptionSpec = { name: 'dir', type: 'string', value: 'D', description: 'the store folder (default: $NX_PTQ_STORE, else <workspace>/.nx-ptq/store)' };
const INFO_OPTIONS: OptionSpec[] = [DIR];
const PRUNE_OPTIONS: OptionSpec[] = [
  { name: 'max-size', type: 'string', value: 'SIZE', description: 'keep at most SIZE (bytes, or with a unit: 500M, 2G, 1.5GB), removing least recently used entries' },
  { name: 'older-than', type: 'string', value: 'DAYS', description: 'remove entries not used for DAYS days' },
  { name: 'all', type: 'boolean', description: 'remove every entry' },
  DIR,
];

const USAGE = [
  'Usage: ptq cache info [--dir D]',
  '       ptq cache prune [--max-size SIZE] [--older-than DAYS] [--all] [--dir D]',
];

export const command: Command = {
  summary: "show or trim the stage memo's store (info, prune)",
  help: () =>
    [
      ...USAGE,
      '',
      'The stage memo restores a stage\'s outputs when its configuration slice and input files are unchanged.',
      'Its store is $NX_PTQ_STORE, else .nx-ptq/store in the workspace (the folder with nx.json), else in the',
      'current folder. NX_PTQ_NO_MEMO=1 turns the memo off.',
      '',
      'info options:',
      formatOptions(INFO_OPTIONS),
      '',
      'prune options (at least one of --max-size, --older-than, --all):',
      formatOptions(PRUNE_OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const [sub, ...rest] = argv;
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(command.help());
      return 0;
    }
    if (sub === 'info') return info(rest, io);
    if (sub === 'prune') return prune(rest, io);
    throw new PtqError('E_CLI_ARGS', sub === undefined ? 'cache: missing subcommand' : `cache: unknown subcommand '${sub}'`, {
      fix: 'use `ptq cache info` or `ptq cache prune --max-size 2G` (see `ptq cache --help`)',
    });
  },
};

async function openStore(dir: string | undefined): Promise<import('../../store').MemoStore> {
  const { MemoStore, storeDir } = await import('../../store');
  return new MemoStore(dir !== undefined ? path.resolve(dir) : storeDir(undefined));
}

async function info(argv: string[], io: CliIO): Promise<number> {
  const { options, positionals } = parseArgs(argv, INFO_OPTIONS, 'cache info');
  noPositionals(positionals, 'info');
  const store = await openStore(options.dir as string | undefined);
  const entries = store.list();
  const total = entries.reduce((s, e) => s + e.size, 0);
  io.out(`store: ${store.dir}`);
  io.out(`entries: ${entries.length}, ${formatSize(total)}`);
  if (!entries.length) return 0;
  const stages = new Map<string, { n: number; size: number }>();
  for (const e of entries) {
    const k = e.broken ? '(broken)' : (e.stage ?? '?');
    const s = stages.get(k) ?? { n: 0, size: 0 };
    stages.set(k, { n: s.n + 1, size: s.size + e.size });
  }
  const order = ['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify'];
  const rank = (k: string): number => (order.includes(k) ? order.indexOf(k) : order.length);
  for (const k of [...stages.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))) {
    const s = stages.get(k)!;
    io.out(`  ${k.padEnd(11)} ${String(s.n).padStart(5)} entr${s.n === 1 ? 'y  ' : 'ies'}  ${formatSize(s.size).padStart(10)}`);
  }
  const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
  io.out(`last used: ${day(entries[0].lastUsed)} (oldest) .. ${day(entries[entries.length - 1].lastUsed)} (newest)`);
  return 0;
}

async function prune(argv: string[], io: CliIO): Promise<number> {
  const { options, positionals } = parseArgs(argv, PRUNE_OPTIONS, 'cache prune');
  noPositionals(positionals, 'prune');
  const maxSize = options['max-size'] !== undefined ? parseSize(options['max-size'] as string) : undefined;
  const olderThan = options['older-than'] !== undefined ? parseDays(options['older-than'] as string) : undefined;
  const all = options.all === true;
  if (maxSize === undefined && olderThan === undefined && !all) {
    throw new PtqError('E_CLI_ARGS', 'cache prune: say what to remove', { fix: 'pass --max-size SIZE, --older-than DAYS or --all' });
  }
  const store = await openStore(options.dir as string | undefined);
  const r = store.prune({ maxSize, olderThanDays: olderThan, all });
  io.out(`INFO removed ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} (${formatSize(r.freed)}); kept ${r.kept} (${formatSize(r.size)}) in ${store.dir}`);
  return 0;
}

function noPositionals(positionals: string[], sub: string): void {
  if (positionals.length) {
    throw new PtqError('E_CLI_ARGS', `cache ${sub}: unexpected argument '${positionals[0]}'`, { fix: `see \`ptq cache --help\`` });
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** `500M`, `2G`, `1.5GB`, `1048576` → bytes (binary units). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new PtqError('E_CLI_ARGS', `cache prune: --max-size must be a size like 500M, 2G or 1073741824, got '${text}'`, { subject: '--max-size', fix: 'e.g. --max-size 2G' });
  }
  return Math.floor(Number(m[1]) * unit);
}

function parseDays(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new PtqError('E_CLI_ARGS', `cache prune: --older-than must be a number of days, got '${text}'`, { subject: '--older-than', fix: 'e.g. --older-than 30' });
  }
  return n;
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
