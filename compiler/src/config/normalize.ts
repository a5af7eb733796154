/**
 * Raw parsed groups → `PtqConfig`: per-input values matched to inputs in `input_name` order,
 * defaults applied, paths made absolute against the YAML's folder, node overrides merged.
 * The only place defaults live. Count mismatches and other shape-of-the-config problems are
 * reported here; rules between values are in `rules.ts`.
 */
import * as path from 'path';
import { IssueList, quoteList } from './issues';
import { modelFileKeys, RawConfig } from './schema';
import { InputConfig, ModelKind, NodeInfo, PtqConfig } from './types';

export interface NormalizeContext {
  file?: string;
  /** Absolute folder relative paths are resolved against. */
  dir: string;
  lines: Record<string, number>;
  modelType?: ModelKind;
}

/** Defaults of optional keys (reference tables). */
export const DEFAULTS = {
  working_dir: 'model_output',
  layer_out_dump: false,
  input_space_and_range: 'regular',
  input_batch: 1,
  preprocess_on: false,
  per_channel: false,
  max_percentile_for_max: 1.0,
  compile_mode: 'latency',
  debug: false,
  core_num: 1,
  max_time_per_fc: 0,
  custom_op_method: 'register',
} as const;

/** Per-input keys: one value per input, in `input_name` order. */
const PER_INPUT_KEYS = [
  'input_type_train',
  'input_layout_train',
  'input_type_rt',
  'input_layout_rt',
  'input_shape',
  'norm_type',
  'mean_value',
  'scale_value',
] as const;

/** Per-input keys where one value may stand for all inputs (the reference does not call them per-input). */
const BROADCAST_KEYS = ['input_space_and_range', 'cal_data_type'] as const;

