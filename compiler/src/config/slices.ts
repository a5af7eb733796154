/**
 * The slice of the configuration each stage depends on, for the stage memo's hash
 * (DESIGN §2): editing a key re-runs exactly the stages whose slice holds it (and, through
 * their artifacts' hashes, the stages downstream). Slices use the reference's key names, so
 * a diff of two slices reads like a diff of two YAMLs.
 *
 * What each stage depends on, and why:
 * - preprocess: writes calibration tensors in input_type_train format and layout at the input
 *   shape → per input name, input_type_train, input_layout_train, input_shape, cal_data_type;
 *   preprocess_on; and whether calibration data is used at all (not with load/skip).
 *   Not mean/scale: normalisation lives in the model (HzPreprocess), not in the data.
 * - check: builds original_float_model (HzPreprocess from the per-input type/norm keys; its
 *   input is input_type_rt's intermediate type in the train layout) and optimized_float_model,
 *   and places ops per march → model type, march, output_nodes, per input name, types, train
 *   layout, range, shape, norm_type, mean, scale; custom_op (custom ops are parsed here).
 *   Not input_layout_rt: it only describes the .bin's inputs (compile).
 * - calibrate: converts the train-format data to the model's runtime intermediate format
 *   (input_type_rt, input_space_and_range) and computes thresholds → calibration_type,
 *   max_percentile, per_channel, the per-node overrides (CPU/BPU placement and int16 change
 *   what is calibrated), march, debug_mode (dumps the calibration data).
 * - quantize: emits the int8 model → march, optimization (int8/int16 outputs), per-node overrides.
 * - compile: lowers to the .bin → compiler_parameters, march, output_model_file_prefix (the model's name in the .bin), layer_out_dump,
 *   remove_node_type/remove_node_name (deleted at the .bin's edges), input_batch (the .bin's
 *   batch only), each input's runtime type/layout/range/source (the .bin's input descriptors),
 *   custom_op; and, because the .bin records them for model-info, every parameter of the four
 *   groups as printed (jobs, the calibration settings, paths relative to the YAML).
 * - perf: the .bin's static cost per march → march, output_model_file_prefix (report folder).
 * - verify: generates inputs in each model's format → per-input formats and shapes, input_batch, march.
 *
 * No other slice holds a path (onnx_model, cal_data_dir, working_dir, …): where a file is does
 * not change what those stages make; the files' contents are hashed as input artifacts.
 * Compute slices on the config returned by `validateAgainstModel`, so shapes read from the
 * model are part of them.
 */
import * as path from 'path';
import { paramGroups } from '../compile/params';
import { InputConfig, NodeInfo, PtqConfig } from './types';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface StageSlices {
  preprocess: JsonObject;
  check: JsonObject;
  calibrate: JsonObject;
  quantize: JsonObject;
  compile: JsonObject;
  perf: JsonObject;
  verify: JsonObject;
}

export const STAGES = ['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify'] as const;

/** The reference's name for each per-input field. */
const INPUT_KEYS = {
  input_name: (x: InputConfig) => x.name,
  input_type_train: (x: InputConfig) => x.typeTrain,
  input_layout_train: (x: InputConfig) => x.layoutTrain,
  input_type_rt: (x: InputConfig) => x.typeRt,
  input_layout_rt: (x: InputConfig) => x.layoutRt,
  input_space_and_range: (x: InputConfig) => x.spaceAndRange,
  input_shape: (x: InputConfig) => x.shape,
  norm_type: (x: InputConfig) => x.normType,
  mean_value: (x: InputConfig) => x.mean,
  scale_value: (x: InputConfig) => x.scale,
  cal_data_type: (x: InputConfig) => x.calDataType,
  input_source: (x: InputConfig) => x.source,
} as const;
type InputKey = keyof typeof INPUT_KEYS;

function inputsView(cfg: PtqConfig, keys: readonly InputKey[]): Json[] {
  return cfg.inputs.map((inp) => canonical(Object.fromEntries(keys.map((k) => [k, INPUT_KEYS[k](inp)]))));
}

/** The merged per-node overrides, written as node_info. */
function nodeInfoView(nodes: Record<string, NodeInfo>): Json {
  const out: Record<string, unknown> = {};
  for (const [name, info] of Object.entries(nodes)) {
    const e: Record<string, unknown> = { ON: info.on, InputType: info.inputType, OutputType: info.outputType };
    for (const [i, t] of Object.entries(info.inputTypes ?? {})) e[`InputType${i}`] = t;
    out[name] = e;
  }
  return canonical(out);
}

