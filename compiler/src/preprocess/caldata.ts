/**
 * Calibration data: the `preprocess` stage. Reads each input's `cal_data_dir` and writes
 * `calibration_data/<input_name>/<i>.npy` in the working dir — the layout the reference
 * writes for `debug_mode: dump_calibration_data` (one folder per model input, files 0.npy,
 * 1.npy, …): `input_shape`, in the `input_type_train` colour format and `input_layout_train`.
 *
 * What a cal_data_dir may hold (files sorted by name, code-unit order; hidden files and
 * sub-folders skipped):
 *  - preprocess_on False: samples already preprocessed (reference guide, "Preparing
 *    Calibration Data"): `.npy` files (float32, float64 → float32, or uint8), or raw
 *    `numpy.tofile` dumps of any other name, read as `cal_data_type` — or, when that is not
 *    set, float32 if the folder or file name ends in `_f32`, uint8 otherwise (featuremap
 *    inputs: float32). Each must hold exactly prod(input_shape) values.
 *  - preprocess_on True (image inputs): `.jpg/.jpeg/.png/.bmp` images, decoded to RGB, resized
 *    to the input's H×W (cv2-style bilinear, see image-ops.ts), converted to the
 *    input_type_train format (BT.601 full range for yuv444 and gray), rounded to uint8.
 *    Other files are skipped.
 * Multi-input sets pair up by position: sample i is the i-th file of every input's folder.
 *
 * Output dtype: featuremap inputs float32; image inputs keep the sample's type (uint8 or
 * float32; images uint8). Writes go to a temp folder renamed into place at the end, so a
 * failure leaves no calibration_data behind (and an older one untouched).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { CalDataType, InputTypeTrain, Layout, PtqConfig } from '../config/types';
import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { roundSat } from './image-ops';
import { isImageFile, readImage } from './image-io';
import { encodeNpy, parseNpy } from './npy';
import { createProgress } from './progress';
import { ChannelSwap, ColourConvert, compose, HWC2CHW, Resize, Transformer } from './transformers';

export const E_CALDATA = 'E_CALDATA';

/** One model input's calibration settings (what the preprocess stage needs from the config). */
export interface CalInputSpec {
  /** `input_name` */
  name: string;
  /** `input_type_train` */
  typeTrain: InputTypeTrain;
  /** `input_layout_train` */
  layoutTrain: Layout;
  /** `input_shape` (static) */
  shape: number[];
  /** `cal_data_dir`, absolute */
  calDataDir: string;
  /** `cal_data_type`; undefined = inferred (`_f32` suffix → float32, else uint8; featuremap float32) */
  calDataType?: CalDataType;
  /** `preprocess_on` */
  preprocessOn?: boolean;
}

export interface CalibrationSpec {
  inputs: CalInputSpec[];
}

type SampleKind = 'npy' | 'raw' | 'image';

export interface PlannedInput {
  spec: CalInputSpec;
  /** absolute paths, in sample order */
  files: string[];
  /** folder name under calibration_data/ */
  folder: string;
  /**
   * dtype of the .npy files written: featuremap float32, preprocess_on uint8, otherwise that of
   * the first sample read (later samples must match; set by readSample)
   */
  dtype?: 'float32' | 'uint8';
  /** files of the folder that are not samples (preprocess_on: non-images) */
  skipped: number;
}

export interface CalibrationPlan {
  inputs: PlannedInput[];
  /** samples per input */
  count: number;
}

export interface CalibrationSample {
  index: number;
  /** input name → tensor of input_shape */
  feeds: Record<string, Tensor>;
  /** the source file of each input, in spec order */
  files: string[];
}

export interface CalibrationDataResult {
  /** absolute path of calibration_data/ */
  dir: string;
  /** sample sets written */
  count: number;
  inputs: { name: string; folder: string; dtype: 'float32' | 'uint8'; shape: number[]; sourceDir: string; skipped: number }[];
  /** written files relative to the working dir (posix separators), input by input, sample order */
  files: string[];
  /** sha256 (hex) of each file in `files` */
  hashes: string[];
}

