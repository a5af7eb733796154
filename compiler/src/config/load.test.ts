import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isPtqError } from '../errors';
import { ConfigError } from './issues';
import { loadConfig, parseConfig, parseYaml } from './load';
import { validateAgainstModel } from './rules';
import { TEMPLATE_FILES, templatePath } from './templates';
import { March, ModelKind } from './types';

const DIR = '/work/cfg';

function expectConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (isPtqError(e) && e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const minimal = (extra = ''): string => `
model_parameters:
  onnx_model: m.onnx
  march: bernoulli2
  output_model_file_prefix: net
input_parameters:
  input_type_train: rgb
  input_layout_train: NCHW
  input_type_rt: nv12
  norm_type: no_preprocess
calibration_parameters:
  calibration_type: skip
compiler_parameters:
  optimize_level: O3
${extra}`;

describe('templates', () => {
  const all = Object.entries(TEMPLATE_FILES).flatMap(([march, kinds]) =>
    Object.keys(kinds).map((kind) => [march as March, kind as ModelKind] as const),
  );

  it('has the four templates (bernoulli2/bayes x onnx/caffe)', () => {
    expect(all).toHaveLength(4);
    for (const [march, kind] of all) expect(fs.existsSync(templatePath(march, kind))).toBe(true);
  });

  it.each(all)('%s %s parses, fits a 1x3x224x224 model and says what it is', (march, kind) => {
    const file = templatePath(march, kind);
    const cfg = loadConfig(file);
    expect(cfg.model.march).toBe(march);
    expect(cfg.model.kind).toBe(kind);
    const dir = path.dirname(file);
    if (kind === 'onnx') expect(cfg.model.onnxModel).toBe(path.join(dir, 'mobilenetv1.onnx'));
    else {
      expect(cfg.model.prototxt).toBe(path.join(dir, 'mobilenet_deploy.prototxt'));
      expect(cfg.model.caffeModel).toBe(path.join(dir, 'mobilenet.caffemodel'));
    }
    expect(cfg.model.outputModelFilePrefix).toBe('mobilenetv1');
    expect(cfg.model.workingDir).toBe(path.join(dir, 'model_output_dir'));
    expect(cfg.inputs).toEqual([
      expect.objectContaining({
        name: 'data',
        typeTrain: 'bgr',
        layoutTrain: 'NCHW',
        typeRt: 'yuv444',
        layoutRt: 'NHWC',
        shape: [1, 3, 224, 224],
        mean: [103.94, 116.78, 123.68],
        scale: [0.017],
        calDataDir: path.join(dir, 'calibration_data'),
        calDataType: 'float32',
      }),
    ]);
    expect(cfg.compiler.optimizeLevel).toBe('O3');
    const resolved = validateAgainstModel(cfg, [{ name: 'data', shape: [1, 3, 224, 224] }]);
    expect(resolved.inputs[0].shape).toEqual([1, 3, 224, 224]);
    const text = fs.readFileSync(file, 'utf8');
    // core_num is an RDK X3 key only.
    expect(/^\s*core_num:/m.test(text)).toBe(march === 'bernoulli2');
  });

  it('the caffe templates are refused as onnx (and vice versa) with the reference message', () => {
    const e = expectConfigError(() => loadConfig(templatePath('bernoulli2', 'onnx'), { modelType: 'caffe' }));
    expect(e.message).toMatch(/x3_onnx\.yaml:7 model_parameters: missing keys 'caffe_model', 'prototxt'$/);
  });
});

describe('defaults', () => {
  const cfg = parseConfig(minimal(), { file: 'model.yaml', dir: DIR });

  it('applies the reference defaults', () => {
    expect(cfg.model.workingDir).toBe(path.join(DIR, 'model_output'));
    expect(cfg.model.layerOutDump).toBe(false);
    expect(cfg.model.outputNodes).toEqual([]);
    expect(cfg.model.removeNodeType).toEqual([]);
    expect(cfg.model.debugMode).toBeUndefined();
    expect(cfg.inputBatch).toBe(1);
    expect(cfg.inputs).toHaveLength(1);
    expect(cfg.inputs[0]).toEqual({
      name: undefined,
      typeTrain: 'rgb',
      layoutTrain: 'NCHW',
      typeRt: 'nv12',
      layoutRt: undefined,
      spaceAndRange: 'regular',
      shape: undefined,
      normType: 'no_preprocess',
      mean: undefined,
      scale: undefined,
      calDataDir: undefined,
      calDataType: undefined,
      source: 'pyramid',
    });
    expect(cfg.calibration).toEqual({
      calibrationType: 'skip',
      maxPercentile: undefined,
      perChannel: false,
      preprocessOn: false,
      runOnCpu: [],
      runOnBpu: [],
      optimization: undefined,
    });
    expect(cfg.compiler).toEqual({
      compileMode: 'latency',
      debug: false,
      coreNum: 1,
      optimizeLevel: 'O3',
      inputSource: {},
      maxTimePerFc: 0,
      jobs: undefined,
    });
    expect(cfg.customOp).toBeUndefined();
    expect(cfg.nodes).toEqual({});
  });

  it('max_percentile defaults to 1.0 with calibration_type max only', () => {
    const max = parseConfig(minimal().replace('calibration_type: skip', 'calibration_type: max\n  cal_data_dir: c'));
    expect(max.calibration.maxPercentile).toBe(1.0);
    const set = parseConfig(minimal().replace('calibration_type: skip', 'calibration_type: max\n  cal_data_dir: c\n  max_percentile: 0.99995'));
    expect(set.calibration.maxPercentile).toBe(0.99995);
  });

  it('empty values of optional keys mean "not set"', () => {
    const c = parseConfig(
      minimal()
        .replace('  march: bernoulli2', "  march: bernoulli2\n  output_nodes:\n  remove_node_type: ''\n  remove_node_name: ';'\n  working_dir:")
        .replace('calibration_type: skip', 'calibration_type: skip\n  run_on_cpu: ""\n  optimization:'),
    );
    expect(c.model.outputNodes).toEqual([]);
    expect(c.model.removeNodeType).toEqual([]);
    expect(c.model.removeNodeName).toEqual([]);
    expect(c.model.workingDir).toBe(path.resolve('model_output'));
    expect(c.calibration.runOnCpu).toEqual([]);
    expect(c.calibration.optimization).toBeUndefined();
  });

  it('an input other than nv12 defaults to ddr', () => {
    const c = parseConfig(minimal().replace('input_type_rt: nv12', 'input_type_rt: rgb\n  input_layout_rt: NHWC'));
    expect(c.inputs[0].source).toBe('ddr');
    expect(c.inputs[0].layoutRt).toBe('NHWC');
  });
});

describe('relative paths', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-config-'));
    fs.mkdirSync(path.join(tmp, 'models', 'net'), { recursive: true });
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('resolves every path against the YAML folder, keeps absolute ones', () => {
    const file = path.join(tmp, 'models', 'net', 'model.yaml');
    fs.writeFileSync(
      file,
      minimal()
        .replace('onnx_model: m.onnx', "onnx_model: '../shared/m.onnx'\n  working_dir: out")
        .replace('input_type_train: rgb', "input_name: 'a; b'\n  input_type_train: 'rgb; rgb'")
        .replace('input_layout_train: NCHW', "input_layout_train: 'NCHW; NCHW'")
        .replace('input_type_rt: nv12', "input_type_rt: 'nv12; nv12'")
        .replace('norm_type: no_preprocess', "norm_type: 'no_preprocess; no_preprocess'")
        .replace('calibration_type: skip', `calibration_type: kl\n  cal_data_dir: './cal/a; ${tmp}/abs/b'`) +
        'custom_op:\n  custom_op_dir: ./ops\n  op_register_files: "x.py; sub/y.py"\n',
    );
    // A relative file name as given by the user is what messages show; the folder is still the file's.
    const cwd = process.cwd();
    process.chdir(tmp);
    let cfg;
    try {
      cfg = loadConfig(path.join('models', 'net', 'model.yaml'));
    } finally {
      process.chdir(cwd);
    }
    const dir = path.join(tmp, 'models', 'net');
    expect(cfg.source.file).toBe(path.join('models', 'net', 'model.yaml'));
    expect(cfg.source.dir).toBe(dir);
    expect(cfg.model.onnxModel).toBe(path.join(tmp, 'models', 'shared', 'm.onnx'));
    expect(cfg.model.workingDir).toBe(path.join(dir, 'out'));
    expect(cfg.inputs.map((x) => x.calDataDir)).toEqual([path.join(dir, 'cal', 'a'), path.join(tmp, 'abs', 'b')]);
    expect(cfg.customOp).toEqual({
      method: 'register',
      dir: path.join(dir, 'ops'),
      registerFiles: [path.join(dir, 'ops', 'x.py'), path.join(dir, 'ops', 'sub', 'y.py')],
    });
  });

  it('op_register_files without custom_op_dir resolve against the YAML folder; dir option overrides', () => {
    const cfg = parseConfig(minimal('custom_op:\n  op_register_files: a.py\n'), { dir: '/x/y' });
    expect(cfg.customOp?.registerFiles).toEqual(['/x/y/a.py']);
    expect(cfg.model.onnxModel).toBe('/x/y/m.onnx');
  });

  it('a missing file is a PtqError E_CONFIG naming it', () => {
    const e = expectConfigError(() => loadConfig(path.join(tmp, 'nope.yaml')));
    expect(e.code).toBe('E_CONFIG');
    expect(e.message).toContain('nope.yaml');
    expect(e.message).toContain('file not found');
  });
});

