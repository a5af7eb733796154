/**
 * `nx g ./generators:calibration-set <folder> --name imagenet --shape 1x3x224x224`:
 * writes a calibration set `calibration/<name>/<type>_<H>x<W>[_f32]/` that a model's
 * `cal_data_dir` can name with `preprocess_on: False`: one file per sample, in the input's
 * shape, input_type_train format and layout; `calibration/<name>/README.md` says how each
 * folder was made (several inputs of one model: one folder each, one README).
 *
 * - Images (.jpg/.jpeg/.png/.bmp, read as RGB 0..255) go through a transformer chain:
 *   by default the preprocess stage's own preprocess_on chain (cv2-style resize to H×W), or
 *   `--transformers 'ShortSideResize(256); CenterCrop(224)'` for the geometry; then the same
 *   colour conversion and layout as the preprocess stage (RGB→BGR/YUV444/GRAY, HWC→CHW). uint8
 *   samples are rounded half to even and saturated, as the preprocess stage does.
 * - Arrays (.npy): taken as they are when they hold prod(shape) values (cast to --dtype);
 *   an H×W×C (C = 1 or 3) or H×W array with 0..255 values is an image and takes the chain.
 * Files are `<source name>.npy` (or `.bin`, raw numpy.tofile: the folder's `_f32` suffix tells
 * the preprocess stage they are float32). Deterministic: same sources, same files.
 */
import * as path from 'path';
import { logger, Tree } from '@nx/devkit';
import { INPUT_TYPES_TRAIN, InputTypeTrain, Layout, LAYOUTS } from '../../compiler/src/config';
import { PtqError } from '../../compiler/src/errors';
import { Tensor } from '../../compiler/src/onnx/tensor';
import { imagePipeline } from '../../compiler/src/preprocess/caldata';
import { readImage, isImageFile } from '../../compiler/src/preprocess/image-io';
import { Image, imageDims, makeImage, roundSat } from '../../compiler/src/preprocess/image-ops';
import { encodeNpy, parseNpy } from '../../compiler/src/preprocess/npy';
import { compose, parseTransformers, Transformer } from '../../compiler/src/preprocess/transformers';
import { child, isDir, isFile, listDir, NAME_RE, readBytes, safeName, sourcePath, SourcePath, toPosix } from '../lib/files';
import { forNx } from '../lib/entry';

export interface CalibrationSetGeneratorSchema {
  /** folder of images or .npy arrays (workspace-relative or absolute) */
  source: string;
  /** the set's folder name under `directory` (default: the source folder's name) */
  name?: string;
  /** where sets live (default `calibration`) */
  directory?: string;
  /** the model input's shape, e.g. 1x3x224x224 */
  shape: string;
  /** input_type_train (default: rgb for 3 channels, gray for 1, else featuremap) */
  inputTypeTrain?: string;
  /** input_layout_train (default NCHW) */
  layout?: string;
  /** transformer chain for the geometry of images (default: resize to H×W) */
  transformers?: string;
  /** sample type (default: uint8 for images, the arrays' own otherwise) */
  dtype?: 'uint8' | 'float32';
  /** npy (default) or bin (raw numpy.tofile) */
  format?: 'npy' | 'bin';
  /** at most this many samples: the first ones in name order (default: all) */
  count?: number;
  /** replace an existing set */
  overwrite?: boolean;
}

export interface CalibrationSetResult {
  dir: string;
  files: string[];
  dtype: 'uint8' | 'float32';
  shape: number[];
}

const E_GEN = 'E_GENERATOR';

function bad(message: string, fix: string, subject?: string): PtqError {
  return new PtqError(E_GEN, message, { subject, fix });
}

