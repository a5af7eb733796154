/**
 * The example zoo (models/*, calibration/*): every model.yaml loads and fits its model, the zoo
 * covers what the issue lists, the YAMLs exercise the config features they claim to, the
 * generated models compute sensible outputs, and scripts/zoo/generate.ts rewrites the committed
 * files byte for byte.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadConfig, PtqConfig } from '../../compiler/src/config';
import { Model } from '../../compiler/src/onnx/ir';
import { planCalibrationSet, calibrationSpec } from '../../compiler/src/preprocess/caldata';
import { loadFloatModel } from '../../compiler/src/stages/model';
import { readModelConfig } from '../../plugins/nx-ptq/model-config';
import { floatCheck } from './float-check';
import { CAFFE_NETS, fileSha256, generatedFolders, ONNX_NETS, writeZoo, ZOO, ZooKind, zooFiles } from './zoo';

const ROOT = path.resolve(__dirname, '..', '..');
const MODELS = path.join(ROOT, 'models');
const yamlOf = (p: string): string => path.join(MODELS, p, 'model.yaml');

interface Loaded {
  cfg: PtqConfig;
  model: Model;
}
const loaded = new Map<string, Loaded>();
function load(project: string): Loaded {
  let l = loaded.get(project);
  if (!l) {
    const r = loadFloatModel(loadConfig(yamlOf(project)));
    l = { cfg: r.cfg, model: r.model };
    loaded.set(project, l);
  }
  return l;
}

const projectsOnDisk = fs
  .readdirSync(MODELS)
  .filter((p) => fs.existsSync(yamlOf(p)))
  .sort();

describe('every model.yaml', () => {
  test.each(projectsOnDisk)('%s loads, matches its model and finds its calibration samples', (project) => {
    const { cfg, model } = load(project);
    // validateAgainstModel (inside loadFloatModel) filled every input's name and shape
    expect(cfg.inputs.map((i) => i.name)).toEqual(model.graph.realInputs.map((v) => v.name).filter((n) => cfg.inputs.some((i) => i.name === n)));
    expect(cfg.inputs.length).toBe(model.graph.realInputs.length);
    const plan = planCalibrationSet(calibrationSpec(cfg));
    expect(plan.count).toBeGreaterThanOrEqual(8);
    expect(plan.count).toBeLessThanOrEqual(100);
    // the working dir is the ignored model_output next to the YAML
    expect(path.relative(path.join(MODELS, project), cfg.model.workingDir)).toBe('model_output');
    // every node the YAML names exists in the model
    const names = new Set(model.graph.nodes.map((n) => n.name));
    for (const n of [...Object.keys(cfg.nodes), ...cfg.model.outputNodes]) expect(names).toContain(n);
  });
});

describe('the zoo', () => {
  test('lists exactly the projects in models/, at least 8, each tagged zoo (nx run-many --projects=tag:zoo)', () => {
    expect(ZOO.map((p) => p.name).sort()).toEqual(projectsOnDisk);
    expect(ZOO.length).toBeGreaterThanOrEqual(8);
    for (const p of ZOO) {
      const { block } = readModelConfig(yamlOf(p.name), `models/${p.name}/model.yaml`);
      expect(block.name ?? p.name).toBe(p.name);
      expect(block.tags).toEqual(expect.arrayContaining(['zoo', p.generated ? 'generated' : 'trained']));
    }
  });

  const has = (project: string, kind: ZooKind): boolean => ZOO.find((p) => p.name === project)!.kinds.includes(kind);
  const ops = (m: Model): string[] => m.graph.nodes.map((n) => n.opType);
  const depthwise = (m: Model): number => m.graph.nodes.filter((n) => n.opType === 'Conv' && n.int('group', 1) > 1).length;
  /** What makes a project count as each kind, checked on its config and model. */
  const KIND_RULES: Record<ZooKind, (l: Loaded, project: string) => boolean> = {
    mobilenetv1: ({ model }) => depthwise(model) >= 13 && !ops(model).includes('Add'),
    mobilenetv2: ({ model }) => depthwise(model) >= 10 && ops(model).includes('Add') && ops(model).includes('Clip'),
    resnet18: ({ model }) => ops(model).filter((o) => o === 'Add').length === 8 && ops(model).filter((o) => o === 'Conv').length >= 20,
    detection: ({ model, cfg }) => (cfg.model.outputNodes.length || model.graph.outputs.length) >= 2 && model.graph.outputs.some((o) => (o.type?.shape?.length ?? 0) === 4),
    featuremap: ({ cfg }) => cfg.inputs.some((i) => i.typeTrain === 'featuremap' && i.typeRt === 'featuremap'),
    'multi-input': ({ cfg }) => cfg.inputs.length >= 2,
    gray: ({ cfg }) => cfg.inputs.some((i) => i.typeTrain === 'gray' && i.typeRt === 'gray'),
    'bayes-int16': ({ cfg }) => cfg.model.march === 'bayes' && Object.values(cfg.nodes).some((n) => n.inputType === 'int16' || n.outputType === 'int16'),
    trained: (_, project) => fs.existsSync(path.join(MODELS, project, 'README.md')) && !ZOO.find((p) => p.name === project)!.generated,
    caffe: ({ cfg }) => cfg.model.kind === 'caffe',
  };

  test('covers every kind the issue lists, and each project is what it claims', () => {
    const kinds = Object.keys(KIND_RULES) as ZooKind[];
    for (const kind of kinds) expect(ZOO.filter((p) => p.kinds.includes(kind)).map((p) => p.name)).not.toHaveLength(0);
    for (const p of ZOO) {
      for (const kind of p.kinds) {
        if (!KIND_RULES[kind](load(p.name), p.name)) throw new Error(`${p.name} is listed as '${kind}' but its config/model is not one`);
      }
    }
    expect(has('fashion_resnet', 'trained') && has('fashion_mbv2', 'trained')).toBe(true);
  });

  test('the YAMLs exercise the reference configuration features', () => {
    const cfgs = ZOO.map((p) => load(p.name).cfg);
    const inputs = cfgs.flatMap((c) => c.inputs);
    for (const rt of ['nv12', 'yuv444', 'rgb', 'bgr', 'gray', 'featuremap']) expect(inputs.map((i) => i.typeRt)).toContain(rt);
    for (const l of ['NCHW', 'NHWC']) {
      expect(inputs.map((i) => i.layoutTrain)).toContain(l);
      expect(inputs.map((i) => i.layoutRt)).toContain(l);
    }
    expect(inputs.some((i) => i.typeTrain !== i.typeRt && i.typeRt !== 'nv12' && i.typeRt !== 'yuv444')).toBe(true); // rgb <-> bgr swap
    expect(inputs.some((i) => i.spaceAndRange === 'bt601_video')).toBe(true);
    for (const n of ['data_mean_and_scale', 'data_mean', 'data_scale', 'no_preprocess']) expect(inputs.map((i) => i.normType)).toContain(n);
    expect(inputs.some((i) => (i.mean?.length ?? 0) === 3) && inputs.some((i) => i.mean?.length === 1)).toBe(true);
    const cal = cfgs.map((c) => c.calibration);
    for (const t of ['default', 'max', 'kl', 'mix']) expect(cal.map((c) => c.calibrationType)).toContain(t);
    expect(cal.some((c) => c.calibrationType === 'max' && c.maxPercentile !== undefined && c.maxPercentile < 1)).toBe(true); // percentile
    expect(cal.some((c) => c.perChannel)).toBe(true);
    expect(cal.some((c) => c.runOnCpu.length > 0)).toBe(true);
    expect(cal.some((c) => c.preprocessOn) && cal.some((c) => !c.preprocessOn)).toBe(true);
    expect(cal.some((c) => c.optimization === 'set_model_output_int16')).toBe(true);
    expect(cfgs.some((c) => c.model.outputNodes.length > 0)).toBe(true);
    const comp = cfgs.map((c) => c.compiler);
    for (const o of ['O0', 'O1', 'O2', 'O3']) expect(comp.map((c) => c.optimizeLevel)).toContain(o);
    expect(comp.some((c) => c.coreNum === 2) && comp.some((c) => c.debug) && comp.some((c) => c.compileMode === 'bandwidth')).toBe(true);
    expect(new Set(inputs.map((i) => i.source))).toEqual(new Set(['ddr', 'pyramid', 'resizer']));
    // calibration samples in every form the reference reads: images, .npy, raw uint8, raw float32
    const files = cfgs.flatMap((c) => c.inputs.map((i) => fs.readdirSync(i.calDataDir!)[0]));
    for (const ext of ['.png', '.npy', '.bgr', '.gray', '.f32', '.bin']) expect(files.map((f) => path.extname(f))).toContain(ext);
  });

  test.each([...Object.entries(ONNX_NETS), ...Object.entries(CAFFE_NETS)].map(([p, e]) => [p, e.inputs] as const))(
    "%s: the YAML's inputs are what the network was made for",
    (project, trainInputs) => {
      const { cfg } = load(project);
      expect(cfg.inputs.map((i) => i.name)).toEqual(trainInputs.map((t) => t.name));
      cfg.inputs.forEach((inp, k) => {
        const t = trainInputs[k];
        expect([inp.typeTrain, inp.layoutTrain, inp.shape]).toEqual([t.format, t.layout, t.shape]);
        const expected = t.mean && t.scale ? 'data_mean_and_scale' : t.mean ? 'data_mean' : t.scale ? 'data_scale' : 'no_preprocess';
        expect(inp.normType).toBe(expected);
        expect(inp.mean).toEqual(t.mean);
        expect(inp.scale).toEqual(t.scale);
      });
    },
  );
});

