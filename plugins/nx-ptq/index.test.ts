import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AggregateCreateNodesError, CreateNodesResultV2, logger, NxJsonConfiguration, ProjectConfiguration, TargetConfiguration } from '@nx/devkit';
import { createNodes, createNodesV2, NxPtqPluginOptions } from './index';
import { parseConfig } from '../../compiler/src/config';
import type { StageName } from '../../compiler/src/stages';
import { currentSliceHash } from '../../executors/stage-executor';
import { buildTargets, parseSliceInput, TargetSettings } from './targets';

/** A valid ONNX model.yaml; `edit` rewrites it (string replace) to make variants. */
const MODEL_YAML = `# tiny test model
model_parameters:
  onnx_model: '../../shared/tiny.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'tiny'
  working_dir: './model_output'
input_parameters:
  input_name: 'data'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_shape: '1x3x8x8'
  norm_type: 'data_scale'
  scale_value: '0.0039'
  input_type_rt: 'rgb'
  input_layout_rt: 'NHWC'
calibration_parameters:
  cal_data_dir: '../../calibration/tiny_f32'
  cal_data_type: 'float32'
  calibration_type: 'max'
compiler_parameters:
  optimize_level: 'O3'
`;

const edit = (from: string, to: string, text = MODEL_YAML): string => {
  if (!text.includes(from)) throw new Error(`fixture has no '${from}'`);
  return text.replace(from, to);
};

const NX_JSON: NxJsonConfiguration = { namedInputs: { toolchain: ['{workspaceRoot}/compiler/src/**/*'] } };
const tmpDirs: string[] = [];

function workspace(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-plugin-'));
  tmpDirs.push(root);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), text);
  }
  return root;
}

/** The YAML files of a workspace, as Nx hands them to the plugin (its glob is `**\/*.{yaml,yml}`). */
function yamlFiles(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...yamlFiles(root, rel));
    else if (/\.ya?ml$/.test(e.name)) out.push(rel);
  }
  return out.sort();
}

interface Run {
  results: CreateNodesResultV2;
  errors: Array<[string | null, Error]>;
}

async function run(root: string, options?: NxPtqPluginOptions, nxJson: NxJsonConfiguration = NX_JSON): Promise<Run> {
  try {
    const results = await createNodes[1](yamlFiles(root), options, { workspaceRoot: root, nxJsonConfiguration: nxJson });
    return { results, errors: [] };
  } catch (e) {
    if (!(e instanceof AggregateCreateNodesError)) throw e;
    return { results: e.partialResults, errors: e.errors };
  }
}

function projects(r: Run): Record<string, ProjectConfiguration> {
  const out: Record<string, ProjectConfiguration> = {};
  for (const [, res] of r.results) for (const [root, p] of Object.entries(res.projects ?? {})) out[p.name!] = { ...p, root } as ProjectConfiguration;
  return out;
}

async function project(files: Record<string, string>, name: string, options?: NxPtqPluginOptions): Promise<ProjectConfiguration> {
  const r = await run(workspace(files), options);
  expect(r.errors).toEqual([]);
  const p = projects(r)[name];
  if (!p) throw new Error(`no project ${name}; got ${Object.keys(projects(r)).join(', ')}`);
  return p;
}

const target = (p: ProjectConfiguration, t: string): TargetConfiguration => {
  const c = p.targets?.[t];
  if (!c) throw new Error(`project ${p.name} has no target ${t}`);
  return c;
};

/** The slice line of a target's inputs (`echo nx-ptq <stage> slice <sha256>`). */
function sliceOf(t: TargetConfiguration): string {
  const found = (t.inputs ?? []).find((i): i is { runtime: string } => typeof i === 'object' && 'runtime' in i);
  if (!found) throw new Error('no slice input');
  return found.runtime;
}

const STAGES = ['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify'];
let warn: jest.SpyInstance;