export interface WriteOptions {
  /** progress per sample set; default a reporter on stderr (bar on a TTY, lines otherwise) */
  onProgress?: (done: number, total: number) => void;
}

export const CALIBRATION_DATA_DIR = 'calibration_data';

function err(message: string, fix: string, subject?: string): PtqError {
  return new PtqError(E_CALDATA, message, { subject, fix });
}

/** The calibration settings of a config already matched to its model (validateAgainstModel). */
export function calibrationSpec(cfg: PtqConfig): CalibrationSpec {
  return {
    inputs: cfg.inputs.map((inp, i) => {
      if (inp.name === undefined || inp.shape === undefined) {
        throw new Error(`config input ${i} has no ${inp.name === undefined ? 'name' : 'shape'}: call validateAgainstModel first`);
      }
      if (inp.calDataDir === undefined) {
        throw err(`input '${inp.name}' has no cal_data_dir`, 'set calibration_parameters.cal_data_dir (one folder per input, in input_name order)', 'cal_data_dir');
      }
      return {
        name: inp.name,
        typeTrain: inp.typeTrain,
        layoutTrain: inp.layoutTrain,
        shape: inp.shape,
        calDataDir: inp.calDataDir,
        calDataType: inp.calDataType,
        preprocessOn: cfg.calibration.preprocessOn && inp.typeTrain !== 'featuremap',
      };
    }),
  };
}

// ---------------------------------------------------------------- planning

const CHANNELS: Partial<Record<InputTypeTrain, number>> = { rgb: 3, bgr: 3, yuv444: 3, gray: 1 };

/** List and check every input's samples (no sample is read): counts, pairing, shapes. */
export function planCalibrationSet(spec: CalibrationSpec): CalibrationPlan {
  if (!spec.inputs.length) throw err('no inputs to calibrate', 'configure input_name and cal_data_dir');
  const seen = new Set<string>();
  const folders = folderNames(spec.inputs.map((x) => x.name));
  const planned = spec.inputs.map((inp, k): PlannedInput => {
    const who = `input '${inp.name}'`;
    if (seen.has(inp.name)) throw err(`${who} is listed twice`, 'list each input once in input_name', 'input_name');
    seen.add(inp.name);
    if (!inp.shape.length || inp.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw err(`${who}: input_shape [${inp.shape.join(',')}] is not static`, 'set input_shape to positive integers, e.g. 1x3x224x224', 'input_shape');
    }
    if (inp.preprocessOn) checkImageInput(inp);
    const { files, skipped } = listSamples(inp);
    const dtype = inp.typeTrain === 'featuremap' ? 'float32' : inp.preprocessOn ? 'uint8' : undefined;
    return { spec: inp, files, folder: folders[k], dtype, skipped };
  });
  const first = planned[0];
  for (const p of planned.slice(1)) {
    if (p.files.length !== first.files.length) {
      throw err(
        `input '${first.spec.name}' has ${first.files.length} sample(s) in '${first.spec.calDataDir}', input '${p.spec.name}' has ${p.files.length} in '${p.spec.calDataDir}'; ` +
          'multi-input calibration sets pair sample i of each input (by sorted file name)',
        'give every input folder the same number of samples',
        'cal_data_dir',
      );
    }
  }
  return { inputs: planned, count: first.files.length };
}

function checkImageInput(inp: CalInputSpec): void {
  const who = `input '${inp.name}'`;
  const ch = CHANNELS[inp.typeTrain];
  if (ch === undefined) throw err(`${who} is a ${inp.typeTrain}; preprocess_on reads images and works for image inputs only`, 'set preprocess_on: False', 'preprocess_on');
  const s = inp.shape;
  const c = inp.layoutTrain === 'NCHW' ? s[1] : s[3];
  if (s.length !== 4 || s[0] !== 1 || c !== ch) {
    throw err(
      `${who}: preprocess_on needs a 4-D input_shape with batch 1 and ${ch} channel(s) (${inp.typeTrain}, ${inp.layoutTrain}), got ${s.join('x')}`,
      'set preprocess_on: False and prepare the samples yourself',
      'preprocess_on',
    );
  }
}

