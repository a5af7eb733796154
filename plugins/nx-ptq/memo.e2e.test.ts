/**
 * The stage memo end to end, through the real Nx CLI (no daemon, Nx cache inside a temp
 * workspace, the memo's store at its default place, <workspace>/.nx-ptq/store). Stage
 * executions are counted through NX_PTQ_STAGE_LOG (`<stage> <model> computed|memo-hit`).
 *
 * Editing only compiler_parameters:
 * - with Nx's cache: Nx reruns compile (and perf/verify when the .bin changed); preprocess,
 *   check, calibrate and quantize do not even start (their slices and inputs are unchanged);
 * - without it (--skip-nx-cache, as after a cleared cache or on a fresh machine sharing the
 *   store): Nx starts every task, and the four upstream stages are restored from the memo
 *   instead of computed.
 * compile, perf and verify are asserted when their stage files exist (runnableStages).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { StageName } from '../../compiler/src/stages';
import {
  createWorkspace,
  editFile,
  expectStatus,
  hashTree,
  leafStages,
  nx,
  NxRun,
  PTQ,
  removeWorkspace,
  runnableStages,
  taskLines,
  write,
} from './test-support/workspace';

const UPSTREAM: StageName[] = ['preprocess', 'check', 'calibrate', 'quantize'];
const COMPILE_SIDE: StageName[] = ['compile', 'perf', 'verify'];

let ws: string;
let logFile: string;
const TOOLCHAIN = `memo-e2e-${process.pid}`;
const stages = runnableStages();
const leaves = leafStages(stages);
const outDir = (): string => path.join(ws, 'models', 'm1', 'model_output');

/** Memo on at its default location (jest.setup.js turns it off for the tests), one log line per stage run. */
function run(...extra: string[]): { r: NxRun; events: string[] } {
  const before = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).length : 0;
  const r = nx(ws, ['run-many', '-t', ...leaves, '-p', 'm1', ...extra], {
    NX_PTQ_STAGE_LOG: logFile,
    NX_PTQ_NO_MEMO: undefined,
    NX_PTQ_STORE: undefined,
    // the compiler sources are edited while this runs in a shared tree: pin the toolchain part of the key
    NX_PTQ_MEMO_TOOLCHAIN: TOOLCHAIN,
  });
  expectStatus(r, 0);
  const events = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).slice(before) : [];
  return { r, events };
}

/** `{stage: event}` of one model's run (each stage at most once per run). */
function byStage(events: string[]): Partial<Record<StageName, string>> {
  const out: Partial<Record<StageName, string>> = {};
  for (const e of events) {
    const [stage, model, what] = e.split(' ');
    expect(model).toBe('m1');
    expect(out[stage as StageName]).toBeUndefined();
    out[stage as StageName] = what;
  }
  return out;
}

const binHash = (): string | undefined => hashTree(outDir())['tiny.bin'];

/** Upstream outputs only (what calibrate/quantize & co. wrote). */
function upstreamOutputs(): Record<string, string> {
  return Object.fromEntries(Object.entries(hashTree(outDir())).filter(([f]) => !/\.bin$|^hb_perf_result\/|^verify\.json$/.test(f)));
}

beforeAll(() => {
  ws = createWorkspace('nx-ptq-memo-e2e-');
  write(ws, '.gitignore', 'model_output/\n.nx-cache/\n.nx/\n.nx-ptq/\n');
  logFile = path.join(ws, 'stages.log');
});

afterAll(() => removeWorkspace(ws));

describe('stage memo through the Nx CLI', () => {
  let firstUpstream: Record<string, string>;
  const seenBins = new Set<string>();

  it('first build: every stage computed once, entries in <workspace>/.nx-ptq/store', () => {
    expect(stages).toEqual(expect.arrayContaining(UPSTREAM));
    const { events } = run();
    expect(byStage(events)).toEqual(Object.fromEntries(stages.map((s) => [s, 'computed'])));
    const entries = path.join(ws, '.nx-ptq', 'store', 'entries');
    const manifests = fs.readdirSync(entries).flatMap((d) => fs.readdirSync(path.join(entries, d)));
    expect(manifests).toHaveLength(stages.length);
    firstUpstream = upstreamOutputs();
    const bin = binHash();
    if (bin) seenBins.add(bin);
  });

  it('editing compiler_parameters: Nx reruns only the compile side; calibrate and quantize do not run at all', () => {
    const before = binHash();
    editFile(ws, 'models/m1/model.yaml', "optimize_level: 'O3'", "optimize_level: 'O2'");
    const { r, events } = run();
    const ev = byStage(events);
    const tasks = taskLines(r.all);
    for (const s of UPSTREAM) {
      expect(ev[s]).toBeUndefined();
      if (leaves.includes(s) || stages.includes(s)) expect(tasks.ran).not.toContain(`m1:${s}`);
    }
    if (stages.includes('compile')) {
      expect(ev.compile).toBe('computed');
      const after = binHash()!;
      // perf and verify read only the .bin (and upstream outputs): Nx reruns them iff it changed
      for (const s of COMPILE_SIDE.slice(1).filter((x) => stages.includes(x))) {
        expect(ev[s]).toBe(after !== before ? 'computed' : undefined);
      }
      seenBins.add(after);
    } else {
      expect(events).toEqual([]); // nothing on the compile side exists yet: everything was cached
    }
    expect(upstreamOutputs()).toEqual(firstUpstream);
  });

  it('the same edit without Nx cache: every task starts, the upstream stages are memo hits', () => {
    editFile(ws, 'models/m1/model.yaml', "optimize_level: 'O2'", "optimize_level: 'O1'");
    const { r, events } = run('--skip-nx-cache');
    const ev = byStage(events);
    for (const s of UPSTREAM) expect(ev[s]).toBe('memo-hit');
    expect(r.all).toMatch(/INFO calibrate: memo hit [0-9a-f]{12}, outputs restored from /);
    if (stages.includes('compile')) {
      expect(ev.compile).toBe('computed'); // O1 was never compiled
      const bin = binHash()!;
      for (const s of COMPILE_SIDE.slice(1).filter((x) => stages.includes(x))) {
        expect(ev[s]).toBe(seenBins.has(bin) ? 'memo-hit' : 'computed');
      }
    }
    expect(Object.keys(ev).sort()).toEqual([...stages].sort());
    expect(upstreamOutputs()).toEqual(firstUpstream);
  });

  it('ptq cache info sees the workspace store; the memo survives nx reset', () => {
    const reset = nx(ws, ['reset']);
    expectStatus(reset, 0);
    const { events } = run();
    const ev = byStage(events);
    expect(events.join('\n')).not.toContain('computed');
    for (const s of UPSTREAM) expect(ev[s]).toBe('memo-hit');
    for (const s of COMPILE_SIDE.filter((x) => stages.includes(x))) expect(ev[s]).toBe('memo-hit');

    const env = { ...process.env };
    delete env.NX_PTQ_STORE;
    const info = spawnSync(process.execPath, [PTQ, 'cache', 'info'], { cwd: path.join(ws, 'models', 'm1'), env, encoding: 'utf8' });
    expect(info.stderr).toBe('');
    expect(info.stdout).toContain(`store: ${path.join(ws, '.nx-ptq', 'store')}\n`);
    expect(info.stdout).toMatch(/^  calibrate\s+1 entry /m); // compiler_parameters never made a second calibrate entry
  });
});
