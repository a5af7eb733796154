import * as fs from 'fs';
import * as path from 'path';
import { PtqConfig } from '../config';
import { PtqError } from '../errors';
import { DType, isFloat } from '../onnx/dtype';
import { Model } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { CALIBRATION_DATA_DIR, folderNames } from '../preprocess/caldata';
import { HzPreprocessRecord, readPreprocessRecords } from '../preprocess/hz-preprocess';
import { BT601_FULL, BT601_VIDEO, colourMatrix, Image, makeImage, nv12ToYuv444, roundSat, strides, toNv12, truncU8 } from '../preprocess/image-ops';
import { readNpy } from '../preprocess/npy';
import { missingOutput } from './artifacts';
import type { Sample } from '../calibrate/collect';

/**
 * The calibration samples of the preprocess stage (`calibration_data/<input>/<i>.npy`, in
 * input_type_train format, layout and dtype) turned into what the optimized model takes:
 *
 * - image inputs (an HzPreprocess record in the model): the intermediate type of
 *   input_type_rt, as int8 x − 128, in input_layout_train. From the training format:
 *   float32 samples are rounded half to even and clamped to 0..255 first; then
 *     rgb/bgr → nv12:    BT.601 full range (video range with input_space_and_range
 *                        bt601_video) per pixel, truncated to uint8, chroma of the top-left
 *                        pixel of each 2×2 block (image-ops toNv12, the reference's rgb_calc),
 *                        expanded back to yuv444 (nv12ToYuv444): the runtime's chroma
 *                        subsampling is part of what calibration sees;
 *     rgb/bgr → yuv444:  BT.601 full range, rounded half to even;
 *     yuv444 → nv12:     chroma subsampled the same way (bt601_video: full range mapped to
 *                        video range first, Y·219/255 + 16, (C − 128)·224/255 + 128, rounded);
 *     rgb ↔ bgr:         channels swapped; same type (gray, yuv444, rgb, bgr): unchanged.
 *   HzPreprocess inside the model inverts the colour conversion, so the float model sees what
 *   the user's model would have seen, up to rounding and subsampling.
 * - featuremap inputs: float32 as stored.
 */

export const E_CALIBRATION_DATA = 'E_CALIBRATION_DATA';

export interface CalibrationInput {
  name: string;
  /** folder under calibration_data/ */
  folder: string;
  files: string[];
  record?: HzPreprocessRecord;
  dtype: DType;
  dims: number[];
}

export interface CalibrationSet {
  dir: string;
  inputs: CalibrationInput[];
  count: number;
}

function dataError(message: string, fix: string, subject?: string): PtqError {
  return new PtqError(E_CALIBRATION_DATA, message, { subject, fix });
}

/** List calibration_data/ for every real input of `model` (nothing is read yet). */
export function openCalibrationSet(cfg: PtqConfig, model: Model): CalibrationSet {
  const dir = path.join(cfg.model.workingDir, CALIBRATION_DATA_DIR);
  if (!isDir(dir)) throw missingOutput(cfg, 'preprocess', dir);
  const records = new Map(readPreprocessRecords(model).map((r) => [r.input, r]));
  const real = model.graph.realInputs;
  const folders = folderNames(real.map((v) => v.name));
  const inputs = real.map((v, k): CalibrationInput => {
    const folder = folders[k];
    const sub = path.join(dir, folder);
    if (!isDir(sub)) {
      throw dataError(
        `calibration_data has no folder '${folder}' for model input '${v.name}' (it holds: ${listDirs(dir).join(', ') || 'nothing'})`,
        `give every model input a cal_data_dir and run the preprocess stage again (ptq makertbin or nx run ${path.basename(cfg.source.dir)}:preprocess)`,
        sub,
      );
    }
    const files = fs
      .readdirSync(sub)
      .filter((f) => /^\d+\.npy$/.test(f))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
      .map((f) => path.join(sub, f));
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : -1));
    if (dims.some((d) => d < 0)) {
      throw new PtqError('E_INPUT_SHAPE', `input '${v.name}' of the optimized model has a dynamic shape [${(v.type?.shape ?? []).join(',')}]`, {
        subject: v.name,
        fix: 'set input_shape in input_parameters and run the check stage again',
      });
    }
    return { name: v.name, folder, files, record: records.get(v.name), dtype: v.type?.dtype ?? 'float32', dims };
  });
  const counts = inputs.map((i) => i.files.length);
  const count = Math.min(...counts);
  if (!inputs.length || count === 0) {
    const empty = inputs.find((i) => !i.files.length);
    throw dataError(
      `no calibration samples: ${empty ? `'${path.join(dir, empty.folder)}' holds no <i>.npy files` : 'the model has no inputs'}`,
      'put calibration samples into cal_data_dir and run the preprocess stage again',
      empty ? path.join(dir, empty.folder) : dir,
    );
  }
  if (counts.some((c) => c !== count)) {
    const lo = inputs.find((i) => i.files.length === count) as CalibrationInput;
    const hi = inputs.find((i) => i.files.length !== count) as CalibrationInput;
    throw dataError(
      `calibration_data/${lo.folder} has ${count} sample(s), calibration_data/${hi.folder} has ${hi.files.length}: every input needs one file per sample`,
      'give every input folder of cal_data_dir the same number of samples and run the preprocess stage again',
      path.join(dir, lo.folder),
    );
  }
  return { dir, inputs, count };
}