export function normalize(
  raw: RawConfig,
  ctx: NormalizeContext,
  issues: IssueList,
): { cfg?: PtqConfig; given: Set<string> } {
  const given = new Set<string>();
  for (const [group, values] of Object.entries(raw)) {
    for (const [key, v] of Object.entries((values ?? {}) as Record<string, unknown>)) if (v !== undefined) given.add(`${group}.${key}`);
  }
  const abs = (p: string): string => path.resolve(ctx.dir, p);
  const mp = raw.model_parameters;
  const ip = raw.input_parameters;
  const cp = raw.calibration_parameters;
  const cc = raw.compiler_parameters;

  // Model files: the kind was checked by load (missing keys); other kind's keys are ignored.
  const kind = modelFileKeys((k) => given.has(`model_parameters.${k}`), ctx.modelType).kind ?? 'onnx';

  // Inputs.
  const names = ip.input_name;
  const n = names?.length ?? 1;
  if (names) {
    const dup = names.filter((x, i) => names.indexOf(x) !== i);
    if (dup.length) issues.add('input_parameters', 'input_name', `duplicate input name${dup.length > 1 ? 's' : ''} ${quoteList([...new Set(dup)])}`);
  } else {
    const counts = PER_INPUT_KEYS.map((k) => [k, ip[k]?.length ?? 0] as const).filter(([, c]) => c > 1);
    if (counts.length) {
      const [k, c] = counts[0];
      issues.add(
        'input_parameters',
        'input_name',
        `missing: ${k} has ${c} values, so the model has several inputs and input_name is required ` +
          `(one name per input, separated by ';', giving the order of every per-input key)`,
      );
      return { given };
    }
  }
  const inputList = names ? `input_name: ${quoteList(names)}` : 'one input (input_name not set)';
  const perInput = <T>(group: string, key: string, values: T[] | undefined, broadcast = false): T[] | undefined => {
    if (values === undefined) return undefined;
    if (values.length === n) return values;
    if (broadcast && values.length === 1) return Array.from({ length: n }, () => values[0]);
    issues.add(
      group,
      key,
      `${values.length} value${values.length > 1 ? 's' : ''} for ${n} input${n > 1 ? 's' : ''} (${inputList}); ` +
        `give ${broadcast ? 'one value for all inputs or ' : ''}one value per input, in input_name order, separated by ';'`,
    );
    return undefined;
  };
  const I = 'input_parameters';
  const typeTrain = perInput(I, 'input_type_train', ip.input_type_train);
  const layoutTrain = perInput(I, 'input_layout_train', ip.input_layout_train);
  const typeRt = perInput(I, 'input_type_rt', ip.input_type_rt);
  const layoutRt = perInput(I, 'input_layout_rt', ip.input_layout_rt);
  const shapes = perInput(I, 'input_shape', ip.input_shape);
  const normType = perInput(I, 'norm_type', ip.norm_type);
  const means = perInput(I, 'mean_value', ip.mean_value);
  const scales = perInput(I, 'scale_value', ip.scale_value);
  const spaces = perInput(I, 'input_space_and_range', ip.input_space_and_range, true);
  const calDirs = perInput('calibration_parameters', 'cal_data_dir', cp.cal_data_dir);
  const calTypes = perInput('calibration_parameters', 'cal_data_type', cp.cal_data_type, true);
  if (!issues.empty || !typeTrain || !layoutTrain || !typeRt || !normType) return { given };

  // One input_space_and_range for all inputs only concerns the nv12 ones.
  const spaceBroadcast = (ip.input_space_and_range?.length ?? 0) === 1 && n > 1;
  if (spaceBroadcast && spaces![0] === 'bt601_video' && !typeRt.includes('nv12')) {
    issues.add(I, 'input_space_and_range', "bt601_video applies to nv12 inputs only, and no input_type_rt is nv12 (allowed otherwise: regular)");
  }

  const inputSource = cc.input_source ?? {};
  const sourceEntries = Object.entries(inputSource);
  const inputs: InputConfig[] = [];
  for (let i = 0; i < n; i++) {
    const name = names?.[i];
    const explicitSource = name !== undefined ? inputSource[name] : sourceEntries.length === 1 ? sourceEntries[0][1] : undefined;
    let space = spaces?.[i] ?? DEFAULTS.input_space_and_range;
    if (spaceBroadcast && typeRt[i] !== 'nv12') space = 'regular';
    inputs.push({
      name,
      typeTrain: typeTrain[i],
      layoutTrain: layoutTrain[i],
      typeRt: typeRt[i],
      // nv12 has no NCHW/NHWC layout; whatever was written for it is ignored.
      layoutRt: typeRt[i] === 'nv12' ? undefined : (layoutRt?.[i] ?? undefined),
      spaceAndRange: space,
      shape: shapes?.[i] ?? undefined,
      normType: normType[i],
      mean: means?.[i] ?? undefined,
      scale: scales?.[i] ?? undefined,
      calDataDir: calDirs ? abs(calDirs[i]) : undefined,
      calDataType: calTypes?.[i],
      source: explicitSource ?? (typeRt[i] === 'nv12' ? 'pyramid' : 'ddr'),
    });
  }

  const setNodeDataType = mp.set_node_data_type ?? [];
  const runOnCpu = cp.run_on_cpu ?? [];
  const runOnBpu = cp.run_on_bpu ?? [];
  const nodeInfo = mp.node_info ?? {};
  const customOp = raw.custom_op;
  const customOpDir = customOp?.custom_op_dir !== undefined ? abs(customOp.custom_op_dir) : undefined;

  const cfg: PtqConfig = {
    source: { file: ctx.file, dir: ctx.dir, lines: ctx.lines },
    model: {
      kind,
      onnxModel: kind === 'onnx' && mp.onnx_model !== undefined ? abs(mp.onnx_model) : undefined,
      prototxt: kind === 'caffe' && mp.prototxt !== undefined ? abs(mp.prototxt) : undefined,
      caffeModel: kind === 'caffe' && mp.caffe_model !== undefined ? abs(mp.caffe_model) : undefined,
      march: mp.march!,
      outputModelFilePrefix: mp.output_model_file_prefix!,
      workingDir: abs(mp.working_dir ?? DEFAULTS.working_dir),
      layerOutDump: mp.layer_out_dump ?? DEFAULTS.layer_out_dump,
      outputNodes: mp.output_nodes ?? [],
      removeNodeType: mp.remove_node_type ?? [],
      removeNodeName: mp.remove_node_name ?? [],
      setNodeDataType,
      debugMode: mp.debug_mode,
      nodeInfo,
    },
    inputs,
    inputBatch: ip.input_batch ?? DEFAULTS.input_batch,
    calibration: {
      calibrationType: cp.calibration_type!,
      maxPercentile: cp.max_percentile ?? (cp.calibration_type === 'max' ? DEFAULTS.max_percentile_for_max : undefined),
      perChannel: cp.per_channel ?? DEFAULTS.per_channel,
      // nx-ptq's own key: present only when written (absent = off)
      ...(cp.bias_correction !== undefined ? { biasCorrection: cp.bias_correction } : {}),
      ...(cp.histogram_sample !== undefined ? { histogramSample: cp.histogram_sample } : {}),
      preprocessOn: cp.preprocess_on ?? DEFAULTS.preprocess_on,
      runOnCpu,
      runOnBpu,
      optimization: cp.optimization,
    },
    compiler: {
      compileMode: cc.compile_mode ?? DEFAULTS.compile_mode,
      debug: cc.debug ?? DEFAULTS.debug,
      coreNum: cc.core_num ?? DEFAULTS.core_num,
      optimizeLevel: cc.optimize_level!,
      inputSource,
      maxTimePerFc: cc.max_time_per_fc ?? DEFAULTS.max_time_per_fc,
      jobs: cc.jobs,
    },
    customOp: customOp
      ? {
          method: customOp.custom_op_method ?? DEFAULTS.custom_op_method,
          registerFiles: (customOp.op_register_files ?? []).map((f) => path.resolve(customOpDir ?? ctx.dir, f)),
          dir: customOpDir,
        }
      : undefined,
    nodes: mergeNodes(nodeInfo, setNodeDataType, runOnCpu, runOnBpu),
  };
  return { cfg, given };
}

/**
 * One view of the per-node overrides. Conflicts (a node on both CPU and BPU, int8 vs int16)
 * are refused by `rules.ts`, so the order here only matters for valid configurations: it does not.
 */
export function mergeNodes(
  nodeInfo: Record<string, NodeInfo>,
  setNodeDataType: readonly string[],
  runOnCpu: readonly string[],
  runOnBpu: readonly string[],
): Record<string, NodeInfo> {
  const out: Record<string, NodeInfo> = {};
  const entry = (name: string): NodeInfo => (out[name] ??= {});
  for (const name of setNodeDataType) entry(name).outputType = 'int16';
  for (const name of runOnCpu) entry(name).on = 'CPU';
  for (const name of runOnBpu) entry(name).on = 'BPU';
  for (const [name, info] of Object.entries(nodeInfo)) {
    const e = entry(name);
    if (info.on) e.on = info.on;
    if (info.inputType) e.inputType = info.inputType;
    if (info.outputType) e.outputType = info.outputType;
    if (info.inputTypes) e.inputTypes = { ...e.inputTypes, ...info.inputTypes };
  }
  return out;
}
