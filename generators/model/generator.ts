/**
 * `nx g ./generators:model <model file>`: scaffolds `models/<name>/model.yaml` from the
 * reference's template for the march and model type (compiler/src/config/templates), with the
 * input names and shapes read from the model, input formats inferred from the shapes unless
 * given, the calibration set (its sample type read from the files), and the model file(s)
 * copied next to the YAML. The YAML is checked with the compiler's config loader and against
 * the model's inputs before anything is written: a generated project loads.
 */
import * as fs from 'fs';
import * as path from 'path';
import { logger, Tree } from '@nx/devkit';
import {
  CAL_DATA_TYPES,
  CALIBRATION_TYPES,
  INPUT_TYPES_RT,
  INPUT_TYPES_TRAIN,
  LAYOUTS,
  MARCHES,
  ModelInput,
  NORM_TYPES,
  parseConfig,
  templatePath,
  validateAgainstModel,
} from '../../compiler/src/config';
import { PtqError } from '../../compiler/src/errors';
import { isImageFile } from '../../compiler/src/preprocess/image-io';
import { child, fileSize, isDir, isFile, listDir, NAME_RE, readBytes, safeName, sourcePath, SourcePath, toPosix } from '../lib/files';
import { ModelFileInputs, readCaffeInputs, readOnnxInputs } from '../lib/model-inputs';
import { ensureGroup, replaceHeader, setKey } from '../lib/yaml-template';
import { forNx } from '../lib/entry';

export interface ModelGeneratorSchema {
  /** the .onnx file, or the .prototxt of a Caffe model (workspace-relative or absolute) */
  model: string;
  /** the Caffe .caffemodel (default: the prototxt's name with .caffemodel) */
  caffeModel?: string;
  /** project (folder) name; default: the model file's name */
  name?: string;
  /** parent folder of the project (default `models`) */
  directory?: string;
  march?: 'bernoulli2' | 'bayes';
  /** per input, `;`-separated (one value applies to every input) */
  inputTypeTrain?: string;
  inputLayoutTrain?: string;
  inputTypeRt?: string;
  inputLayoutRt?: string;
  /** `1x3x224x224`, per input `;`-separated: needed when the model's shape has dynamic dims other than the batch */
  inputShape?: string;
  normType?: string;
  /** per-channel values separated by spaces, inputs by `;` (a number from the command line: one value) */
  mean?: string | number;
  scale?: string | number;
  /** calibration folder(s), one per input, `;`-separated (workspace-relative) */
  calibrationSet?: string;
  calDataType?: 'float32' | 'uint8';
  calibrationType?: string;
  /** copy the model file(s) into the project folder (default true) */
  copyModel?: boolean;
  /** Nx project tags, comma-separated */
  tags?: string;
  /** replace an existing model.yaml */
  overwrite?: boolean;
}

export interface GeneratedModel {
  name: string;
  projectDir: string;
  configFile: string;
  inputs: { name: string; shape: number[]; typeTrain: string; typeRt: string }[];
}

const E_GEN = 'E_GENERATOR';

function bad(message: string, fix: string, subject?: string): PtqError {
  return new PtqError(E_GEN, message, { subject, fix });
}

