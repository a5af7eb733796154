/**
 * Rules between keys, from the reference guide. `checkRules` runs on the configuration alone
 * (shape rules only where `input_shape` is given); `validateAgainstModel` matches the config's
 * inputs to the model's and runs the shape rules on the resolved shapes (for the check stage).
 */
import { IssueList, quoteList } from './issues';
import { InputConfig, InputTypeRt, InputTypeTrain, ModelInput, NormType, PtqConfig } from './types';

/**
 * input_type_train × input_type_rt: which runtime formats can feed a model trained on each
 * format (reference, "Conversion Internal Process Interpretation", the Y/N table).
 */
export const SUPPORTED_RT_TYPES: Readonly<Record<InputTypeTrain, readonly InputTypeRt[]>> = {
  yuv444: ['nv12', 'yuv444'],
  rgb: ['nv12', 'yuv444', 'rgb', 'bgr'],
  bgr: ['nv12', 'yuv444', 'rgb', 'bgr'],
  gray: ['gray'],
  featuremap: ['featuremap'],
};

/** Channels each image format has (featuremap: any). */
export const FORMAT_CHANNELS: Readonly<Record<InputTypeTrain, number | undefined>> = {
  rgb: 3,
  bgr: 3,
  yuv444: 3,
  gray: 1,
  featuremap: undefined,
};

/** `input_source: resizer` needs h*w below this (reference, compiler parameter table). */
export const RESIZER_MAX_HW = 18432;

const NEEDS_MEAN: readonly NormType[] = ['data_mean_and_scale', 'data_mean'];
const NEEDS_SCALE: readonly NormType[] = ['data_mean_and_scale', 'data_scale'];

const I = 'input_parameters';
const M = 'model_parameters';
const C = 'calibration_parameters';
const P = 'compiler_parameters';

function label(input: InputConfig, i: number, n: number): string {
  return input.name !== undefined ? `input '${input.name}'` : n > 1 ? `input ${i + 1}` : 'the input';
}

const showShape = (s: readonly (number | string)[]): string => s.map((d) => (isStatic(d) ? d : '?')).join('x');
const isStatic = (d: number | string): d is number => typeof d === 'number' && Number.isInteger(d) && d > 0;

