/**
 * The YAML schema of the reference toolchain (`hb_mapper makertbin` configuration), one zod
 * object per group. Each key's schema turns the raw YAML value into a typed value (or leaves
 * it undefined when the key is absent or empty) and reports a one-line message that names the
 * allowed values. Per-input keys come out as arrays (one entry per `;`-separated value, `null`
 * for `'None'`); matching them to inputs is `normalize.ts`'s job, cross-key rules `rules.ts`'s.
 */
import * as yaml from 'js-yaml';
import { z } from 'zod';
import {
  CAL_DATA_TYPES,
  CALIBRATION_TYPES,
  COMPILE_MODES,
  CUSTOM_OP_METHODS,
  DEBUG_MODES,
  INPUT_SOURCES,
  INPUT_TYPES_RT,
  INPUT_TYPES_TRAIN,
  InputSource,
  LAYOUTS,
  MARCHES,
  NODE_DATA_TYPES,
  NodeDataType,
  NodeInfo,
  NORM_TYPES,
  OPTIMIZATIONS,
  OPTIMIZE_LEVELS,
  PLACEMENTS,
  REMOVE_NODE_TYPES,
  SPACES_AND_RANGES,
} from './types';
import { showValue } from './issues';

// ---------------------------------------------------------------------------------------------
// Value parsers: raw YAML value → typed value, or a message fragment that follows the value.

/** `value: undefined` means "not set" (absent, empty, or null in the YAML). */
export type Parsed<T> = { ok: true; value: T | undefined } | { ok: false; message: string };
export type ValueParser<T> = (raw: unknown) => Parsed<T>;

const ok = <T>(value: T | undefined): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/** A string, or a number written without quotes (node names like `123` are common). */
export function text(raw: unknown): Parsed<string> {
  if (raw === null || raw === undefined) return ok(undefined);
  if (typeof raw === 'number' && Number.isFinite(raw)) return ok(String(raw));
  if (typeof raw !== 'string') return fail(`expected text, got ${showValue(raw)}`);
  const t = raw.trim();
  return ok(t === '' ? undefined : t);
}

/** One of `values`; matched case-insensitively and returned in the reference's spelling. */
export function choice<T extends string>(values: readonly T[]): ValueParser<T> {
  return (raw) => {
    const t = text(raw);
    if (!t.ok) return fail(`${t.message} (allowed: ${values.join(', ')})`);
    if (t.value === undefined) return ok(undefined);
    const hit = values.find((v) => v.toLowerCase() === t.value!.toLowerCase());
    return hit ? ok(hit) : fail(`${showValue(t.value)} is not allowed (allowed: ${values.join(', ')})`);
  };
}

/** `True`/`False` (YAML booleans; the quoted strings are accepted too). */
export function bool(raw: unknown): Parsed<boolean> {
  if (raw === null || raw === undefined) return ok(undefined);
  if (typeof raw === 'boolean') return ok(raw);
  if (typeof raw === 'string' && /^(true|false)$/i.test(raw.trim())) return ok(raw.trim().toLowerCase() === 'true');
  return fail(`${showValue(raw)} is not a boolean (allowed: True, False)`);
}

/** An integer accepted by `inRange`, described by `allowed` (e.g. `1-128`). */
export function integer(inRange: (n: number) => boolean, allowed: string): ValueParser<number> {
  return (raw) => {
    if (raw === null || raw === undefined) return ok(undefined);
    let n: number | undefined;
    if (typeof raw === 'number') n = raw;
    else if (typeof raw === 'string' && /^\s*[+-]?\d+\s*$/.test(raw)) n = Number(raw);
    else if (typeof raw === 'string' && raw.trim() === '') return ok(undefined);
    if (n === undefined || !Number.isInteger(n)) return fail(`${showValue(raw)} is not an integer (allowed: ${allowed})`);
    return inRange(n) ? ok(n) : fail(`${n} is out of range (allowed: ${allowed})`);
  };
}

/** A finite number in [min, max]. */
export function number(min: number, max: number): ValueParser<number> {
  return (raw) => {
    if (raw === null || raw === undefined || (typeof raw === 'string' && raw.trim() === '')) return ok(undefined);
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : NaN;
    if (!Number.isFinite(n)) return fail(`${showValue(raw)} is not a number (allowed: ${min}-${max})`);
    return n >= min && n <= max ? ok(n) : fail(`${n} is out of range (allowed: ${min}-${max})`);
  };
}

