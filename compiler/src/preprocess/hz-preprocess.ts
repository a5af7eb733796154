/**
 * The HzPreprocess stage of `***_original_float_model.onnx` (reference guide, "Pre-processing
 * HzPreprocess Operator Instructions" and "Conversion Internal Process Interpretation").
 *
 * Every image input of the float model is replaced by an input of the *intermediate type* of its
 * `input_type_rt` (the result of the hardware's input processing), followed by standard ONNX ops
 * that turn it back into what the model was trained on:
 *
 *   graph input `<name>`: int8, values x − 128 (x = the uint8 intermediate image), same shape
 *                         and layout (`input_layout_train`) as the original input
 *     Cast                 → float32, still x − 128 ("offset domain": o = v − 128)
 *     colour conversion    (only when the intermediate format ≠ `input_type_train`)
 *       YUV → RGB/BGR, or YUV video range → full range: a 3×3 matrix + bias in the offset domain,
 *       as a 1×1 Conv (NCHW) or MatMul (+ Add) on the last axis (NHWC), then Clip to [−128, 127]
 *       (the 8-bit range the hardware converter / cv2.cvtColor saturate to)
 *       RGB ↔ BGR: Gather [2, 1, 0] on the channel axis (exact)
 *     affine               ((o + 128) − mean) · scale = o · scale + (128 − mean) · scale per channel:
 *                          a depthwise 1×1 Conv (NCHW; weight = scale, bias = (128 − mean) · scale,
 *                          the reference's formulation) or Mul + Add on the last axis (NHWC)
 *     (Cast to the original input's type when it is not float32)
 *
 * The int8 input dtype documents the `*_128` contract; the quantizer can feed it to the BPU
 * unchanged. Featuremap inputs stay float32 and get no stage.
 *
 * Colour coefficients (offset domain, so a full-range conversion has no bias):
 *  - `regular` (full range, ITU-T T.871 / JFIF, luma weights Kr = 0.299, Kb = 0.114 of ITU-R BT.601):
 *      R = Y + 1.402 (V−128)
 *      G = Y − 0.344136286 (U−128) − 0.714136286 (V−128)
 *      B = Y + 1.772 (U−128)
 *    (1.402 = 2(1−Kr), 1.772 = 2(1−Kb), 0.344136286 = 2Kb(1−Kb)/Kg, 0.714136286 = 2Kr(1−Kr)/Kg, Kg = 1−Kr−Kb)
 *  - `bt601_video` (ITU-R BT.601 studio range, Y in [16, 235], U/V in [16, 240]): the data is first
 *    expanded to full range, Y' = (Y − 16) · 255/219, U' = (U − 128) · 255/224 + 128 (V alike),
 *    then converted as above: R = 1.164383 (Y−16) + 1.596027 (V−128), G = 1.164383 (Y−16)
 *    − 0.391762 (U−128) − 0.812968 (V−128), B = 1.164383 (Y−16) + 2.017232 (U−128).
 *    A yuv444-trained model fed bt601_video nv12 gets the expansion alone.
 *
 * Later stages find the stage through `metadata_props['hz_preprocess']` (JSON, one record per
 * input: see `HzPreprocessRecord`) and the `hz_preprocess` doc_string of every node it added.
 */
import { PtqError } from '../errors';
import { DType, dtypeToOnnx, isFloat } from '../onnx/dtype';
import { Attribute, Dim, Graph, Model, Node, ValueInfo } from '../onnx/ir';
import { cloneModel } from '../onnx/clone';
import { Tensor, tensorFrom } from '../onnx/tensor';

export type TrainType = 'rgb' | 'bgr' | 'yuv444' | 'gray' | 'featuremap';
export type RtType = 'nv12' | 'yuv444' | 'rgb' | 'bgr' | 'gray' | 'featuremap';
export type TrainLayout = 'NCHW' | 'NHWC';
export type SpaceAndRange = 'regular' | 'bt601_video';
export type NormType = 'data_mean_and_scale' | 'data_mean' | 'data_scale' | 'no_preprocess';

