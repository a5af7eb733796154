import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { parseConfig, stageSlices } from '../compiler/src/config';
import { implementedStages, StageName, STAGE_NAMES } from '../compiler/src/stages';
import { sliceHash, sliceInput } from '../plugins/nx-ptq/targets';
import { GraphBuilder } from '../compiler/src/onnx/builder';
import { saveModel } from '../compiler/src/onnx/encode';
import { BatchTaskResult, dependencyOrder, stageBatch } from './batch';
import configError from './config-error/executor';
import { hashedSliceOf, stageExecutor } from './stage-executor';

const MODEL_YAML = `model_parameters:
  onnx_model: './tiny.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'tiny'
input_parameters:
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  norm_type: 'no_preprocess'
  input_type_rt: 'rgb'
  input_layout_rt: 'NHWC'
calibration_parameters:
  calibration_type: 'skip'
compiler_parameters:
  optimize_level: 'O3'
`;

let root: string;
let stderr: jest.SpyInstance;
let stdout: jest.SpyInstance;
const context = (): ExecutorContext => ({ root, cwd: root, isVerbose: false }) as unknown as ExecutorContext;
const written = (spy: jest.SpyInstance): string => spy.mock.calls.map((c) => String(c[0])).join('');

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-executors-'));
  fs.mkdirSync(path.join(root, 'm'));
  const b = new GraphBuilder('tiny', { opset: 13, seed: 1 });
  b.output(b.relu(b.conv(b.input('data', 'float32', [1, 3, 8, 8]), { outChannels: 4, kernel: 3, pad: 1 })));
  saveModel(b.build(), path.join(root, 'm', 'tiny.onnx'));
  fs.writeFileSync(path.join(root, 'm', 'model.yaml'), MODEL_YAML);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => {
  stderr.mockRestore();
  stdout.mockRestore();
});

describe('stage executors', () => {
  const missing = STAGE_NAMES.find((s) => !implementedStages().includes(s));

  (missing ? it : it.skip)(`fails a stage that is not implemented yet (${missing}) with one line, no stack`, async () => {
    const r = await stageExecutor(missing!)({ configFile: 'm/model.yaml' }, context());
    expect(r).toEqual({ success: false });
    const err = written(stderr);
    expect(err).toMatch(new RegExp(`^ERROR the '${missing}' stage is not implemented in this version of nx-ptq \\(fix: .*\\)\\n$`));
  });

  it('fails on a config error with its one line, resolving configFile against the workspace root', async () => {
    const r = await stageExecutor('check')({ configFile: 'm/nope.yaml' }, context());
    expect(r).toEqual({ success: false });
    expect(written(stderr)).toBe(`ERROR ${path.join(root, 'm', 'nope.yaml')}: cannot read the configuration: file not found (fix: pass the path of the model YAML)\n`);
  });

  it('runs a stage and prints its log', async () => {
    const r = await stageExecutor('check')({ configFile: 'm/model.yaml' }, context());
    expect(written(stderr)).toBe('');
    expect(r).toEqual({ success: true });
    expect(fs.existsSync(path.join(root, 'm', 'model_output', 'check.json'))).toBe(true);
    expect(written(stdout)).toContain('Conv_0');
  });

  it('config-error: prints the plugin error and fails without running anything', async () => {
    const r = await configError({ configFile: 'm/model.yaml', message: 'm/model.yaml:3 model_parameters.march: bad' }, context());
    expect(r).toEqual({ success: false });
    expect(written(stderr)).toBe('ERROR m/model.yaml:3 model_parameters.march: bad\n');
  });
});

