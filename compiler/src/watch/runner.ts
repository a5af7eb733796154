/**
 * How the watcher reruns stages:
 * - `NxRunner` (default): `nx run-many -t <last targets> --projects=<models>`. Nx's cache is
 *   then the single truth: the stages an edit does not affect are cache hits, the others run,
 *   and their results are cached for the next `nx run` (and for CI, with a remote cache).
 * - `DirectRunner` (`ptq watch --no-nx`): `runStage` in this process, the affected stages
 *   (and any stage whose outputs are missing) in pipeline order.
 */
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { PtqConfig } from '../config';
import { isPtqError, PtqError } from '../errors';
import { runStage, StageName, STAGE_NAMES, stageOutputPaths } from '../stages';
import { leafStages, withDownstream } from './affected';
import type { WatchedModel } from './models';

export interface RunRequest {
  model: WatchedModel;
  /** the configuration as last loaded */
  cfg: PtqConfig;
  /** the stages to rerun (pipeline order) */
  stages: StageName[];
  /** every stage the watcher keeps up to date (the targets and their upstream stages) */
  scope: StageName[];
}

export interface RunOutcome {
  ok: boolean;
  /** stages that ran */
  ran: StageName[];
  /** stages restored from a cache (Nx) */
  cached: StageName[];
  /** the stage that failed */
  failed?: StageName;
  /** its one-line error (`ERROR … (fix: …)`) */
  error?: string;
  ms: number;
}

export interface Runner {
  /** for the watcher's header line */
  readonly description: string;
  run(requests: readonly RunRequest[]): Promise<Map<string, RunOutcome>>;
  /** stops a run in progress */
  close(): void;
}

// ------------------------------------------------------------------------------ direct

export class DirectRunner implements Runner {
  readonly description = 'in this process (--no-nx)';

  /** `log` receives each line a stage prints (default: dropped). */
  constructor(private readonly log: (model: string, line: string) => void = () => {}) {}

  async run(requests: readonly RunRequest[]): Promise<Map<string, RunOutcome>> {
    const out = new Map<string, RunOutcome>();
    for (const req of requests) out.set(req.model.name, await this.runModel(req));
    return out;
  }

  private async runModel(req: RunRequest): Promise<RunOutcome> {
    const t0 = Date.now();
    // a stage whose outputs are missing (deleted, or never built) runs too, with its downstream stages
    const missing = req.scope.filter((s) => stageOutputPaths(s, req.cfg).some((f) => !fs.existsSync(f)));
    const stages = withDownstream([...req.stages, ...missing]).filter((s) => req.scope.includes(s));
    const ran: StageName[] = [];
    const log = (line: string): void => this.log(req.model.name, line);
    for (const stage of stages) {
      try {
        await withStderrTo(log, () => runStage(stage, { configFile: req.model.configFile, log }));
        ran.push(stage);
      } catch (e) {
        const error = isPtqError(e) ? e.oneLine() : `ERROR internal error in the ${stage} stage: ${firstLine(e)}`;
        return { ok: false, ran, cached: [], failed: stage, error, ms: Date.now() - t0 };
      }
    }
    return { ok: true, ran, cached: [], ms: Date.now() - t0 };
  }

  close(): void {}
}

/**
 * Runs `fn` with what it writes to stderr (progress lines of the stages) sent to `log`
 * instead, so that it does not tear the status lines apart.
 */