/** One model input's preprocessing, as `input_parameters` describes it. */
export interface InputSpec {
  /** `input_name` */
  name: string;
  /** `input_type_train` */
  typeTrain: TrainType;
  /** `input_type_rt` */
  typeRt: RtType;
  /** `input_layout_train` */
  layoutTrain: TrainLayout;
  /** `input_space_and_range` (default regular; only nv12 may be bt601_video) */
  spaceAndRange?: SpaceAndRange;
  /** `norm_type` */
  normType: NormType;
  /** `mean_value`: 1 or C values */
  mean?: number[];
  /** `scale_value`: 1 or C values */
  scale?: number[];
}

/** Metadata key (model metadata_props) and doc_string marker of the stage. */
export const HZ_PREPROCESS = 'hz_preprocess';

/** input_type_train × input_type_rt: the runtime formats that can feed each training format (reference Y/N table). */
export const SUPPORTED_RT_TYPES: Readonly<Record<TrainType, readonly RtType[]>> = {
  yuv444: ['nv12', 'yuv444'],
  rgb: ['nv12', 'yuv444', 'rgb', 'bgr'],
  bgr: ['nv12', 'yuv444', 'rgb', 'bgr'],
  gray: ['gray'],
  featuremap: ['featuremap'],
};

/** The intermediate type (the input of original_float_model.onnx) of each input_type_rt. */
export const INTERMEDIATE_TYPE: Readonly<Record<RtType, string>> = {
  nv12: 'yuv444_128',
  yuv444: 'yuv444_128',
  rgb: 'RGB_128',
  bgr: 'BGR_128',
  gray: 'GRAY_128',
  featuremap: 'featuremap',
};

const TRAIN_TYPES: readonly TrainType[] = ['rgb', 'bgr', 'yuv444', 'gray', 'featuremap'];
const RT_TYPES = Object.keys(INTERMEDIATE_TYPE) as RtType[];
const NORM_TYPES: readonly NormType[] = ['data_mean_and_scale', 'data_mean', 'data_scale', 'no_preprocess'];
const CHANNELS: Readonly<Record<Exclude<TrainType, 'featuremap'>, number>> = { rgb: 3, bgr: 3, yuv444: 3, gray: 1 };

/** What `metadata_props['hz_preprocess']` holds for each preprocessed input (a JSON array). */
export interface HzPreprocessRecord {
  /** graph input name (unchanged from the float model) */
  input: string;
  /** `yuv444_128`, `RGB_128`, `BGR_128` or `GRAY_128`: the int8 (x − 128) data the input takes */
  intermediate: string;
  typeTrain: TrainType;
  typeRt: RtType;
  layout: TrainLayout;
  spaceAndRange: SpaceAndRange;
  normType: NormType;
  /** per channel (C values), defaults applied (mean 0, scale 1 where norm_type has none) */
  mean: number[];
  scale: number[];
  /** the float value the original model's nodes now read */
  output: string;
  /** names of the nodes of the stage, in order */
  nodes: string[];
}

/** A 3×3 map plus bias in the offset domain (o = v − 128): out = M · in + b. */
export interface ColourTransform {
  matrix: number[][];
  bias: number[];
}

// ITU-R BT.601 luma weights; the full-range (JFIF) YUV → RGB coefficients follow from them.
const KR = 0.299;
const KB = 0.114;
const KG = 1 - KR - KB;

/** YUV → RGB, full range, offset domain (no bias: every channel is offset by 128 alike). */
function yuvToRgbFull(): ColourTransform {
  return {
    matrix: [
      [1, 0, 2 * (1 - KR)],
      [1, (-2 * KB * (1 - KB)) / KG, (-2 * KR * (1 - KR)) / KG],
      [1, 2 * (1 - KB), 0],
    ],
    bias: [0, 0, 0],
  };
}