export function modelGenerator(tree: Tree, schema: ModelGeneratorSchema): GeneratedModel {
  const march = schema.march ?? 'bernoulli2';
  oneOf('march', march, MARCHES);
  const modelPath = sourcePath(tree, schema.model);
  const ext = path.extname(modelPath.abs).toLowerCase();
  if (ext !== '.onnx' && ext !== '.prototxt') {
    throw bad(`--model '${schema.model}' is neither an .onnx file nor a Caffe .prototxt`, 'pass model.onnx, or net.prototxt (with net.caffemodel next to it or --caffeModel)', schema.model);
  }
  if (!isFile(tree, modelPath)) throw bad(`--model '${schema.model}' does not exist`, 'check the path (relative paths are relative to the workspace root)', schema.model);
  const kind = ext === '.onnx' ? 'onnx' : 'caffe';
  let caffePath: SourcePath | undefined;
  if (kind === 'caffe') {
    caffePath = sourcePath(tree, schema.caffeModel ?? modelPath.abs.slice(0, -ext.length) + '.caffemodel');
    if (!isFile(tree, caffePath)) {
      throw bad(
        `the Caffe weights '${schema.caffeModel ?? toPosix(path.relative(tree.root, caffePath.abs))}' do not exist`,
        'pass the .caffemodel with --caffeModel',
        caffePath.given,
      );
    }
  } else if (schema.caffeModel) {
    throw bad('--caffeModel applies to Caffe models (--model net.prototxt) only', 'drop --caffeModel', '--caffeModel');
  }
  const file: ModelFileInputs = kind === 'onnx' ? readOnnxInputs(tree, modelPath) : readCaffeInputs(tree, modelPath);

  const name = schema.name ?? safeName(path.basename(modelPath.abs, ext));
  if (!NAME_RE.test(name)) throw bad(`--name '${name}' is not a valid project name`, "use letters, digits, '.', '_' and '-', starting with a letter or digit", '--name');
  const directory = toPosix(schema.directory ?? 'models').replace(/\/+$/, '');
  const projectDir = directory ? `${directory}/${name}` : name;
  const configFile = `${projectDir}/model.yaml`;
  if (tree.exists(configFile) && !schema.overwrite) {
    throw bad(`${configFile} exists already`, 'pick another --name, or pass --overwrite to replace it', configFile);
  }

  const inputs = resolveInputs(file, schema);
  const cal = calibration(tree, schema, inputs);

  // model files: copied into the project (default, once the YAML checks out), or referenced where they are
  const copy = schema.copyModel !== false;
  const copies: [SourcePath, string][] = [];
  const place = (src: SourcePath): string => {
    if (!copy) {
      const rel = toPosix(path.relative(path.join(tree.root, projectDir), src.abs));
      return src.rel === undefined ? toPosix(src.abs) : rel.startsWith('.') ? rel : `./${rel}`;
    }
    const target = `${projectDir}/${path.basename(src.abs)}`;
    if (src.rel !== target) copies.push([src, target]);
    return `./${path.basename(src.abs)}`;
  };
  const modelRef = place(modelPath);
  const caffeRef = caffePath ? place(caffePath) : undefined;

  const template = templatePath(march, kind);
  let lines = fs.readFileSync(template, 'utf8').replace(/\r\n/g, '\n').split('\n');
  const board = march === 'bernoulli2' ? 'RDK X3 (march bernoulli2)' : 'RDK Ultra (march bayes)';
  lines = replaceHeader(lines, [
    `${name}: ${kind === 'onnx' ? 'ONNX' : 'Caffe'} model ${path.basename(modelPath.abs)} for ${board}.`,
    `Scaffolded by the nx-ptq model generator from the reference template ${path.basename(template)};`,
    'input names and shapes read from the model. Multi-value keys: \'value1; value2\', in input_name order.',
  ]);
  const M = 'model_parameters';
  const I = 'input_parameters';
  const C = 'calibration_parameters';
  const join = (xs: (string | undefined)[]): string => xs.map((x) => x ?? 'None').join('; ');
  if (kind === 'onnx') setKey(lines, M, 'onnx_model', modelRef);
  else {
    setKey(lines, M, 'prototxt', modelRef);
    setKey(lines, M, 'caffe_model', caffeRef!);
  }
  setKey(lines, M, 'march', march);
  setKey(lines, M, 'output_model_file_prefix', name);
  setKey(lines, M, 'working_dir', './model_output');
  setKey(lines, I, 'input_name', join(inputs.map((x) => x.name)));
  setKey(lines, I, 'input_type_train', join(inputs.map((x) => x.typeTrain)));
  setKey(lines, I, 'input_layout_train', join(inputs.map((x) => x.layoutTrain)));
  setKey(lines, I, 'input_shape', join(inputs.map((x) => x.shape.join('x'))));
  setKey(lines, I, 'norm_type', join(inputs.map((x) => x.normType)));
  setKey(lines, I, 'mean_value', inputs.some((x) => x.mean) ? join(inputs.map((x) => x.mean)) : undefined);
  setKey(lines, I, 'scale_value', inputs.some((x) => x.scale) ? join(inputs.map((x) => x.scale)) : undefined);
  setKey(lines, I, 'input_type_rt', join(inputs.map((x) => x.typeRt)));
  setKey(lines, I, 'input_layout_rt', inputs.some((x) => x.layoutRt) ? join(inputs.map((x) => x.layoutRt)) : undefined);
  setKey(lines, C, 'cal_data_dir', cal.dirs ? join(cal.dirs.map((d) => relFrom(tree, projectDir, d))) : undefined);
  setKey(lines, C, 'cal_data_type', cal.dataType);
  setKey(lines, C, 'preprocess_on', cal.preprocessOn ? true : undefined);
  setKey(lines, C, 'calibration_type', cal.type);
  const tags = (schema.tags ?? '').split(',').map((t) => t.trim()).filter(Boolean);
  if (tags.length) {
    ensureGroup(lines, 'nx-ptq');
    lines.push('  tags: [' + tags.map((t) => (/^[\w.-]+$/.test(t) ? t : `'${t.replace(/'/g, "''")}'`)).join(', ') + ']');
  }
  const text = lines.join('\n').replace(/\n*$/, '\n');

  // the project must load: the compiler's checks, then the model's inputs
  const cfg = parseConfig(text, { file: configFile, dir: path.join(tree.root, projectDir) });
  validateAgainstModel(cfg, file.inputs);
  for (const [src, target] of copies) tree.write(target, readBytes(tree, src, 'model file', 'model'));
  tree.write(configFile, text);
  logger.info(
    `nx-ptq: ${configFile}: ${inputs.map((x) => `'${x.name}' ${x.shape.join('x')} ${x.typeTrain}→${x.typeRt}`).join(', ')}; ` +
      (cal.dirs ? `calibration ${cal.type} on ${cal.dirs.map((d) => d.given).join('; ')}` : 'no calibration set: calibration_type skip (random thresholds) until you add one'),
  );
  return { name, projectDir, configFile, inputs: inputs.map((x) => ({ name: x.name, shape: x.shape, typeTrain: x.typeTrain, typeRt: x.typeRt })) };
}

