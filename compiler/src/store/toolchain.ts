import * as fs from 'fs';
import * as path from 'path';
import { sha256File, sha256Text } from './hash';

/**
 * The toolchain part of every memo key: the version of compiler/package.json, and in a source
 * checkout (compiler/src present, as in this repository) also a fingerprint of the compiler's
 * sources, so editing a kernel without bumping the version never serves an entry computed by
 * the old code. Tests and docs are left out of the fingerprint: they do not change results.
 */

const PACKAGE_NAME = '@nx-ptq/compiler';

/** The compiler package's folder: the nearest ancestor of this module with its package.json. */
export function compilerRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // not ours; keep looking
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`nx-ptq store: cannot find the ${PACKAGE_NAME} package.json above ${__dirname}`);
  }
}

let cached: string | undefined;

/**
 * `0.1.0` (installed package) or `0.1.0+src.<12 hex>` (source checkout). NX_PTQ_MEMO_TOOLCHAIN
 * replaces it: for tests of the memo in a tree others are editing, or to share a store across
 * checkouts known to compute the same.
 */
export function toolchainId(env: Record<string, string | undefined> = process.env): string {
  if (env.NX_PTQ_MEMO_TOOLCHAIN) return env.NX_PTQ_MEMO_TOOLCHAIN;
  if (cached !== undefined) return cached;
  const root = compilerRoot();
  const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  const src = path.join(root, 'src');
  cached = fs.existsSync(path.join(src, 'stages', 'index.ts')) ? `${version}+src.${sourceFingerprint(root).slice(0, 12)}` : version;
  return cached;
}

/** sha256 over (relative path, content hash) of the compiler's sources, protos and package.json. */
export function sourceFingerprint(root: string): string {
  const rows: string[] = [];
  const walk = (rel: string): void => {
    const entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name !== '__snapshots__' && e.name !== 'node_modules') walk(r);
      } else if (e.isFile() && !/\.test(\.util)?\.ts$|\.md$/.test(e.name)) {
        rows.push(`${r}\t${sha256File(path.join(root, r))}`);
      }
    }
  };
  for (const d of ['src', 'proto']) if (fs.existsSync(path.join(root, d))) walk(d);
  rows.push(`package.json\t${sha256File(path.join(root, 'package.json'))}`);
  return sha256Text(rows.sort().join('\n'));
}