/** BT.601 video range (Y 16…235, U/V 16…240) → full range, offset domain. */
function videoToFull(): ColourTransform {
  const ky = 255 / 219;
  const kc = 255 / 224;
  return {
    matrix: [
      [ky, 0, 0],
      [0, kc, 0],
      [0, 0, kc],
    ],
    // Y' − 128 = (o + 128 − 16) · ky − 128
    bias: [112 * ky - 128, 0, 0],
  };
}

/** a ∘ b (apply b, then a). */
function compose(a: ColourTransform, b: ColourTransform): ColourTransform {
  const matrix = a.matrix.map((row) => [0, 1, 2].map((j) => row[0] * b.matrix[0][j] + row[1] * b.matrix[1][j] + row[2] * b.matrix[2][j]));
  const bias = a.matrix.map((row, i) => row[0] * b.bias[0] + row[1] * b.bias[1] + row[2] * b.bias[2] + a.bias[i]);
  return { matrix, bias };
}

/**
 * The colour transform from the intermediate format of `typeRt` to `typeTrain` (offset domain),
 * `'swap'` for RGB ↔ BGR, or undefined when none is needed.
 */
export function colourTransform(typeTrain: TrainType, typeRt: RtType, range: SpaceAndRange): ColourTransform | 'swap' | undefined {
  const yuv = typeRt === 'nv12' || typeRt === 'yuv444';
  const video = typeRt === 'nv12' && range === 'bt601_video';
  if (yuv && typeTrain === 'yuv444') return video ? videoToFull() : undefined;
  if (yuv && (typeTrain === 'rgb' || typeTrain === 'bgr')) {
    const t = video ? compose(yuvToRgbFull(), videoToFull()) : yuvToRgbFull();
    return typeTrain === 'rgb' ? t : { matrix: [t.matrix[2], t.matrix[1], t.matrix[0]], bias: [t.bias[2], t.bias[1], t.bias[0]] };
  }
  if ((typeTrain === 'rgb' && typeRt === 'bgr') || (typeTrain === 'bgr' && typeRt === 'rgb')) return 'swap';
  return undefined;
}

/** The records of the stages already in `model` (empty when it has none). */
export function readPreprocessRecords(model: Model): HzPreprocessRecord[] {
  const raw = model.metadataProps[HZ_PREPROCESS];
  if (!raw) return [];
  return JSON.parse(raw) as HzPreprocessRecord[];
}

/**
 * Insert the HzPreprocess stage at each non-featuremap input named in `inputs` (see the file
 * comment for the ops). Returns a new model (`model` is left unchanged; tensors are shared)
 * and one note per input plus notes on settings that were ignored.
 */
export function insertPreprocess(model: Model, inputs: InputSpec[]): { model: Model; notes: string[] } {
  const out = cloneModel(model);
  const g = out.graph;
  const notes: string[] = [];
  const opset = out.opset('');
  const records = readPreprocessRecords(out);
  const seen = new Set<string>();
  const realInputs = g.realInputs;
  const names = new NameSet(g);
  for (const spec of inputs) {
    if (seen.has(spec.name)) throw configError('input_name', `input '${spec.name}' is configured twice`, 'list each input once in input_name');
    seen.add(spec.name);
    checkTypes(spec);
    const vi = realInputs.find((v) => v.name === spec.name);
    if (!vi) {
      throw configError(
        'input_name',
        `input '${spec.name}' is not an input of the model (its inputs: ${realInputs.map((v) => v.name).join(', ') || 'none'})`,
        'set input_name to the names of the model inputs',
      );
    }
    if (records.some((r) => r.input === spec.name)) {
      throw new PtqError('E_PREPROCESS_TWICE', `input '${spec.name}' already has an HzPreprocess stage`, {
        subject: spec.name,
        fix: 'insert the preprocessing into the float model as loaded, once',
      });
    }
    if (spec.typeTrain === 'featuremap') {
      if (spec.normType !== 'no_preprocess') notes.push(`input '${spec.name}': featuremap input, norm_type ${spec.normType} ignored (featuremap inputs are not preprocessed)`);
      notes.push(`input '${spec.name}': featuremap, float32, no HzPreprocess`);
      continue;
    }
    if (opset === undefined || opset < 7) {
      throw new PtqError('E_MODEL_OPSET', `the model imports default-domain opset ${opset ?? 'none'}; HzPreprocess needs opset 7 or later`, {
        fix: 're-export the model with opset 7 or later (11 or later recommended)',
      });
    }
    const record = insertStage(g, vi, spec, opset, names, notes);
    records.push(record);
  }
  if (records.length) out.metadataProps[HZ_PREPROCESS] = JSON.stringify(records);
  const untouched = realInputs.filter((v) => !seen.has(v.name)).map((v) => v.name);
  if (untouched.length) notes.push(`input${untouched.length > 1 ? 's' : ''} ${untouched.map((n) => `'${n}'`).join(', ')} not configured: left unchanged`);
  return { model: out, notes };
}