describe('multi-input, per-input ordering, None', () => {
  const text = `
model_parameters:
  prototxt: net.prototxt
  caffe_model: net.caffemodel
  march: bayes
  output_model_file_prefix: multi
input_parameters:
  input_name: 'image; depth; radar'
  input_type_train: 'bgr; gray; featuremap'
  input_layout_train: 'NCHW; NCHW; NHWC'
  input_type_rt: 'nv12; gray; featuremap'
  input_layout_rt: 'None; NHWC; NHWC'
  input_shape: '1x3x224x224; None; 1x8x8x16'
  norm_type: 'data_mean_and_scale; data_scale; no_preprocess'
  mean_value: '103.94 116.78 123.68; None; None'
  scale_value: '0.017; 0.5; None'
  input_space_and_range: bt601_video
calibration_parameters:
  cal_data_dir: 'cal/image; cal/depth; cal/radar'
  cal_data_type: float32
  calibration_type: max
  max_percentile: 0.9999
  per_channel: True
compiler_parameters:
  optimize_level: O2
  compile_mode: bandwidth
  input_source: {"image": "pyramid", depth: ddr}
  max_time_per_fc: 1000
  jobs: 4
`;
  const cfg = parseConfig(text, { dir: DIR });

  it('keeps input_name order and gives each input its own values', () => {
    expect(cfg.model.kind).toBe('caffe');
    expect(cfg.inputs.map((x) => x.name)).toEqual(['image', 'depth', 'radar']);
    expect(cfg.inputs.map((x) => x.typeTrain)).toEqual(['bgr', 'gray', 'featuremap']);
    expect(cfg.inputs.map((x) => x.typeRt)).toEqual(['nv12', 'gray', 'featuremap']);
    expect(cfg.inputs.map((x) => x.layoutTrain)).toEqual(['NCHW', 'NCHW', 'NHWC']);
    expect(cfg.inputs.map((x) => x.layoutRt)).toEqual([undefined, 'NHWC', 'NHWC']);
    expect(cfg.inputs.map((x) => x.shape)).toEqual([[1, 3, 224, 224], undefined, [1, 8, 8, 16]]);
    expect(cfg.inputs.map((x) => x.normType)).toEqual(['data_mean_and_scale', 'data_scale', 'no_preprocess']);
    expect(cfg.inputs.map((x) => x.calDataDir)).toEqual(['image', 'depth', 'radar'].map((n) => path.join(DIR, 'cal', n)));
    expect(cfg.inputs.map((x) => x.calDataType)).toEqual(['float32', 'float32', 'float32']);
  });

  it("reads per-channel and single mean/scale, and 'None' per input", () => {
    expect(cfg.inputs.map((x) => x.mean)).toEqual([[103.94, 116.78, 123.68], undefined, undefined]);
    expect(cfg.inputs.map((x) => x.scale)).toEqual([[0.017], [0.5], undefined]);
  });

  it('applies one input_space_and_range to the nv12 inputs only', () => {
    expect(cfg.inputs.map((x) => x.spaceAndRange)).toEqual(['bt601_video', 'regular', 'regular']);
  });

  it('resolves input_source per input (default ddr)', () => {
    expect(cfg.inputs.map((x) => x.source)).toEqual(['pyramid', 'ddr', 'ddr']);
    expect(cfg.compiler).toMatchObject({ compileMode: 'bandwidth', optimizeLevel: 'O2', maxTimePerFc: 1000, jobs: 4 });
    expect(cfg.calibration).toMatchObject({ calibrationType: 'max', maxPercentile: 0.9999, perChannel: true });
  });

  it('matches the model by name, whatever the model order, and fills shapes from it', () => {
    const resolved = validateAgainstModel(cfg, [
      { name: 'radar', shape: [1, 8, 8, 16] },
      { name: 'depth', shape: [1, 1, 120, 160] },
      { name: 'image', shape: ['N', 3, 224, 224] },
    ]);
    expect(resolved.inputs.map((x) => [x.name, x.shape])).toEqual([
      ['image', [1, 3, 224, 224]],
      ['depth', [1, 1, 120, 160]],
      ['radar', [1, 8, 8, 16]],
    ]);
    expect(cfg.inputs[1].shape).toBeUndefined(); // not mutated
  });
});