export async function calibrationSetGenerator(tree: Tree, schema: CalibrationSetGeneratorSchema): Promise<CalibrationSetResult> {
  const source = sourcePath(tree, schema.source);
  if (!isDir(tree, source)) throw bad(`--source '${schema.source}' is not a folder`, 'pass the folder of images (.jpg/.png/.bmp) or arrays (.npy)', schema.source);
  if (!/^\d+(x\d+){3}$/.test(schema.shape ?? '')) throw bad(`--shape '${schema.shape}' is not a 4-D shape like 1x3x224x224`, "give the model input's shape (N,C,H,W or N,H,W,C)", '--shape');
  const shape = schema.shape.split('x').map(Number);
  if (shape[0] !== 1) throw bad(`--shape ${schema.shape}: one sample per file, so N must be 1`, 'give the shape with batch 1', '--shape');
  const layout = (schema.layout ?? 'NCHW') as Layout;
  if (!LAYOUTS.includes(layout)) throw bad(`--layout '${schema.layout}' is not allowed`, `use one of: ${LAYOUTS.join(', ')}`, '--layout');
  const c = layout === 'NCHW' ? shape[1] : shape[3];
  const typeTrain = (schema.inputTypeTrain ?? (c === 3 ? 'rgb' : c === 1 ? 'gray' : 'featuremap')) as InputTypeTrain;
  if (!INPUT_TYPES_TRAIN.includes(typeTrain)) throw bad(`--inputTypeTrain '${schema.inputTypeTrain}' is not allowed`, `use one of: ${INPUT_TYPES_TRAIN.join(', ')}`, '--inputTypeTrain');
  const channels = typeTrain === 'gray' ? 1 : typeTrain === 'featuremap' ? undefined : 3;
  if (channels !== undefined && channels !== c) {
    throw bad(`--shape ${schema.shape} (${layout}) has ${c} channel(s), but ${typeTrain} has ${channels}`, 'check --shape, --layout and --inputTypeTrain', '--shape');
  }
  const format = schema.format ?? 'npy';
  if (format !== 'npy' && format !== 'bin') throw bad(`--format '${schema.format}' is not allowed`, 'use npy or bin', '--format');
  if (schema.dtype !== undefined && schema.dtype !== 'uint8' && schema.dtype !== 'float32') throw bad(`--dtype '${schema.dtype}' is not allowed`, 'use uint8 or float32', '--dtype');
  if (schema.count !== undefined && !(Number.isInteger(schema.count) && schema.count > 0)) throw bad(`--count ${schema.count} is not a positive whole number`, 'e.g. --count 100', '--count');

  const name = schema.name ?? safeName(path.basename(source.abs));
  if (!NAME_RE.test(name)) throw bad(`--name '${name}' is not a valid folder name`, "use letters, digits, '.', '_' and '-'", '--name');
  const setDir = `${toPosix(schema.directory ?? 'calibration').replace(/\/+$/, '')}/${name}`;

  let names = listDir(tree, source).filter((n) => isFile(tree, child(source, n)) && (isImageFile(n) || n.toLowerCase().endsWith('.npy')));
  if (!names.length) throw bad(`--source '${schema.source}' holds no images (.jpg/.jpeg/.png/.bmp) or arrays (.npy)`, 'point --source at the samples', schema.source);
  if (schema.count !== undefined) names = names.slice(0, schema.count);

  // images: the geometry (default: the preprocess stage's resize), then its colour/layout tail
  const spec = { name: 'input', typeTrain, layoutTrain: layout, shape, calDataDir: source.abs, preprocessOn: true };
  const stage = imagePipeline(spec) as ReturnType<typeof compose>;
  let chain: Transformer;
  try {
    chain = schema.transformers ? compose([parseTransformers(schema.transformers), ...stage.chain.slice(1)]) : stage;
  } catch (e) {
    if (e instanceof PtqError) throw bad(`--transformers: ${e.message}`, e.fix ?? "write e.g. 'ShortSideResize(256); CenterCrop(224)'", '--transformers');
    throw e;
  }
  if (typeTrain === 'featuremap' && names.some(isImageFile)) {
    throw bad(`--source '${schema.source}' holds images, but the input is a featuremap`, 'give .npy arrays for featuremap inputs', schema.source);
  }

  const n = shape.reduce((a, b) => a * b, 1);
  const written: { file: string; bytes: Uint8Array }[] = [];
  const outNames = new Map<string, string>();
  let dtype: 'uint8' | 'float32' | undefined = schema.dtype;
  for (const file of names) {
    const src = child(source, file);
    let values: Float32Array | Uint8Array;
    if (isImageFile(file)) {
      values = toSample(runChain(chain, await readImage(src.abs), file, shape, layout), dtype ?? 'uint8');
    } else {
      const t = readArray(tree, src);
      const asShape = t.dims.join('x') === shape.join('x') || t.dims.join('x') === shape.slice(1).join('x') || (t.dims.length === 1 && t.size === n);
      if (asShape) {
        values = t.dtype === 'uint8' && (dtype ?? 'uint8') === 'uint8' ? (t.array as Uint8Array) : Float32Array.from(t.array as ArrayLike<number>);
      } else if (typeTrain !== 'featuremap' && isImageArray(t)) {
        values = toSample(runChain(chain, arrayImage(t), file, shape, layout), dtype ?? 'uint8');
      } else {
        throw bad(
          `array '${src.given}' has shape (${t.dims.join(', ')}) = ${t.size} values; --shape ${schema.shape} needs ${n} (or an H×W×C image array)`,
          'give arrays in the input shape, or images',
          src.given,
        );
      }
      if (dtype === 'uint8' && values instanceof Float32Array) values = toSample({ data: values } as Image, 'uint8');
    }
    const sampleType = values instanceof Uint8Array ? 'uint8' : 'float32';
    dtype ??= sampleType;
    if (sampleType !== dtype) {
      throw bad(`array '${src.given}' is ${sampleType}, earlier samples are ${dtype}`, 'pass --dtype to convert every sample to one type', src.given);
    }
    const stem = file.slice(0, file.length - path.extname(file).length);
    const out = `${stem}.${format}`;
    const prev = outNames.get(out.toLowerCase());
    if (prev) throw bad(`'${prev}' and '${file}' would both be written as '${out}'`, 'give the sources distinct names (without extension)', file);
    outNames.set(out.toLowerCase(), file);
    const tensor = new Tensor(dtype, shape, values);
    written.push({ file: out, bytes: format === 'npy' ? encodeNpy(tensor, out) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
  }

  // samples in a folder of their own (the preprocess stage reads every file of cal_data_dir),
  // named for what they hold; `_f32` also tells the preprocess stage that raw files are float32
  const [h, w] = layout === 'NCHW' ? [shape[2], shape[3]] : [shape[1], shape[2]];
  const variant = `${typeTrain}_${h}x${w}${dtype === 'float32' ? '_f32' : ''}`;
  const dir = `${setDir}/${variant}`;
  if (tree.exists(dir) && tree.children(dir).length && !schema.overwrite) throw bad(`${dir} exists already`, 'pick another --name, or pass --overwrite to replace it', dir);
  if (tree.exists(dir)) tree.delete(dir);
  for (const w of written) tree.write(`${dir}/${w.file}`, Buffer.from(w.bytes));
  const section = readmeSection({ variant, source: schema.source, shape, layout, typeTrain, dtype: dtype!, format, chain: chain.describe(), count: written.length, images: names.some(isImageFile) });
  tree.write(`${setDir}/README.md`, readme(name, tree.exists(`${setDir}/README.md`) ? tree.read(`${setDir}/README.md`, 'utf8')! : '', variant, section));
  logger.info(`nx-ptq: wrote ${written.length} sample(s) to ${dir}/: ${dtype}, ${shape.join('x')} ${layout} ${typeTrain}${names.some(isImageFile) ? `, chain ${chain.describe()}` : ''}`);
  return { dir, files: written.map((w) => `${dir}/${w.file}`), dtype: dtype!, shape };
}

function runChain(chain: Transformer, img: Image, file: string, shape: number[], layout: Layout): Image {
  let out: Image;
  try {
    out = chain.run(img);
  } catch (e) {
    if (e instanceof PtqError) throw bad(`image '${file}': ${e.message}`, e.fix ?? 'check the transformer chain', file);
    throw e;
  }
  const dims = imageDims(out);
  const want = shape.slice(1); // CHW for NCHW, HWC for NHWC
  if (dims.length !== 3 || dims.join('x') !== want.join('x')) {
    throw bad(
      `image '${file}': the chain '${chain.describe()}' gives ${out.layout} ${dims.join('x')}, the input needs ${want.join('x')} (${layout} without N)`,
      `end the geometry with the input's size, e.g. CenterCrop(${layout === 'NCHW' ? shape[2] : shape[1]})`,
      file,
    );
  }
  return out;
}

function toSample(img: Pick<Image, 'data'>, dtype: 'uint8' | 'float32'): Float32Array | Uint8Array {
  if (dtype === 'float32') return Float32Array.from(img.data);
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = roundSat(img.data[i], 0, 255);
  return out;
}

function readArray(tree: Tree, src: SourcePath): Tensor {
  const t = parseNpy(readBytes(tree, src, 'array', 'source'), src.given);
  if (t.dtype !== 'float32' && t.dtype !== 'float64' && t.dtype !== 'uint8') {
    throw bad(`array '${src.given}' holds ${t.dtype}; samples must be float32, float64 or uint8`, 'save it with a.astype(numpy.float32)', src.given);
  }
  const a = t.array as ArrayLike<number>;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!Number.isFinite(v)) throw bad(`array '${src.given}' holds ${v}; samples must be finite`, 'fix or drop the sample', src.given);
  }
  return t;
}