function checkTypes(spec: InputSpec): void {
  const who = `input '${spec.name}'`;
  if (!TRAIN_TYPES.includes(spec.typeTrain)) {
    throw configError('input_type_train', `${who}: input_type_train '${spec.typeTrain}' is not supported (allowed: ${TRAIN_TYPES.join(', ')})`, `use one of ${TRAIN_TYPES.join(', ')}`);
  }
  if (!RT_TYPES.includes(spec.typeRt)) {
    throw configError('input_type_rt', `${who}: input_type_rt '${spec.typeRt}' is not supported (allowed: ${RT_TYPES.join(', ')})`, `use one of ${RT_TYPES.join(', ')}`);
  }
  const allowed = SUPPORTED_RT_TYPES[spec.typeTrain];
  if (!allowed.includes(spec.typeRt)) {
    const trains = TRAIN_TYPES.filter((t) => SUPPORTED_RT_TYPES[t].includes(spec.typeRt));
    throw configError(
      'input_type_rt',
      `${who}: input_type_rt ${spec.typeRt} cannot feed a model whose input_type_train is ${spec.typeTrain} ` +
        `(allowed input_type_rt for ${spec.typeTrain}: ${allowed.join(', ')}; input_type_train for ${spec.typeRt}: ${trains.join(', ')})`,
      `set input_type_rt to one of ${allowed.join(', ')}`,
    );
  }
  if (spec.layoutTrain !== 'NCHW' && spec.layoutTrain !== 'NHWC') {
    throw configError('input_layout_train', `${who}: input_layout_train '${spec.layoutTrain}' is not supported (allowed: NCHW, NHWC)`, 'use NCHW or NHWC');
  }
  if (!NORM_TYPES.includes(spec.normType)) {
    throw configError('norm_type', `${who}: norm_type '${spec.normType}' is not supported (allowed: ${NORM_TYPES.join(', ')})`, `use one of ${NORM_TYPES.join(', ')}`);
  }
  const range = spec.spaceAndRange ?? 'regular';
  if (range !== 'regular' && range !== 'bt601_video') {
    throw configError('input_space_and_range', `${who}: input_space_and_range '${range}' is not supported (allowed: regular, bt601_video)`, 'use regular or bt601_video');
  }
}

