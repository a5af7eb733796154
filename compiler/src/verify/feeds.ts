import type { Sample } from '../calibrate/collect';
import { BinIo, BinModel } from '../compile/bin-format';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { isFloat } from '../onnx/dtype';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { readPreprocessRecords } from '../preprocess/hz-preprocess';
import { QUANT_INFO_KEY, QuantizedModelInfo } from '../quantize/spec';
import { imageToIntermediate } from '../stages/calibration-data';
import { applyInputRecords, applyOutputRecords } from '../tools/deleted-nodes';

/**
 * One sample, three models: the float model's inputs (calibration-data.ts: image inputs as
 * int8 x − 128 of input_type_rt's intermediate type, in the training layout; featuremaps as
 * float32), the quantized model's (the same data, NHWC where it takes NHWC) and the `.bin`'s
 * (image inputs as the application gives them: uint8 in input_type_rt / input_layout_rt, NV12
 * planes for nv12; featuremaps as the quantized model; then whatever nodes were deleted from
 * the model's inputs, applied the way the application must).
 */

const E_VERIFY_INPUT = 'E_VERIFY_INPUT';

export function quantizedInfo(q: Model): QuantizedModelInfo {
  const raw = q.metadataProps[QUANT_INFO_KEY];
  if (!raw) return { march: 'bernoulli2', inputs: [], outputs: [] };
  try {
    return JSON.parse(raw) as QuantizedModelInfo;
  } catch {
    return { march: 'bernoulli2', inputs: [], outputs: [] };
  }
}

function sameDims(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NCHW → NHWC of a rank-4 tensor (any element type). */
export function nchwToNhwc(t: Tensor): Tensor {
  const [n, c, h, w] = t.dims;
  const src = t.array;
  const dst = new (src.constructor as { new (k: number): typeof src })(src.length);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dst[((b * h + y) * w + x) * c + k] = src[((b * c + k) * h + y) * w + x];
  }
  return new Tensor(t.dtype, [n, h, w, c], dst);
}

/** A float-model sample as the quantized model takes it (NHWC where its input is NHWC). */
export function toQuantizedFeeds(sample: Sample, quantized: Model): Sample {
  const out: Sample = {};
  for (const v of quantized.graph.realInputs) {
    const t = sample[v.name];
    if (!t) throw new PtqError(E_VERIFY_INPUT, `no data for input '${v.name}' of the quantized model`, { subject: v.name, fix: 'give one tensor per model input' });
    const want = v.type?.shape ?? t.dims;
    if (sameDims(want, t.dims)) out[v.name] = t;
    else if (t.rank === 4 && sameDims(want, [t.dims[0], t.dims[2], t.dims[3], t.dims[1]])) out[v.name] = nchwToNhwc(t);
    else {
      throw new PtqError(E_VERIFY_INPUT, `input '${v.name}': data of shape [${t.dims.join(',')}], the quantized model takes [${want.join(',')}]`, {
        subject: v.name,
        fix: 'give data of the model input shape',
      });
    }
  }
  return out;
}

const IMAGE_RT = new Set(['nv12', 'yuv444', 'rgb', 'bgr', 'gray']);

/** Whether the `.bin` input takes image bytes (uint8 in input_type_rt) rather than the quantized model's data. */
export function isImageInput(io: BinIo): boolean {
  return IMAGE_RT.has(io.typeRt) && io.dtype === 'uint8';
}

/** int8 (x − 128) image data of the quantized model → the bytes a `.bin` image input takes. */
export function imageBytes(t: Tensor, qLayout: 'NCHW' | 'NHWC', io: BinIo): Tensor {
  if (t.rank !== 4 || t.dtype !== 'int8') {
    throw new PtqError(E_VERIFY_INPUT, `image input '${io.name}' of the quantized model is ${t.dtype}[${t.dims.join(',')}], int8 NCHW/NHWC expected`, { subject: io.name, fix: 'recompile the model' });
  }
  const [n, c, h, w] = qLayout === 'NHWC' ? [t.dims[0], t.dims[3], t.dims[1], t.dims[2]] : t.dims;
  const src = t.data as Int8Array;
  const at = qLayout === 'NHWC' ? (b: number, k: number, y: number, x: number) => src[((b * h + y) * w + x) * c + k] : (b: number, k: number, y: number, x: number) => src[((b * c + k) * h + y) * w + x];
  if (io.typeRt === 'nv12') {
    // Y plane, then interleaved U, V of each 2×2 block (its top-left pixel: the intermediate repeats it)
    const per = (h * w * 3) / 2;
    const out = new Uint8Array(n * per);
    for (let b = 0; b < n; b++) {
      let o = b * per;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[o++] = at(b, 0, y, x) + 128;
      for (let y = 0; y < h; y += 2) {
        for (let x = 0; x < w; x += 2) {
          out[o++] = at(b, 1, y, x) + 128;
          out[o++] = at(b, 2, y, x) + 128;
        }
      }
    }
    return new Tensor('uint8', [n, (h * 3) / 2, w], out);
  }
  const nhwc = io.layout === 'NHWC';
  const out = new Uint8Array(n * c * h * w);
  let o = 0;
  if (nhwc) {
    for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[o++] = at(b, k, y, x) + 128;
  } else {
    for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[o++] = at(b, k, y, x) + 128;
  }
  return new Tensor('uint8', nhwc ? [n, h, w, c] : [n, c, h, w], out);
}