describe('value syntax', () => {
  it('accepts spaces around ;, one trailing ;, YAML lists, numeric names and any letter case', () => {
    const cfg = parseConfig(
      minimal()
        .replace('march: bernoulli2', "march: BERNOULLI2\n  output_nodes: ' out1 ;out2; '\n  remove_node_name: [a, 7]\n  remove_node_type: 'quantize;DEQUANTIZE'")
        .replace('input_type_rt: nv12', 'input_type_rt: NV12\n  input_shape: 1X3X224X224')
        .replace('input_layout_train: NCHW', 'input_layout_train: nchw')
        .replace('calibration_type: skip', 'calibration_type: Skip\n  run_on_cpu: 123\n  run_on_bpu: [conv_1, conv_2]'),
    );
    expect(cfg.model.march).toBe('bernoulli2');
    expect(cfg.model.outputNodes).toEqual(['out1', 'out2']);
    expect(cfg.model.removeNodeName).toEqual(['a', '7']);
    expect(cfg.model.removeNodeType).toEqual(['Quantize', 'Dequantize']);
    expect(cfg.inputs[0]).toMatchObject({ typeRt: 'nv12', layoutTrain: 'NCHW', shape: [1, 3, 224, 224] });
    expect(cfg.calibration.calibrationType).toBe('skip');
    expect(cfg.calibration.runOnCpu).toEqual(['123']);
    expect(cfg.calibration.runOnBpu).toEqual(['conv_1', 'conv_2']);
    expect(cfg.nodes).toEqual({ '123': { on: 'CPU' }, conv_1: { on: 'BPU' }, conv_2: { on: 'BPU' } });
  });

  it('reads YAML and quoted booleans, numbers given as strings, commas in mean lists', () => {
    const cfg = parseConfig(
      minimal('')
        .replace('march: bernoulli2', "march: bernoulli2\n  layer_out_dump: 'True'")
        .replace('norm_type: no_preprocess', "norm_type: data_mean_and_scale\n  mean_value: '123.68,116.779, 103.939'\n  scale_value: 0.017\n  input_batch: '8'")
        .replace('optimize_level: O3', "optimize_level: O3\n  debug: true\n  core_num: '2'\n  max_time_per_fc: 4294967295"),
    );
    expect(cfg.model.layerOutDump).toBe(true);
    expect(cfg.inputs[0].mean).toEqual([123.68, 116.779, 103.939]);
    expect(cfg.inputs[0].scale).toEqual([0.017]);
    expect(cfg.inputBatch).toBe(8);
    expect(cfg.compiler).toMatchObject({ debug: true, coreNum: 2, maxTimePerFc: 4294967295 });
  });

  it('reads node_info in the string and the mapping forms and merges the per-node keys', () => {
    const bayes = (nodeInfo: string, extra = ''): ReturnType<typeof parseConfig> =>
      parseConfig(minimal().replace('march: bernoulli2', `march: bayes\n  node_info: ${nodeInfo}${extra}`));
    expect(bayes("'conv1:int16; conv2 : int16'").model.nodeInfo).toEqual({
      conv1: { inputType: 'int16', outputType: 'int16' },
      conv2: { inputType: 'int16', outputType: 'int16' },
    });
    const mapping = bayes(
      '{"conv1": {"ON": "BPU", "InputType": "int16", "OutputType": "int16"}, conv2: {InputType1: int16, ON: cpu}}',
      "\n  set_node_data_type: 'conv3; conv4:int16'",
    );
    expect(mapping.model.nodeInfo).toEqual({
      conv1: { on: 'BPU', inputType: 'int16', outputType: 'int16' },
      conv2: { on: 'CPU', inputTypes: { 1: 'int16' } },
    });
    expect(mapping.model.setNodeDataType).toEqual(['conv3', 'conv4']);
    expect(mapping.nodes).toEqual({
      conv1: { on: 'BPU', inputType: 'int16', outputType: 'int16' },
      conv2: { on: 'CPU', inputTypes: { 1: 'int16' } },
      conv3: { outputType: 'int16' },
      conv4: { outputType: 'int16' },
    });
    const block = bayes('\n    conv1:\n      ON: BPU\n      OutputType: int16');
    expect(block.model.nodeInfo).toEqual({ conv1: { on: 'BPU', outputType: 'int16' } });
    const quoted = bayes(`'{"conv1": {"ON": "CPU"}}'`);
    expect(quoted.model.nodeInfo).toEqual({ conv1: { on: 'CPU' } });
  });

  it('--model-type picks the model files and ignores the other kind', () => {
    const text = minimal().replace('onnx_model: m.onnx', 'onnx_model: m.onnx\n  prototxt: p.prototxt\n  caffe_model: c.caffemodel');
    const caffe = parseConfig(text, { modelType: 'caffe', dir: DIR });
    expect(caffe.model).toMatchObject({ kind: 'caffe', onnxModel: undefined, prototxt: path.join(DIR, 'p.prototxt') });
    const onnx = parseConfig(text, { modelType: 'onnx', dir: DIR });
    expect(onnx.model).toMatchObject({ kind: 'onnx', onnxModel: path.join(DIR, 'm.onnx'), prototxt: undefined });
  });

  it('load and skip need no cal_data_dir; input_batch 1 is fine on several inputs', () => {
    const load = parseConfig(minimal().replace('calibration_type: skip', 'calibration_type: load'));
    expect(load.inputs[0].calDataDir).toBeUndefined();
    const two = parseConfig(
      minimal()
        .replace('input_type_train: rgb', "input_name: 'a;b'\n  input_batch: 1\n  input_type_train: 'rgb;rgb'")
        .replace('input_layout_train: NCHW', "input_layout_train: 'NCHW;NCHW'")
        .replace('input_type_rt: nv12', "input_type_rt: 'nv12;nv12'")
        .replace('norm_type: no_preprocess', "norm_type: 'no_preprocess;no_preprocess'"),
    );
    expect(two.inputs).toHaveLength(2);
  });
});