/** Sample `i`, converted to the model's inputs. */
export function readModelSample(set: CalibrationSet, i: number): Sample {
  const feeds: Sample = {};
  for (const inp of set.inputs) feeds[inp.name] = toModelInput(readNpy(inp.files[i]), inp, inp.files[i]);
  return feeds;
}

/** The samples 0..limit−1 (default all), read from disk on every iteration (nothing kept). */
export function sampleSource(set: CalibrationSet, limit = set.count): () => Iterable<Sample> {
  const n = Math.min(limit, set.count);
  return function* samples(): Iterable<Sample> {
    for (let i = 0; i < n; i++) yield readModelSample(set, i);
  };
}

/** One stored sample (input_type_train, layout and dtype) → the model input. */
export function toModelInput(t: Tensor, inp: CalibrationInput, file: string): Tensor {
  const n = inp.dims.reduce((a, b) => a * b, 1);
  if (t.size !== n) {
    throw dataError(
      `calibration sample '${file}' has shape (${t.dims.join(', ')}) = ${t.size} values; input '${inp.name}' of the model takes [${inp.dims.join(', ')}] = ${n}`,
      'run the preprocess stage again (the input_shape changed since)',
      file,
    );
  }
  if (t.dtype !== 'uint8' && t.dtype !== 'float32' && t.dtype !== 'float64') {
    throw dataError(`calibration sample '${file}' holds ${t.dtype}; samples are float32 or uint8`, 'run the preprocess stage again', file);
  }
  const data = t.data as Float32Array | Float64Array | Uint8Array;
  if (t.dtype !== 'uint8') {
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw dataError(`calibration sample '${file}' holds ${data[i]} at element ${i}; samples must be finite`, 'fix or drop the sample in cal_data_dir and run the preprocess stage again', file);
      }
    }
  }
  if (!inp.record) {
    if (inp.dtype === 'float32') return new Tensor('float32', inp.dims, data instanceof Float32Array ? data : Float32Array.from(data));
    // a featuremap input of another type: the stored values, converted (integers rounded)
    return tensorFrom(inp.dtype, inp.dims, Array.from(data, (v) => (isFloat(inp.dtype) ? v : Math.round(v))));
  }
  return imageToIntermediate(data, inp.dims, inp.record, file);
}

/** An image sample in input_type_train → int8 (x − 128) of the intermediate type of input_type_rt. */
export function imageToIntermediate(data: ArrayLike<number>, dims: number[], rec: HzPreprocessRecord, file = '<sample>'): Tensor {
  if (dims.length !== 4) throw dataError(`calibration sample '${file}': image input '${rec.input}' has rank ${dims.length}, 4 expected`, 'give image inputs an N, C, H, W shape', file);
  const layout = rec.layout === 'NCHW' ? 'CHW' : 'HWC';
  const [n, c, h, w] = rec.layout === 'NCHW' ? dims : [dims[0], dims[3], dims[1], dims[2]];
  const per = c * h * w;
  const out = new Int8Array(n * per);
  for (let b = 0; b < n; b++) {
    const px = new Float32Array(per);
    for (let i = 0; i < per; i++) px[i] = roundSat(data[b * per + i], 0, 255);
    const img = convertColour(makeImage(h, w, c, layout, 'uint8', px), rec, file);
    for (let i = 0; i < per; i++) out[b * per + i] = img.data[i] - 128;
  }
  return new Tensor('int8', dims, out);
}

