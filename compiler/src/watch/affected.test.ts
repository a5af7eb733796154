import { parseConfig, PtqConfig } from '../config';
import { affectedStages, changedGroups, leafStages, stagesForFiles, watchedFiles, withDownstream, withUpstream } from './affected';

const BASE = `
model_parameters:
  onnx_model: models/net.onnx
  march: bernoulli2
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

const cfg = (text: string, dir = '/a'): PtqConfig => parseConfig(text, { dir });

function affected(from: string, to: string, text = BASE): string[] {
  if (!text.includes(from)) throw new Error(`test edit: '${from}' not in the base`);
  return affectedStages(cfg(text), cfg(text.replace(from, to)));
}

describe('affectedStages', () => {
  it('compiler_parameters: compile and the stages reading the .bin', () => {
    expect(affected('optimize_level: O3', 'optimize_level: O2')).toEqual(['compile', 'perf', 'verify']);
  });

  it('calibration_parameters: calibrate and everything after it', () => {
    expect(affected('calibration_type: kl', 'calibration_type: max')).toEqual(['calibrate', 'quantize', 'compile', 'perf', 'verify']);
  });

  it('the normalisation (in the model, not the data): check and after, not preprocess', () => {
    expect(affected('scale_value: 0.017', 'scale_value: 0.018')).toEqual(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
  });

  it('the input shape: every stage', () => {
    expect(affected('input_shape: 1x3x224x224', 'input_shape: 1x3x112x112')).toEqual(['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
  });

  it('nothing for comments, key order or the spelling of values; jobs only for the .bin that records it', () => {
    expect(affected('compiler_parameters:\n', '# tuned\ncompiler_parameters:\n')).toEqual([]);
    expect(affected('  optimize_level: O3\n  jobs: 4\n', '  jobs: 4\n  optimize_level: O3\n')).toEqual([]);
    expect(affected('  optimize_level: O3\n  jobs: 4\n', '  jobs: 8\n  optimize_level: O3\n')).toEqual(['compile', 'perf', 'verify']);
    expect(affected("mean_value: '103.94 116.78 123.68'", "mean_value: '103.940  116.78 123.680'")).toEqual([]);
  });

  it('another model or calibration file: the stages that read it and after', () => {
    expect(affected('onnx_model: models/net.onnx', 'onnx_model: models/net2.onnx')).toEqual(['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(affected('cal_data_dir: ./cal', 'cal_data_dir: ./cal2')).toEqual(['preprocess', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
  });

  it("verify's own samples (nx-ptq.verify.data_dir): verify only", () => {
    const withData = `${BASE}nx-ptq:\n  verify:\n    data_dir: ./vdata\n`;
    expect(affected('data_dir: ./vdata', 'data_dir: ./vdata2', withData)).toEqual(['verify']);
    expect(affectedStages(cfg(BASE), cfg(withData))).toEqual(['verify']);
    expect(affectedStages(cfg(withData), cfg(BASE))).toEqual(['verify']);
  });

  it('outputs written elsewhere: the stages whose files move', () => {
    expect(affected('working_dir: out', 'working_dir: out2')).toHaveLength(7);
    // the prefix names check's, calibrate's, quantize's and compile's files
    expect(affected('output_model_file_prefix: net', 'output_model_file_prefix: net2')).toEqual(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
  });

  it('everything when there was no configuration before', () => {
    expect(affectedStages(undefined, cfg(BASE))).toHaveLength(7);
  });

  it('does not depend on where the workspace is when nothing moved inside it', () => {
    expect(affectedStages(cfg(BASE, '/a'), cfg(BASE, '/a'))).toEqual([]);
  });
});

describe('stage graph helpers', () => {
  it('downstream, upstream and leaves follow the pipeline', () => {
    expect(withDownstream(['check'])).toEqual(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(withDownstream(['perf'])).toEqual(['perf']);
    expect(withUpstream(['quantize'])).toEqual(['preprocess', 'check', 'calibrate', 'quantize']);
    expect(withUpstream(['perf'])).toEqual(['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf']);
    expect(leafStages(withUpstream(['quantize']))).toEqual(['quantize']);
    expect(leafStages(['preprocess', 'check'])).toEqual(['preprocess', 'check']);
    expect(leafStages(withDownstream(['compile']))).toEqual(['perf', 'verify']);
  });

  it('file changes: the model → every stage, calibration data → preprocess and after', () => {
    expect(stagesForFiles(['model'])).toHaveLength(7);
    expect(stagesForFiles(['calibration'])).toEqual(['preprocess', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(stagesForFiles(['customOp'])).toEqual(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(stagesForFiles(['verifyData'])).toEqual(['verify']);
  });

  it('watchedFiles names the model file, the calibration folder and the verify data folders', () => {
    expect(watchedFiles(cfg(BASE))).toEqual({ model: ['/a/models/net.onnx'], calibration: ['/a/cal'], customOp: [], verifyData: [] });
    const withData = `${BASE}nx-ptq:\n  verify:\n    samples: 4\n    data_dir: './v1; ./v2; ./v1'\n`;
    expect(watchedFiles(cfg(withData)).verifyData).toEqual(['/a/v1', '/a/v2']);
    // an invalid nx-ptq.verify block (the verify stage reports it): no folder, no exception
    expect(watchedFiles(cfg(`${BASE}nx-ptq:\n  verify:\n    samples: 0\n    data_dir: ./v1\n`)).verifyData).toEqual([]);
  });
});

describe('changedGroups', () => {
  it('names the top-level groups whose values differ', () => {
    const a = { model_parameters: { march: 'x' }, compiler_parameters: { optimize_level: 'O3', jobs: 1 } };
    const b = { model_parameters: { march: 'x' }, compiler_parameters: { jobs: 1, optimize_level: 'O2' }, custom_op: {} };
    expect(changedGroups(a, b)).toEqual(['compiler_parameters', 'custom_op']);
    expect(changedGroups(a, a)).toEqual([]);
    expect(changedGroups({ g: { v: Infinity } }, { g: { v: -Infinity } })).toEqual(['g']);
  });
});
