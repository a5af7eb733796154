import * as fs from 'fs';
import * as path from 'path';
import type { Sample } from '../calibrate/collect';
import { PtqError } from '../errors';
import { Model } from '../onnx/ir';
import { folderNames } from '../preprocess/caldata';
import { readPreprocessRecords } from '../preprocess/hz-preprocess';
import { CalibrationInput, CalibrationSet, isDir, listDirs, readModelSample } from '../stages/calibration-data';

/**
 * The debugger's data: a folder in the `debug_mode: dump_calibration_data` layout
 * (`<dir>/<input_name>/<i>.npy`, what the preprocess stage writes as `calibration_data/`), one
 * sub-folder per model input, samples in input_type_train format. Samples are converted to
 * what the calibrated model takes exactly as the calibrate stage does (readModelSample: image
 * inputs to int8 x − 128 in the intermediate colour format, featuremaps as stored). A model
 * with a single input also takes a folder that holds the `<i>.npy` files directly.
 */
export interface DebugData {
  set: CalibrationSet;
  /** samples used (data_num, default all) */
  count: number;
}

const NPY = /^\d+\.npy$/;

export function openDebugData(dir: string, model: Model, dataNum?: number): DebugData {
  const abs = path.resolve(dir);
  if (!isDir(abs)) {
    throw new PtqError('E_DEBUG_DATA', `calibration data folder '${dir}' does not exist`, {
      subject: dir,
      fix: 'give the calibration_data folder of the working_dir (preprocess stage, debug_mode dump_calibration_data layout)',
    });
  }
  const records = new Map(readPreprocessRecords(model).map((r) => [r.input, r]));
  const real = model.graph.realInputs;
  const folders = folderNames(real.map((v) => v.name));
  const direct = real.length === 1 && npyFiles(abs).length > 0 && !isDir(path.join(abs, folders[0]));
  const inputs = real.map((v, k): CalibrationInput => {
    const sub = direct ? abs : path.join(abs, folders[k]);
    if (!isDir(sub)) {
      throw new PtqError('E_DEBUG_DATA', `calibration data folder '${dir}' has no sub-folder '${folders[k]}' for model input '${v.name}'`, {
        subject: sub,
        fix: `give the folder holding <input_name>/<i>.npy (it holds: ${listDirs(abs).join(', ') || 'no folders'})`,
      });
    }
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : -1));
    if (dims.some((d) => d < 0)) {
      throw new PtqError('E_DEBUG_MODEL', `input '${v.name}' of the calibrated model has a dynamic shape [${(v.type?.shape ?? []).join(',')}]`, {
        subject: v.name,
        fix: 'give the calibrated model the calibrate stage wrote (its inputs have fixed shapes)',
      });
    }
    const files = npyFiles(sub).map((f) => path.join(sub, f));
    return { name: v.name, folder: direct ? path.basename(abs) : folders[k], files, record: records.get(v.name), dtype: v.type?.dtype ?? 'float32', dims };
  });
  const counts = inputs.map((i) => i.files.length);
  const count = counts.length ? Math.min(...counts) : 0;
  if (!count) {
    const empty = inputs.find((i) => !i.files.length);
    throw new PtqError('E_DEBUG_DATA', `no samples: '${empty ? path.join(dir, empty.folder) : dir}' holds no <i>.npy files`, {
      subject: dir,
      fix: 'run the preprocess stage (it writes calibration_data/<input_name>/<i>.npy)',
    });
  }
  if (counts.some((c) => c !== count)) {
    throw new PtqError('E_DEBUG_DATA', `the input folders of '${dir}' hold different numbers of samples (${inputs.map((i) => `${i.folder}: ${i.files.length}`).join(', ')})`, {
      subject: dir,
      fix: 'give every input folder one <i>.npy per sample',
    });
  }
  let use = count;
  if (dataNum !== undefined) {
    if (!Number.isInteger(dataNum) || dataNum < 1 || dataNum > count) {
      throw new PtqError('E_DEBUG_ARGS', `data_num ${dataNum} is out of range: '${dir}' holds ${count} sample(s)`, {
        subject: 'data_num',
        fix: `give a data_num from 1 to ${count}, or leave it out to use all samples`,
      });
    }
    use = dataNum;
  }
  return { set: { dir: abs, inputs, count }, count: use };
}

/** Sample i as the calibrated model takes it. */
export function readSample(data: DebugData, i: number): Sample {
  return readModelSample(data.set, i);
}

function npyFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => NPY.test(f))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
}