describe('batch implementation', () => {
  const task = (id: string) => ({ id, target: { project: id.split(':')[0], target: id.split(':')[1] }, overrides: {}, outputs: [] });
  const graph = (deps: Record<string, string[]>, roots: string[]): TaskGraph =>
    ({ tasks: Object.fromEntries(Object.keys(deps).map((id) => [id, task(id)])), dependencies: deps, continuousDependencies: {}, roots }) as unknown as TaskGraph;

  it('orders tasks after their dependencies inside the batch (ignoring those outside it)', () => {
    const g = graph({ 'c:check': ['b:check'], 'b:check': ['a:check', 'x:preprocess'], 'a:check': [] }, ['a:check']);
    expect(dependencyOrder(g)).toEqual(['a:check', 'b:check', 'c:check']);
  });

  it('runs every task in one process, reports each, and skips the dependents of a failure', async () => {
    const g = graph({ 'ok:check': [], 'bad:check': [], 'after:check': ['bad:check'] }, ['ok:check', 'bad:check']);
    const options = { 'ok:check': { configFile: 'm/model.yaml' }, 'bad:check': { configFile: 'm/nope.yaml' }, 'after:check': { configFile: 'm/model.yaml' } };
    const results: BatchTaskResult[] = [];
    for await (const r of stageBatch('check')(g, options, {}, context())) results.push(r);
    expect(results.map((r) => [r.task, r.result.success, r.result.status])).toEqual([
      ['ok:check', true, undefined],
      ['bad:check', false, undefined],
      ['after:check', false, 'skipped'],
    ]);
    expect(results[0].result.terminalOutput).toContain('Conv_0');
    expect(results[1].result.terminalOutput).toMatch(/^ERROR .*nope\.yaml: cannot read the configuration: file not found/);
    expect(results[2].result.terminalOutput).toBe('skipped: bad:check failed');
    // The batch reports through results only (Nx prints each task's terminalOutput).
    expect(written(stdout) + written(stderr)).toBe('');
  });
});