/** Rules on the configuration alone. `given` holds the `group.key`s written in the YAML. */
export function checkRules(cfg: PtqConfig, given: ReadonlySet<string>, issues: IssueList): void {
  const { inputs, model, calibration, compiler } = cfg;
  const n = inputs.length;
  const march = model.march;

  inputs.forEach((inp, i) => {
    const who = label(inp, i, n);
    const rtTypes = SUPPORTED_RT_TYPES[inp.typeTrain];
    if (!rtTypes.includes(inp.typeRt)) {
      issues.add(
        I,
        'input_type_rt',
        `${who}: input_type_rt ${inp.typeRt} cannot feed a model whose input_type_train is ${inp.typeTrain} ` +
          `(allowed for ${inp.typeTrain}: ${rtTypes.join(', ')})`,
      );
    }
    if (inp.typeRt !== 'nv12' && !inp.layoutRt) {
      issues.add(
        I,
        'input_layout_rt',
        given.has(`${I}.input_layout_rt`)
          ? `${who}: 'None' is allowed only for nv12 inputs; input_type_rt is ${inp.typeRt} (allowed: NCHW, NHWC)`
          : `missing for ${who}: input_layout_rt may be omitted only when input_type_rt is nv12, here it is ${inp.typeRt} (allowed: NCHW, NHWC)`,
      );
    }
    if (march === 'bernoulli2' && inp.typeRt === 'yuv444' && inp.layoutRt === 'NCHW') {
      issues.add(I, 'input_layout_rt', `${who}: input_type_rt yuv444 with input_layout_rt NCHW is not supported on bernoulli2 (allowed: NHWC)`);
    }
    for (const [key, values, needs, what] of [
      ['mean_value', inp.mean, NEEDS_MEAN, 'mean'],
      ['scale_value', inp.scale, NEEDS_SCALE, 'scale'],
    ] as const) {
      if (needs.includes(inp.normType) && !values) {
        issues.add(I, key, `missing for ${who}: norm_type ${inp.normType} needs a ${what} (one value, or one per channel separated by spaces)`);
      } else if (!needs.includes(inp.normType) && values) {
        issues.add(I, key, `${who} has norm_type ${inp.normType}, which applies no ${what}; set its ${key} to 'None' or change norm_type`);
      }
      const channels = FORMAT_CHANNELS[inp.typeTrain];
      if (values && values.length > 1 && channels !== undefined && values.length !== channels) {
        issues.add(I, key, `${who}: ${values.length} values, but input_type_train ${inp.typeTrain} has ${channels} channel(s) (allowed: 1 or ${channels} values)`);
      }
    }
    if (inp.spaceAndRange === 'bt601_video' && inp.typeRt !== 'nv12') {
      issues.add(I, 'input_space_and_range', `${who}: bt601_video applies to nv12 inputs only, input_type_rt is ${inp.typeRt} (allowed: regular)`);
    }
    if (calibration.preprocessOn && inp.typeTrain === 'featuremap') {
      issues.add(C, 'preprocess_on', `${who} is a featuremap; preprocess_on reads images and works only for image inputs (set it to False)`);
    }
    if (inp.source !== 'ddr' && inp.typeRt !== 'nv12' && inp.typeRt !== 'gray') {
      issues.add(P, 'input_source', `${who}: source ${inp.source} delivers nv12/gray data, but input_type_rt is ${inp.typeRt} (allowed: ddr)`);
    }
  });

  // Keys that exist on one march only.
  if (march === 'bernoulli2') {
    if (Object.keys(model.nodeInfo).length) issues.add(M, 'node_info', 'is supported on bayes (RDK Ultra) only; march is bernoulli2 (use run_on_cpu / run_on_bpu)');
    if (model.setNodeDataType.length) issues.add(M, 'set_node_data_type', 'int16 is supported on bayes (RDK Ultra) only; march is bernoulli2');
    if (calibration.optimization === 'set_model_output_int16') {
      issues.add(C, 'optimization', 'set_model_output_int16 is supported on bayes (RDK Ultra) only; march is bernoulli2 (allowed: set_model_output_int8)');
    }
  } else if (given.has(`${P}.core_num`)) {
    issues.add(P, 'core_num', 'is not supported on bayes (RDK Ultra); remove it');
  }

  if (cfg.inputBatch > 1 && n > 1) {
    issues.add(I, 'input_batch', `applies to single-input models only; this one has ${n} inputs (remove input_batch or set it to 1)`);
  }

  // Calibration.
  const type = calibration.calibrationType;
  if (type !== 'load' && type !== 'skip' && inputs.some((x) => x.calDataDir === undefined)) {
    issues.add(C, 'cal_data_dir', `missing: calibration_type ${type} needs calibration data (one folder per input); only load and skip do without`);
  }
  if (given.has(`${C}.max_percentile`) && type !== 'max') {
    issues.add(C, 'max_percentile', `is used only by calibration_type max; calibration_type is ${type}`);
  }
  if (calibration.perChannel && type === 'default') {
    issues.add(C, 'per_channel', 'has no effect with calibration_type default (allowed with: mix, kl, max, load, skip); remove it or pick a calibration_type');
  }

  // Per-node overrides must not contradict each other.
  const cpu = new Set(calibration.runOnCpu);
  const both = calibration.runOnBpu.filter((x) => cpu.has(x));
  if (both.length) issues.add(C, 'run_on_bpu', `node${both.length > 1 ? 's' : ''} ${quoteList(both)} also in run_on_cpu; a node runs on one of them`);
  for (const [node, info] of Object.entries(model.nodeInfo)) {
    const forced = cpu.has(node) ? 'CPU' : calibration.runOnBpu.includes(node) ? 'BPU' : undefined;
    if (info.on && forced && info.on !== forced) {
      issues.add(M, 'node_info', `node '${node}' has ON ${info.on} but is listed in ${forced === 'CPU' ? 'run_on_cpu' : 'run_on_bpu'}`);
    }
    if (info.outputType === 'int8' && model.setNodeDataType.includes(node)) {
      issues.add(M, 'node_info', `node '${node}' has OutputType int8 but set_node_data_type makes it int16`);
    }
  }

  // input_source names inputs.
  const names = inputs.map((x) => x.name);
  for (const key of Object.keys(compiler.inputSource)) {
    if (names[0] !== undefined && !names.includes(key)) {
      issues.add(P, 'input_source', `names input '${key}', which is not in input_name (${quoteList(names as string[])})`);
    }
  }
  if (names[0] === undefined && Object.keys(compiler.inputSource).length > 1) {
    issues.add(P, 'input_source', 'names several inputs, but input_name is not set (one input)');
  }

  shapeRules(cfg, inputs.map((x) => x.shape), issues, 'config');
}

/**
 * Rules that need each input's shape: nv12/yuv444 even H and W, channels vs format, per-channel
 * mean/scale counts, input_batch on N = 1, preprocess_on and the resizer limit on 4-D inputs.
 * `origin` says whether the shapes were written in the YAML or read from the model.
 */