function listSamples(inp: CalInputSpec): { files: string[]; skipped: number } {
  const dir = inp.calDataDir;
  const who = `input '${inp.name}'`;
  let entries: fs.Dirent[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw err(`cal_data_dir '${dir}' of ${who} is not a folder`, 'point cal_data_dir at the folder of samples', 'cal_data_dir');
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e instanceof PtqError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw err(
      code === 'ENOENT' ? `cal_data_dir '${dir}' of ${who} does not exist` : `cannot read cal_data_dir '${dir}' of ${who}: ${code ?? (e as Error).message}`,
      'check cal_data_dir (relative paths are relative to the YAML file)',
      'cal_data_dir',
    );
  }
  const all = entries
    .filter((e) => !e.name.startsWith('.'))
    .filter((e) => e.isFile() || (e.isSymbolicLink() && isFileTarget(path.join(dir, e.name))))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const names = inp.preprocessOn ? all.filter(isImageFile) : all;
  if (!names.length) {
    const what = inp.preprocessOn ? `no .jpg/.jpeg/.png/.bmp images (preprocess_on is True${all.length ? `; it holds ${all.length} other file(s)` : ''})` : 'no sample files';
    throw err(`cal_data_dir '${dir}' of ${who} holds ${what}`, 'put the calibration samples (about 100) into the folder', 'cal_data_dir');
  }
  return { files: names.map((n) => path.join(dir, n)), skipped: all.length - names.length };
}

function isFileTarget(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Folder names for inputs: characters other than letters, digits, '.', '-', '_' become '_'; clashes get a suffix. */
export function folderNames(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((n) => {
    let base = n.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, (m) => '_'.repeat(m.length)) || 'input';
    if (base.length > 200) base = base.slice(0, 200);
    let name = base;
    for (let k = 1; used.has(name.toLowerCase()); k++) name = `${base}_${k}`;
    used.add(name.toLowerCase());
    return name;
  });
}

// ---------------------------------------------------------------- reading

function kindOf(file: string, inp: CalInputSpec): SampleKind {
  if (inp.preprocessOn) return 'image';
  return path.extname(file).toLowerCase() === '.npy' ? 'npy' : 'raw';
}