beforeEach(() => {
  warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
});
afterEach(() => warn.mockRestore());
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('nx-ptq plugin: targets', () => {
  it('exports the same tuple as createNodes and createNodesV2, matching YAML files', () => {
    expect(createNodesV2).toBe(createNodes);
    expect(createNodes[0]).toBe('**/*.{yaml,yml}');
  });

  it('makes one project per model.yaml with the seven stages as cached executor targets', async () => {
    const p = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    expect(p.root).toBe('models/m1');
    expect(Object.keys(p.targets!)).toEqual([...STAGES, 'watch']);
    for (const s of STAGES) {
      const t = target(p, s);
      expect(t.executor).toMatch(new RegExp(`executors:${s}$`));
      expect(t.options).toEqual({ configFile: 'models/m1/model.yaml' });
      expect(t.cache).toBe(true);
      expect(t.metadata?.description).toEqual(expect.any(String));
      expect(t.metadata?.technologies).toEqual(['nx-ptq', 'onnx']);
      expect(t.metadata?.help?.command).toEqual(expect.any(String));
    }
    expect(p.metadata?.targetGroups).toEqual({ 'nx-ptq': STAGES });
  });

  it('wires dependsOn: calibrate <- preprocess + check, then a chain, perf and verify after compile', async () => {
    const p = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    const deps = Object.fromEntries(STAGES.map((s) => [s, target(p, s).dependsOn]));
    expect(deps).toEqual({
      preprocess: [],
      check: [],
      calibrate: ['preprocess', 'check'],
      quantize: ['calibrate'],
      compile: ['quantize'],
      perf: ['compile'],
      verify: ['compile'],
    });
  });

  it('declares as outputs exactly the files each stage writes under working_dir', async () => {
    const p = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    const out = (s: string): string[] | undefined => target(p, s).outputs;
    const d = '{projectRoot}/model_output';
    expect(out('preprocess')).toEqual([`${d}/calibration_data`]);
    expect(out('check')).toEqual([`${d}/tiny_original_float_model.onnx`, `${d}/tiny_optimized_float_model.onnx`, `${d}/check.json`, `${d}/hb_mapper_checker.log`]);
    expect(out('calibrate')).toEqual([`${d}/tiny_calibrated_model.onnx`, `${d}/tiny_calibration.json`]);
    expect(out('quantize')).toEqual([`${d}/tiny_quantized_model.onnx`, `${d}/tiny_quant_info.json`]);
    expect(out('compile')).toEqual([`${d}/tiny.bin`]);
    expect(out('perf')).toEqual([`${d}/hb_perf_result`]);
    expect(out('verify')).toEqual([`${d}/verify.json`]);
  });

  it('puts a working_dir outside the project under {workspaceRoot}', async () => {
    const yaml = edit("working_dir: './model_output'", "working_dir: '../../build/m1'");
    const p = await project({ 'models/m1/model.yaml': yaml }, 'm1');
    expect(target(p, 'compile').outputs).toEqual(['{workspaceRoot}/build/m1/tiny.bin']);
  });
});

