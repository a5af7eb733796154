/**
 * `ptq watch`: keeps models converted while their files are edited. chokidar watches each
 * model's YAML, its model file(s), custom op files, calibration folders and verify data
 * folders (`nx-ptq.verify.data_dir`). A burst of events
 * is settled for `debounceMs`, then, per model: the YAML is reloaded (an error is shown and
 * the last good configuration kept, so the next good save is compared with it), the affected
 * stages are worked out (`affectedStages` for the YAML, `stagesForFiles` for the files) and
 * the runner reruns them. Changes arriving during a run are gathered for the next one.
 */
import { FSWatcher, watch } from 'chokidar';
import * as fs from 'fs';
import * as path from 'path';
import { loadConfig, parseYaml, PtqConfig } from '../config';
import { isPtqError } from '../errors';
import { StageName, STAGE_NAMES } from '../stages';
import { affectedStages, changedGroups, FOLDER_KINDS, leafStages, stagesForFiles, watchedFiles, WatchedFileKind, withDownstream, withUpstream } from './affected';
import type { WatchedModel } from './models';
import type { RunOutcome, Runner, RunRequest } from './runner';
import { formatDuration, StatusBoard } from './status';

export interface WatcherOptions {
  models: readonly WatchedModel[];
  runner: Runner;
  status: StatusBoard;
  /** keep these stages (and the stages they need) up to date; default: all seven */
  until?: readonly StageName[];
  /** quiet time after the last file event before rerunning (default 300 ms) */
  debounceMs?: number;
  /** build every model once at start (default true) */
  initialBuild?: boolean;
  /** chokidar polling (file systems without change events) */
  usePolling?: boolean;
}

/** One result, for callers that want more than the status line. */
export interface WatchEvent {
  model: string;
  /** what triggered the run */
  reason: string;
  /** stages asked for (empty: nothing affected, or the YAML does not load) */
  stages: StageName[];
  outcome?: RunOutcome;
  /** the YAML's error, when it does not load */
  configError?: string;
}

const KIND_LABEL: Record<WatchedFileKind, string> = { model: 'model file', calibration: 'calibration data', customOp: 'custom op file', verifyData: 'verify data' };

interface ModelState {
  model: WatchedModel;
  /** the last configuration that loaded */
  cfg?: PtqConfig;
  /** its YAML document (to name the groups an edit changed) */
  doc?: unknown;
  configDirty: boolean;
  /** the YAML does not load: nothing runs until it does */
  broken: boolean;
  pending: Set<StageName>;
  reasons: string[];
  /** stages that failed (and those after them): rerun with the next change */
  stale: Set<StageName>;
}

export class ModelWatcher {
  private readonly states: ModelState[];
  private readonly scope: StageName[];
  private readonly debounceMs: number;
  private fsw?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private running = false;
  private closed = false;
  private watched = new Set<string>();
  private owners = new Map<string, Array<{ state: ModelState; kind: WatchedFileKind | 'config' }>>();
  private idleWaiters: Array<() => void> = [];
  private listeners: Array<(e: WatchEvent) => void> = [];

  constructor(private readonly opts: WatcherOptions) {
    this.states = opts.models.map((model) => ({ model, configDirty: true, broken: false, pending: new Set(), reasons: [], stale: new Set() }));
    this.scope = withUpstream(opts.until?.length ? opts.until : leafStages(STAGE_NAMES));
    this.debounceMs = opts.debounceMs ?? 300;
  }

  /** The stages kept up to date. */
  get stages(): StageName[] {
    return [...this.scope];
  }

