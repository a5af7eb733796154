import * as fs from 'fs';
import * as path from 'path';
import type { Sample } from '../calibrate/collect';
import { ConfigError, PtqConfig } from '../config';
import { Rng } from '../kernels/random';
import { Model } from '../onnx/ir';
import { calibrationSpec, CALIBRATION_DATA_DIR, planCalibrationSet, readCalibrationSet } from '../preprocess/caldata';
import { readPreprocessRecords } from '../preprocess/hz-preprocess';
import { CalibrationInput, openCalibrationSet, readModelSample, toModelInput } from '../stages/calibration-data';
import { loadFloatModel } from '../stages/model';
import { randomSample } from './feeds';
import type { SampleSource } from './report';
import type { VerifySettings } from './settings';

/**
 * The samples the verify stage runs, as the float model takes them: from `nx-ptq.verify.data_dir`
 * (raw samples laid out like cal_data_dir, read the way the preprocess stage reads them), else
 * the first `samples` of calibration_data/, else — calibration_type skip/load without
 * calibration data — seeded random inputs.
 */
export async function verifySamples(cfg: PtqConfig, floatModel: Model, settings: VerifySettings): Promise<{ samples: Sample[]; source: SampleSource }> {
  if (settings.dataDirs) return { samples: await dataDirSamples(cfg, floatModel, settings), source: 'data_dir' };
  const type = cfg.calibration.calibrationType;
  if ((type === 'skip' || type === 'load') && !hasSamples(path.join(cfg.model.workingDir, CALIBRATION_DATA_DIR))) {
    const rng = new Rng('verify');
    return { samples: Array.from({ length: settings.samples }, () => randomSample(floatModel, rng)), source: 'random' };
  }
  const set = openCalibrationSet(cfg, floatModel);
  const n = Math.min(settings.samples, set.count);
  return { samples: Array.from({ length: n }, (_, i) => readModelSample(set, i)), source: 'calibration_data' };
}

async function dataDirSamples(cfg: PtqConfig, floatModel: Model, settings: VerifySettings): Promise<Sample[]> {
  const dirs = settings.dataDirs as string[];
  const { cfg: vcfg } = loadFloatModel(cfg);
  const spec = calibrationSpec({ ...vcfg, inputs: vcfg.inputs.map((i) => ({ ...i, calDataDir: i.calDataDir ?? dirs[0] })) });
  if (dirs.length !== spec.inputs.length) {
    throw new ConfigError(cfg.source.file, [
      {
        group: 'nx-ptq',
        key: 'verify.data_dir',
        line: cfg.source.lines['nx-ptq'],
        message: `names ${dirs.length} folder(s); the model has ${spec.inputs.length} input(s) (${spec.inputs.map((i) => i.name).join(', ')})`,
        fix: "give one folder per input, ';'-separated, in input_name order",
      },
    ]);
  }
  spec.inputs.forEach((inp, k) => {
    inp.calDataDir = dirs[k];
  });
  const plan = planCalibrationSet(spec);
  const records = new Map(readPreprocessRecords(floatModel).map((r) => [r.input, r]));
  const inputs = new Map(
    floatModel.graph.realInputs.map((v): [string, CalibrationInput] => [
      v.name,
      { name: v.name, folder: v.name, files: [], record: records.get(v.name), dtype: v.type?.dtype ?? 'float32', dims: (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1)) },
    ]),
  );
  const out: Sample[] = [];
  for await (const s of readCalibrationSet(plan)) {
    const sample: Sample = {};
    for (const [name, t] of Object.entries(s.feeds)) {
      const inp = inputs.get(name);
      const k = spec.inputs.findIndex((i) => i.name === name);
      if (inp) sample[name] = toModelInput(t, inp, s.files[k] ?? dirs[0]);
    }
    out.push(sample);
    if (out.length >= settings.samples) break;
  }
  return out;
}

/** Whether calibration_data/ holds any .npy sample. */
function hasSamples(dir: string): boolean {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory() && fs.readdirSync(path.join(dir, d.name)).some((f) => f.endsWith('.npy')));
  } catch {
    return false;
  }
}