describe('nx-ptq plugin: inputs', () => {
  it('hashes the toolchain, the model (outside the project), the shared calibration folder and the slice — never model.yaml', async () => {
    const p = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    const model = '{workspaceRoot}/shared/tiny.onnx';
    const cal = '{workspaceRoot}/calibration/tiny_f32/*';
    const upstream = { dependentTasksOutputFiles: '**/*', transitive: true };
    const slice = (s: string): { runtime: string } => ({ runtime: expect.stringMatching(new RegExp(`^echo nx-ptq ${s} slice [0-9a-f]{64}$`)) as unknown as string });
    expect(target(p, 'preprocess').inputs).toEqual(['toolchain', model, cal, slice('preprocess')]);
    expect(target(p, 'check').inputs).toEqual(['toolchain', model, slice('check')]);
    for (const s of ['calibrate', 'quantize', 'compile', 'perf', 'verify']) {
      expect(target(p, s).inputs).toEqual(['toolchain', model, cal, slice(s), upstream]);
    }
    for (const s of STAGES) expect(JSON.stringify(target(p, s).inputs)).not.toContain('model.yaml');
  });

  it('uses {projectRoot} for files inside the project and hashes both caffe files and custom op files', async () => {
    const yaml = edit("  onnx_model: '../../shared/tiny.onnx'\n", "  prototxt: './net.prototxt'\n  caffe_model: './net.caffemodel'\n") + "custom_op:\n  op_register_files: 'my_op.py'\n  custom_op_dir: './ops'\n";
    const p = await project({ 'models/c1/model.yaml': yaml }, 'c1');
    const files = (s: string): unknown[] => (target(p, s).inputs ?? []).filter((i) => typeof i === 'string' && i !== 'toolchain');
    expect(files('check')).toEqual(['{projectRoot}/net.prototxt', '{projectRoot}/net.caffemodel', '{projectRoot}/ops/my_op.py']);
    expect(files('preprocess')).toEqual(['{projectRoot}/net.prototxt', '{projectRoot}/net.caffemodel', '{workspaceRoot}/calibration/tiny_f32/*']);
    expect(files('verify')).toEqual([
      '{projectRoot}/net.prototxt',
      '{projectRoot}/net.caffemodel',
      '{workspaceRoot}/calibration/tiny_f32/*',
      '{projectRoot}/ops/my_op.py',
    ]);
    expect(target(p, 'check').metadata?.technologies).toEqual(['nx-ptq', 'caffe']);
  });

  it("buildTargets hashes verify's own samples (nx-ptq.verify.data_dir) for verify only, after its other files, as before", () => {
    // targets.ts on a configuration that holds the block (as parseConfig/loadConfig return it)
    const root = workspace({});
    const settings: TargetSettings = {
      names: Object.fromEntries(STAGES.map((s) => [s, s])) as Record<StageName, string>,
      watchName: 'watch',
      ptq: './compiler/bin/ptq.js',
      executors: '@nx-ptq/executors',
      toolchain: 'toolchain',
    };
    const targetsOf = (yaml: string): Record<string, TargetConfiguration> =>
      buildTargets({ root: 'models/m1', configFile: 'models/m1/model.yaml', workspaceRoot: root, cfg: parseConfig(yaml, { dir: path.join(root, 'models', 'm1') }) }, settings);
    const withData = targetsOf(`${MODEL_YAML}nx-ptq:\n  verify:\n    data_dir: './verify_data; ../../shared/more'\n`);
    const base = targetsOf(MODEL_YAML);
    // the inputs the former `stage === 'verify'` special case of targets.ts gave
    expect(withData.verify.inputs).toEqual([
      'toolchain',
      '{workspaceRoot}/shared/tiny.onnx',
      '{workspaceRoot}/calibration/tiny_f32/*',
      '{projectRoot}/verify_data/*',
      '{workspaceRoot}/shared/more/*',
      { runtime: sliceOf(withData.verify) },
      { dependentTasksOutputFiles: '**/*', transitive: true },
    ]);
    expect(base.verify.inputs).toEqual(['toolchain', '{workspaceRoot}/shared/tiny.onnx', '{workspaceRoot}/calibration/tiny_f32/*', { runtime: sliceOf(base.verify) }, { dependentTasksOutputFiles: '**/*', transitive: true }]);
    for (const s of STAGES) if (s !== 'verify') expect(withData[s].inputs).toEqual(base[s].inputs);
    // a data_dir outside the workspace: verify alone is not cached
    const outside = targetsOf(`${MODEL_YAML}nx-ptq:\n  verify:\n    data_dir: '${path.join(os.tmpdir(), 'elsewhere', 'vdata')}'\n`);
    expect(STAGES.filter((s) => outside[s].cache === false)).toEqual(['verify']);
  });

  // (readModelConfig once blanked the block before parsing: verify's data_dir went unhashed and its
  // slice differed from the executor's, which then refused the task as a changed config)
  it("through the plugin: verify hashes nx-ptq.verify.data_dir and its slice is the executor's", async () => {
    const yaml = `${MODEL_YAML}nx-ptq:\n  verify:\n    cosine_threshold: 0.5\n    data_dir: './verify_data'\n`;
    const root = workspace({ 'models/m1/model.yaml': yaml });
    const p = projects(await run(root))['m1'];
    expect((target(p, 'verify').inputs ?? []).filter((i) => typeof i === 'string')).toContain('{projectRoot}/verify_data/*');
    expect(parseSliceInput(sliceOf(target(p, 'verify')))?.hash).toBe(currentSliceHash('verify', path.join(root, 'models', 'm1', 'model.yaml')));
  });

  it('does not cache a stage that reads a file outside the workspace', async () => {
    const yaml = edit("onnx_model: '../../shared/tiny.onnx'", `onnx_model: '${path.join(os.tmpdir(), 'elsewhere', 'x.onnx')}'`);
    const p = await project({ 'models/m1/model.yaml': yaml }, 'm1');
    for (const s of STAGES) {
      expect(target(p, s).cache).toBe(false);
      expect(target(p, s).metadata?.description).toContain('not cached');
    }
  });

  it('inlines the toolchain filesets when nx.json has no such named input', async () => {
    const root = workspace({ 'models/m1/model.yaml': MODEL_YAML });
    const p = projects(await run(root, undefined, {}))['m1'];
    // The temp workspace does not contain the toolchain: nothing of it can be hashed there.
    expect(target(p, 'check').inputs).not.toContain('toolchain');
    expect((target(p, 'check').inputs ?? []).filter((i) => typeof i === 'string')).toEqual(['{workspaceRoot}/shared/tiny.onnx']);
  });
});