interface ResolvedInput {
  name: string;
  shape: number[];
  layoutTrain: string;
  typeTrain: string;
  typeRt: string;
  layoutRt?: string;
  normType: string;
  mean?: string;
  scale?: string;
}

/** `rgb` → every input; `rgb; gray` → per input. */
function perInput(option: string, value: string | undefined, n: number): (string | undefined)[] {
  if (value === undefined || value.trim() === '') return new Array<undefined>(n).fill(undefined);
  const parts = value.split(';').map((v) => v.trim());
  if (parts.length === 1) return new Array<string>(n).fill(parts[0]);
  if (parts.length !== n) throw bad(`--${option} has ${parts.length} values, the model has ${n} input(s)`, `give one value, or one per input separated by ';'`, `--${option}`);
  return parts.map((p) => (p === '' ? undefined : p));
}

function oneOf(option: string, value: string | undefined, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value)) throw bad(`--${option} '${value}' is not allowed`, `use one of: ${allowed.join(', ')}`, `--${option}`);
}

const isStatic = (d: number | string): d is number => typeof d === 'number' && Number.isInteger(d) && d > 0;

function resolveInputs(file: ModelFileInputs, o: ModelGeneratorSchema): ResolvedInput[] {
  const n = file.inputs.length;
  const shapes = perInput('inputShape', o.inputShape, n);
  const layouts = perInput('inputLayoutTrain', o.inputLayoutTrain, n);
  const trains = perInput('inputTypeTrain', o.inputTypeTrain, n);
  const rts = perInput('inputTypeRt', o.inputTypeRt, n);
  const rtLayouts = perInput('inputLayoutRt', o.inputLayoutRt, n);
  const norms = perInput('normType', o.normType, n);
  const means = perInput('mean', o.mean === undefined ? undefined : String(o.mean), n);
  const scales = perInput('scale', o.scale === undefined ? undefined : String(o.scale), n);
  return file.inputs.map((m: ModelInput, i) => {
    const who = `input '${m.name}'`;
    let shape: number[];
    if (shapes[i] !== undefined) {
      if (!/^\d+(x\d+)*$/.test(shapes[i]!)) throw bad(`--inputShape '${shapes[i]}' is not a shape like 1x3x224x224`, 'write the dims separated by x', '--inputShape');
      shape = shapes[i]!.split('x').map(Number);
    } else if (m.shape.every(isStatic)) {
      shape = m.shape.map(Number);
    } else if (m.shape.length === 4 && m.shape.slice(1).every(isStatic)) {
      shape = [1, ...m.shape.slice(1).map(Number)]; // dynamic batch: convert for batch 1
    } else {
      throw bad(`${who} has dynamic dims (${m.shape.join('x')})`, `give the shape to convert for with --inputShape, e.g. 1x3x224x224`, '--inputShape');
    }
    if (shape.length !== 4) throw bad(`${who} is ${shape.length}-D (${shape.join('x')}); nx-ptq converts models whose inputs are 4-D`, 'export the model with N,C,H,W (or N,H,W,C) inputs', m.name);
    if (file.dtypes[i] !== undefined && file.dtypes[i] !== 'float32') {
      throw bad(`${who} is ${file.dtypes[i]}; nx-ptq converts float32 models`, 'export the model with float32 inputs', m.name);
    }
    oneOf('inputLayoutTrain', layouts[i], LAYOUTS);
    const isCh = (c: number): boolean => c === 1 || c === 3;
    const layoutTrain = layouts[i] ?? (!isCh(shape[1]) && isCh(shape[3]) ? 'NHWC' : 'NCHW');
    const c = layoutTrain === 'NCHW' ? shape[1] : shape[3];
    const [h, w] = layoutTrain === 'NCHW' ? [shape[2], shape[3]] : [shape[1], shape[2]];
    oneOf('inputTypeTrain', trains[i], INPUT_TYPES_TRAIN);
    const typeTrain = trains[i] ?? (c === 3 ? 'rgb' : c === 1 ? 'gray' : 'featuremap');
    oneOf('inputTypeRt', rts[i], INPUT_TYPES_RT);
    const even = h % 2 === 0 && w % 2 === 0;
    const typeRt =
      rts[i] ?? (typeTrain === 'rgb' || typeTrain === 'bgr' ? (even ? 'nv12' : typeTrain) : typeTrain === 'yuv444' ? (even ? 'nv12' : 'yuv444') : typeTrain);
    oneOf('inputLayoutRt', rtLayouts[i], LAYOUTS);
    const layoutRt = rtLayouts[i] ?? (typeRt === 'nv12' ? undefined : typeTrain === 'featuremap' ? layoutTrain : 'NHWC');
    const mean = means[i];
    const scale = scales[i];
    for (const [opt, v] of [['mean', mean], ['scale', scale]] as const) {
      if (v !== undefined && !v.split(/\s+/).every((x) => x !== '' && Number.isFinite(Number(x)))) {
        throw bad(`--${opt} '${v}' is not a list of numbers`, `write e.g. --${opt}='123.7 116.3 103.5' (channels separated by spaces, inputs by ';')`, `--${opt}`);
      }
    }
    oneOf('normType', norms[i], NORM_TYPES);
    const normType = norms[i] ?? (mean && scale ? 'data_mean_and_scale' : mean ? 'data_mean' : scale ? 'data_scale' : 'no_preprocess');
    return { name: m.name, shape, layoutTrain, typeTrain, typeRt, layoutRt, normType, mean, scale };
  });
}