/** mean/scale per channel with the norm type's defaults; throws on missing or mis-sized values. */
function normValues(spec: InputSpec, channels: number, notes: string[]): { mean: number[]; scale: number[] } {
  const who = `input '${spec.name}'`;
  const wantsMean = spec.normType === 'data_mean_and_scale' || spec.normType === 'data_mean';
  const wantsScale = spec.normType === 'data_mean_and_scale' || spec.normType === 'data_scale';
  const pick = (key: 'mean_value' | 'scale_value', values: number[] | undefined, wanted: boolean, def: number): number[] => {
    if (!wanted) {
      if (values?.length) notes.push(`input '${spec.name}': ${key} ignored, norm_type ${spec.normType} does not use it`);
      return new Array<number>(channels).fill(def);
    }
    if (!values?.length) {
      throw configError(key, `${who}: norm_type ${spec.normType} needs ${key}, none given`, `give ${key} (1 value or ${channels}, one per channel)`);
    }
    if (values.length !== 1 && values.length !== channels) {
      throw configError(
        key,
        `${who}: ${key} has ${values.length} values; ${spec.typeTrain} has ${channels} channel${channels > 1 ? 's' : ''} (allowed: 1 or ${channels} values)`,
        `give one value for all channels or ${channels}, separated by spaces`,
      );
    }
    if (values.some((v) => !Number.isFinite(v))) throw configError(key, `${who}: ${key} has a value that is not a finite number (${values.join(' ')})`, `give numbers`);
    return values.length === 1 ? new Array<number>(channels).fill(values[0]) : values.slice();
  };
  return { mean: pick('mean_value', spec.mean, wantsMean, 0), scale: pick('scale_value', spec.scale, wantsScale, 1) };
}