/** The storage type of a raw file: cal_data_type, else `_f32` in the folder or file name, else uint8 (featuremap: float32). */
export function rawDataType(inp: Pick<CalInputSpec, 'calDataType' | 'calDataDir' | 'typeTrain'>, file: string): CalDataType {
  if (inp.calDataType) return inp.calDataType;
  const base = path.basename(file).toLowerCase();
  const stem = base.slice(0, base.length - path.extname(base).length);
  if (path.basename(inp.calDataDir).toLowerCase().endsWith('_f32') || stem.endsWith('_f32') || base.endsWith('_f32')) return 'float32';
  return inp.typeTrain === 'featuremap' ? 'float32' : 'uint8';
}

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function readBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw err(`cannot read calibration sample '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'check the file and its permissions', file);
  }
}

/** Read sample `file` of input `p` as a tensor of input_shape in the plan's output dtype. */
export async function readSample(p: PlannedInput, file: string, transformer?: Transformer): Promise<Tensor> {
  const inp = p.spec;
  const who = `input '${inp.name}'`;
  const n = prod(inp.shape);
  const shapeText = inp.shape.join('x');
  const kind = kindOf(file, inp);
  let values: Float32Array | Uint8Array;
  if (kind === 'image') {
    let img;
    try {
      img = (transformer ?? imagePipeline(inp)).run(await readImage(file));
    } catch (e) {
      if (e instanceof PtqError) throw err(`calibration image '${file}' (${who}): ${e.message}`, e.fix ?? 'check the image', file);
      throw e;
    }
    const u8 = new Uint8Array(img.data.length);
    for (let i = 0; i < u8.length; i++) u8[i] = roundSat(img.data[i], 0, 255);
    values = u8;
  } else if (kind === 'npy') {
    let t: Tensor;
    try {
      t = parseNpy(readBytes(file), file);
    } catch (e) {
      if (e instanceof PtqError) throw err(e.message, e.fix ?? 'write the sample with numpy.save', file);
      throw e;
    }
    if (t.dtype !== 'float32' && t.dtype !== 'float64' && t.dtype !== 'uint8') {
      throw err(`calibration sample '${file}' (${who}) holds ${t.dtype}; .npy samples must be float32 or uint8`, 'save it with a.astype(numpy.float32)', file);
    }
    if (t.size !== n) {
      throw err(
        `calibration sample '${file}' (${who}) has shape (${t.dims.join(', ')}) = ${t.size} values; input_shape ${shapeText} needs ${n}`,
        'save each sample with the input_shape of its input',
        file,
      );
    }
    values = t.dtype === 'uint8' ? (t.array as Uint8Array) : t.dtype === 'float64' ? Float32Array.from(t.array as Float64Array) : (t.array as Float32Array);
  } else {
    const type = rawDataType(inp, file);
    const item = type === 'float32' ? 4 : 1;
    const bytes = readBytes(file);
    if (bytes.length !== n * item) {
      const other = type === 'float32' ? 'uint8' : 'float32';
      const hint =
        bytes.length === n * (item === 4 ? 1 : 4)
          ? `; its size fits ${other} — set cal_data_type: ${other}`
          : isImageFile(file)
            ? '; it is an image — set preprocess_on: True or convert it with numpy.tofile'
            : '';
      throw err(
        `calibration sample '${file}' (${who}) is ${bytes.length} bytes; input_shape ${shapeText} of ${type} needs ${n * item} bytes${hint}`,
        'write each sample with numpy.tofile in input_shape and cal_data_type',
        file,
      );
    }
    if (type === 'uint8') values = new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    else {
      values = new Float32Array(n);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let i = 0; i < n; i++) values[i] = dv.getFloat32(i * 4, true);
    }
  }
  if (values instanceof Float32Array) {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) {
        throw err(`calibration sample '${file}' (${who}) holds ${values[i]} at element ${i}; samples must be finite`, 'fix or drop the sample', file);
      }
    }
  }
  const type = values instanceof Float32Array ? 'float32' : 'uint8';
  if (p.dtype === undefined) p.dtype = type;
  if (p.dtype === 'float32') return new Tensor('float32', inp.shape, values instanceof Float32Array ? values : Float32Array.from(values));
  if (type !== p.dtype) {
    throw err(`calibration sample '${file}' (${who}) holds ${type}, the earlier samples of the input hold ${p.dtype}`, 'keep one data type per input (cal_data_type)', file);
  }
  return new Tensor('uint8', inp.shape, values);
}

/** Image → input_type_train, input_shape H×W, input_layout_train (batch 1). */
export function imagePipeline(inp: CalInputSpec): Transformer {
  const [h, w] = inp.layoutTrain === 'NCHW' ? [inp.shape[2], inp.shape[3]] : [inp.shape[1], inp.shape[2]];
  const steps: Transformer[] = [new Resize([h, w], 'opencv')];
  if (inp.typeTrain === 'bgr') steps.push(new ChannelSwap('RGB2BGR'));
  if (inp.typeTrain === 'yuv444') steps.push(new ColourConvert('RGB', 'YUV444'));
  if (inp.typeTrain === 'gray') steps.push(new ColourConvert('RGB', 'GRAY'));
  if (inp.layoutTrain === 'NCHW') steps.push(new HWC2CHW());
  return compose(steps);
}

/** The sample sets, one at a time (multi-input sets paired by position). */
export async function* readCalibrationSet(spec: CalibrationSpec | CalibrationPlan): AsyncGenerator<CalibrationSample> {
  const plan = 'count' in spec ? spec : planCalibrationSet(spec);
  const pipelines = plan.inputs.map((p) => (p.spec.preprocessOn ? imagePipeline(p.spec) : undefined));
  for (let i = 0; i < plan.count; i++) {
    const feeds: Record<string, Tensor> = {};
    const files: string[] = [];
    for (let k = 0; k < plan.inputs.length; k++) {
      const p = plan.inputs[k];
      feeds[p.spec.name] = await readSample(p, p.files[i], pipelines[k]);
      files.push(p.files[i]);
    }
    yield { index: i, feeds, files };
  }
}

// ---------------------------------------------------------------- writing

/**
 * Write calibration_data/<input>/<i>.npy for every sample set into `workingDir`, atomically
 * (all or nothing). Checks everything it can before creating any folder.
 */
export async function writeCalibrationData(spec: CalibrationSpec, workingDir: string, opts: WriteOptions = {}): Promise<CalibrationDataResult> {
  const plan = planCalibrationSet(spec);
  const target = path.join(workingDir, CALIBRATION_DATA_DIR);
  const tag = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  let createdRoot: string | undefined;
  try {
    createdRoot = fs.mkdirSync(workingDir, { recursive: true });
  } catch (e) {
    throw err(`cannot create working_dir '${workingDir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'check working_dir and its permissions', 'working_dir');
  }
  const tmp = path.join(workingDir, `.${CALIBRATION_DATA_DIR}.tmp-${tag}`);
  const bar = opts.onProgress ? undefined : createProgress('calibration data', plan.count);
  const progress = opts.onProgress ?? ((d: number, t: number) => bar!.update(d, t));
  const files: string[] = [];
  const hashes: string[] = [];
  try {
    for (const p of plan.inputs) fs.mkdirSync(path.join(tmp, p.folder), { recursive: true });
    const perInput: { files: string[]; hashes: string[] }[] = plan.inputs.map(() => ({ files: [], hashes: [] }));
    progress(0, plan.count);
    for await (const sample of readCalibrationSet(plan)) {
      plan.inputs.forEach((p, k) => {
        const bytes = encodeNpy(sample.feeds[p.spec.name], p.spec.name);
        fs.writeFileSync(path.join(tmp, p.folder, `${sample.index}.npy`), bytes);
        perInput[k].files.push(`${CALIBRATION_DATA_DIR}/${p.folder}/${sample.index}.npy`);
        perInput[k].hashes.push(crypto.createHash('sha256').update(bytes).digest('hex'));
      });
      progress(sample.index + 1, plan.count);
    }
    for (const r of perInput) {
      files.push(...r.files);
      hashes.push(...r.hashes);
    }
    let old: string | undefined;
    if (fs.existsSync(target)) {
      old = path.join(workingDir, `.${CALIBRATION_DATA_DIR}.old-${tag}`);
      fs.renameSync(target, old);
    }
    fs.renameSync(tmp, target);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (createdRoot) removeEmptyUpTo(workingDir, createdRoot);
    bar?.abort();
    if (e instanceof PtqError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw err(`cannot write calibration data to '${workingDir}': ${code}`, 'check free space and permissions of working_dir', 'working_dir');
    throw e;
  }
  bar?.finish();
  return {
    dir: target,
    count: plan.count,
    inputs: plan.inputs.map((p) => ({
      name: p.spec.name,
      folder: p.folder,
      dtype: p.dtype ?? 'float32',
      shape: p.spec.shape.slice(),
      sourceDir: p.spec.calDataDir,
      skipped: p.skipped,
    })),
    files,
    hashes,
  };
}

/** rmdir `dir` and its parents up to and including `root` while they are empty. */
function removeEmptyUpTo(dir: string, root: string): void {
  let cur = path.resolve(dir);
  const stop = path.resolve(root);
  for (;;) {
    try {
      fs.rmdirSync(cur);
    } catch {
      return;
    }
    if (cur === stop) return;
    const up = path.dirname(cur);
    if (up === cur) return;
    cur = up;
  }
}
