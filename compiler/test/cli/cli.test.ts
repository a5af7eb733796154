import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { expectUserError, runPtq } from './run-cli';

/** The `ptq` binary itself: version, help, argument errors. */
const REPO = path.resolve(__dirname, '..', '..', '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'compiler', 'package.json'), 'utf8')) as { version: string }).version;

describe('ptq', () => {
  jest.setTimeout(120_000);

  it('--version prints the compiler package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = runPtq([flag]);
      expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    }
  });

  it('is linked as the workspace bin, so `npx ptq` works from the repository root', () => {
    const bin = path.join(REPO, 'node_modules', '.bin', 'ptq');
    expect(fs.existsSync(bin)).toBe(true);
    const r = spawnSync(bin, ['--version'], { cwd: REPO, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${VERSION}\n`);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'compiler', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.ptq).toBe('bin/ptq.js');
    expect(fs.readFileSync(path.join(REPO, 'compiler', 'bin', 'ptq.js'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('runs from any directory (its TypeScript loader ignores the current tsconfig/swcrc)', () => {
    const r = runPtq(['--version'], { cwd: '/' });
    expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('--help lists the commands; help for a command and an action', () => {
    for (const args of [[], ['--help'], ['-h'], ['help']]) {
      const r = runPtq(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: ptq <command>/);
      expect(r.stdout).toMatch(/^\s+exec\s+run a model/m);
      expect(r.stderr).toBe('');
    }
    for (const args of [['exec', '--help'], ['help', 'exec']]) {
      const r = runPtq(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: ptq exec <action>/);
      expect(r.stdout).toMatch(/infer/);
    }
    const r = runPtq(['exec', 'infer', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--model-file', '--input-file', '--output-dir', '--engine']) expect(r.stdout).toContain(flag);
  });

  it('argument errors: exit 2 with one ERROR line', () => {
    expectUserError(runPtq(['frobnicate']), /unknown command 'frobnicate'/);
    expectUserError(runPtq(['--frob']), /unknown option '--frob'/);
    expectUserError(runPtq(['exec']), /needs an action/);
    expectUserError(runPtq(['exec', 'explode']), /no action 'explode'/);
    expectUserError(runPtq(['exec', 'infer']), /missing required option '--model-file'/);
    expectUserError(runPtq(['exec', 'infer', '--model-file', 'm.onnx']), /missing required option '--output-dir'/);
    expectUserError(runPtq(['exec', 'infer', '--model-file']), /'--model-file' needs a value/);
    expectUserError(runPtq(['exec', 'infer', '--model-file', 'm.onnx', '--output-dir', 'o', '--engine', 'tvm']), /one of reference, ort.*'tvm'/);
    expectUserError(runPtq(['exec', 'infer', '--model-file', 'm.onnx', '--output-dir', 'o', '--bogus', '1']), /unknown option '--bogus'/);
    expectUserError(runPtq(['exec', 'infer', '--model-file', 'm.onnx', '--output-dir', 'o', 'stray']), /unexpected argument 'stray'/);
  });
});