/** H×W or H×W×C (C = 1 or 3) with values in 0..255: an image stored as an array. */
function isImageArray(t: Tensor): boolean {
  const d = t.dims;
  return d.length === 2 || (d.length === 3 && (d[2] === 1 || d[2] === 3));
}

function arrayImage(t: Tensor): Image {
  const [h, w, c0] = t.dims;
  const c = c0 ?? 1;
  const src = t.array as ArrayLike<number>;
  // gray arrays become RGB, as images are read
  const data = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < 3; k++) data[i * 3 + k] = src[i * c + (c === 3 ? k : 0)];
  return makeImage(h, w, 3, 'HWC', 'float32', data);
}

interface SectionInfo {
  variant: string;
  source: string;
  shape: number[];
  layout: string;
  typeTrain: string;
  dtype: string;
  format: string;
  chain: string;
  count: number;
  images: boolean;
}

function readmeSection(o: SectionInfo): string {
  const fileWord = o.format === 'npy' ? '`.npy` (numpy.save)' : 'raw `numpy.tofile` dumps (`.bin`)';
  return [
    `## ${o.variant}`,
    '',
    `${o.count} sample(s) from \`${toPosix(o.source)}\`.`,
    '',
    '| | |',
    '| --- | --- |',
    `| files | ${fileWord} |`,
    `| shape | ${o.shape.join('x')} (${o.layout}) |`,
    `| input_type_train | ${o.typeTrain} |`,
    `| dtype | ${o.dtype} |`,
    o.images ? `| image chain | \`${o.chain}\` (images read as RGB 0..255; uint8 rounded half to even) |` : '| image chain | (arrays taken as they are) |',
    '',
    '```yaml',
    'calibration_parameters:',
    `  cal_data_dir: '<path to this folder>/${o.variant}'`,
    ...(o.format === 'bin' ? [`  cal_data_type: '${o.dtype}'`] : []),
    '  preprocess_on: False',
    '```',
  ].join('\n');
}

/** The set's README: a header, then one section per sample folder (kept from the old README, this one replaced), sorted. */
function readme(name: string, old: string, variant: string, section: string): string {
  const sections = new Map<string, string>();
  for (const part of old.split(/\n(?=## )/).slice(1)) sections.set(/^## (\S+)/.exec(part)?.[1] ?? '', part.trimEnd());
  sections.set(variant, section);
  const body = [...sections.keys()].sort().map((k) => sections.get(k)!);
  return [
    `# Calibration set ${name}`,
    '',
    'Made by the nx-ptq calibration-set generator. One folder per model input format; each file is one',
    "sample in the input's shape, input_type_train format and layout (mean and scale not applied: the",
    "YAML's norm_type does that). Point cal_data_dir at the folder, with preprocess_on: False.",
    '',
    ...body.flatMap((b) => [b, '']),
  ].join('\n');
}

/** The Nx entry point: Nx runs what a generator returns as a follow-up task, so it returns nothing. */
export default async function (tree: Tree, schema: CalibrationSetGeneratorSchema): Promise<void> {
  try {
    await calibrationSetGenerator(tree, schema);
  } catch (e) {
    throw forNx(e);
  }
}