interface CalibrationChoice {
  dirs?: SourcePath[];
  dataType?: string;
  preprocessOn: boolean;
  type: string;
}

function calibration(tree: Tree, o: ModelGeneratorSchema, inputs: ResolvedInput[]): CalibrationChoice {
  oneOf('calibrationType', o.calibrationType, CALIBRATION_TYPES);
  oneOf('calDataType', o.calDataType, CAL_DATA_TYPES);
  if (o.calibrationSet === undefined || o.calibrationSet.trim() === '') {
    const type = o.calibrationType ?? 'skip';
    if (type !== 'skip' && type !== 'load') {
      throw bad(`calibration_type ${type} needs calibration data, and no --calibrationSet was given`, 'pass --calibrationSet calibration/<set> (make one with the calibration-set generator), or use --calibrationType skip', '--calibrationSet');
    }
    return { preprocessOn: false, type };
  }
  const given = perInput('calibrationSet', o.calibrationSet, inputs.length);
  const dirs = given.map((g, i) => {
    if (g === undefined) throw bad(`--calibrationSet gives no folder for input '${inputs[i].name}'`, 'give one folder per input', '--calibrationSet');
    const p = sourcePath(tree, g);
    if (!isDir(tree, p)) throw bad(`calibration set '${g}' is not a folder`, 'pass the folder holding the samples (e.g. calibration/<set>/<input>)', g);
    return p;
  });
  const kinds = dirs.map((d, i) => sampleKind(tree, d, inputs[i], o.calDataType));
  const images = kinds.map((k) => k === 'image');
  if (images.some(Boolean) && !images.every(Boolean)) {
    throw bad('--calibrationSet mixes image folders and array folders; preprocess_on applies to every input', 'convert the images with the calibration-set generator', '--calibrationSet');
  }
  const types = kinds.map((k) => (k === 'float32' || k === 'uint8' ? k : undefined));
  const dataType = o.calDataType ?? (types.some(Boolean) ? types.map((t) => t ?? 'float32').join('; ') : undefined);
  return { dirs, dataType, preprocessOn: images.every(Boolean), type: o.calibrationType ?? 'default' };
}

