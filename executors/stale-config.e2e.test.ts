/**
 * A model.yaml saved after Nx hashed a task and before the task ran, through the real Nx CLI
 * (no daemon, cache inside a temp workspace). Two models a and b with the same YAML; `nx
 * run-many -t check -p a b` hashes both checks before running either. NX_PTQ_STAGE_LOG is a
 * FIFO nobody reads yet: the first check to finish blocks on its log line, the test then saves
 * the other model's YAML with another check slice and only then opens the FIFO. So the second
 * check always runs with a YAML newer than its hash, deterministically, in batch mode (Nx's
 * default here: preferBatch) and one task per process (--batch=false).
 *
 * Without the executor's check the second task would succeed and Nx would cache the new YAML's
 * outputs under the old hash; reverting the YAML would then restore those wrong outputs. With
 * it the task fails in one line, nothing is cached, and the reverted model rebuilds to exactly
 * the outputs of its twin.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  createWorkspace,
  editFile,
  expectStatus,
  hashTree,
  nx,
  nxAsync,
  NxRun,
  removeWorkspace,
  taskLines,
  TINY_YAML,
} from '../plugins/nx-ptq/test-support/workspace';
import { currentSliceHash } from './stage-executor';

const OLD = "scale_value: '0.0039'";
const NEW = "scale_value: '0.0078'";
const MODELS = ['a', 'b'] as const;
type Model = (typeof MODELS)[number];

let ws: string;
const yamlOf = (m: Model): string => path.join(ws, 'models', m, 'model.yaml');
const outDir = (m: Model): string => path.join(ws, 'models', m, 'model_output');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  ws = createWorkspace('nx-ptq-stale-config-', { models: { a: TINY_YAML, b: TINY_YAML } });
});
afterAll(() => removeWorkspace(ws));

/**
 * Runs nx; once the first model's check has written its outputs (and waits on the FIFO), saves
 * the other model's YAML (OLD -> NEW), then lets the first go on. Returns the run and which
 * model was saved late.
 */
async function runWithLateSave(args: string[]): Promise<{ r: NxRun; late: Model; before: string; after: string }> {
  const fifo = path.join(ws, `stages-${Date.now()}.fifo`);
  const mk = spawnSync('mkfifo', [fifo]);
  if (mk.status !== 0) throw new Error(`mkfifo failed: ${mk.stderr}`);
  let done = false;
  const running = nxAsync(ws, args, { NX_PTQ_STAGE_LOG: fifo }).then((r) => {
    done = true;
    return r;
  });
  let first: Model | undefined;
  while (!done && first === undefined) {
    first = MODELS.find((m) => fs.existsSync(path.join(outDir(m), 'check.json')));
    if (first === undefined) await sleep(20);
  }
  if (first === undefined) throw new Error(`nx finished before any check ran:\n${(await running).all}`);
  const late: Model = first === 'a' ? 'b' : 'a';
  const before = currentSliceHash('check', yamlOf(late));
  editFile(ws, `models/${late}/model.yaml`, OLD, NEW);
  const after = currentSliceHash('check', yamlOf(late));
  // a reader: the blocked log write of the first check completes, and the later ones never block
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    return { r: await running, late, before, after };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(fifo, { force: true });
  }
}

const changedLine = (m: Model, from: string, to: string): string =>
  `ERROR models/${m}/model.yaml changed after Nx hashed this task (check slice ${from.slice(0, 12)} -> ${to.slice(0, 12)}) (fix: run the target again)`;

describe('a model.yaml saved between Nx hashing a task and running it', () => {
  let late: Model;

  it('batch mode: the late-saved task fails in one line, the other succeeds', async () => {
    const run = await runWithLateSave(['run-many', '-t', 'check', '-p', 'a', 'b']);
    late = run.late;
    const other: Model = late === 'a' ? 'b' : 'a';
    expectStatus(run.r, 1);
    expect(run.after).not.toBe(run.before);
    expect(run.r.all).toContain(changedLine(late, run.before, run.after));
    expect(run.r.all).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m); // no stack trace
    expect(fs.existsSync(path.join(outDir(other), 'check.json'))).toBe(true);
    expect(fs.existsSync(path.join(outDir(late), 'check.json'))).toBe(false); // failed before running the stage
  });

  it('the next run hashes the new YAML and runs it; reverted, it rebuilds to its twin\'s outputs (nothing poisoned)', () => {
    const other: Model = late === 'a' ? 'b' : 'a';
    const rerun = nx(ws, ['run-many', '-t', 'check', '-p', 'a', 'b']);
    expectStatus(rerun, 0);
    expect(taskLines(rerun.all)).toEqual({ ran: [`${late}:check`], cached: [`${other}:check`], remote: [] });
    const twin = hashTree(outDir(other));
    expect(hashTree(outDir(late))).not.toEqual(twin); // another scale_value: another HzPreprocess

    editFile(ws, `models/${late}/model.yaml`, NEW, OLD);
    const reverted = nx(ws, ['run-many', '-t', 'check', '-p', late]);
    expectStatus(reverted, 0);
    expect(taskLines(reverted.all).ran).toEqual([`${late}:check`]); // the failed run left no cache entry
    expect(hashTree(outDir(late))).toEqual(twin);
  });

  it('one task per process (--batch=false): the same one-line failure', async () => {
    for (const m of MODELS) fs.rmSync(outDir(m), { recursive: true, force: true });
    const run = await runWithLateSave(['run-many', '-t', 'check', '-p', 'a', 'b', '--batch=false', '--parallel=1', '--skip-nx-cache']);
    expectStatus(run.r, 1);
    expect(run.r.all).toContain(changedLine(run.late, run.before, run.after));
    expect(fs.existsSync(path.join(outDir(run.late), 'check.json'))).toBe(false);
    editFile(ws, `models/${run.late}/model.yaml`, NEW, OLD);
  });
});
