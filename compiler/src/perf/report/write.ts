import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../../errors';

/** A file of a report folder: path relative to the folder (`/`-separated), and its bytes. */
export type ReportFile = readonly [relPath: string, data: string | Uint8Array];

/**
 * Write `files` as the whole content of `dir`, atomically: everything goes to a temp folder next
 * to `dir`, which then replaces `dir` by rename. Readers see the old folder or the new one,
 * never a mix; a failure leaves the old folder in place and no temp folder behind.
 */
export function writeDirAtomic(dir: string, files: readonly ReportFile[]): void {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  const tag = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${base}.tmp-${tag}`);
  const old = path.join(parent, `.${base}.old-${tag}`);
  const fail = (e: unknown, what: string): PtqError =>
    new PtqError('E_FILE', `cannot write '${dir}': ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      subject: dir,
      fix: 'check that the folder is writable and the disk is not full',
    });
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw fail(e, 'cannot create its parent folder');
  }
  try {
    fs.mkdirSync(tmp);
    for (const [rel, data] of files) {
      if (rel.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new Error(`bad report file name '${rel}'`);
      const file = path.join(tmp, ...rel.split('/'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof Error && e.message.startsWith('bad report file name')) throw e;
    throw fail(e, 'cannot write the new files');
  }
  let moved = false;
  try {
    if (fs.existsSync(abs)) {
      if (!fs.statSync(abs).isDirectory()) throw Object.assign(new Error('exists and is not a folder'), { code: 'ENOTDIR' });
      fs.renameSync(abs, old);
      moved = true;
    }
    fs.renameSync(tmp, abs);
  } catch (e) {
    if (moved && !fs.existsSync(abs)) fs.renameSync(old, abs);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw fail(e, 'cannot replace the folder');
  }
  if (moved) fs.rmSync(old, { recursive: true, force: true });
}
