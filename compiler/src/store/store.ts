import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { canonicalJson, Json } from '../config';
import { hashContent, sha256Text } from './hash';

/**
 * The content-addressed store of stage results. One entry per memo key:
 *
 *   <store>/entries/<key[0..2]>/<key>/manifest.json   what the entry holds (below)
 *                                    /files/<output>   the stage's outputs, as in working_dir
 *   <store>/tmp/                                      entries being written or discarded
 *
 * An entry is built in tmp/ and renamed into place, so a reader sees a whole entry or none
 * (two processes storing one key: the second rename fails and its copy is dropped). Reading
 * verifies everything: the manifest's key against its folder and its own content, the file
 * list, and every file's size and sha256. A mismatch makes the entry corrupt: the caller
 * discards it and recomputes. The manifest's mtime is the entry's last use (touched on a hit),
 * which `prune` orders by.
 */

export const MANIFEST = 'manifest.json';
const FORMAT = 1;

/** One input of a stage: a role-based name (`model:onnx_model`, `check:x_optimized_float_model.onnx`) and its content hash. */
export interface InputHash {
  name: string;
  sha256: string;
}

/** What a key is computed from. */
export interface KeyParts {
  stage: string;
  /** toolchainId() */
  toolchain: string;
  /** the stage's config slice */
  slice: Json;
  inputs: InputHash[];
  /** the stage's outputs, relative to working_dir (names hold output_model_file_prefix) */
  outputs: string[];
}

