import * as fs from 'fs';
import * as path from 'path';
import type { PtqConfig } from '../config';
import type { StageName, StageResult } from '../stages';
import { stageKeyParts } from './key';
import { memoKey, MemoStore } from './store';

/**
 * The stage memo around each stage run (see ./index.ts for the user-facing description).
 * A hit restores the entry's outputs and replays the stage's log lines; a miss computes, then
 * stores the outputs. The store never fails a stage: a store that cannot be written or read
 * costs a WARN line and a computation, never the result.
 */

export interface MemoEnv {
  NX_PTQ_STORE?: string;
  NX_PTQ_NO_MEMO?: string;
  NX_PTQ_STAGE_LOG?: string;
  [k: string]: string | undefined;
}

/** Where the store lives: NX_PTQ_STORE, else `<workspace>/.nx-ptq/store` (workspace = nearest folder above `from` with an nx.json), else `<cwd>/.nx-ptq/store`. */
export function storeDir(from: string | undefined, env: MemoEnv = process.env, cwd = process.cwd()): string {
  if (env.NX_PTQ_STORE) return path.resolve(cwd, env.NX_PTQ_STORE);
  return path.join(workspaceRoot(from ?? cwd) ?? workspaceRoot(cwd) ?? cwd, '.nx-ptq', 'store');
}

/** The nearest folder at or above `dir` holding an nx.json. */
export function workspaceRoot(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'nx.json'))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * Whether stages are memoised: yes unless NX_PTQ_NO_MEMO is set (to anything but '', '0' or
 * 'false'). The test suites turn it off this way (jest.setup.js), unless a test names a store.
 */
export function memoEnabled(env: MemoEnv = process.env): boolean {
  const off = env.NX_PTQ_NO_MEMO;
  return off === undefined || off === '' || off === '0' || off.toLowerCase() === 'false';
}

export type StageEvent = 'computed' | 'memo-hit' | 'failed';

/** NX_PTQ_STAGE_LOG: one line `<stage> <model> computed|memo-hit|failed` per stage run, appended in one write. */
export function logStageEvent(stage: StageName, model: string, event: StageEvent, env: MemoEnv = process.env): void {
  const file = env.NX_PTQ_STAGE_LOG;
  if (!file) return;
  fs.appendFileSync(file, `${stage} ${model.replace(/\s/g, '_')} ${event}\n`);
}

/** The model's name in logs: the folder of its YAML (the Nx project's default name). */
export function modelName(cfg: PtqConfig): string {
  return path.basename(cfg.source.dir) || '<model>';
}

export interface MemoContext {
  log: (line: string) => void;
  /** output paths of a stage relative to working_dir (stageOutputs) */
  outputsOf: (stage: StageName) => string[];
  env?: MemoEnv;
}

/**
 * Runs `compute` for `stage`, or restores its outputs from the store when its key is known.
 * `compute` gets the log function to use: the lines it prints are what a hit replays.
 */
export async function runMemoized(
  stage: StageName,
  cfg: PtqConfig,
  ctx: MemoContext,
  compute: (log: (line: string) => void) => Promise<StageResult>,
): Promise<StageResult> {
  const env = ctx.env ?? process.env;
  const model = modelName(cfg);
  const printed: string[] = [];
  const run = async (): Promise<StageResult> => {
    try {
      const r = await compute((line) => {
        printed.push(line);
        ctx.log(line);
      });
      logStageEvent(stage, model, 'computed', env);
      return r;
    } catch (e) {
      logStageEvent(stage, model, 'failed', env);
      throw e;
    }
  };
  if (!memoEnabled(env)) return run();

  const warn = (msg: string): void => ctx.log(`WARN memo: ${msg}`);
  const key = stageKeyParts(stage, cfg, ctx.outputsOf, env);
  if (!key.ok) return run(); // the stage reports the missing input itself
  const store = new MemoStore(storeDir(cfg.source.dir, env));
  const k = memoKey(key.parts);
  const workingDir = cfg.model.workingDir;

  let found: ReturnType<MemoStore['lookup']>;
  try {
    found = store.lookup(k);
  } catch (e) {
    warn(`cannot read the store ${store.dir}: ${(e as Error).message}`);
    found = { status: 'miss' };
  }
  if (found.status === 'corrupt') {
    warn(`the ${stage} entry ${k.slice(0, 12)} in ${store.dir} is corrupt (${found.reason}); discarded, recomputing`);
    try {
      store.discard(k);
    } catch (e) {
      warn(`cannot discard it: ${(e as Error).message}`);
    }
  }
  if (found.status === 'hit') {
    try {
      const outputs = store.restore(found.manifest, workingDir);
      store.touch(k);
      const line = `INFO ${stage}: memo hit ${k.slice(0, 12)}, outputs restored from ${store.dir}`;
      ctx.log(line);
      for (const l of found.manifest.lines) ctx.log(l);
      logStageEvent(stage, model, 'memo-hit', env);
      return { stage, outputs, lines: [line, ...found.manifest.lines] };
    } catch (e) {
      warn(`cannot restore the ${stage} entry ${k.slice(0, 12)}: ${(e as Error).message}; recomputing`);
    }
  }

  detachOutputs(ctx.outputsOf(stage).map((o) => path.join(workingDir, o)));
  const result = await run();
  try {
    store.save(k, key.parts, workingDir, { lines: printed, model });
  } catch (e) {
    warn(`cannot store the ${stage} outputs in ${store.dir}: ${(e as Error).message}`);
  }
  return result;
}

/**
 * Restored outputs are hard links to store files: before a stage rewrites them, each linked
 * file is replaced by its own copy, so a stage writing in place cannot alter a stored entry.
 */
export function detachOutputs(paths: string[]): void {
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const n of fs.readdirSync(p)) visit(path.join(p, n));
    } else if (st.isFile() && st.nlink > 1) {
      const tmp = `${p}.nx-ptq-detach-${process.pid}`;
      fs.copyFileSync(p, tmp);
      fs.renameSync(tmp, p);
    }
  };
  for (const p of paths) visit(p);
}