describe('generated models', () => {
  const generated = ZOO.filter((p) => p.generated).map((p) => p.name);

  test.each(generated)('%s: float outputs are finite, O(1) and depend on the input', async (project) => {
    const r = await floatCheck(yamlOf(project), 6);
    expect(r.samples).toBe(6);
    for (const o of r.outputs) {
      expect(o.finite).toBe(true);
      expect(Math.max(Math.abs(o.min), Math.abs(o.max))).toBeLessThan(100);
      expect(o.std).toBeGreaterThan(1e-3);
      expect(o.sampleVariation).toBeGreaterThan(0.02);
    }
    // classifiers whose head was fitted (fit.ts) tell the images apart
    const heads = ONNX_NETS[project]?.heads.length ?? (CAFFE_NETS[project] ? 1 : 0);
    if (heads) for (const o of r.outputs) expect(o.sampleVariation).toBeGreaterThan(0.3);
  });

  test('the ONNX files pass onnx.checker (full check)', () => {
    const files = Object.keys(ONNX_NETS).map((p) => path.join(MODELS, p, `${p}.onnx`));
    const py = '/usr/bin/python3';
    const probe = spawnSync(py, ['-c', 'import onnx'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.warn(`skipped: ${py} with the onnx package is needed (Debian python3-onnx)`);
      return;
    }
    const script = 'import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\n    print("ok", f)';
    const r = spawnSync(py, ['-c', script, ...files], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toHaveLength(files.length);
  });

  test('regeneration is deterministic: the generator rewrites the committed files byte for byte', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-zoo-'));
    try {
      const written = await writeZoo(tmp);
      expect(written.map((f) => f.path)).toEqual(zooFiles().map((f) => f.path));
      const differ = written.filter((f) => {
        const committed = path.join(ROOT, f.path);
        return !fs.existsSync(committed) || fileSha256(committed) !== f.sha256;
      });
      expect(differ.map((f) => f.path)).toEqual([]);
      // the generated calibration folders hold nothing else
      for (const dir of generatedFolders()) {
        const want = written.filter((f) => path.posix.dirname(f.path) === dir).map((f) => path.posix.basename(f.path)).sort();
        expect(fs.readdirSync(path.join(ROOT, dir)).sort()).toEqual(want);
      }
      // small: the whole generated zoo stays well under the repository budget
      expect(written.reduce((s, f) => s + f.bytes, 0)).toBeLessThan(15e6);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
