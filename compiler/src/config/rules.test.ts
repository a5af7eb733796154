import { isPtqError } from '../errors';
import { parseConfig } from './load';
import { SUPPORTED_RT_TYPES, validateAgainstModel } from './rules';
import { INPUT_TYPES_RT, INPUT_TYPES_TRAIN, InputTypeRt, InputTypeTrain } from './types';

/** The table as printed in the reference ("Conversion Internal Process Interpretation"). */
const REFERENCE_TABLE = `
| input_type_train \\ input_type_rt | nv12 | yuv444 | rgb | bgr | gray | featuremap |
|------------------------------------|------|--------|-----|-----|------|------------|
| yuv444                             | Y    | Y      | N   | N   | N    | N          |
| rgb                                | Y    | Y      | Y   | Y   | N    | N          |
| bgr                                | Y    | Y      | Y   | Y   | N    | N          |
| gray                               | N    | N      | N   | N   | Y    | N          |
| featuremap                         | N    | N      | N   | N   | N    | Y          |
`;

function referencePairs(): Map<string, boolean> {
  const rows = REFERENCE_TABLE.trim().split('\n').map((r) => r.split('|').slice(1, -1).map((c) => c.trim()));
  const header = rows[0].slice(1);
  const out = new Map<string, boolean>();
  for (const row of rows.slice(2)) row.slice(1).forEach((yn, i) => out.set(`${row[0]}>${header[i]}`, yn === 'Y'));
  return out;
}

function config(train: InputTypeTrain, rt: InputTypeRt, march = 'bayes'): string {
  const channels = train === 'gray' ? 1 : 3;
  return `
model_parameters: {onnx_model: m.onnx, march: ${march}, output_model_file_prefix: m}
input_parameters:
  input_type_train: ${train}
  input_layout_train: NCHW
  input_type_rt: ${rt}
  input_layout_rt: NHWC
  input_shape: 1x${channels}x64x64
  norm_type: no_preprocess
calibration_parameters: {calibration_type: skip}
compiler_parameters: {optimize_level: O3}
`;
}

function accepted(text: string): boolean {
  try {
    parseConfig(text);
    return true;
  } catch (e) {
    if (!isPtqError(e)) throw e;
    return false;
  }
}

describe('input_type_train x input_type_rt', () => {
  const pairs = referencePairs();

  it('the table covers every type pair', () => {
    expect(pairs.size).toBe(INPUT_TYPES_TRAIN.length * INPUT_TYPES_RT.length);
    for (const train of INPUT_TYPES_TRAIN) {
      for (const rt of INPUT_TYPES_RT) expect(SUPPORTED_RT_TYPES[train].includes(rt)).toBe(pairs.get(`${train}>${rt}`));
    }
  });

  it.each([...pairs.entries()])('%s accepted: %s', (pair, yes) => {
    const [train, rt] = pair.split('>') as [InputTypeTrain, InputTypeRt];
    expect(accepted(config(train, rt))).toBe(yes);
  });
});

describe('march-specific rules', () => {
  it('yuv444 + NCHW runtime layout: refused on bernoulli2, accepted on bayes', () => {
    const text = (march: string): string => config('rgb', 'yuv444', march).replace('input_layout_rt: NHWC', 'input_layout_rt: NCHW');
    expect(accepted(text('bayes'))).toBe(true);
    expect(accepted(text('bernoulli2'))).toBe(false);
  });

  it('int16 output only on bayes', () => {
    const text = (march: string): string =>
      config('rgb', 'rgb', march).replace('calibration_type: skip', 'calibration_type: skip, optimization: set_model_output_int16');
    expect(accepted(text('bayes'))).toBe(true);
    expect(accepted(text('bernoulli2'))).toBe(false);
  });

  it('core_num on bernoulli2 only', () => {
    const text = (march: string): string => config('rgb', 'rgb', march).replace('optimize_level: O3', 'optimize_level: O3, core_num: 2');
    expect(accepted(text('bernoulli2'))).toBe(true);
    expect(accepted(text('bayes'))).toBe(false);
  });
});

describe('validateAgainstModel', () => {
  const single = parseConfig(config('rgb', 'nv12').replace('  input_shape: 1x3x64x64\n', '').replace('norm_type', 'input_batch: 4\n  norm_type'), {
    file: 'm.yaml',
  });

  it('fills the name and shape of a single unnamed input', () => {
    const r = validateAgainstModel(single, [{ name: 'images', shape: [1, 3, 64, 64] }]);
    expect(r.inputs[0].name).toBe('images');
    expect(r.inputs[0].shape).toEqual([1, 3, 64, 64]);
    expect(single.inputs[0].name).toBeUndefined();
  });

  it('needs even H and W for nv12 from the model shape (NHWC too)', () => {
    expect(() => validateAgainstModel(single, [{ name: 'x', shape: [1, 3, 64, 63] }])).toThrow(/m\.yaml:\d+ input_parameters\.input_type_rt: .*even/);
    const nhwc = parseConfig(config('rgb', 'nv12').replace('input_layout_train: NCHW', 'input_layout_train: NHWC').replace('  input_shape: 1x3x64x64\n', ''));
    expect(validateAgainstModel(nhwc, [{ name: 'x', shape: [1, 64, 64, 3] }]).inputs[0].shape).toEqual([1, 64, 64, 3]);
    expect(() => validateAgainstModel(nhwc, [{ name: 'x', shape: [1, 63, 64, 3] }])).toThrow(/even height and width/);
  });

  it('input_batch needs N = 1 and a single input', () => {
    expect(() => validateAgainstModel(single, [{ name: 'x', shape: [2, 3, 64, 64] }])).toThrow(/input_batch/);
    expect(() =>
      validateAgainstModel(single, [
        { name: 'x', shape: [1, 3, 64, 64] },
        { name: 'y', shape: [1, 3, 64, 64] },
      ]),
    ).toThrow(/input_name/);
  });

  it('input_shape fixes dynamic dims only', () => {
    const cfg = parseConfig(config('rgb', 'rgb').replace('1x3x64x64', '8x3x64x64'));
    expect(validateAgainstModel(cfg, [{ name: 'x', shape: [-1, 3, 64, 64] }]).inputs[0].shape).toEqual([8, 3, 64, 64]);
    expect(validateAgainstModel(cfg, [{ name: 'x', shape: ['batch', 3, 'h', 'w'] }]).inputs[0].shape).toEqual([8, 3, 64, 64]);
    expect(() => validateAgainstModel(cfg, [{ name: 'x', shape: [1, 3, 64, 64] }])).toThrow(/input_shape/);
  });

  it('errors are PtqErrors with code E_CONFIG', () => {
    try {
      validateAgainstModel(single, [{ name: 'x', shape: [1, 3, 64] }]);
      throw new Error('no error');
    } catch (e) {
      expect(isPtqError(e) && e.code).toBe('E_CONFIG');
    }
  });
});