describe('locations', () => {
  it('records the line of every group and key, in block and flow style, quoted or not', () => {
    const text = [
      '# comment',
      'model_parameters:',
      '  "onnx_model": m.onnx',
      "  'march': bayes",
      '',
      '  output_model_file_prefix: >-',
      '    net',
      'input_parameters: {input_type_train: rgb,',
      '  input_layout_train: NCHW, input_type_rt: nv12,',
      '  norm_type: no_preprocess}',
      'calibration_parameters:',
      '  calibration_type: skip',
      'compiler_parameters: {optimize_level: O3}',
    ].join('\n');
    const { lines } = parseYaml(text);
    expect(lines).toMatchObject({
      model_parameters: 2,
      'model_parameters.onnx_model': 3,
      'model_parameters.march': 4,
      'model_parameters.output_model_file_prefix': 6,
      input_parameters: 8,
      'input_parameters.input_type_train': 8,
      'input_parameters.input_layout_train': 9,
      'input_parameters.input_type_rt': 9,
      'input_parameters.norm_type': 10,
      calibration_parameters: 11,
      'calibration_parameters.calibration_type': 12,
      compiler_parameters: 13,
      'compiler_parameters.optimize_level': 13,
    });
    const e = expectConfigError(() => parseConfig(text.replace('input_type_rt: nv12', 'input_type_rt: nv21'), { file: 'f.yaml' }));
    expect(e.message).toMatch(/^f\.yaml:9 input_parameters\.input_type_rt: 'nv21' is not allowed/);
  });

  it('reports every problem, the first in the message, the others by key', () => {
    const text = minimal()
      .replace('march: bernoulli2', 'march: bayes\n  layer_out_dump: maybe')
      .replace('optimize_level: O3', 'optimize_level: O9\n  core_num: 1');
    const e = expectConfigError(() => parseConfig(text, { file: 'model.yaml' }));
    expect(e.issues.map((i) => `${i.group}.${i.key}`)).toEqual(['model_parameters.layer_out_dump', 'compiler_parameters.optimize_level']);
    expect(e.message).toMatch(/^model\.yaml:5 model_parameters\.layer_out_dump: 'maybe' is not a boolean \(allowed: True, False\) \(\+1 more: compiler_parameters\.optimize_level\)$/);
    expect(e.allLines()[1]).toMatch(/^model\.yaml:15 compiler_parameters\.optimize_level: 'O9' is not allowed \(allowed: O0, O1, O2, O3\)$/);
    expect(e.oneLine()).toMatch(/^ERROR model\.yaml:5 /);
  });
});
