import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../errors';

/**
 * A result folder written all or nothing: files go to a hidden temporary sibling, and
 * `commit()` puts it in place of `target` (an older folder of that name is replaced).
 */
export class OutputFolder {
  private readonly tmp: string;
  private done = false;

  constructor(readonly target: string) {
    const parent = path.dirname(path.resolve(target));
    try {
      fs.mkdirSync(parent, { recursive: true });
    } catch (e) {
      throw new PtqError('E_DEBUG_OUTPUT', `cannot create save_dir '${parent}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        subject: parent,
        fix: 'give a save_dir you can write to',
      });
    }
    this.tmp = path.join(parent, `.${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    fs.mkdirSync(this.tmp);
  }

  /** Write `rel` (a path inside the folder). */
  write(rel: string, data: string | Uint8Array): void {
    const file = path.join(this.tmp, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
  }

  commit(): string {
    if (this.done) return this.target;
    this.done = true;
    const target = path.resolve(this.target);
    let old: string | undefined;
    if (fs.existsSync(target)) {
      old = `${this.tmp}.old`;
      fs.renameSync(target, old);
    }
    fs.renameSync(this.tmp, target);
    if (old) fs.rmSync(old, { recursive: true, force: true });
    return target;
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Run `fill` on a new OutputFolder and commit it; nothing is left behind on failure. */
export async function writeFolder(target: string, fill: (out: OutputFolder) => Promise<void> | void): Promise<string> {
  const out = new OutputFolder(target);
  try {
    await fill(out);
    return out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

/**
 * A file name for a node: characters other than letters, digits, '.', '-', '_' become '_'
 * (and a leading dot); names that collide after that get `_2`, `_3`… in the order given.
 */
export function fileNames(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((n) => {
    const base = (n.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_') || 'node').slice(0, 120);
    let name = base;
    for (let k = 2; used.has(name.toLowerCase()); k++) name = `${base}_${k}`;
    used.add(name.toLowerCase());
    return name;
  });
}

/** JSON with a trailing newline; non-finite numbers become the strings 'inf', '-inf', 'nan'. */
export function toJson(v: unknown): string {
  return `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? (x !== x ? 'nan' : x > 0 ? 'inf' : '-inf') : x), 2)}\n`;
}
