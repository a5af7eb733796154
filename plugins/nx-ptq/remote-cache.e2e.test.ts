/**
 * Remote cache end to end: Nx's self-hosted remote cache protocol (NX_SELF_HOSTED_REMOTE_CACHE_SERVER)
 * against a small in-memory server (test-support/remote-cache-server.ts). A first clone builds
 * the models and uploads every task; a second clone, in another folder with an empty local
 * cache, gets every task from the server, byte for byte. Then what Nx does when the server
 * is down, refuses the token, or only lets us read — the behaviour the README documents.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createWorkspace, expectStatus, hashTree, leafStages, nxAsync, NxRun, removeWorkspace, runnableStages, taskLines } from './test-support/workspace';
import { RemoteCacheServer, startRemoteCache } from './test-support/remote-cache-server';

jest.setTimeout(150_000);

const STAGES = runnableStages();
const TARGETS = leafStages(STAGES).join(',');
const TASKS = STAGES.map((s) => `m1:${s}`).sort();
const TOKEN = 'e2e-write-token';

let server: RemoteCacheServer;
const clones: string[] = [];
const clone = (): string => {
  const ws = createWorkspace('nx-ptq-remote-cache-');
  clones.push(ws);
  return ws;
};
const remote = (url = server.url, token = TOKEN): NodeJS.ProcessEnv => ({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: url, NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token });
const build = (ws: string, env: NodeJS.ProcessEnv, ...more: string[]): Promise<NxRun> => nxAsync(ws, ['run-many', '-t', TARGETS, ...more], env);
const outputs = (ws: string): Record<string, string> => hashTree(path.join(ws, 'models', 'm1', 'model_output'));
const sorted = (xs: string[]): string[] => [...xs].sort();

beforeAll(async () => {
  server = await startRemoteCache({ token: TOKEN, readOnlyToken: 'e2e-read-token' });
});
afterAll(async () => {
  await server?.close();
  clones.forEach(removeWorkspace);
});

describe('Nx self-hosted remote cache', () => {
  let first: string;

  it('a first clone runs every task and uploads each one', async () => {
    first = clone();
    const r = await build(first, remote());
    expectStatus(r, 0);
    expect(sorted(taskLines(r.all).ran)).toEqual(TASKS);
    const puts = server.requests.filter((q) => q.method === 'PUT');
    expect(puts.map((q) => q.status)).toEqual(TASKS.map(() => 200));
    expect(server.entries.size).toBe(TASKS.length);
    // each entry is a gzip'd tar of the task's outputs
    for (const body of server.entries.values()) expect([...body.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
  });

  it('a second clone elsewhere, with an empty local cache, gets every task from the server, byte for byte', async () => {
    const second = clone();
    server.requests.length = 0;
    const r = await build(second, remote());
    expectStatus(r, 0);
    const t = taskLines(r.all);
    expect(t.ran).toEqual([]);
    expect(sorted(t.remote)).toEqual(TASKS);
    expect(r.all).toContain(`Nx read the output from the cache instead of running the command for ${TASKS.length} out of ${TASKS.length} tasks.`);
    expect(server.requests.map((q) => `${q.method} ${q.status}`)).toEqual(TASKS.map(() => 'GET 200'));
    const files = outputs(second);
    expect(Object.keys(files).length).toBeGreaterThan(TASKS.length);
    expect(files).toEqual(outputs(first));
  });

  let third: string;

  it('an unknown token: the run stops before any task, exit 1, "Unauthorized"; a read-only token: tasks run, uploads refused', async () => {
    const ws = (third = clone());
    const r = await build(ws, remote(server.url, 'wrong-token'));
    expect(r.status).toBe(1);
    expect(taskLines(r.all).ran).toEqual([]);
    expect(r.all).toMatch(/^\s*NX\s+Unauthorized\b/m);
    expect(fs.existsSync(path.join(ws, 'models', 'm1', 'model_output'))).toBe(false);

    // read-only (a developer's token when CI fills the cache), on a server that lacks the entries:
    // the tasks run and succeed, the uploads get 403, and Nx says nothing about it
    const empty = await startRemoteCache({ token: 'another-write-token', readOnlyToken: 'e2e-read-token' });
    try {
      const ro = await build(ws, remote(empty.url, 'e2e-read-token'));
      expectStatus(ro, 0);
      expect(sorted(taskLines(ro.all).ran)).toEqual(TASKS);
      expect(sorted(empty.requests.map((q) => `${q.method} ${q.status}`))).toEqual([...TASKS.map(() => 'GET 404'), ...TASKS.map(() => 'PUT 403')]);
      expect(empty.entries.size).toBe(0);
      expect(ro.all).not.toMatch(/403|forbidden/i);
    } finally {
      await empty.close();
    }
    expect(outputs(ws)).toEqual(outputs(first)); // rebuilt from scratch in a third folder: the same bytes
  });

  it('the server down: a clone with a cold local cache fails (exit 1) unless the remote cache is skipped; a warm one keeps working', async () => {
    const down = await startRemoteCache({ token: TOKEN });
    const url = down.url;
    await down.close(); // nothing listens there any more
    const ws = clone();
    const failed = await build(ws, remote(url));
    expect(failed.status).toBe(1);
    expect(taskLines(failed.all).ran).toEqual([]);
    const port = url.split(':').pop();
    expect(failed.all).toMatch(new RegExp(`^\\s*NX\\s+Failed to send request: error sending request for url \\(http://127\\.0\\.0\\.1:${port}/v1/cache/\\d+\\)`, 'm'));
    // Nx prints "Successfully ran target …" before that error: the exit code is what counts
    expect(failed.all).toMatch(/Successfully ran target/);

    // the way out: --skip-remote-cache (or NX_SKIP_REMOTE_CACHE=true, or unset the server variable)
    const skipped = await nxAsync(ws, ['run', 'm1:preprocess', '--skip-remote-cache'], remote(url));
    expectStatus(skipped, 0);
    expect(skipped.all).toMatch(/Remote Cache Disabled/);
    expect(taskLines(skipped.all).ran).toEqual(['m1:preprocess']);

    // a clone whose local cache has the tasks never asks the server
    const warm = await build(third, remote(url));
    expectStatus(warm, 0);
    expect(sorted(taskLines(warm.all).cached)).toEqual(TASKS);
  });
});