  /** Called after each model's run (or config error, or no-op). */
  onEvent(listener: (e: WatchEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Loads the configurations, starts watching, and runs the initial build (resolves once it is watching). */
  async start(): Promise<void> {
    for (const st of this.states) {
      if (this.opts.initialBuild !== false) {
        this.scope.forEach((s) => st.pending.add(s));
        st.reasons.push('initial build');
      }
      this.reload(st, this.opts.initialBuild !== false);
      if (this.opts.initialBuild === false) st.pending.clear();
    }
    this.fsw = watch([...this.paths()], { ignoreInitial: true, persistent: true, depth: 0, atomic: true, usePolling: this.opts.usePolling, interval: 100 });
    this.fsw.on('all', (_event, p) => this.onFileEvent(path.resolve(p)));
    this.fsw.on('error', (e) => this.opts.status.log(`WARN watch: ${(e as Error).message}`));
    await new Promise<void>((resolve) => this.fsw!.once('ready', () => resolve()));
    this.watched = this.paths();
    this.schedule(0);
  }

  /** Resolves when no run is in progress or waiting. */
  idle(): Promise<void> {
    if (!this.running && this.timer === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.opts.runner.close();
    await this.fsw?.close();
    this.settle();
  }

  // ------------------------------------------------------------------ events

  private onFileEvent(file: string): void {
    // a file, or a file directly inside a watched folder
    const owners = [...(this.owners.get(file) ?? []), ...(this.owners.get(path.dirname(file)) ?? []).filter((o) => o.kind !== 'config' && FOLDER_KINDS.includes(o.kind))];
    if (!owners.length) return;
    for (const { state, kind } of owners) {
      if (kind === 'config') {
        state.configDirty = true;
        continue;
      }
      stagesForFiles([kind]).forEach((s) => state.pending.add(s));
      const reason = `${KIND_LABEL[kind]} changed`;
      if (!state.reasons.includes(reason)) state.reasons.push(reason);
    }
    this.schedule(this.debounceMs);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }

  private async flush(): Promise<void> {
    if (this.running || this.closed) return; // the running flush looks again when it ends
    this.running = true;
    try {
      await this.runDirty();
    } catch (e) {
      this.opts.status.log(`ERROR watch: ${(e as Error)?.stack ?? String(e)}`);
    } finally {
      this.running = false;
    }
    this.updatePaths();
    const more = this.states.some((s) => s.configDirty || (!s.broken && s.reasons.length > 0));
    if (more && !this.closed && this.timer === undefined) this.schedule(0);
    this.settle();
  }

  private settle(): void {
    if ((this.running || this.timer !== undefined) && !this.closed) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }

  // ------------------------------------------------------------------ runs

  private async runDirty(): Promise<void> {
    const requests: RunRequest[] = [];
    const reasons = new Map<string, string>();
    for (const st of this.states) {
      if (st.configDirty) this.reload(st, true);
      if (st.broken || st.reasons.length === 0 || !st.cfg) continue;
      const reason = st.reasons.join('; ');
      const stages = withDownstream([...st.pending, ...st.stale]).filter((s) => this.scope.includes(s));
      st.pending.clear();
      st.reasons = [];
      if (stages.length === 0) {
        const upTo = this.scope.length < STAGE_NAMES.length ? ` up to ${leafStages(this.scope).join(', ')}` : '';
        this.opts.status.result(st.model.name, true, 'up to date', `${reason}: no stage${upTo} affected`);
        this.emit({ model: st.model.name, reason, stages });
        continue;
      }
      requests.push({ model: st.model, cfg: st.cfg, stages, scope: this.scope });
      reasons.set(st.model.name, reason);
    }
    if (!requests.length) return;
    for (const r of requests) this.opts.status.running(r.model.name, leafStages(r.stages).join(', '), `running ${r.stages.join(', ')}  (${reasons.get(r.model.name)})`);
    const outcomes = await this.opts.runner.run(requests);
    for (const r of requests) {
      const st = this.states.find((s) => s.model === r.model)!;
      const outcome = outcomes.get(r.model.name) ?? { ok: false, ran: [], cached: [], error: 'ERROR the runner gave no result for this model', ms: 0 };
      const reason = reasons.get(r.model.name)!;
      st.stale = outcome.ok ? new Set() : new Set(withDownstream([outcome.failed ?? r.stages[0]]));
      this.report(r, outcome, reason);
      this.emit({ model: r.model.name, reason, stages: r.stages, outcome });
    }
  }

  private report(r: RunRequest, o: RunOutcome, reason: string): void {
    const { status } = this.opts;
    const ran = o.ran.length ? `ran ${o.ran.join(', ')}` : 'ran nothing';
    const cached = o.cached.length ? ` · ${o.cached.length} from cache` : '';
    if (o.ok) {
      status.result(r.model.name, true, leafStages(r.stages).join(', '), `${formatDuration(o.ms)}  ${reason} · ${ran}${cached}`);
      return;
    }
    const error = o.error ?? 'ERROR failed';
    if (status.isTTY) status.log(`[${r.model.name}] ${error}`);
    status.result(r.model.name, false, o.failed ?? leafStages(r.stages).join(', '), `${formatDuration(o.ms)}  ${reason} · ${error}`);
  }

  private emit(e: WatchEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** Reads the YAML again; on an error shows it and keeps the last good configuration. */
  private reload(st: ModelState, report: boolean): void {
    st.configDirty = false;
    let cfg: PtqConfig;
    let doc: unknown;
    try {
      cfg = loadConfig(displayPath(st.model.configFile));
      doc = parseYaml(fs.readFileSync(st.model.configFile, 'utf8')).doc;
    } catch (e) {
      const error = isPtqError(e) ? e.oneLine() : `ERROR cannot load ${st.model.configFile}: ${(e as Error)?.message ?? String(e)}`;
      st.broken = true;
      if (report) {
        const keep = st.cfg ? 'the last good configuration is kept; fix and save' : 'fix and save';
        if (this.opts.status.isTTY) this.opts.status.log(`[${st.model.name}] ${error}`);
        this.opts.status.result(st.model.name, false, path.basename(st.model.configFile), `${error}  (still watching: ${keep})`);
        this.emit({ model: st.model.name, reason: 'model.yaml changed', stages: [], configError: error });
      }
      return;
    }
    const before = st.cfg;
    affectedStages(before, cfg).forEach((s) => st.pending.add(s));
    if (before) {
      const groups = changedGroups(st.doc, doc);
      const reason = groups.length ? `${groups.join(', ')} changed` : `${path.basename(st.model.configFile)} changed`;
      if (!st.reasons.includes(reason)) st.reasons.push(reason);
    } else if (!st.reasons.length) {
      st.reasons.push(`${path.basename(st.model.configFile)} loads`);
    }
    st.cfg = cfg;
    st.doc = doc;
    st.broken = false;
  }

  // ------------------------------------------------------------------ watched paths

  /** Every path to watch, with its owners (YAMLs, model and custom op files, calibration and verify data folders). */
  private paths(): Set<string> {
    this.owners = new Map();
    const own = (p: string, state: ModelState, kind: WatchedFileKind | 'config'): void => {
      const abs = path.resolve(p);
      this.owners.set(abs, [...(this.owners.get(abs) ?? []), { state, kind }]);
    };
    for (const st of this.states) {
      own(st.model.configFile, st, 'config');
      if (!st.cfg) continue;
      const files = watchedFiles(st.cfg);
      for (const kind of Object.keys(files) as WatchedFileKind[]) for (const f of files[kind]) own(f, st, kind);
    }
    return new Set(this.owners.keys());
  }

  /** Follows configurations that now name other files. */
  private updatePaths(): void {
    if (!this.fsw || this.closed) return;
    const now = this.paths();
    const added = [...now].filter((p) => !this.watched.has(p));
    const removed = [...this.watched].filter((p) => !now.has(p));
    if (added.length) this.fsw.add(added);
    if (removed.length) this.fsw.unwatch(removed);
    this.watched = now;
  }
}

/** A path as messages show it: relative to the current folder when inside it. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