describe('nx-ptq plugin: slice hashes', () => {
  /** Which stages' slice input differs between the base YAML and an edited one. */
  async function changedStages(from: string, to: string): Promise<string[]> {
    const a = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    const b = await project({ 'models/m1/model.yaml': edit(from, to) }, 'm1');
    return STAGES.filter((s) => sliceOf(target(a, s)) !== sliceOf(target(b, s)));
  }

  it('compiler_parameters: only compile (perf and verify follow through its .bin)', async () => {
    expect(await changedStages("optimize_level: 'O3'", "optimize_level: 'O2'")).toEqual(['compile']);
  });

  it('calibration_type: calibrate (and compile, whose .bin records every parameter)', async () => {
    expect(await changedStages("calibration_type: 'max'", "calibration_type: 'kl'")).toEqual(['calibrate', 'compile']);
  });

  it('scale_value: check (normalisation lives in the model) and the .bin record', async () => {
    expect(await changedStages("scale_value: '0.0039'", "scale_value: '0.0078'")).toEqual(['check', 'compile']);
  });

  it('input_shape: the stages that read it', async () => {
    expect(await changedStages("input_shape: '1x3x8x8'", "input_shape: '1x3x16x16'")).toEqual(['preprocess', 'check', 'compile', 'verify']);
  });

  it('march: every stage but preprocess', async () => {
    expect(await changedStages("march: 'bernoulli2'", "march: 'bayes'")).toEqual(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
  });

  it('comments, layout: none; paths: only the .bin record (files are inputs of their own)', async () => {
    expect(await changedStages('# tiny test model\n', '# renamed\n\n')).toEqual([]);
    expect(await changedStages("cal_data_dir: '../../calibration/tiny_f32'", "cal_data_dir: '../../calibration/other_f32'")).toEqual(['compile']);
  });

  it('is the same for the same configuration (no randomness, no absolute paths)', async () => {
    const a = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    const b = await project({ 'zoo/m1/model.yaml': MODEL_YAML }, 'm1');
    for (const s of STAGES) expect(sliceOf(target(a, s))).toBe(sliceOf(target(b, s)));
  });

  it("is what the executor recomputes from the YAML it loads (its check against a save after Nx hashed the task)", async () => {
    // the nx-ptq block and a custom op path: where the plugin's reader and the stages' loader could disagree
    const yaml = `${MODEL_YAML}nx-ptq: { name: other, tags: [zoo] }\ncustom_op:\n  op_register_files: 'my_op.py'\n  custom_op_dir: './ops'\n`;
    const root = workspace({ 'models/m1/model.yaml': yaml });
    const p = projects(await run(root))['other'];
    for (const s of STAGES as StageName[]) {
      const parsed = parseSliceInput(sliceOf(target(p, s)));
      expect(parsed).toEqual({ stage: s, hash: currentSliceHash(s, path.join(root, 'models', 'm1', 'model.yaml')) });
    }
    expect(parseSliceInput('echo nx-ptq bogus slice ' + 'a'.repeat(64))).toBeUndefined();
    expect(parseSliceInput('echo nx-ptq check slice abc')).toBeUndefined();
  });
});

describe('nx-ptq plugin: names, tags and options', () => {
  it('names the project after its folder and tags it with the march', async () => {
    const p = await project({ 'models/resnet18/model.yaml': edit("march: 'bernoulli2'", "march: 'bayes'") }, 'resnet18');
    expect(p.tags).toEqual(['march:bayes']);
  });

  it('takes the name and extra tags from the nx-ptq block, which the config loader never sees', async () => {
    const yaml = `nx-ptq:\n  name: mobilenet-v1\n  tags: [zoo, vision]\n\n${MODEL_YAML}`;
    const p = await project({ 'models/m1/model.yaml': yaml }, 'mobilenet-v1');
    expect(p.root).toBe('models/m1');
    expect(p.tags).toEqual(['march:bernoulli2', 'zoo', 'vision']);
    // Same slices as without the block.
    const plain = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1');
    for (const s of STAGES) expect(sliceOf(target(p, s))).toBe(sliceOf(target(plain, s)));
  });

  it('accepts the block anywhere and in flow style', async () => {
    const after = await project({ 'models/m1/model.yaml': `${MODEL_YAML}nx-ptq: { name: last }\n` }, 'last');
    expect(after.tags).toEqual(['march:bernoulli2']);
    const middle = edit('input_parameters:\n', "nx-ptq: {name: 'mid', tags: 'a; b'}\ninput_parameters:\n");
    expect((await project({ 'models/m1/model.yaml': middle }, 'mid')).tags).toEqual(['march:bernoulli2', 'a', 'b']);
  });

  it('makes target names configurable, dependsOn following them', async () => {
    const p = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1', { checkTargetName: 'ptq-check', compileTargetName: 'makertbin' });
    expect(Object.keys(p.targets!)).toEqual(['preprocess', 'ptq-check', 'calibrate', 'quantize', 'makertbin', 'perf', 'verify', 'watch']);
    expect(target(p, 'calibrate').dependsOn).toEqual(['preprocess', 'ptq-check']);
    expect(target(p, 'perf').dependsOn).toEqual(['makertbin']);
    expect(target(p, 'makertbin').executor).toMatch(/executors:compile$/);
    await expect(run(workspace({ 'm/model.yaml': MODEL_YAML }), { perfTargetName: 'check' })).rejects.toThrow(/two stages are named 'check'/);
  });

  it('makes the model file glob configurable', async () => {
    const root = workspace({ 'models/a/model.yaml': MODEL_YAML, 'models/b/ptq.yml': MODEL_YAML, 'other.yaml': 'x: 1\n' });
    expect(Object.keys(projects(await run(root)))).toEqual(['a']);
    expect(Object.keys(projects(await run(root, { configGlob: 'models/**/ptq.yml' })))).toEqual(['b']);
  });

  it('takes executors from an option', async () => {
    const p = await project({ 'models/m1/model.yaml': MODEL_YAML }, 'm1', { executors: '@nx-ptq/executors' });
    expect(target(p, 'verify').executor).toBe('@nx-ptq/executors:verify');
  });
});

describe('nx-ptq plugin: broken model.yaml', () => {
  const files = {
    'models/good/model.yaml': MODEL_YAML,
    'models/bad/model.yaml': edit("march: 'bernoulli2'", "march: 'bernouli2'"),
    'models/ugly/model.yaml': 'model_parameters: [\n',
    'models/tagged/model.yaml': `nx-ptq:\n  nmae: x\n${MODEL_YAML}`,
  };

  it('by default: a project whose targets fail with the error, a warning, and the other models intact', async () => {
    const r = await run(workspace(files));
    expect(r.errors).toEqual([]);
    const ps = projects(r);
    expect(Object.keys(ps).sort()).toEqual(['bad', 'good', 'tagged', 'ugly']);
    expect(target(ps.good, 'compile').cache).toBe(true);
    const bad = ps.bad;
    expect(bad.tags).toEqual(['nx-ptq:invalid-config']);
    expect(Object.keys(bad.targets!)).toEqual([...STAGES, 'watch']);
    const t = target(bad, 'compile');
    expect(t.executor).toMatch(/executors:config-error$/);
    expect(t.cache).toBe(false);
    expect(t.options.message).toMatch(/^models\/bad\/model\.yaml:4 model_parameters\.march: 'bernouli2' is not allowed/);
    expect(target(ps.ugly, 'check').options.message).toMatch(/^models\/ugly\/model\.yaml:2 YAML syntax error/);
    expect(target(ps.tagged, 'check').options.message).toMatch(/^models\/tagged\/model\.yaml:2 nx-ptq\.nmae: unknown key; allowed keys: name, tags/);
    const warned = warn.mock.calls.map((c) => String(c[0]));
    expect(warned).toHaveLength(3);
    expect(warned.find((w) => w.includes('models/bad/model.yaml:4'))).toContain("the targets of project 'bad' fail");
  });

  it("with invalidConfig 'error': one error per broken file (AggregateCreateNodesError), the others as partial results", async () => {
    const r = await run(workspace(files), { invalidConfig: 'error' });
    expect(Object.keys(projects(r))).toEqual(['good']);
    expect(r.errors.map(([f]) => f).sort()).toEqual(['models/bad/model.yaml', 'models/tagged/model.yaml', 'models/ugly/model.yaml']);
    const bad = r.errors.find(([f]) => f === 'models/bad/model.yaml')![1];
    expect(bad.message).toMatch(/^models\/bad\/model\.yaml:4 model_parameters\.march: 'bernouli2' is not allowed \(allowed: bernoulli2, bayes\)/);
    expect(bad.stack).not.toContain('PtqError');
  });

  it('reports every problem of a file, first line with its fix', async () => {
    const yaml = edit("march: 'bernoulli2'", "march: 'bernouli2'", edit("optimize_level: 'O3'", "optimize_level: 'O9'"));
    const r = await run(workspace({ 'm/model.yaml': yaml }), { invalidConfig: 'error' });
    const lines = r.errors[0][1].message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^m\/model\.yaml:\d+ compiler_parameters\.optimize_level: /);
  });

  it('drops and reports two models that would have the same project name', async () => {
    const r = await run(
      workspace({
        'a/net/model.yaml': MODEL_YAML,
        'b/net/model.yaml': MODEL_YAML,
        'c/model.yaml': `nx-ptq: { name: net }\n${MODEL_YAML}`,
        'd/other/model.yaml': MODEL_YAML,
      }),
    );
    expect(Object.keys(projects(r))).toEqual(['other']);
    expect(r.errors.map(([f]) => f).sort()).toEqual(['a/net/model.yaml', 'b/net/model.yaml', 'c/model.yaml']);
    expect(r.errors[0][1].message).toMatch(/project name 'net' is also the name of .*fix: name one of them/);
  });
});
