import { parseConfig } from './load';
import { canonical, canonicalJson, STAGES, stageSlices, StageSlices } from './slices';

const BASE = `
model_parameters:
  onnx_model: models/net.onnx
  march: bayes
  output_model_file_prefix: net
  working_dir: out
input_parameters:
  input_name: 'data'
  input_type_train: bgr
  input_layout_train: NCHW
  input_type_rt: nv12
  input_shape: 1x3x224x224
  norm_type: data_mean_and_scale
  mean_value: '103.94 116.78 123.68'
  scale_value: 0.017
calibration_parameters:
  cal_data_dir: ./cal
  cal_data_type: float32
  calibration_type: kl
compiler_parameters:
  optimize_level: O3
  jobs: 4
`;

const slices = (text: string, dir = '/a'): StageSlices => stageSlices(parseConfig(text, { dir }));

/** Stages whose slice differs between the base and the edited text. */
function changed(edit: (t: string) => string): string[] {
  const a = slices(BASE);
  const b = slices(edit(BASE));
  return STAGES.filter((s) => canonicalJson(a[s]) !== canonicalJson(b[s]));
}

const sub = (from: string, to: string) => (t: string) => {
  if (!t.includes(from)) throw new Error(`test edit: '${from}' not in the base`);
  return t.replace(from, to);
};

