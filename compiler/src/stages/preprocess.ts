import * as fs from 'fs';
import { calibrationSpec, writeCalibrationData } from '../preprocess/caldata';
import { StageFn, stageOutputPaths } from './index';
import { loadFloatModel } from './model';

/**
 * The preprocess stage: `calibration_data/<input_name>/<i>.npy` in input_type_train layout and
 * dtype (the reference's `debug_mode: dump_calibration_data` layout). With calibration_type
 * load or skip no data is needed: the folder is written empty so the stage's outputs exist.
 */
export const preprocessStage: StageFn = async (cfg, ctx) => {
  const [dir] = stageOutputPaths('preprocess', cfg);
  if (cfg.calibration.calibrationType === 'load' || cfg.calibration.calibrationType === 'skip') {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    ctx.log(`INFO calibration_type ${cfg.calibration.calibrationType}: no calibration data needed`);
    return { stage: 'preprocess', outputs: [dir], lines: [] };
  }
  // input names and shapes may come from the model (single-input YAMLs may omit them)
  const { cfg: vcfg } = loadFloatModel(cfg);
  const r = await writeCalibrationData(calibrationSpec(vcfg), vcfg.model.workingDir);
  const line = `INFO wrote ${r.count} calibration sample(s) for ${r.inputs.map((i) => `'${i.name}'`).join(', ')} into ${r.dir}`;
  ctx.log(line);
  return { stage: 'preprocess', outputs: [r.dir], lines: [line] };
};
