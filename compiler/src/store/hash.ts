import * as crypto from 'crypto';
import * as fs from 'fs';

/**
 * sha256 of files, read in chunks (models can be hundreds of MB) and remembered per process
 * by (path, inode, size, mtime, ctime): a batch of Nx tasks hashes the same model file for
 * every stage of every model that uses it. A file rewritten atomically gets a new inode, one
 * rewritten in place a new mtime/ctime, so a changed file is never served from the cache.
 */

const CHUNK = 1 << 20;

interface Remembered {
  stamp: string;
  sha256: string;
}

const remembered = new Map<string, Remembered>();

function stampOf(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** sha256 (hex) of a file's content; throws the fs error when it cannot be read. */
export function sha256File(file: string): string {
  const st = fs.statSync(file);
  const stamp = stampOf(st);
  const known = remembered.get(file);
  if (known && known.stamp === stamp) return known.sha256;
  const sha256 = hashContent(file);
  remembered.set(file, { stamp, sha256 });
  return sha256;
}

/** sha256 (hex) of a file's content, always read from disk (used to verify store entries). */
export function hashContent(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export function sha256Text(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}