describe('stageSlices', () => {
  it('gives every stage a JSON object with sorted keys', () => {
    const s = slices(BASE);
    expect(Object.keys(s).sort()).toEqual([...STAGES].sort());
    const sortedDeep = (v: unknown): boolean =>
      Array.isArray(v)
        ? v.every(sortedDeep)
        : v !== null && typeof v === 'object'
          ? Object.keys(v).join() === Object.keys(v).sort().join() && Object.values(v).every(sortedDeep)
          : true;
    for (const stage of STAGES) {
      expect(JSON.parse(JSON.stringify(s[stage]))).toEqual(s[stage]);
      expect(sortedDeep(s[stage])).toBe(true);
    }
  });

  it('does not depend on key order, spelling of values, or (but for the .bin record) where the files are', () => {
    const reordered = `
compiler_parameters: {jobs: 4, optimize_level: 'O3'}
calibration_parameters: {calibration_type: KL, cal_data_type: float32, cal_data_dir: /elsewhere/cal}
input_parameters:
  scale_value: '0.017'
  mean_value: '103.94  116.78  123.68'
  norm_type: data_mean_and_scale
  input_shape: 1x3x224x224
  input_type_rt: NV12
  input_layout_train: nchw
  input_type_train: bgr
  input_name: 'data;'
model_parameters: {output_model_file_prefix: net, march: bayes, onnx_model: /x/y.onnx, working_dir: /tmp/o}
`;
    const a = slices(reordered, '/b');
    const b = slices(BASE);
    for (const st of STAGES) if (st !== 'compile') expect(canonicalJson(a[st])).toBe(canonicalJson(b[st]));
    // compile's slice holds the .bin's parameter record, whose paths are relative to the YAML
    const { recorded: ra, ...restA } = a.compile;
    const { recorded: rb, ...restB } = b.compile;
    expect(canonicalJson(restA)).toBe(canonicalJson(restB));
    expect(canonicalJson(ra)).not.toBe(canonicalJson(rb));
    expect(canonicalJson(slices(BASE, '/elsewhere'))).toBe(canonicalJson(b));
  });

  it.each([
    ['optimize_level', sub('optimize_level: O3', 'optimize_level: O2'), ['compile']],
    ['compile_mode', sub('optimize_level: O3', 'optimize_level: O3\n  compile_mode: bandwidth'), ['compile']],
    ['max_time_per_fc', sub('optimize_level: O3', 'optimize_level: O3\n  max_time_per_fc: 2000'), ['compile']],
    ['debug', sub('optimize_level: O3', 'optimize_level: O3\n  debug: True'), ['compile']],
    ['input_source', sub('optimize_level: O3', 'optimize_level: O3\n  input_source: {data: ddr}'), ['compile']],
    ['jobs (recorded in the .bin)', sub('jobs: 4', 'jobs: 16'), ['compile']],
    ['calibration_type', sub('calibration_type: kl', 'calibration_type: max'), ['calibrate', 'compile']],
    ['calibration_type skip (no data)', sub('calibration_type: kl', 'calibration_type: skip'), ['preprocess', 'calibrate', 'compile']],
    ['per_channel', sub('calibration_type: kl', 'calibration_type: kl\n  per_channel: True'), ['calibrate', 'compile']],
    ['histogram_sample (ours: not recorded in the .bin)', sub('calibration_type: kl', 'calibration_type: kl\n  histogram_sample: 0'), ['calibrate']],
    ['run_on_cpu', sub('calibration_type: kl', 'calibration_type: kl\n  run_on_cpu: conv1'), ['calibrate', 'quantize', 'compile']],
    ['optimization', sub('calibration_type: kl', 'calibration_type: kl\n  optimization: set_model_output_int16'), ['quantize', 'compile']],
    ['cal_data_type', sub('cal_data_type: float32', 'cal_data_type: uint8'), ['preprocess', 'compile']],
    ['preprocess_on', sub('calibration_type: kl', 'calibration_type: kl\n  preprocess_on: True'), ['preprocess', 'compile']],
    ['cal_data_dir (a path, recorded in the .bin)', sub('cal_data_dir: ./cal', 'cal_data_dir: ./other'), ['compile']],
    ['mean_value', sub("mean_value: '103.94 116.78 123.68'", "mean_value: '128'"), ['check', 'compile']],
    ['norm_type', (t: string) => sub('norm_type: data_mean_and_scale', 'norm_type: data_scale')(sub("mean_value: '103.94 116.78 123.68'", "mean_value: 'None'")(t)), ['check', 'compile']],
    ['input_type_rt', sub('input_type_rt: nv12', 'input_type_rt: yuv444\n  input_layout_rt: NHWC'), ['check', 'calibrate', 'compile', 'verify']],
    ['input_shape', sub('input_shape: 1x3x224x224', 'input_shape: 1x3x256x256'), ['preprocess', 'check', 'compile', 'verify']],
    ['input_batch', sub('input_shape: 1x3x224x224', 'input_shape: 1x3x224x224\n  input_batch: 8'), ['compile', 'verify']],
    ['input_space_and_range', sub('input_shape: 1x3x224x224', 'input_shape: 1x3x224x224\n  input_space_and_range: bt601_video'), ['check', 'calibrate', 'compile', 'verify']],
    ['output_model_file_prefix', sub('output_model_file_prefix: net', 'output_model_file_prefix: net2'), ['compile', 'perf']],
    ['output_nodes', sub('working_dir: out', 'working_dir: out\n  output_nodes: fc'), ['check', 'compile']],
    ['remove_node_type', sub('working_dir: out', 'working_dir: out\n  remove_node_type: Dequantize'), ['compile']],
    ['layer_out_dump', sub('working_dir: out', 'working_dir: out\n  layer_out_dump: True'), ['compile']],
    ['debug_mode', sub('working_dir: out', 'working_dir: out\n  debug_mode: dump_calibration_data'), ['calibrate', 'compile']],
    ['node_info', sub('working_dir: out', "working_dir: out\n  node_info: 'conv1:int16'"), ['calibrate', 'quantize', 'compile']],
    ['working_dir (a path, recorded in the .bin)', sub('working_dir: out', 'working_dir: elsewhere'), ['compile']],
    ['onnx_model (a path, recorded in the .bin)', sub('onnx_model: models/net.onnx', 'onnx_model: other.onnx'), ['compile']],
    ['march', (t: string) => sub('march: bayes', 'march: bernoulli2')(t), ['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']],
    ['custom_op', (t: string) => `${t}custom_op:\n  op_register_files: my_op.py\n`, ['check', 'compile']],
  ] as const)('editing %s changes the slices of %j', (_name, edit, stages) => {
    expect(changed(edit)).toEqual([...stages]);
  });

  it("the nx-ptq group's verify settings change only the verify slice; its name and tags change none", () => {
    expect(changed((t) => `${t}nx-ptq:\n  verify:\n    cosine_threshold: 0.995\n`)).toEqual(['verify']);
    expect(changed((t) => `${t}nx-ptq:\n  name: other\n  tags: [a]\n`)).toEqual([]);
  });

  it('the same per-node override written two ways hashes the same', () => {
    const a = sub('calibration_type: kl', 'calibration_type: kl\n  run_on_cpu: conv1')(BASE);
    const b = sub('working_dir: out', 'working_dir: out\n  node_info: {conv1: {ON: CPU}}')(BASE);
    expect(canonicalJson(slices(a).calibrate)).toBe(canonicalJson(slices(b).calibrate));
    expect(canonicalJson(slices(a).quantize)).toBe(canonicalJson(slices(b).quantize));
  });
});

describe('canonical', () => {
  it('sorts keys, drops undefined members, keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1, { z: 1, y: undefined, x: -0 }], c: undefined } })).toBe('{"a":{"d":[3,1,{"x":0,"z":1}]},"b":1}');
  });

  it('refuses what JSON cannot hold', () => {
    expect(() => canonical(NaN)).toThrow();
    expect(() => canonical(() => 1)).toThrow();
  });
});
