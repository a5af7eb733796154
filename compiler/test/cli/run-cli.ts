import { spawnSync } from 'child_process';
import * as path from 'path';

/** The package's bin, as `npx ptq` runs it. */
export const PTQ_BIN = path.resolve(__dirname, '..', '..', 'bin', 'ptq.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** killed by the timeout (a hang) */
  timedOut: boolean;
}

/** Run the real `ptq` binary in a child process. */
export function runPtq(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [PTQ_BIN, ...args], {
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    env: { ...process.env, ...opts.env },
  });
  return {
    code: r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT',
  };
}

/** A user error as the CLI must report it: exit 2, one `ERROR …` line on stderr, no stack. */
export function expectUserError(r: CliResult, text?: RegExp): void {
  expect(r.timedOut).toBe(false);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^ERROR [^\n]+\n$/) });
  expect(r.stderr).not.toMatch(/^\s+at /m);
  if (text) expect(r.stderr).toMatch(text);
}