export function stageSlices(cfg: PtqConfig): StageSlices {
  const { model, calibration: cal, compiler: comp } = cfg;
  const march = model.march;
  const nodes = nodeInfoView(cfg.nodes);
  const customOp = cfg.customOp
    ? {
        custom_op_method: cfg.customOp.method,
        // File names only (relative to custom_op_dir): their contents are input artifacts.
        op_register_files: cfg.customOp.registerFiles.map((f) => path.relative(cfg.customOp!.dir ?? cfg.source.dir, f)),
      }
    : undefined;
  const slices = {
    preprocess: {
      inputs: inputsView(cfg, ['input_name', 'input_type_train', 'input_layout_train', 'input_shape', 'cal_data_type']),
      preprocess_on: cal.preprocessOn,
      uses_calibration_data: cal.calibrationType !== 'load' && cal.calibrationType !== 'skip',
    },
    check: {
      model_type: model.kind,
      march,
      output_nodes: model.outputNodes,
      inputs: inputsView(cfg, [
        'input_name',
        'input_type_train',
        'input_layout_train',
        'input_type_rt',
        'input_space_and_range',
        'input_shape',
        'norm_type',
        'mean_value',
        'scale_value',
      ]),
      custom_op: customOp,
    },
    calibrate: {
      march,
      calibration_type: cal.calibrationType,
      max_percentile: cal.maxPercentile,
      per_channel: cal.perChannel,
      ...(cal.biasCorrection ? { bias_correction: true } : {}),
      ...(cal.histogramSample !== undefined ? { histogram_sample: cal.histogramSample } : {}),
      debug_mode: model.debugMode,
      node_info: nodes,
      inputs: inputsView(cfg, ['input_name', 'input_type_train', 'input_layout_train', 'input_type_rt', 'input_space_and_range']),
    },
    quantize: {
      march,
      optimization: cal.optimization,
      node_info: nodes,
    },
    compile: {
      // the `.bin` records every parameter of the four groups as model-info prints them
      // (paths relative to the YAML, jobs, calibration settings): its bytes depend on them
      recorded: paramGroups(cfg) as unknown as Json,
      march,
      output_model_file_prefix: model.outputModelFilePrefix,
      layer_out_dump: model.layerOutDump,
      remove_node_type: model.removeNodeType,
      remove_node_name: model.removeNodeName,
      input_batch: cfg.inputBatch,
      compile_mode: comp.compileMode,
      debug: comp.debug,
      core_num: comp.coreNum,
      optimize_level: comp.optimizeLevel,
      max_time_per_fc: comp.maxTimePerFc,
      inputs: inputsView(cfg, ['input_name', 'input_type_rt', 'input_layout_rt', 'input_space_and_range', 'input_source']),
      custom_op: customOp,
    },
    perf: {
      march,
      output_model_file_prefix: model.outputModelFilePrefix,
    },
    verify: {
      march,
      input_batch: cfg.inputBatch,
      inputs: inputsView(cfg, [
        'input_name',
        'input_type_train',
        'input_layout_train',
        'input_type_rt',
        'input_layout_rt',
        'input_space_and_range',
        'input_shape',
      ]),
      // the verify settings of the `nx-ptq:` group (cosine threshold, samples, data_dir)
      nx_ptq_verify: verifyBlock(cfg),
    },
  };
  return Object.fromEntries(STAGES.map((s) => [s, canonical(slices[s]) as JsonObject])) as unknown as StageSlices;
}

function verifyBlock(cfg: PtqConfig): unknown {
  const b = cfg.source.nxPtq;
  return b !== null && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>).verify : undefined;
}

/** JSON value with object keys sorted (recursively) and undefined members dropped. */
export function canonical(value: unknown): Json {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`canonical: non-finite number ${value}`);
    return Object.is(value, -0) ? 0 : value;
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonical(v)));
  if (typeof value === 'object') {
    const out: JsonObject = {};
    for (const key of Object.keys(value as object).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = canonical(v);
    }
    return out;
  }
  throw new Error(`canonical: cannot represent ${typeof value}`);
}

/** The canonical JSON text of a slice: what the store hashes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}