/** An item parser of a `;` list: the message fragment follows the item text. */
export type ItemParser<T> = (item: string) => { ok: true; value: T } | { ok: false; message: string };

function choiceItem<T extends string>(values: readonly T[]): ItemParser<T> {
  return (item) => {
    const hit = values.find((v) => v.toLowerCase() === item.toLowerCase());
    return hit ? { ok: true, value: hit } : { ok: false, message: `is not allowed (allowed: ${values.join(', ')})` };
  };
}

const nameItem: ItemParser<string> = (item) => ({ ok: true, value: item });

/** `'None'`, case-insensitive: "no value for this input". */
const isNone = (item: string): boolean => item.toLowerCase() === 'none';

/** `1x3x224x224` (positive dims separated by `x`), or `'None'` = read it from the model. */
const shapeItem: ItemParser<number[] | null> = (item) => {
  if (isNone(item)) return { ok: true, value: null };
  if (!/^\d+(\s*[xX]\s*\d+)*$/.test(item)) {
    return { ok: false, message: "is not a shape (allowed: positive dims separated by 'x', e.g. 1x3x224x224, or 'None')" };
  }
  const dims = item.split(/\s*[xX]\s*/).map(Number);
  if (dims.some((d) => d < 1)) return { ok: false, message: 'has a dim < 1 (allowed: positive dims, e.g. 1x3x224x224)' };
  return { ok: true, value: dims };
};

/** `'103.94 116.78 123.68'` (one value, or one per channel, separated by spaces), or `'None'`. */
const numbersItem: ItemParser<number[] | null> = (item) => {
  if (isNone(item)) return { ok: true, value: null };
  const parts = item.split(/[\s,]+/).filter((p) => p !== '');
  const values = parts.map(Number);
  if (!parts.length || values.some((v) => !Number.isFinite(v))) {
    return {
      ok: false,
      message: "is not a number list (allowed: one number, or one per channel separated by spaces, or 'None')",
    };
  }
  return { ok: true, value: values };
};

/**
 * A `;`-separated list (`'a; b; c'`), a single scalar, or a YAML sequence of scalars. Blank
 * entries are refused except one trailing `;`. An empty string is "not set".
 */
export function list<T>(item: ItemParser<T>): ValueParser<T[]> {
  return (raw) => {
    if (raw === null || raw === undefined) return ok(undefined);
    let items: string[];
    if (Array.isArray(raw)) {
      items = [];
      for (const [i, v] of raw.entries()) {
        if (typeof v === 'string' && v.trim() !== '') items.push(v.trim());
        else if (typeof v === 'number' && Number.isFinite(v)) items.push(String(v));
        else return fail(`item ${i + 1} of the YAML list is ${showValue(v)}; expected text`);
      }
      if (!items.length) return ok(undefined);
    } else if (typeof raw === 'number' && Number.isFinite(raw)) {
      items = [String(raw)];
    } else if (typeof raw === 'string') {
      items = raw.split(';').map((s) => s.trim());
      if (items.length > 1 && items[items.length - 1] === '') items.pop();
      if (items.length === 1 && items[0] === '') return ok(undefined);
      const blank = items.indexOf('');
      if (blank >= 0) {
        return fail(`${showValue(raw)} has an empty value at position ${blank + 1} (values are separated by ';')`);
      }
    } else {
      return fail(`expected text (values separated by ';'), got ${showValue(raw)}`);
    }
    const out: T[] = [];
    for (const [i, it] of items.entries()) {
      const r = item(it);
      if (!r.ok) return fail(`${showValue(it)}${items.length > 1 ? ` (value ${i + 1} of ${items.length})` : ''} ${r.message}`);
      out.push(r.value);
    }
    return ok(out);
  };
}

/** Numbers per input: a `;` list of number lists; a bare YAML number is one input's single value. */
function numberLists(raw: unknown): Parsed<(number[] | null)[]> {
  if (Array.isArray(raw)) {
    return fail("expected text such as '103.94 116.78 123.68' (per-input values separated by ';'), got a YAML list");
  }
  return list(numbersItem)(raw);
}