describe('a model.yaml saved after Nx hashed the task', () => {
  /** the YAML with another normalisation: a different check slice */
  const EDITED = MODEL_YAML.replace("norm_type: 'no_preprocess'", "norm_type: 'data_scale'\n  scale_value: '0.5'");
  /** the YAML with other compiler_parameters: the same check slice */
  const COMPILER_ONLY = MODEL_YAML.replace("optimize_level: 'O3'", "optimize_level: 'O1'");
  /** What the plugin puts in the task hash for `stage` of a YAML text (its own code path: parseConfig, not loadConfig). */
  const pluginSlice = (stage: StageName, yaml: string): string => sliceHash(stageSlices(parseConfig(yaml, { file: 'model.yaml', dir: root }))[stage]);

  /** A model folder `name` with tiny.onnx and `yaml`. */
  function model(name: string, yaml: string): string {
    fs.mkdirSync(path.join(root, name), { recursive: true });
    fs.copyFileSync(path.join(root, 'm', 'tiny.onnx'), path.join(root, name, 'tiny.onnx'));
    fs.writeFileSync(path.join(root, name, 'model.yaml'), yaml);
    return `${name}/model.yaml`;
  }

  type Via = 'hash-details' | 'target-inputs';
  /** A task as Nx hands it to the executor once hashed (hash details hold each hashed input). */
  const task = (project: string, stage: StageName, slice: string | undefined, via: Via) => ({
    id: `${project}:${stage}`,
    target: { project, target: stage },
    overrides: {},
    outputs: [],
    ...(via === 'hash-details' && {
      hash: '1234',
      hashDetails: {
        command: 'c',
        nodes: { [`${project}:ProjectConfiguration`]: '1', ...(slice && { [`runtime:${sliceInput(stage, slice)}`]: '2' }), 'workspace:[{workspaceRoot}/nx.json]': '3' },
      },
    }),
  });
  /** The context of the executor of `project:stage` (one task), with the slice Nx hashed. */
  function nxContext(project: string, stage: StageName, slice: string | undefined, via: Via = 'hash-details'): ExecutorContext {
    const t = task(project, stage, slice, via);
    const inputs = ['toolchain', ...(slice ? [{ runtime: sliceInput(stage, slice) }] : [])];
    return {
      root,
      cwd: root,
      isVerbose: false,
      projectName: project,
      targetName: stage,
      projectsConfigurations: { version: 2, projects: { [project]: { root: project, targets: { [stage]: { inputs } } } } },
      taskGraph: { tasks: { [t.id]: t }, dependencies: { [t.id]: [] }, continuousDependencies: {}, roots: [t.id] },
    } as unknown as ExecutorContext;
  }
  const outputs = (name: string): string[] => {
    const d = path.join(root, name, 'model_output');
    return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
  };
  const changedLine = (file: string, stage: StageName, from: string, to: string): string =>
    `ERROR ${file} changed after Nx hashed this task (${stage} slice ${from.slice(0, 12)} -> ${to.slice(0, 12)}) (fix: run the target again)\n`;

  it('finds the hashed slice in the hash details, else in the target inputs, else nowhere', () => {
    const h = 'ab'.repeat(32);
    expect(hashedSliceOf('check', nxContext('p', 'check', h))).toBe(h);
    expect(hashedSliceOf('check', nxContext('p', 'check', h, 'target-inputs'))).toBe(h);
    expect(hashedSliceOf('check', nxContext('p', 'check', undefined))).toBeUndefined();
    expect(hashedSliceOf('calibrate', nxContext('p', 'check', h))).toBeUndefined(); // another stage's slice
    expect(hashedSliceOf('check', context())).toBeUndefined(); // outside Nx
  });

  it('saved before the run: fails in one line, runs nothing, and Nx caches nothing', async () => {
    const file = model('stale', MODEL_YAML);
    const hashed = pluginSlice('check', MODEL_YAML);
    fs.writeFileSync(path.join(root, file), EDITED);
    const r = await stageExecutor('check')({ configFile: file }, nxContext('stale', 'check', hashed));
    expect(r).toEqual({ success: false });
    const now = pluginSlice('check', EDITED);
    expect(now).not.toBe(hashed);
    expect(written(stderr)).toBe(changedLine(file, 'check', hashed, now));
    expect(written(stdout)).toBe('');
    expect(outputs('stale')).toEqual([]);
  });

  it('the same through the target inputs when the task carries no hash details', async () => {
    const file = model('stale-inputs', EDITED);
    const hashed = pluginSlice('check', MODEL_YAML);
    const r = await stageExecutor('check')({ configFile: file }, nxContext('stale-inputs', 'check', hashed, 'target-inputs'));
    expect(r).toEqual({ success: false });
    expect(written(stderr)).toBe(changedLine(file, 'check', hashed, pluginSlice('check', EDITED)));
  });

  it("an edit outside the stage's slice, or none, runs the stage", async () => {
    const file = model('fresh', COMPILER_ONLY);
    const r = await stageExecutor('check')({ configFile: file }, nxContext('fresh', 'check', pluginSlice('check', MODEL_YAML)));
    expect(written(stderr)).toBe('');
    expect(r).toEqual({ success: true });
    expect(outputs('fresh')).toContain('check.json');
  });

  it('saved during the run: the task fails (its outputs may come from either version)', async () => {
    const file = model('mid-run', MODEL_YAML);
    const hashed = pluginSlice('check', MODEL_YAML);
    // the save lands while the stage prints its log (after it loaded the YAML)
    stdout.mockImplementation(() => {
      fs.writeFileSync(path.join(root, file), EDITED);
      return true;
    });
    const r = await stageExecutor('check')({ configFile: file }, nxContext('mid-run', 'check', hashed));
    expect(written(stdout)).toContain('Conv_0'); // the stage ran
    expect(r).toEqual({ success: false });
    expect(written(stderr)).toBe(changedLine(file, 'check', hashed, pluginSlice('check', EDITED)));
  });

  it('batch: only the task whose YAML changed fails; its dependents are skipped', async () => {
    const okFile = model('batch-ok', MODEL_YAML);
    const staleFile = model('batch-stale', EDITED);
    const hashed = pluginSlice('check', MODEL_YAML);
    const tasks = { ok: task('batch-ok', 'check', hashed, 'hash-details'), stale: task('batch-stale', 'check', hashed, 'hash-details') };
    const after = { ...task('after', 'check', undefined, 'hash-details'), id: 'after:check' };
    const g = {
      tasks: { [tasks.ok.id]: tasks.ok, [tasks.stale.id]: tasks.stale, [after.id]: after },
      dependencies: { [tasks.ok.id]: [], [tasks.stale.id]: [], [after.id]: [tasks.stale.id] },
      continuousDependencies: {},
      roots: [tasks.ok.id, tasks.stale.id],
    } as unknown as TaskGraph;
    // Nx's batch context: no project or target, the whole task graph
    const ctx = { root, cwd: root, isVerbose: false, taskGraph: g, projectsConfigurations: { version: 2, projects: {} } } as unknown as ExecutorContext;
    const options = { [tasks.ok.id]: { configFile: okFile }, [tasks.stale.id]: { configFile: staleFile }, [after.id]: { configFile: okFile } };
    const results: BatchTaskResult[] = [];
    for await (const r of stageBatch('check')(g, options, {}, ctx)) results.push(r);
    expect(results.map((r) => [r.task, r.result.success, r.result.status])).toEqual([
      ['batch-ok:check', true, undefined],
      ['batch-stale:check', false, undefined],
      ['after:check', false, 'skipped'],
    ]);
    expect(results[1].result.terminalOutput).toBe(changedLine(staleFile, 'check', hashed, pluginSlice('check', EDITED)).trimEnd());
    expect(outputs('batch-ok')).toContain('check.json');
    expect(outputs('batch-stale')).toEqual([]);
  });
});