async function withStderrTo<T>(log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  const write = process.stderr.write;
  let partial = '';
  let inLog = false; // `log` itself may write to stderr
  const toLog = (line: string): void => {
    inLog = true;
    try {
      log(line);
    } finally {
      inLog = false;
    }
  };
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    if (inLog) return (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
    const lines = (partial + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))).split(/\r?\n|\r/);
    partial = lines.pop() ?? '';
    lines.filter((l) => l.trim() !== '').forEach(toLog);
    const done = rest.find((r): r is () => void => typeof r === 'function');
    done?.();
    return true;
  }) as typeof process.stderr.write;
  try {
    return await fn();
  } finally {
    process.stderr.write = write;
    if (partial.trim()) toLog(partial);
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

// ------------------------------------------------------------------------------ Nx

export interface NxRunnerOptions {
  workspaceRoot: string;
  /** Nx target name of each stage (the plugin's `<stage>TargetName` options) */
  targetNames?: Partial<Record<StageName, string>>;
  /** environment of the nx processes (default: this process's) */
  env?: NodeJS.ProcessEnv;
  /** receives Nx's output, chunk by chunk (default: dropped) */
  output?: (text: string) => void;
}

/** Variables an enclosing Nx task sets for its own process; the nested `nx` must not inherit them. */
const TASK_ENV = /^NX_(TASK_|TERMINAL_|STREAM_OUTPUT|PREFIX_OUTPUT|FORKED_|CLI_SET|LOAD_DOT_ENV|WORKSPACE_ROOT|SET_CLI|DRY_RUN)/;

export class NxRunner implements Runner {
  readonly description: string;
  private readonly nxBin: string;
  private readonly names: Record<StageName, string>;
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  constructor(private readonly opts: NxRunnerOptions) {
    this.nxBin = resolveNx(opts.workspaceRoot);
    this.names = Object.fromEntries(STAGE_NAMES.map((s) => [s, opts.targetNames?.[s] ?? s])) as Record<StageName, string>;
    this.description = `through Nx (${path.relative(process.cwd(), opts.workspaceRoot) || '.'})`;
  }

  async run(requests: readonly RunRequest[]): Promise<Map<string, RunOutcome>> {
    // one nx invocation per set of last targets (usually one for all models)
    const groups = new Map<string, RunRequest[]>();
    for (const req of requests) {
      const key = leafStages(req.stages).join(',');
      groups.set(key, [...(groups.get(key) ?? []), req]);
    }
    const out = new Map<string, RunOutcome>();
    for (const [key, reqs] of groups) {
      const targets = key.split(',').map((s) => this.names[s as StageName]);
      const t0 = Date.now();
      const { code, text } = await this.nx(['run-many', '-t', targets.join(','), `--projects=${reqs.map((r) => r.model.name).join(',')}`, '--output-style=static']);
      const ms = Date.now() - t0;
      const tasks = parseNxOutput(text, this.names);
      for (const req of reqs) {
        const t: NxProjectTasks = tasks.get(req.model.name) ?? { ran: [], cached: [], failed: [], errors: new Map() };
        const failed = STAGE_NAMES.find((s) => t.failed.includes(s));
        // nx fails when any project fails: this one is fine when its last targets are done
        const leaves = key.split(',') as StageName[];
        const ok = failed === undefined && (code === 0 || leaves.every((s) => t.ran.includes(s) || t.cached.includes(s)));
        const outcome: RunOutcome = { ok, ran: t.ran, cached: t.cached, ms };
        if (!ok) {
          outcome.failed = failed;
          outcome.error = (failed && t.errors.get(failed)) || nxError(text, code);
        }
        out.set(req.model.name, outcome);
      }
    }
    return out;
  }

  private nx(args: string[]): Promise<{ code: number; text: string }> {
    if (this.closed) return Promise.resolve({ code: 130, text: 'stopped' });
    const base = this.opts.env ?? process.env;
    const env: NodeJS.ProcessEnv = {
      ...base,
      NX_TUI: 'false',
      FORCE_COLOR: '0',
      // plugins in nx's own process, not one worker process each: ~1.5 s less CPU per rerun
      NX_ISOLATE_PLUGINS: base.NX_ISOLATE_PLUGINS ?? 'false',
    };
    for (const k of Object.keys(env)) if (TASK_ENV.test(k) || env[k] === undefined) delete env[k];
    return new Promise((resolve) => {
      // its own process group, so that close() stops the tasks it started too
      const child = spawn(process.execPath, [this.nxBin, ...args], { cwd: this.opts.workspaceRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.add(child);
      let text = '';
      const take = (chunk: Buffer): void => {
        const s = chunk.toString('utf8');
        text += s;
        this.opts.output?.(s);
      };
      child.stdout!.on('data', take);
      child.stderr!.on('data', take);
      child.on('error', (e) => {
        text += `\nERROR cannot start nx: ${e.message}`;
      });
      child.on('close', (code, signal) => {
        this.children.delete(child);
        resolve({ code: code ?? (signal ? 128 : 1), text: stripAnsi(text) });
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const child of this.children) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

/** The nx CLI of a workspace (its node_modules), as a script for `node`. */
export function resolveNx(workspaceRoot: string): string {
  try {
    const pkgFile = require.resolve('nx/package.json', { paths: [workspaceRoot] });
    const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { bin?: string | Record<string, string> };
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.nx;
    if (bin) return path.join(path.dirname(pkgFile), bin);
  } catch {
    // reported below
  }
  throw new PtqError('E_WATCH_NX', `nx is not installed in ${workspaceRoot}`, {
    subject: workspaceRoot,
    fix: 'run `npm install` in the workspace, or pass --no-nx to run the stages without Nx',
  });
}

export const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''); // eslint-disable-line no-control-regex

export interface NxProjectTasks {
  ran: StageName[];
  cached: StageName[];
  failed: StageName[];
  /** the error line of each failed stage */
  errors: Map<StageName, string>;
}

/**
 * What `nx run-many --output-style=static` did, per project: each task is announced by
 * `> nx run <project>:<target>` (plus `  [local cache]`, `[remote cache]` or
 * `[existing outputs match the cache, left as is]` when restored), its output follows, and
 * a `Failed tasks:` list closes a failed run.
 */
export function parseNxOutput(text: string, names: Record<StageName, string>): Map<string, NxProjectTasks> {
  const stageOf = new Map(STAGE_NAMES.map((s) => [names[s], s]));
  const out = new Map<string, NxProjectTasks>();
  const entry = (project: string): NxProjectTasks => {
    let e = out.get(project);
    if (!e) out.set(project, (e = { ran: [], cached: [], failed: [], errors: new Map() }));
    return e;
  };
  const split = (task: string): [string, StageName | undefined] => {
    const i = task.lastIndexOf(':');
    return [task.slice(0, i), stageOf.get(task.slice(i + 1))];
  };
  const lines = text.split(/\r?\n/);
  let current: { project: string; stage: StageName; lines: string[] } | undefined;
  const blocks: Array<{ project: string; stage: StageName; lines: string[] }> = [];
  let failedList = false;
  for (const line of lines) {
    const head = /^\s*>\s+nx run (\S+)(?:\s+\[([^\]]+)\])?\s*$/.exec(line);
    if (head) {
      const [project, stage] = split(head[1]);
      current = undefined;
      if (!stage) continue;
      const e = entry(project);
      const list = head[2] ? e.cached : e.ran;
      if (!e.ran.includes(stage) && !e.cached.includes(stage)) list.push(stage);
      current = { project, stage, lines: [] };
      blocks.push(current);
      continue;
    }
    if (/^\s*NX\s{2,}/.test(line)) current = undefined;
    if (/^\s*Failed tasks:\s*$/.test(line)) {
      failedList = true;
      continue;
    }
    if (failedList) {
      const m = /^\s*-\s+(\S+:\S+)\s*$/.exec(line);
      if (m) {
        const [project, stage] = split(m[1]);
        if (stage && !entry(project).failed.includes(stage)) entry(project).failed.push(stage);
        continue;
      }
      if (line.trim()) failedList = false;
    }
    current?.lines.push(line);
  }
  for (const b of blocks) {
    const e = entry(b.project);
    if (!e.failed.includes(b.stage)) continue;
    const err = b.lines.find((l) => /^\s*ERROR\b/.test(l)) ?? b.lines.find((l) => l.trim() !== '' && !/^\s*(warn|WARN|INFO)\b/.test(l));
    if (err) e.errors.set(b.stage, err.trim());
  }
  // `ran` lists the tasks that ran and succeeded
  for (const e of out.values()) e.ran = e.ran.filter((s) => !e.failed.includes(s));
  return out;
}

/** Nx's own error when no task explains the failure: its first ` NX ` line and the line after it. */
function nxError(text: string, code: number): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const i = lines.findIndex((l) => /^NX\s{2,}/.test(l) && !/^NX\s+(Running|Successfully|Nx read)/.test(l));
  if (i >= 0) {
    const next = lines.slice(i + 1).find((l) => l !== '');
    return `ERROR nx: ${lines[i].replace(/^NX\s+/, '')}${next ? ` ${next}` : ''}`;
  }
  const last = lines.filter((l) => l !== '').slice(-1)[0];
  return `ERROR nx exited with code ${code}${last ? `: ${last}` : ''}`;
}
