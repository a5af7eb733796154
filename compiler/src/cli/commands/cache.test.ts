import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../main';
import { memoKey, MemoStore } from '../../store';
import { formatSize, parseSize } from './cache';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-cache-cli-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

async function ptq(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A store with `n` entries of `bytes` each, for stages in turn; entry i last used (n - i) days ago. */
function fill(dir: string, n: number, bytes: number): string[] {
  const store = new MemoStore(dir);
  const work = path.join(root, 'work');
  fs.mkdirSync(work, { recursive: true });
  const stages = ['check', 'calibrate', 'quantize'];
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(path.join(work, 'out.bin'), Buffer.alloc(bytes, i));
    const parts = { stage: stages[i % 3], toolchain: 't', slice: { i }, inputs: [], outputs: ['out.bin'] };
    const k = memoKey(parts);
    store.save(k, parts, work, { lines: [] });
    fs.rmSync(path.join(work, 'out.bin')); // next save gets a file of its own
    const t = new Date(Date.now() - (n - i) * 86400e3);
    fs.utimesSync(path.join(store.entryDir(k), 'manifest.json'), t, t);
    keys.push(k);
  }
  return keys;
}

it('ptq cache info: location, size and entries per stage', async () => {
  const dir = path.join(root, 'store');
  fill(dir, 5, 3000);
  const r = await ptq('cache', 'info', '--dir', dir);
  expect(r.err).toEqual([]);
  expect(r.code).toBe(0);
  expect(r.out[0]).toBe(`store: ${dir}`);
  expect(r.out[1]).toMatch(/^entries: 5, \d+\.\d+ KiB$/);
  expect(r.out.slice(2, 5).map((l) => l.trim().split(/\s+/).slice(0, 2))).toEqual([
    ['check', '2'],
    ['calibrate', '2'],
    ['quantize', '1'],
  ]);
  expect(r.out[5]).toMatch(/^last used: \d{4}-\d\d-\d\d \(oldest\) \.\. \d{4}-\d\d-\d\d \(newest\)$/);
  const empty = await ptq('cache', 'info', '--dir', path.join(root, 'none'));
  expect(empty.out).toEqual([`store: ${path.join(root, 'none')}`, 'entries: 0, 0 B']);
});

it('ptq cache prune --older-than, --max-size, --all', async () => {
  const dir = path.join(root, 'store');
  const keys = fill(dir, 6, 10000);
  const store = new MemoStore(dir);
  let r = await ptq('cache', 'prune', '--older-than', '3.5', '--dir', dir);
  expect(r.code).toBe(0);
  expect(r.out[0]).toMatch(/^INFO removed 3 entries \(\d+\.\d+ KiB\); kept 3 \(\d+\.\d+ KiB\) in /);
  expect(store.list().map((e) => e.key)).toEqual(keys.slice(3));
  r = await ptq('cache', 'prune', '--max-size', '25k', '--dir', dir);
  expect(r.out[0]).toMatch(/^INFO removed 1 entry .*; kept 2 /);
  expect(store.list().map((e) => e.key)).toEqual(keys.slice(4));
  r = await ptq('cache', 'prune', '--all', `--dir=${dir}`);
  expect(r.out[0]).toMatch(/^INFO removed 2 entries .*; kept 0 \(0 B\)/);
  expect(store.list()).toEqual([]);
});

it('user errors are one ERROR line with exit code 2', async () => {
  const cases: [string[], RegExp][] = [
    [['cache'], /^ERROR cache: missing subcommand \(fix: use `ptq cache info`/],
    [['cache', 'purge'], /^ERROR cache: unknown subcommand 'purge'/],
    [['cache', 'prune'], /^ERROR cache prune: say what to remove \(fix: pass --max-size SIZE, --older-than DAYS or --all\)$/],
    [['cache', 'prune', '--max-size', 'lots'], /^ERROR cache prune: --max-size must be a size like 500M, 2G or 1073741824, got 'lots'/],
    [['cache', 'prune', '--older-than', '-3'], /^ERROR cache prune: option '--older-than' needs a value|--older-than must be a number of days/],
    [['cache', 'prune', '--older-than', 'week'], /^ERROR cache prune: --older-than must be a number of days, got 'week'/],
    [['cache', 'info', 'extra'], /^ERROR cache info: unexpected argument 'extra'/],
    [['cache', 'info', '--max-size', '1'], /^ERROR cache info: unknown option '--max-size'/],
  ];
  for (const [argv, re] of cases) {
    const r = await ptq(...argv);
    expect([argv.join(' '), r.code]).toEqual([argv.join(' '), 2]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(re);
  }
});

it('ptq cache --help and sizes', async () => {
  const r = await ptq('cache', '--help');
  expect(r.code).toBe(0);
  expect(r.out.join('\n')).toContain('ptq cache prune [--max-size SIZE] [--older-than DAYS] [--all] [--dir D]');
  expect(parseSize('1048576')).toBe(1048576);
  expect(parseSize('500M')).toBe(500 * 1024 ** 2);
  expect(parseSize('1.5GB')).toBe(1.5 * 1024 ** 3);
  expect(parseSize('2 g')).toBe(2 * 1024 ** 3);
  expect(formatSize(1023)).toBe('1023 B');
  expect(formatSize(1536)).toBe('1.50 KiB');
  expect(formatSize(3 * 1024 ** 3)).toBe('3.00 GiB');
});
