import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, parseConfig, parseYaml } from '../config';
import { tuningAdvice, tuningSteps } from './advice';
import { DEFAULT_COSINE_THRESHOLD, parseVerifyBlock, readVerifySettings } from './settings';

function block(yaml: string): ReturnType<typeof parseVerifyBlock> {
  const { doc, lines } = parseYaml(yaml, 'model.yaml');
  return parseVerifyBlock((doc as Record<string, Record<string, unknown>>)['nx-ptq'].verify, lines, 'model.yaml', '/m');
}

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  return 'no error';
}

describe('nx-ptq.verify settings', () => {
  it('reads cosine_threshold, samples and data_dir (relative to the YAML)', () => {
    expect(block('nx-ptq:\n  verify:\n    cosine_threshold: 0.995\n    samples: 4\n    data_dir: "a; b"\n')).toEqual({ cosineThreshold: 0.995, samples: 4, dataDirs: ['/m/a', '/m/b'] });
    expect(block("nx-ptq:\n  verify:\n    cosine_threshold: '0.9'\n")).toEqual({ cosineThreshold: 0.9, samples: 10 });
  });

  it('refuses wrong values and unknown keys with the YAML line', () => {
    expect(message(() => block('nx-ptq:\n  verify:\n    cosine_threshold: 2\n'))).toBe('model.yaml:3 nx-ptq.verify.cosine_threshold: must be a number in (-1, 1], got 2');
    expect(message(() => block('nx-ptq:\n  verify:\n    samples: 0\n'))).toBe('model.yaml:3 nx-ptq.verify.samples: must be a whole number >= 1, got 0');
    expect(message(() => block('nx-ptq:\n  verify:\n    treshold: 0.9\n'))).toBe('model.yaml:3 nx-ptq.verify.treshold: unknown key; allowed keys: cosine_threshold, samples, data_dir');
    expect(message(() => block('nx-ptq:\n  verify: 0.99\n'))).toMatch(/^model.yaml:2 nx-ptq.verify: must be a mapping/);
  });

  it('defaults without a block; reads the block the config loader kept', () => {
    type Cfg = Parameters<typeof readVerifySettings>[0];
    const cfg = (nxPtq: unknown): Cfg => ({ source: { dir: '/m', lines: {}, nxPtq } }) as unknown as Cfg;
    expect(readVerifySettings(cfg(undefined))).toEqual({ cosineThreshold: DEFAULT_COSINE_THRESHOLD, samples: 10 });
    expect(readVerifySettings(cfg({ name: 'x' }))).toEqual({ cosineThreshold: DEFAULT_COSINE_THRESHOLD, samples: 10 });
    expect(readVerifySettings(cfg({ verify: { cosine_threshold: 0.5 } })).cosineThreshold).toBe(0.5);
    const yaml = [
      'model_parameters:', '  onnx_model: m.onnx', '  march: bayes', '  output_model_file_prefix: m',
      'input_parameters:', "  input_name: 'data'", '  input_type_train: bgr', '  input_layout_train: NCHW', '  input_type_rt: nv12', '  input_shape: 1x3x8x8', '  norm_type: no_preprocess',
      'calibration_parameters:', '  calibration_type: skip',
      'compiler_parameters:', '  optimize_level: O3',
      'nx-ptq:', '  verify:', '    cosine_threshold: 0.25', '    samples: 3',
    ].join('\n');
    const loaded = parseConfig(yaml, { dir: '/m' });
    expect(readVerifySettings(loaded)).toEqual({ cosineThreshold: 0.25, samples: 3 });
  });

});

describe('tuning advice (the reference order)', () => {
  const cfg = (over: Record<string, unknown> = {}, march = 'bernoulli2') =>
    ({ calibration: { calibrationType: 'default', perChannel: false, ...over }, model: { march } }) as unknown as Parameters<typeof tuningSteps>[0];

  it('starts from the calibration method and ends with the debugger; leaves out what is already set', () => {
    const steps = tuningSteps(cfg(), { weakNodes: ['conv9 (0.91)', 'fc (0.95)', 'x'] });
    expect(steps[0]).toBe("calibration_type 'kl' or 'max' by hand");
    expect(steps[1]).toMatch(/^calibration_type 'max' with max_percentile 0.99999, 0.99995, 0.9999, 0.9995, 0.999/);
    expect(steps[2]).toBe('per_channel: True');
    expect(steps).toContain('run_on_cpu for 1-2 operators of the output layer (lowest cosine: conv9 (0.91), fc (0.95))');
    expect(steps[steps.length - 1]).toMatch(/ptq debugger/);
    expect(steps.some((s) => s.includes('int16'))).toBe(false);
    const ultra = tuningSteps(cfg({ calibrationType: 'max', maxPercentile: 0.9999, perChannel: true }, 'bayes'));
    expect(ultra[0]).toBe("calibration_type: 'default' (automatic search of max/percentile/kl)");
    expect(ultra[1]).toBe('a lower max_percentile (0.9995, 0.999)');
    expect(ultra).not.toContain('per_channel: True');
    expect(ultra.some((s) => s.includes('int16'))).toBe(true);
    expect(tuningAdvice(cfg())).toMatch(/^try, in order: 1\) calibration_type 'kl' or 'max' by hand; 2\) /);
  });
});
