import * as fs from 'fs';
import * as path from 'path';
import type { Sample } from '../calibrate/collect';
import { PtqError } from '../errors';
import { Model, ValueInfo } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { imagePipeline } from '../preprocess/caldata';
import { HzPreprocessRecord, readPreprocessRecords } from '../preprocess/hz-preprocess';
import { isImageFile, readImage } from '../preprocess/image-io';
import { readNpy } from '../preprocess/npy';
import { imageToIntermediate } from '../stages/calibration-data';
import { nchwToNhwc, quantizedInfo } from './feeds';

/**
 * `ptq model-verifier -i FILE`: one file per model input, as the quantized model takes it.
 * Image inputs (an HzPreprocess record in the model) take an image file (JPEG/PNG/BMP, resized
 * to the input size and converted to input_type_train like calibration images with
 * preprocess_on), or a raw `.bin` / `.npy` of pixels in input_type_train and the training
 * layout (uint8, or float32 0…255); the data is then converted to the input_type_rt
 * intermediate exactly as calibration data is. Featuremap inputs take a `.npy` or a raw
 * float32 `.bin` with the input's number of elements.
 */

const E_VERIFY_INPUT = 'E_VERIFY_INPUT';

function bad(file: string, msg: string, fix: string): PtqError {
  return new PtqError(E_VERIFY_INPUT, `input file '${file}': ${msg}`, { subject: file, fix });
}

interface InputPlan {
  v: ValueInfo;
  rec?: HzPreprocessRecord;
  /** dims of the model input */
  dims: number[];
  /** image inputs: dims in the training layout; whether the model input is NHWC of an NCHW training layout */
  trainDims: number[];
  nhwc: boolean;
}

function plan(q: Model): InputPlan[] {
  const records = new Map(readPreprocessRecords(q).map((r) => [r.input, r]));
  const info = quantizedInfo(q);
  return q.graph.realInputs.map((v) => {
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const rec = records.get(v.name);
    const nhwc = !!rec && rec.layout === 'NCHW' && dims.length === 4 && info.inputs.find((x) => x.name === v.name)?.layout === 'NHWC';
    return { v, rec, dims, trainDims: nhwc ? [dims[0], dims[3], dims[1], dims[2]] : dims, nhwc };
  });
}

function count(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

async function readInput(file: string, p: InputPlan): Promise<Tensor> {
  const name = p.v.name;
  if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) throw bad(file, 'cannot be read (missing, or a folder)', 'check the path given with -i');
  const n = count(p.rec ? p.trainDims : p.dims);
  let values: ArrayLike<number>;
  if (p.rec && isImageFile(file)) {
    const img = imagePipeline({ name, typeTrain: p.rec.typeTrain, layoutTrain: p.rec.layout, shape: p.trainDims, calDataDir: path.dirname(file) }).run(await readImage(file));
    values = img.data;
  } else if (path.extname(file).toLowerCase() === '.npy') {
    const t = readNpy(file);
    if (t.size !== n) throw bad(file, `holds ${t.size} values (${t.dtype}[${t.dims.join(',')}]); input '${name}' takes ${n}`, 'give data of the model input shape');
    values = t.toFloat32();
  } else {
    const bytes = fs.readFileSync(file);
    if (p.rec && bytes.length === n) values = bytes;
    else if (bytes.length === 4 * n) values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    else {
      throw bad(file, `has ${bytes.length} bytes; input '${name}' takes ${n} values (${p.rec ? `${n} uint8 or ${4 * n} float32 bytes` : `${4 * n} float32 bytes`})`, 'give raw data of the model input shape (numpy tofile), a .npy, or an image');
    }
  }
  if (!p.rec) {
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw bad(file, `holds ${values[i]} at element ${i}`, 'give finite values');
    return new Tensor('float32', p.dims, Float32Array.from(values));
  }
  const t = imageToIntermediate(values, p.trainDims, p.rec, file);
  return p.nhwc ? nchwToNhwc(t) : t;
}

/** The quantized model's feeds from one file per input (in input order). */
export async function readInputFiles(q: Model, files: readonly string[]): Promise<Sample> {
  const plans = plan(q);
  if (files.length !== plans.length) {
    throw new PtqError(E_VERIFY_INPUT, `${files.length} input file(s) given; the model has ${plans.length} input(s) (${plans.map((p) => p.v.name).join(', ')})`, {
      fix: 'give one -i per model input, in input order (or none for random data)',
    });
  }
  const out: Sample = {};
  for (let k = 0; k < plans.length; k++) out[plans[k].v.name] = await readInput(files[k], plans[k]);
  return out;
}