/** What a calibration folder holds for an input: images, .npy arrays, or raw float32/uint8 dumps (told by their size). */
function sampleKind(tree: Tree, dir: SourcePath, inp: ResolvedInput, calDataType: string | undefined): 'image' | 'npy' | 'float32' | 'uint8' {
  const entries = listDir(tree, dir);
  const files = entries.filter((n) => isFile(tree, child(dir, n)));
  const subdirs = entries.filter((n) => isDir(tree, child(dir, n)));
  // a set made by the calibration-set generator keeps its samples in a sub-folder per input format
  const inside = subdirs.length ? `point --calibrationSet at the sample folder inside it (${subdirs.map((d) => `${dir.given.replace(/\/+$/, '')}/${d}`).join(', ')})` : undefined;
  if (!files.length) throw bad(`calibration set '${dir.given}' holds no sample files`, inside ?? 'put the samples (about 100) into it, e.g. with the calibration-set generator', dir.given);
  if (files.every((f) => isImageFile(f))) {
    if (inp.typeTrain === 'featuremap') throw bad(`calibration set '${dir.given}' holds images, but input '${inp.name}' is a featuremap`, 'give arrays (.npy) for featuremap inputs', dir.given);
    return 'image';
  }
  const first = files.find((f) => !isImageFile(f))!;
  if (first.toLowerCase().endsWith('.npy')) return 'npy';
  if (calDataType === 'float32' || calDataType === 'uint8') return calDataType;
  const size = fileSize(tree, child(dir, first));
  const n = inp.shape.reduce((a, b) => a * b, 1);
  if (size === 4 * n) return 'float32';
  if (size === n) return 'uint8';
  throw bad(
    `calibration sample '${dir.given}/${first}' is ${size} bytes; input '${inp.name}' ${inp.shape.join('x')} needs ${n} (uint8) or ${4 * n} (float32) bytes`,
    inside ?? 'pass the calibration set made for this input shape',
    `${dir.given}/${first}`,
  );
}

/** A calibration folder as the YAML names it: relative to the project folder (absolute outside the workspace). */
function relFrom(tree: Tree, projectDir: string, p: SourcePath): string {
  if (p.rel === undefined) return toPosix(p.abs);
  const rel = toPosix(path.relative(path.join(tree.root, projectDir), p.abs));
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/** The Nx entry point: Nx runs what a generator returns as a follow-up task, so it returns nothing. */
export default function (tree: Tree, schema: ModelGeneratorSchema): void {
  try {
    modelGenerator(tree, schema);
  } catch (e) {
    throw forNx(e);
  }
}