/** The quantized model's feeds → the `.bin` model's feeds. */
export function toBinFeeds(qFeeds: Sample, bin: BinModel, info: QuantizedModelInfo): Sample {
  const out: Sample = {};
  for (const io of bin.inputs) {
    const t = qFeeds[io.name];
    if (!t) {
      throw new PtqError(E_VERIFY_INPUT, `input '${io.name}' of the .bin is not an input of the quantized model (${Object.keys(qFeeds).join(', ')})`, {
        subject: io.name,
        fix: 'compare the .bin with the quantized model it was compiled from',
      });
    }
    if (isImageInput(io)) {
      const layout = info.inputs.find((i) => i.name === io.name)?.layout === 'NHWC' ? 'NHWC' : 'NCHW';
      out[io.name] = imageBytes(t, layout, io);
      continue;
    }
    const fed = applyInputRecords(bin, io.name, t);
    if (fed.dtype !== io.dtype || !sameDims(fed.dims, io.shape)) {
      throw new PtqError(E_VERIFY_INPUT, `input '${io.name}': the .bin takes ${io.dtype}[${io.shape.join(',')}], the quantized model's data gives ${fed.dtype}[${fed.dims.join(',')}]`, {
        subject: io.name,
        fix: 'compare the .bin with the quantized model it was compiled from (ptq model-info shows its inputs)',
      });
    }
    out[io.name] = fed;
  }
  return out;
}

/** The `.bin`'s outputs as the quantized model gives them (output-side deleted nodes applied). */
export function fromBinOutputs(outputs: Record<string, Tensor>, bin: BinModel): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const io of bin.outputs) {
    const t = outputs[io.name];
    if (t) out[io.name] = applyOutputRecords(bin, io.name, t);
  }
  return out;
}

/**
 * A seeded random sample for a model (the float model, or the quantized one): image inputs as random uint8 pixels in the
 * training format, converted like calibration data (so nv12 chroma is subsampled as the
 * runtime sees it); featuremaps N(0, 1).
 */
export function randomSample(model: Model, rng: Rng): Sample {
  const records = new Map(readPreprocessRecords(model).map((r) => [r.input, r]));
  const info = quantizedInfo(model);
  const s: Sample = {};
  for (const v of model.graph.realInputs) {
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const rec = records.get(v.name);
    const dtype = v.type?.dtype ?? 'float32';
    if (rec) {
      const px = new Float32Array(n);
      for (let i = 0; i < n; i++) px[i] = rng.int(256);
      // the quantized model may take NHWC where the training layout is NCHW
      const nhwc = info.inputs.find((x) => x.name === v.name)?.layout === 'NHWC' && rec.layout === 'NCHW' && dims.length === 4;
      const train = nhwc ? [dims[0], dims[3], dims[1], dims[2]] : dims;
      const t = imageToIntermediate(px, train, rec, '<random>');
      s[v.name] = nhwc ? nchwToNhwc(t) : t;
    } else if (isFloat(dtype)) {
      s[v.name] = new Tensor('float32', dims, rng.fillNormal(new Float32Array(n)));
    } else if (dtype === 'int8') {
      const a = new Int8Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.int(256) - 128;
      s[v.name] = new Tensor('int8', dims, a);
    } else {
      throw new PtqError(E_VERIFY_INPUT, `input '${v.name}' is ${dtype}: no random data for that type`, { subject: v.name, fix: 'give the input data with -i' });
    }
  }
  return s;
}