export interface FileRecord {
  /** relative to working_dir, `/`-separated */
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest extends KeyParts {
  format: typeof FORMAT;
  key: string;
  /** every file under the outputs, sorted by path */
  files: FileRecord[];
  /** every folder under the outputs (output folders included, so empty ones restore too), sorted */
  dirs: string[];
  /** the log lines the stage printed, replayed on a hit */
  lines: string[];
  /** the project the entry was first computed for (informative) */
  model?: string;
  /** sha256 of the canonical JSON of every other field: a damaged manifest is detected too */
  integrity: string;
}

export type Lookup = { status: 'hit'; manifest: Manifest } | { status: 'miss' } | { status: 'corrupt'; reason: string };

export interface EntryInfo {
  key: string;
  dir: string;
  stage?: string;
  model?: string;
  /** bytes: the files and the manifest */
  size: number;
  /** ms since the epoch: manifest mtime */
  lastUsed: number;
  /** the manifest cannot be read */
  broken: boolean;
}

export interface PruneOptions {
  /** keep at most this many bytes (least recently used entries go first) */
  maxSize?: number;
  /** remove entries not used for this many days */
  olderThanDays?: number;
  /** remove every entry */
  all?: boolean;
  /** for tests: the current time in ms */
  now?: number;
}

export interface PruneResult {
  removed: number;
  freed: number;
  kept: number;
  size: number;
}

/** An abandoned write (a killed process) older than this is removed by prune. */
const STALE_TMP_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The memo key: sha256 of the canonical JSON of its parts (inputs sorted by name). */
export function memoKey(parts: KeyParts): string {
  const inputs = [...parts.inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const text = canonicalJson({
    format: FORMAT,
    stage: parts.stage,
    toolchain: parts.toolchain,
    slice: parts.slice,
    inputs: inputs.map((i) => [i.name, i.sha256]),
    outputs: parts.outputs,
  });
  return sha256Text(text);
}

export class MemoStore {
  constructor(readonly dir: string) {}

  entryDir(key: string): string {
    return path.join(this.dir, 'entries', key.slice(0, 2), key);
  }

  /** Looks an entry up and verifies it completely. */
  lookup(key: string): Lookup {
    const dir = this.entryDir(key);
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, MANIFEST), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(dir)) return { status: 'miss' };
      return { status: 'corrupt', reason: `cannot read ${MANIFEST}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
    const reason = verifyEntry(dir, key, text);
    if (typeof reason === 'string') return { status: 'corrupt', reason };
    return { status: 'hit', manifest: reason };
  }

  /** Marks an entry as used now (prune keeps recently used entries). */
  touch(key: string): void {
    const now = new Date();
    try {
      fs.utimesSync(path.join(this.entryDir(key), MANIFEST), now, now);
    } catch {
      // a read-only store still serves hits
    }
  }

  /**
   * Writes an entry's outputs into `workingDir`: each output is assembled in a staging folder
   * next to it (hard links to the entry's files, copies across file systems), then renamed
   * over the old one.
   */
  restore(manifest: Manifest, workingDir: string): string[] {
    const files = path.join(this.entryDir(manifest.key), 'files');
    fs.mkdirSync(workingDir, { recursive: true });
    const staging = fs.mkdtempSync(path.join(workingDir, '.nx-ptq-restore-'));
    try {
      for (const d of manifest.dirs) fs.mkdirSync(path.join(staging, d), { recursive: true });
      for (const f of manifest.files) {
        const to = path.join(staging, f.path);
        fs.mkdirSync(path.dirname(to), { recursive: true });
        linkOrCopy(path.join(files, f.path), to);
      }
      const out: string[] = [];
      for (const o of manifest.outputs) {
        const target = path.join(workingDir, o);
        fs.rmSync(target, { recursive: true, force: true });
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.renameSync(path.join(staging, o), target);
        out.push(target);
      }
      return out;
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }

  /**
   * Stores the outputs a stage wrote into `workingDir` under `key`. Throws when an output is
   * missing. Returns the manifest (also when another process stored the key first).
   */
  save(key: string, parts: KeyParts, workingDir: string, extra: { lines: string[]; model?: string }): Manifest {
    const tmpRoot = path.join(this.dir, 'tmp');
    fs.mkdirSync(tmpRoot, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(tmpRoot, `${key.slice(0, 12)}-`));
    try {
      fs.chmodSync(tmp, 0o755); // mkdtemp makes it private; a shared store is read by others too
      const files: FileRecord[] = [];
      const dirs: string[] = [];
      const copy = (rel: string): void => {
        const src = path.join(workingDir, rel);
        const st = fs.statSync(src);
        if (st.isDirectory()) {
          dirs.push(rel);
          fs.mkdirSync(path.join(tmp, 'files', rel), { recursive: true });
          for (const name of fs.readdirSync(src).sort()) copy(`${rel}/${name}`);
        } else if (st.isFile()) {
          const to = path.join(tmp, 'files', rel);
          fs.mkdirSync(path.dirname(to), { recursive: true });
          linkOrCopy(src, to);
          files.push({ path: rel, size: fs.statSync(to).size, sha256: hashContent(to) });
        }
      };
      for (const o of parts.outputs) {
        if (!fs.existsSync(path.join(workingDir, o))) throw new Error(`the ${parts.stage} stage did not write ${o}`);
        copy(o);
      }
      const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
      const manifest: Manifest = {
        format: FORMAT,
        key,
        stage: parts.stage,
        toolchain: parts.toolchain,
        slice: parts.slice,
        inputs: [...parts.inputs].sort((a, b) => byPath(a.name, b.name)),
        outputs: parts.outputs,
        files: files.sort((a, b) => byPath(a.path, b.path)),
        dirs: dirs.sort(byPath),
        lines: extra.lines,
        ...(extra.model !== undefined ? { model: extra.model } : {}),
        integrity: '',
      };
      manifest.integrity = manifestIntegrity(manifest);
      fs.writeFileSync(path.join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
      const final = this.entryDir(key);
      fs.mkdirSync(path.dirname(final), { recursive: true });
      try {
        fs.renameSync(tmp, final);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        fs.rmSync(tmp, { recursive: true, force: true }); // stored meanwhile by another process
      }
      return manifest;
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Removes an entry: renamed out of entries/ first, so no reader sees half of it. */
  discard(key: string): void {
    removeDir(this.entryDir(key), path.join(this.dir, 'tmp'));
  }

  /** Every entry with its size and last use, least recently used first. */
  list(): EntryInfo[] {
    const root = path.join(this.dir, 'entries');
    const out: EntryInfo[] = [];
    for (const shard of readdirOr(root)) {
      for (const key of readdirOr(path.join(root, shard))) {
        const dir = path.join(root, shard, key);
        const manifestFile = path.join(dir, MANIFEST);
        let info: EntryInfo;
        try {
          const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Manifest;
          const size = m.files.reduce((s, f) => s + f.size, 0) + fs.statSync(manifestFile).size;
          info = { key, dir, stage: m.stage, model: m.model, size, lastUsed: fs.statSync(manifestFile).mtimeMs, broken: false };
        } catch {
          info = { key, dir, size: treeSize(dir), lastUsed: mtimeOr(dir, 0), broken: true };
        }
        out.push(info);
      }
    }
    return out.sort((a, b) => a.lastUsed - b.lastUsed || (a.key < b.key ? -1 : 1));
  }

  /**
   * Removes abandoned writes, broken entries, entries unused for `olderThanDays`, then the
   * least recently used ones until the store holds at most `maxSize` bytes (or all, `all`).
   */
  prune(opts: PruneOptions): PruneResult {
    const now = opts.now ?? Date.now();
    const tmpRoot = path.join(this.dir, 'tmp');
    for (const name of readdirOr(tmpRoot)) {
      const p = path.join(tmpRoot, name);
      if (opts.all || now - mtimeOr(p, now) > STALE_TMP_MS) fs.rmSync(p, { recursive: true, force: true });
    }
    const entries = this.list();
    let size = entries.reduce((s, e) => s + e.size, 0);
    let removed = 0;
    let freed = 0;
    const drop = (e: EntryInfo): void => {
      removeDir(e.dir, tmpRoot);
      removed++;
      freed += e.size;
      size -= e.size;
    };
    const kept: EntryInfo[] = [];
    for (const e of entries) {
      const old = opts.olderThanDays !== undefined && now - e.lastUsed > opts.olderThanDays * DAY_MS;
      if (opts.all || e.broken || old) drop(e);
      else kept.push(e);
    }
    if (opts.maxSize !== undefined) {
      while (size > opts.maxSize && kept.length) drop(kept.shift()!);
    }
    for (const shard of readdirOr(path.join(this.dir, 'entries'))) {
      const p = path.join(this.dir, 'entries', shard);
      if (readdirOr(p).length === 0) fs.rmSync(p, { recursive: true, force: true });
    }
    return { removed, freed, kept: kept.length, size };
  }
}

/** The entry's manifest when everything checks out, else the reason it does not. */
function verifyEntry(dir: string, key: string, text: string): Manifest | string {
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    return `${MANIFEST} is not valid JSON`;
  }
  if (!m || m.format !== FORMAT || m.key !== key) return `${MANIFEST} is not the manifest of this key`;
  if (!Array.isArray(m.files) || !Array.isArray(m.dirs) || !Array.isArray(m.outputs) || !Array.isArray(m.inputs) || !Array.isArray(m.lines)) {
    return `${MANIFEST} is incomplete`;
  }
  if (memoKey(m) !== key) return `${MANIFEST} does not hash to its key`;
  if (m.integrity !== manifestIntegrity(m)) return `${MANIFEST} does not match its integrity hash`;
  const unsafe = [...m.outputs, ...m.dirs, ...m.files.map((f) => f.path)].find((p) => typeof p !== 'string' || !isSafeRelative(p));
  if (unsafe !== undefined) return `${MANIFEST} names an unsafe path ${JSON.stringify(unsafe)}`;
  const files = path.join(dir, 'files');
  const listed = new Set([...m.dirs, ...m.files.map((f) => f.path)]);
  const found: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(files, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      found.push(r);
      if (e.isDirectory()) walk(r);
    }
  };
  try {
    walk('');
  } catch (e) {
    return `cannot list its files: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  const extra = found.find((f) => !listed.has(f));
  if (extra !== undefined) return `unexpected file ${extra}`;
  const foundSet = new Set(found);
  const missing = [...listed].find((f) => !foundSet.has(f));
  if (missing !== undefined) return `missing file ${missing}`;
  for (const o of m.outputs) if (!foundSet.has(o)) return `missing output ${o}`;
  for (const f of m.files) {
    const p = path.join(files, f.path);
    const st = fs.statSync(p);
    if (!st.isFile()) return `${f.path} is not a file`;
    if (st.size !== f.size) return `${f.path} has ${st.size} bytes, the manifest says ${f.size}`;
    if (hashContent(p) !== f.sha256) return `${f.path} does not match its sha256`;
  }
  return m;
}

function manifestIntegrity(m: Manifest): string {
  const rest: Record<string, unknown> = { ...m };
  delete rest.integrity;
  return sha256Text(canonicalJson(rest));
}

function isSafeRelative(p: string): boolean {
  return p !== '' && !path.isAbsolute(p) && !p.split(/[\\/]/).some((s) => s === '..' || s === '' || s === '.');
}

/** A hard link when the file system allows it, else a copy (reflink when possible). */
export function linkOrCopy(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE);
  }
}

function removeDir(dir: string, tmpRoot: string): void {
  fs.mkdirSync(tmpRoot, { recursive: true });
  const trash = path.join(tmpRoot, `trash-${crypto.randomBytes(6).toString('hex')}`);
  try {
    fs.renameSync(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  fs.rmSync(trash, { recursive: true, force: true });
}

function readdirOr(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function mtimeOr(p: string, fallback: number): number {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return fallback;
  }
}

function treeSize(p: string): number {
  try {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return st.size;
    return fs.readdirSync(p).reduce((s, n) => s + treeSize(path.join(p, n)), 0);
  } catch {
    return 0;
  }
}
