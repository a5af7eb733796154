/**
 * Watch mode end to end: the plugin's continuous `watch` target (`nx run m1:watch`) runs
 * `ptq watch`, which reruns the stages each edit affects through `nx run-many`. The test edits
 * compiler_parameters, calibration_parameters, breaks the YAML and fixes it, adds a
 * calibration sample, and reads the one status line the watcher prints for each. The stages
 * run as far as this build implements them (`runnableStages`).
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { AggregateCreateNodesError, logger, ProjectConfiguration, TargetConfiguration } from '@nx/devkit';
import { createNodes, NxPtqPluginOptions } from './index';
import { createWorkspace, editFile, expectStatus, leafStages, NX, nx, nxEnv, removeWorkspace, runnableStages, stripAnsi, taskLines, TINY_YAML, write } from './test-support/workspace';

jest.setTimeout(150_000);

const STAGES = runnableStages();
const LEAVES = leafStages(STAGES);
const has = (s: string): boolean => (STAGES as string[]).includes(s);
const list = (xs: string[]): string => xs.filter(has).join(', ');

const workspaces: string[] = [];
afterAll(() => workspaces.forEach(removeWorkspace));

describe('the watch target (plugin)', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => (warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined)));
  afterEach(() => warn.mockRestore());

  async function project(options?: NxPtqPluginOptions, yaml = TINY_YAML): Promise<ProjectConfiguration> {
    const ws = createWorkspace('nx-ptq-watch-unit-', { models: { m1: yaml } });
    workspaces.push(ws);
    let results;
    try {
      results = await createNodes[1](['models/m1/model.yaml'], options, { workspaceRoot: ws, nxJsonConfiguration: {} });
    } catch (e) {
      if (e instanceof AggregateCreateNodesError) throw e.errors[0][1];
      throw e;
    }
    return Object.values(results[0][1].projects ?? {})[0] as ProjectConfiguration;
  }

  it('is a continuous, uncached `ptq watch` of the model that no stage depends on', async () => {
    const p = await project();
    const t = p.targets!.watch as TargetConfiguration;
    expect(t.continuous).toBe(true);
    expect(t.cache).toBe(false);
    expect(t.executor).toMatch(/executors:watch$/);
    expect(t.options).toEqual({ configFile: 'models/m1/model.yaml' });
    for (const [name, target] of Object.entries(p.targets!)) if (name !== 'watch') expect(target.dependsOn ?? []).not.toContain('watch');
    expect(t.metadata?.description).toMatch(/^Watch the model/);
  });

  it('follows renamed targets, has a configurable name, and refuses a name clash', async () => {
    const p = await project({ watchTargetName: 'dev', compileTargetName: 'makertbin' });
    expect(p.targets!.watch).toBeUndefined();
    expect(p.targets!.dev.options).toEqual({ configFile: 'models/m1/model.yaml', targets: ['compile=makertbin'] });
    await expect(project({ watchTargetName: 'check' })).rejects.toThrow(/the watch target and a stage are both named 'check'/);
  });

  it('exists for a model whose YAML does not load, so that watching it shows the error until it is fixed', async () => {
    const p = await project(undefined, TINY_YAML.replace("march: 'bernoulli2'", "march: 'bernouli2'"));
    expect(p.tags).toEqual(['nx-ptq:invalid-config']);
    expect(p.targets!.watch.continuous).toBe(true);
  });
});

describe('nx run m1:watch', () => {
  let ws: string;
  let child: ChildProcess | undefined;
  let output = '';

  /** Waits until the watcher prints a line matching `re` after the `from` offset of its output; returns the line. */
  async function line(re: RegExp, from: number, timeout = 60_000): Promise<string> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = stripAnsi(output.slice(from))
        .split('\n')
        .find((l) => re.test(l));
      if (found) return found.trim();
      if (Date.now() > deadline || child?.exitCode != null) throw new Error(`no line matching ${re} (exit ${child?.exitCode}); output:\n${stripAnsi(output)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  beforeAll(() => {
    ws = createWorkspace('nx-ptq-watch-e2e-');
    workspaces.push(ws);
  });

  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      process.kill(-child.pid, 'SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
  });

  it('reruns what each edit affects, shows a broken YAML, recovers, and leaves Nx’s cache up to date', async () => {
    const yaml = 'models/m1/model.yaml';
    // its own process group, so that the test can stop nx, ptq watch and the nx runs it starts
    child = spawn(process.execPath, [NX, 'run', 'm1:watch', `--until=${LEAVES.join(',')}`], { cwd: ws, env: nxEnv(ws), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));

    const leaf = LEAVES.join(', ');
    const initial = await line(/^\[m1\] /, 0, 90_000);
    expect(initial).toMatch(new RegExp(`^\\[m1\\] ${leaf} ✓ \\S+  initial build · ran ${STAGES.join(', ')}$`));

    // compiler_parameters: compile, perf, verify (nothing when the build stops before compile)
    let at = output.length;
    editFile(ws, yaml, "optimize_level: 'O3'", "optimize_level: 'O2'");
    if (has('compile')) {
      expect(await line(/^\[m1\] /, at)).toMatch(new RegExp(`✓ \\S+  compiler_parameters changed · ran ${list(['compile', 'perf', 'verify'])} · 4 from cache$`));
    } else {
      expect(await line(/^\[m1\] /, at)).toBe(`[m1] up to date ✓ compiler_parameters changed: no stage up to ${leaf} affected`);
    }

    // calibration_parameters: calibrate and after; preprocess and check from the cache
    at = output.length;
    editFile(ws, yaml, "calibration_type: 'max'", "calibration_type: 'kl'");
    expect(await line(/^\[m1\] /, at)).toMatch(new RegExp(`^\\[m1\\] ${leaf} ✓ \\S+  calibration_parameters changed · ran ${list(['calibrate', 'quantize', 'compile', 'perf', 'verify'])} · 2 from cache$`));

    // a broken YAML: one line with the file, line and fix; the watcher keeps going
    at = output.length;
    editFile(ws, yaml, "march: 'bernoulli2'", "march: 'bernouli2'");
    expect(await line(/^\[m1\] /, at)).toMatch(
      /^\[m1\] model\.yaml ✗ ERROR models\/m1\/model\.yaml:3 model_parameters\.march: 'bernouli2' is not allowed \(allowed: bernoulli2, bayes\).*\(still watching: the last good configuration is kept; fix and save\)$/,
    );

    // fixed, with a normalisation change: check and after (preprocess from the cache)
    at = output.length;
    fs.writeFileSync(path.join(ws, yaml), TINY_YAML.replace("calibration_type: 'max'", "calibration_type: 'kl'").replace("scale_value: '0.0039'", "scale_value: '0.0078'"));
    expect(await line(/^\[m1\] /, at)).toMatch(new RegExp(`^\\[m1\\] ${leaf} ✓ \\S+  compiler_parameters, input_parameters changed · ran ${list(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify'])} · 1 from cache$`));

    // one more calibration sample: preprocess and after (check from the cache)
    at = output.length;
    const sample = new Float32Array(3 * 8 * 8).map((_, j) => ((j * 5) % 255) / 255);
    write(ws, 'calibration/tiny_f32/s2.bin', new Uint8Array(sample.buffer));
    expect(await line(/^\[m1\] /, at)).toMatch(new RegExp(`^\\[m1\\] ${leaf} ✓ \\S+  calibration data changed · ran ${list(['preprocess', 'calibrate', 'quantize', 'compile', 'perf', 'verify'])} · 1 from cache$`));

    // what the watcher built is in Nx's cache: a plain nx run restores everything
    const r = nx(ws, ['run-many', '-t', LEAVES.join(','), '--projects=m1']);
    expectStatus(r, 0);
    expect(taskLines(r.all).ran).toEqual([]);
    expect(child.exitCode).toBeNull(); // still watching
  });
});