function convertColour(img: Image, rec: HzPreprocessRecord, file: string): Image {
  const train = rec.typeTrain;
  const rt = rec.typeRt;
  const video = rt === 'nv12' && rec.spaceAndRange === 'bt601_video';
  const layout = img.layout as 'HWC' | 'CHW';
  if ((train === 'rgb' || train === 'bgr') && (rt === 'rgb' || rt === 'bgr')) return train === rt ? img : swapRB(img);
  if (train === 'rgb' || train === 'bgr') {
    const order: [number, number, number] = train === 'rgb' ? [0, 1, 2] : [2, 1, 0];
    if (rt === 'yuv444') return mapValues(colourMatrix(img, order, BT601_FULL, 0), (v) => roundSat(v, 0, 255));
    if (rt === 'nv12') {
      evenSize(img, rec, file);
      const nv12 = video ? subsample(mapValues(colourMatrix(img, order, BT601_VIDEO, 0), truncU8)) : toNv12(img, order);
      return nv12ToYuv444(nv12, layout);
    }
  }
  if (train === 'yuv444' && rt === 'nv12') {
    evenSize(img, rec, file);
    const src = video ? fullToVideo(img) : img;
    return nv12ToYuv444(subsample(src), layout);
  }
  return img; // same format: gray, yuv444, rgb, bgr
}

function evenSize(img: Image, rec: HzPreprocessRecord, file: string): void {
  if (img.height % 2 || img.width % 2) {
    throw dataError(`calibration sample '${file}': input '${rec.input}' is ${img.height}x${img.width}; nv12 needs an even height and width`, 'use an even input size with input_type_rt nv12', file);
  }
}

function mapValues(img: Image, f: (v: number) => number): Image {
  const d = new Float32Array(img.data.length);
  for (let i = 0; i < d.length; i++) d[i] = f(img.data[i]);
  return { ...img, data: d, dtype: 'uint8' };
}

function swapRB(img: Image): Image {
  const s = strides(img.layout, img.height, img.width, 3);
  const d = img.data.slice();
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const p = y * s.sy + x * s.sx;
      d[p] = img.data[p + 2 * s.sc];
      d[p + 2 * s.sc] = img.data[p];
    }
  }
  return { ...img, data: d };
}

/** YUV (3 channels, HWC/CHW) → NV12: Y per pixel, U/V of the top-left pixel of each 2×2 block (as toNv12). */
function subsample(yuv: Image): Image {
  const { height: h, width: w } = yuv;
  const s = strides(yuv.layout, h, w, 3);
  const out = new Float32Array((h * w * 3) / 2);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = yuv.data[y * s.sy + x * s.sx];
  let o = h * w;
  for (let y = 0; y < h; y += 2) {
    for (let x = 0; x < w; x += 2) {
      const p = y * s.sy + x * s.sx;
      out[o++] = yuv.data[p + s.sc];
      out[o++] = yuv.data[p + 2 * s.sc];
    }
  }
  return makeImage(h, w, 3, 'NV12', 'uint8', out);
}

/** Full-range YUV → BT.601 video range (the inverse of HzPreprocess's expansion), rounded. */
function fullToVideo(img: Image): Image {
  const s = strides(img.layout, img.height, img.width, 3);
  const d = new Float32Array(img.data.length);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const p = y * s.sy + x * s.sx;
      d[p] = roundSat((img.data[p] * 219) / 255 + 16, 0, 255);
      for (const k of [1, 2]) d[p + k * s.sc] = roundSat(((img.data[p + k * s.sc] - 128) * 224) / 255 + 128, 0, 255);
    }
  }
  return { ...img, data: d };
}

/** true for an existing directory */
export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** the sub-folders of `p` (not hidden ones), sorted */
export function listDirs(p: string): string[] {
  return fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}