/** A mapping also accepted as a quoted flow mapping (`'{"data": "pyramid"}'`). */
function mapping(raw: unknown): { ok: true; value: Record<string, unknown> | undefined } | { ok: false } {
  if (raw === null || raw === undefined) return { ok: true, value: undefined };
  let v: unknown = raw;
  if (typeof v === 'string' && v.trim().startsWith('{')) {
    try {
      v = yaml.load(v);
    } catch {
      return { ok: false };
    }
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { ok: true, value: v as Record<string, unknown> };
  return { ok: false };
}

const NODE_INFO_HELP =
  `allowed: 'node:int16;node2:int16', or a mapping node -> {ON: ${PLACEMENTS.join('|')}, ` +
  `InputType: ${NODE_DATA_TYPES.join('|')}, InputType<i>: ${NODE_DATA_TYPES.join('|')}, OutputType: ${NODE_DATA_TYPES.join('|')}}`;

/**
 * `node_info`: either the string form `'conv1:int16;conv2:int16'` (the node's inputs and
 * outputs become int16) or the mapping form `{conv1: {ON: BPU, InputType: int16, InputType1:
 * int16, OutputType: int16}}`.
 */
export function nodeInfo(raw: unknown): Parsed<Record<string, NodeInfo>> {
  if (raw === null || raw === undefined) return ok(undefined);
  const out: Record<string, NodeInfo> = {};
  const dataType = choiceItem(NODE_DATA_TYPES);
  if (typeof raw === 'string' && !raw.trim().startsWith('{')) {
    const entries = list(nameItem)(raw);
    if (!entries.ok) return fail(`${entries.message}; ${NODE_INFO_HELP}`);
    for (const entry of entries.value ?? []) {
      const m = /^(.+?)\s*:\s*([^:]+)$/.exec(entry);
      if (!m) return fail(`entry ${showValue(entry)} is not 'node_name:type' (${NODE_INFO_HELP})`);
      const t = dataType(m[2].trim());
      if (!t.ok) return fail(`type ${showValue(m[2].trim())} of node '${m[1]}' ${t.message}`);
      out[m[1]] = { inputType: t.value, outputType: t.value };
    }
    return ok(Object.keys(out).length ? out : undefined);
  }
  const map = mapping(raw);
  if (!map.ok) return fail(`expected text or a mapping, got ${showValue(raw)} (${NODE_INFO_HELP})`);
  for (const [node, spec] of Object.entries(map.value ?? {})) {
    const fields = mapping(spec);
    if (!fields.ok || !fields.value || !Object.keys(fields.value).length) {
      return fail(`node '${node}' needs a mapping with ON/InputType/OutputType, got ${showValue(spec)} (${NODE_INFO_HELP})`);
    }
    const info: NodeInfo = {};
    for (const [field, value] of Object.entries(fields.value)) {
      const v = text(value);
      const valueText = v.ok ? (v.value ?? '') : '';
      const input = /^InputType(\d*)$/.exec(field);
      if (field === 'ON') {
        const p = choiceItem(PLACEMENTS)(valueText);
        if (!p.ok) return fail(`node '${node}': ON ${showValue(value)} ${p.message}`);
        info.on = p.value;
      } else if (input || field === 'OutputType') {
        const t = dataType(valueText);
        if (!t.ok) return fail(`node '${node}': ${field} ${showValue(value)} ${t.message}`);
        if (field === 'OutputType') info.outputType = t.value;
        else if (input![1] === '') info.inputType = t.value;
        else info.inputTypes = { ...info.inputTypes, [Number(input![1])]: t.value as NodeDataType };
      } else if (/^OutputType\d+$/.test(field)) {
        return fail(`node '${node}': ${field} is not supported; OutputType applies to all outputs and takes no index`);
      } else {
        return fail(`node '${node}': unknown field '${field}' (allowed: ON, InputType, InputType<i>, OutputType)`);
      }
    }
    out[node] = info;
  }
  return ok(Object.keys(out).length ? out : undefined);
}

/** `input_source: {"data": "pyramid"}`: input name → ddr | pyramid | resizer. */
export function inputSource(raw: unknown): Parsed<Record<string, InputSource>> {
  const allowed = `allowed: a mapping input_name -> ${INPUT_SOURCES.join('|')}, e.g. {"data": "pyramid"}`;
  const map = mapping(raw);
  if (!map.ok) return fail(`expected a mapping, got ${showValue(raw)} (${allowed})`);
  if (!map.value) return ok(undefined);
  const out: Record<string, InputSource> = {};
  for (const [name, value] of Object.entries(map.value)) {
    const v = text(value);
    const s = choiceItem(INPUT_SOURCES)(v.ok ? (v.value ?? '') : '');
    if (!s.ok) return fail(`input '${name}': ${showValue(value)} ${s.message}`);
    out[name] = s.value;
  }
  return ok(Object.keys(out).length ? out : undefined);
}

/** `output_model_file_prefix`: a file-name prefix, not a path. */
function filePrefix(raw: unknown): Parsed<string> {
  const t = text(raw);
  if (!t.ok || t.value === undefined) return t;
  if (/[/\\]/.test(t.value) || t.value === '.' || t.value === '..') {
    return fail(`${showValue(t.value)} is not a file name prefix (no '/' or '\\'; the folder is working_dir)`);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// zod: one object per group; unknown keys are refused.

/** Wraps a value parser as an optional zod field whose issues carry our message. */
function field<T>(parse: ValueParser<T>) {
  return z
    .unknown()
    .transform((raw, ctx): T | undefined => {
      const r = parse(raw);
      if (r.ok) return r.value;
      ctx.addIssue({ code: 'custom', message: r.message });
      return z.NEVER;
    })
    .optional();
}

export const modelParametersSchema = z.strictObject({
  prototxt: field(text),
  caffe_model: field(text),
  onnx_model: field(text),
  march: field(choice(MARCHES)),
  output_model_file_prefix: field(filePrefix),
  working_dir: field(text),
  layer_out_dump: field(bool),
  output_nodes: field(list(nameItem)),
  remove_node_type: field(list(choiceItem(REMOVE_NODE_TYPES))),
  remove_node_name: field(list(nameItem)),
  set_node_data_type: field(
    list<string>((item) => {
      const m = /^(.+?)\s*:\s*([^:]+)$/.exec(item);
      if (!m) return { ok: true, value: item };
      return m[2].trim().toLowerCase() === 'int16'
        ? { ok: true, value: m[1] }
        : { ok: false, message: "sets a type other than int16 (allowed: 'node' or 'node:int16')" };
    }),
  ),
  debug_mode: field(choice(DEBUG_MODES)),
  node_info: field(nodeInfo),
});

export const inputParametersSchema = z.strictObject({
  input_name: field(list(nameItem)),
  input_type_train: field(list(choiceItem(INPUT_TYPES_TRAIN))),
  input_layout_train: field(list(choiceItem(LAYOUTS))),
  input_type_rt: field(list(choiceItem(INPUT_TYPES_RT))),
  input_layout_rt: field(
    list<(typeof LAYOUTS)[number] | null>((item) =>
      isNone(item) ? { ok: true, value: null } : choiceItem(LAYOUTS)(item),
    ),
  ),
  input_space_and_range: field(list(choiceItem(SPACES_AND_RANGES))),
  input_shape: field(list(shapeItem)),
  input_batch: field(integer((n) => n >= 1 && n <= 128, '1-128')),
  norm_type: field(list(choiceItem(NORM_TYPES))),
  mean_value: field(numberLists),
  scale_value: field(numberLists),
});

export const calibrationParametersSchema = z.strictObject({
  cal_data_dir: field(list(nameItem)),
  cal_data_type: field(list(choiceItem(CAL_DATA_TYPES))),
  preprocess_on: field(bool),
  calibration_type: field(choice(CALIBRATION_TYPES)),
  max_percentile: field(number(0, 1)),
  per_channel: field(bool),
  /** nx-ptq extension (not in the reference): fast bias correction of Conv/Gemm biases, default False */
  bias_correction: field(bool),
  /** nx-ptq extension: histogram values per tensor per sample (one pass), 0 = every value (two passes); default 8192 */
  histogram_sample: field(integer((n) => n >= 0 && n <= 2 ** 31, '0 (every value) or a number of values')),
  run_on_cpu: field(list(nameItem)),
  run_on_bpu: field(list(nameItem)),
  optimization: field(choice(OPTIMIZATIONS)),
});

export const compilerParametersSchema = z.strictObject({
  compile_mode: field(choice(COMPILE_MODES)),
  debug: field(bool),
  core_num: field(integer((n) => n === 1 || n === 2, '1, 2')),
  optimize_level: field(choice(OPTIMIZE_LEVELS)),
  input_source: field(inputSource),
  max_time_per_fc: field(integer((n) => n === 0 || (n >= 1000 && n <= 4294967295), '0 or 1000-4294967295')),
  jobs: field(integer((n) => n >= 1, 'an integer >= 1')),
});

export const customOpSchema = z.strictObject({
  custom_op_method: field(choice(CUSTOM_OP_METHODS)),
  op_register_files: field(list(nameItem)),
  custom_op_dir: field(text),
});

export const GROUP_SCHEMAS = {
  model_parameters: modelParametersSchema,
  input_parameters: inputParametersSchema,
  calibration_parameters: calibrationParametersSchema,
  compiler_parameters: compilerParametersSchema,
  custom_op: customOpSchema,
} as const;

export type GroupName = keyof typeof GROUP_SCHEMAS;
export const GROUP_NAMES = Object.keys(GROUP_SCHEMAS) as GroupName[];
/** The four groups every configuration must have (`custom_op` is optional). */
export const REQUIRED_GROUPS: readonly GroupName[] = [
  'model_parameters',
  'input_parameters',
  'calibration_parameters',
  'compiler_parameters',
];

/** Keys the reference tables mark Required (model-file keys depend on the model type: see `modelFileKeys`). */
export const REQUIRED_KEYS: Record<GroupName, readonly string[]> = {
  model_parameters: ['march', 'output_model_file_prefix'],
  input_parameters: ['input_type_train', 'input_layout_train', 'input_type_rt', 'norm_type'],
  calibration_parameters: ['calibration_type'],
  compiler_parameters: ['optimize_level'],
  custom_op: [],
};

export type RawModelParameters = z.output<typeof modelParametersSchema>;
export type RawInputParameters = z.output<typeof inputParametersSchema>;
export type RawCalibrationParameters = z.output<typeof calibrationParametersSchema>;
export type RawCompilerParameters = z.output<typeof compilerParametersSchema>;
export type RawCustomOp = z.output<typeof customOpSchema>;

/** The groups after per-key parsing, before normalisation. */
export interface RawConfig {
  model_parameters: RawModelParameters;
  input_parameters: RawInputParameters;
  calibration_parameters: RawCalibrationParameters;
  compiler_parameters: RawCompilerParameters;
  custom_op?: RawCustomOp;
}

export const ONNX_KEYS = ['onnx_model'] as const;
export const CAFFE_KEYS = ['caffe_model', 'prototxt'] as const;

/**
 * Which model-file keys are required. With an explicit model type (the CLI's `--model-type`)
 * that type's keys; otherwise onnx when `onnx_model` is set, caffe when a caffe key is set.
 */
export function modelFileKeys(
  present: (key: string) => boolean,
  modelType?: 'onnx' | 'caffe',
): { kind?: 'onnx' | 'caffe'; missing: string[]; conflict?: string } {
  const hasOnnx = present('onnx_model');
  const hasCaffe = CAFFE_KEYS.some(present);
  let kind = modelType;
  if (!kind) {
    if (hasOnnx && hasCaffe) {
      return {
        missing: [],
        conflict:
          "both onnx_model and caffe_model/prototxt are set; keep onnx_model for an ONNX model or caffe_model + prototxt for a Caffe model",
      };
    }
    kind = hasCaffe ? 'caffe' : hasOnnx ? 'onnx' : undefined;
  }
  if (!kind) return { missing: [], conflict: "no model file: set onnx_model (ONNX) or caffe_model + prototxt (Caffe)" };
  const keys: readonly string[] = kind === 'onnx' ? ONNX_KEYS : CAFFE_KEYS;
  return { kind, missing: keys.filter((k) => !present(k)) };
}

/** Closest key by edit distance, for "did you mean". */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The keys a group accepts, for "unknown key" messages. */
export function groupKeys(group: GroupName): string[] {
  return Object.keys(GROUP_SCHEMAS[group].shape);
}


