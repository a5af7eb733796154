/**
 * Files for the generators: paths given by the user are relative to the workspace root (or
 * absolute). Inside the workspace the generator's Tree is read (so a generator sees files
 * written earlier in the same run, and tests can use a virtual tree); outside it, the disk.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Tree } from '@nx/devkit';
import { PtqError } from '../../compiler/src/errors';

export interface SourcePath {
  /** as the user wrote it (for messages) */
  given: string;
  /** absolute */
  abs: string;
  /** workspace-relative, `/`-separated; undefined outside the workspace */
  rel?: string;
}

export function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

export function sourcePath(tree: Tree, given: string): SourcePath {
  const abs = path.resolve(tree.root, given);
  const rel = toPosix(path.relative(tree.root, abs));
  const inside = rel !== '..' && !rel.startsWith('../') && !path.isAbsolute(rel);
  return { given, abs, rel: inside ? rel || '.' : undefined };
}

/** Whether the path is a file (Tree inside the workspace, disk outside). */
export function isFile(tree: Tree, p: SourcePath): boolean {
  if (p.rel !== undefined && tree.exists(p.rel)) return tree.isFile(p.rel);
  try {
    return fs.statSync(p.abs).isFile();
  } catch {
    return false;
  }
}

export function isDir(tree: Tree, p: SourcePath): boolean {
  if (p.rel !== undefined && tree.exists(p.rel)) return !tree.isFile(p.rel);
  try {
    return fs.statSync(p.abs).isDirectory();
  } catch {
    return false;
  }
}

export function readBytes(tree: Tree, p: SourcePath, what: string, option: string): Buffer {
  if (p.rel !== undefined && tree.exists(p.rel) && tree.isFile(p.rel)) return tree.read(p.rel)!;
  try {
    return fs.readFileSync(p.abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PtqError('E_FILE', `cannot read the ${what} '${p.given}' (--${option}): ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`, {
      subject: p.given,
      fix: 'check the path (relative paths are relative to the workspace root)',
    });
  }
}

/** Names in a folder (Tree inside the workspace, disk outside), sorted; hidden ones skipped. */
export function listDir(tree: Tree, p: SourcePath): string[] {
  let names: string[];
  if (p.rel !== undefined && tree.exists(p.rel)) names = tree.children(p.rel);
  else {
    try {
      names = fs.readdirSync(p.abs);
    } catch {
      names = [];
    }
  }
  return names.filter((n) => !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The size of a file in bytes. */
export function fileSize(tree: Tree, p: SourcePath): number {
  if (p.rel !== undefined && tree.exists(p.rel) && tree.isFile(p.rel)) return tree.read(p.rel)!.length;
  return fs.statSync(p.abs).size;
}

export function child(p: SourcePath, name: string): SourcePath {
  return {
    given: `${p.given.replace(/[\\/]$/, '')}/${name}`,
    abs: path.join(p.abs, name),
    rel: p.rel === undefined ? undefined : p.rel === '.' ? name : `${p.rel}/${name}`,
  };
}

/** Project and file names: letters, digits, '.', '_', '-'; starting with a letter or digit. */
export function safeName(raw: string): string {
  const s = raw.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return s || 'model';
}

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