/** Replace input `vi` by its intermediate-type int8 input followed by the stage; returns the record. */
function insertStage(g: Graph, vi: ValueInfo, spec: InputSpec, opset: number, names: NameSet, notes: string[]): HzPreprocessRecord {
  const who = `input '${spec.name}'`;
  const typeTrain = spec.typeTrain as Exclude<TrainType, 'featuremap'>;
  const channels = CHANNELS[typeTrain];
  const shape = vi.type?.shape;
  const origType: DType = vi.type?.dtype ?? 'float32';
  const layout = spec.layoutTrain;
  if (shape) checkShape(spec, shape, channels);
  const channelAxis = layout === 'NCHW' ? 1 : shape ? shape.length - 1 : -1;
  let range: SpaceAndRange = spec.spaceAndRange ?? 'regular';
  if (range === 'bt601_video' && spec.typeRt !== 'nv12') {
    notes.push(`${who}: input_space_and_range bt601_video applies to nv12 only, input_type_rt is ${spec.typeRt}: treated as regular`);
    range = 'regular';
  }
  const { mean, scale } = normValues(spec, channels, notes);
  const colour = colourTransform(typeTrain, spec.typeRt, range);
  const yuvToRgb = colour !== undefined && colour !== 'swap' && typeTrain !== 'yuv444';
  if (!isFloat(origType)) {
    const exact = spec.normType === 'no_preprocess' && (colour === undefined || colour === 'swap');
    if (!exact) {
      throw new PtqError('E_PREPROCESS_DTYPE', `${who} is ${origType}; HzPreprocess produces fractional values (colour conversion or mean/scale) that ${origType} cannot hold`, {
        subject: spec.name,
        fix: 'use norm_type no_preprocess and an input_type_rt without YUV conversion, or a model with a float input',
      });
    }
  }

  const prefix = `HzPreprocess_${spec.name}`;
  const intermediate = INTERMEDIATE_TYPE[spec.typeRt];
  const doc = `${HZ_PREPROCESS}: ${spec.name} ${intermediate} -> ${spec.typeTrain} (${spec.normType})`;
  const stage: Node[] = [];
  const addedInits = new Map<string, Tensor>();
  const valueInfos: ValueInfo[] = [];
  const floatShape = shape?.slice();
  let cur = spec.name;

  const emit = (suffix: string, opType: string, extraInputs: (Tensor | string)[], attrs: Record<string, Attribute> = {}, dtype: DType = 'float32'): void => {
    const name = names.fresh(`${prefix}_${suffix}`);
    const ins = [cur];
    extraInputs.forEach((t, k) => {
      if (typeof t === 'string') {
        ins.push(t);
        return;
      }
      const init = names.fresh(`${name}_${INPUT_ROLE[opType]?.[k] ?? `in${k + 1}`}`);
      addedInits.set(init, t);
      ins.push(init);
    });
    stage.push(new Node({ opType, name, inputs: ins, outputs: [name], attrs, docString: doc }));
    valueInfos.push({ name, type: { dtype, shape: floatShape?.slice() } });
    cur = name;
  };

  emit('cast', 'Cast', [], { to: { type: 'int', value: dtypeToOnnx('float32') } });
  if (colour === 'swap') {
    emit('swap', 'Gather', [tensorFrom('int64', [3], [2, 1, 0])], { axis: { type: 'int', value: channelAxis } });
  } else if (colour) {
    const hasBias = colour.bias.some((b) => b !== 0);
    if (layout === 'NCHW') {
      const w = tensorFrom('float32', [3, 3, 1, 1], colour.matrix.flat());
      emit('colour', 'Conv', hasBias ? [w, tensorFrom('float32', [3], colour.bias)] : [w], {
        kernel_shape: { type: 'ints', value: [1, 1] },
      });
    } else {
      // y[..., i] = Σ_j x[..., j] · M[i][j]  →  x · Mᵀ
      const mt = [0, 1, 2].flatMap((j) => [0, 1, 2].map((i) => colour.matrix[i][j]));
      emit('colour', 'MatMul', [tensorFrom('float32', [3, 3], mt)]);
      if (hasBias) emit('colour_bias', 'Add', [tensorFrom('float32', [3], colour.bias)]);
    }
    emitClip(emit, opset, -128, 127);
  }
  const bias = mean.map((m, c) => (128 - m) * scale[c]);
  const needScale = scale.some((s) => s !== 1);
  const needBias = bias.some((b) => b !== 0);
  if (layout === 'NCHW') {
    if (needScale || needBias) {
      emit('norm', 'Conv', [tensorFrom('float32', [channels, 1, 1, 1], scale), tensorFrom('float32', [channels], bias)], {
        group: { type: 'int', value: channels },
        kernel_shape: { type: 'ints', value: [1, 1] },
      });
    }
  } else {
    if (needScale) emit('scale', 'Mul', [tensorFrom('float32', [channels], scale)]);
    if (needBias) emit('shift', 'Add', [tensorFrom('float32', [channels], bias)]);
  }
  if (origType !== 'float32') emit('cast_out', 'Cast', [], { to: { type: 'int', value: dtypeToOnnx(origType) } }, origType);

  // rewire: the model's nodes read the stage's output; the graph input becomes the int8 intermediate
  const first = stage[0];
  const readers = g.nodes.slice();
  g.nodes = [...stage, ...readers];
  const output = cur;
  const rewire = new Graph({ nodes: readers });
  rewire.replaceUses(spec.name, output);
  first.inputs[0] = spec.name;
  if (g.outputs.some((o) => o.name === spec.name)) {
    notes.push(`${who} is also a graph output: that output now carries the int8 ${intermediate} data`);
  }
  for (const [k, t] of addedInits) g.initializers.set(k, t);
  g.valueInfo.delete(spec.name);
  for (const v of valueInfos) g.valueInfo.set(v.name, v);
  const idx = g.inputs.indexOf(vi);
  g.inputs[idx] = {
    ...vi,
    type: { dtype: 'int8', shape: shape?.slice() },
    docString: `${HZ_PREPROCESS}: ${intermediate}, int8 (${intermediate.replace('_128', '').toLowerCase()} - 128), ${layout}` + (vi.docString ? `; ${vi.docString}` : ''),
  };

  const steps: string[] = [];
  if (colour === 'swap') steps.push(`${spec.typeRt.toUpperCase()}->${spec.typeTrain.toUpperCase()} swap`);
  else if (yuvToRgb) steps.push(`YUV->${spec.typeTrain.toUpperCase()} (${range})`);
  else if (colour) steps.push('YUV video range -> full range');
  steps.push(spec.normType === 'no_preprocess' ? '+128' : `((x+128) - mean) * scale, mean [${fmt(mean)}], scale [${fmt(scale)}]`);
  notes.push(`${who}: ${spec.typeTrain} <- ${spec.typeRt}, input ${intermediate} int8 ${layout}; HzPreprocess: ${steps.join(', ')} (${stage.length} nodes)`);
  return {
    input: spec.name,
    intermediate,
    typeTrain,
    typeRt: spec.typeRt,
    layout,
    spaceAndRange: range,
    normType: spec.normType,
    mean,
    scale,
    output,
    nodes: stage.map((n) => n.name),
  };
}