function shapeRules(cfg: PtqConfig, shapes: readonly (number[] | undefined)[], issues: IssueList, origin: 'config' | 'model'): void {
  const n = cfg.inputs.length;
  cfg.inputs.forEach((inp, i) => {
    const s = shapes[i];
    if (!s) return;
    const who = label(inp, i, n);
    const shown = origin === 'config' ? `input_shape ${showShape(s)}` : `model input shape ${showShape(s)}`;
    const shapeKey = origin === 'config' ? 'input_shape' : 'input_type_train';
    if (s.length !== 4) {
      issues.add(I, shapeKey, `${who}: ${shown} is ${s.length}-D; inputs must be 4-D (N,C,H,W or N,H,W,C)`);
      return;
    }
    const nchw = inp.layoutTrain === 'NCHW';
    const c = nchw ? s[1] : s[3];
    const [h, w] = nchw ? [s[2], s[3]] : [s[1], s[2]];
    const channels = FORMAT_CHANNELS[inp.typeTrain];
    if (channels !== undefined && c !== channels) {
      issues.add(
        I,
        'input_type_train',
        `${who}: ${inp.typeTrain} has ${channels} channel(s), but ${shown} with input_layout_train ${inp.layoutTrain} has ${c}`,
      );
      return; // H and W are not where the layout says either
    }
    if ((inp.typeRt === 'nv12' || inp.typeRt === 'yuv444') && (h % 2 || w % 2)) {
      issues.add(I, 'input_type_rt', `${who}: ${inp.typeRt} needs an even height and width, but ${shown} (${inp.layoutTrain}) has ${h}x${w}`);
    }
    for (const [key, values] of [['mean_value', inp.mean], ['scale_value', inp.scale]] as const) {
      // Image formats were checked against their channel count already.
      if (channels === undefined && values && values.length > 1 && values.length !== c) {
        issues.add(I, key, `${who}: ${values.length} values, but ${shown} (${inp.layoutTrain}) has ${c} channels (allowed: 1 or ${c} values)`);
      }
    }
    if (cfg.inputBatch > 1 && s[0] !== 1) {
      issues.add(I, 'input_batch', `needs the first dim of the input shape to be 1, but ${shown} starts with ${s[0]}`);
    }
    if (inp.source === 'resizer' && h * w >= RESIZER_MAX_HW) {
      issues.add(P, 'input_source', `${who}: resizer needs h*w < ${RESIZER_MAX_HW}, but ${shown} has ${h}*${w} = ${h * w}`);
    }
  });
}

/**
 * Matches the configuration to the model's inputs and checks the rules that need shapes.
 * Returns a copy with every input's `name` and `shape` filled in (shape: `input_shape`, else the
 * model's). Throws a `ConfigError` (PtqError E_CONFIG) naming the key and line at fault.
 */
export function validateAgainstModel(cfg: PtqConfig, modelInputs: readonly ModelInput[]): PtqConfig {
  const issues = new IssueList(cfg.source.file, cfg.source.lines);
  const modelNames = modelInputs.map((m) => m.name);
  const byName = new Map(modelInputs.map((m) => [m.name, m]));
  const named = cfg.inputs[0]?.name !== undefined;
  let matched: (ModelInput | undefined)[];
  if (named) {
    matched = cfg.inputs.map((inp) => byName.get(inp.name!));
    cfg.inputs.forEach((inp, i) => {
      if (!matched[i]) issues.add(I, 'input_name', `'${inp.name}' is not an input of the model (model inputs: ${quoteList(modelNames)})`);
    });
    const configured = new Set(cfg.inputs.map((x) => x.name));
    const missing = modelNames.filter((m) => !configured.has(m));
    // A misspelt name shows up once, as the unknown name, not again as an unconfigured input.
    if (missing.length && matched.every(Boolean)) {
      issues.add(I, 'input_name', `model input${missing.length > 1 ? 's' : ''} ${quoteList(missing)} not configured; list every model input in input_name`);
    }
  } else {
    matched = [modelInputs.length === 1 ? modelInputs[0] : undefined];
    if (modelInputs.length !== 1) {
      issues.add(
        I,
        'input_name',
        `missing: the model has ${modelInputs.length} inputs (${quoteList(modelNames)}); input_name is required to give their order`,
      );
    }
    const sourceKeys = Object.keys(cfg.compiler.inputSource);
    if (modelInputs.length === 1 && sourceKeys.length === 1 && sourceKeys[0] !== modelNames[0]) {
      issues.add(P, 'input_source', `names input '${sourceKeys[0]}', but the model's input is '${modelNames[0]}'`);
    }
  }
  issues.throwIfAny();

  const shapes = cfg.inputs.map((inp, i): number[] | undefined => {
    const m = matched[i]!;
    const who = `input '${m.name}'`;
    if (inp.shape) {
      const fits = inp.shape.length === m.shape.length && m.shape.every((d, k) => !isStatic(d) || d === inp.shape![k]);
      if (!fits) {
        issues.add(
          I,
          'input_shape',
          `${who}: ${showShape(inp.shape)} does not match the model's ${showShape(m.shape)}; input_shape may only fix the dims the model leaves dynamic`,
        );
      }
      return inp.shape;
    }
    if (!m.shape.every(isStatic)) {
      issues.add(I, 'input_shape', `missing for ${who}: the model's shape ${showShape(m.shape)} has dynamic dims; set input_shape`);
      return undefined;
    }
    return m.shape.map(Number);
  });
  issues.throwIfAny();

  const resolved: PtqConfig = {
    ...cfg,
    inputs: cfg.inputs.map((inp, i) => ({ ...inp, name: matched[i]!.name, shape: shapes[i] })),
  };
  // Shapes written in the YAML were checked at load time; check the ones read from the model.
  shapeRules(resolved, resolved.inputs.map((x, i) => (cfg.inputs[i].shape ? undefined : x.shape)), issues, 'model');
  issues.throwIfAny();
  return resolved;
}

