/**
 * A model YAML for the tests of which files each stage reads (stages/reads.test.ts,
 * store/key.test.ts): the model, the calibration folder and custom op files all outside the
 * model's folder (`models/m1/`), relative to it.
 */
export const READS_YAML = `model_parameters:
  onnx_model: '../../shared/net.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'net'
  working_dir: './out'
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
  cal_data_dir: '../../cal'
  calibration_type: 'max'
compiler_parameters:
  optimize_level: 'O3'
custom_op:
  op_register_files: 'my_op.py'
  custom_op_dir: './ops'
`;