/** Names of constant inputs by op (for readable initializer names). */
const INPUT_ROLE: Record<string, string[]> = {
  Conv: ['weight', 'bias'],
  MatMul: ['matrix'],
  Add: ['bias'],
  Mul: ['scale'],
  Gather: ['indices'],
  Clip: ['min', 'max'],
};

type Emit = (suffix: string, opType: string, extraInputs: (Tensor | string)[], attrs?: Record<string, Attribute>) => void;

/** Clip to [lo, hi]: bounds as attributes before opset 11, as inputs from 11. */
function emitClip(emit: Emit, opset: number, lo: number, hi: number): void {
  if (opset < 11) emit('clip', 'Clip', [], { min: { type: 'float', value: lo }, max: { type: 'float', value: hi } });
  else emit('clip', 'Clip', [tensorFrom('float32', [], [lo]), tensorFrom('float32', [], [hi])]);
}

function checkShape(spec: InputSpec, shape: Dim[], channels: number): void {
  const who = `input '${spec.name}'`;
  const shown = shape.map((d) => (typeof d === 'number' ? d : '?')).join('x');
  if (shape.length !== 4) {
    throw configError('input_type_train', `${who} has shape ${shown} (rank ${shape.length}); image inputs (${spec.typeTrain}) must be 4-D`, 'use input_type_train featuremap for inputs that are not images');
  }
  const c = shape[spec.layoutTrain === 'NCHW' ? 1 : 3];
  if (typeof c === 'number' && c !== channels) {
    const other = shape[spec.layoutTrain === 'NCHW' ? 3 : 1];
    const fix = other === channels ? `set input_layout_train to ${spec.layoutTrain === 'NCHW' ? 'NHWC' : 'NCHW'}` : `check input_type_train (${spec.typeTrain} has ${channels} channel${channels > 1 ? 's' : ''})`;
    throw configError(
      'input_layout_train',
      `${who} has shape ${shown}; with input_layout_train ${spec.layoutTrain} its channel dimension is ${c}, but ${spec.typeTrain} has ${channels}`,
      fix,
    );
  }
}

function configError(key: string, message: string, fix: string): PtqError {
  return new PtqError('E_CONFIG', `input_parameters.${key}: ${message}`, { subject: `input_parameters.${key}`, fix });
}

function fmt(v: number[]): string {
  return v.map((x) => String(Math.round(x * 1e6) / 1e6)).join(' ');
}

/** Every name used in a graph (values, nodes, initializers), to make fresh ones. */
class NameSet {
  private readonly used = new Set<string>();

  constructor(g: Graph) {
    collectNames(g, this.used);
  }

  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }
}

function collectNames(g: Graph, used: Set<string>): void {
  for (const v of [...g.inputs, ...g.outputs]) used.add(v.name);
  for (const k of g.initializers.keys()) used.add(k);
  for (const k of g.valueInfo.keys()) used.add(k);
  for (const n of g.nodes) {
    if (n.name) used.add(n.name);
    for (const o of n.outputs) if (o) used.add(o);
    for (const a of n.attrs.values()) {
      if (a.type === 'graph') collectNames(a.value, used);
      else if (a.type === 'graphs') a.value.forEach((s) => collectNames(s, used));
    }
  }
}

// ------------------------------------------------------------------ structural copy

/** A copy of `model` whose graph structure (nodes, lists, maps, subgraphs) can be edited freely; tensors are shared. */
