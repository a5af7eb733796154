import * as path from 'path';
import { BinFile, BinIo, BinModel, BinParamGroup, selectModel } from '../compile/bin-format';
import { DType } from '../onnx/dtype';
import { writeFileAtomic } from '../onnx/encode';

/**
 * `ptq model-info` (hb_model_info): the dependencies and the compile-time parameters kept in a
 * `.bin`, in the reference's layout — `key<padded to 20>: value` lines under
 * `############# <group> info #############` headers, one framed block per model input, the
 * input/output data types, and the deleted nodes (whose records also go to
 * deleted_nodes_info.txt, one line per node).
 */

export const DELETED_NODES_FILE = 'deleted_nodes_info.txt';

/** The group headers, in the reference's order (other groups follow in file order). */
const GROUP_ORDER = ['model_parameters', 'input_parameters', 'calibration_parameters', 'compiler_parameters'];

/**
 * Our InputDataType numbering (the reference prints `<InputDataType.NV12: 7>`): F32 = 5 and
 * NV12 = 7 as in the reference's example output; the other numbers are nx-ptq's own.
 */
const DATA_TYPE_CODES: Readonly<Record<string, number>> = {
  S8: 0, U8: 1, S16: 2, U16: 3, S32: 4, F32: 5, F64: 6, NV12: 7, YUV444: 8, RGB: 9, BGR: 10, GRAY: 11,
  U32: 12, S64: 13, U64: 14, F16: 15, BOOL: 16, BF16: 17,
};

const DTYPE_NAMES: Readonly<Record<DType, string>> = {
  int8: 'S8', uint8: 'U8', int16: 'S16', uint16: 'U16', int32: 'S32', float32: 'F32', float64: 'F64',
  uint32: 'U32', int64: 'S64', uint64: 'U64', float16: 'F16', bool: 'BOOL', bfloat16: 'BF16', string: 'S8',
};

const IMAGE_TYPES: Readonly<Record<string, string>> = { nv12: 'NV12', yuv444: 'YUV444', rgb: 'RGB', bgr: 'BGR', gray: 'GRAY' };

/** `<InputDataType.F32: 5>` of a model input or output. */
export function dataTypeName(io: BinIo, isInput: boolean): string {
  const image = isInput ? IMAGE_TYPES[io.typeRt] : undefined;
  const name = image ?? DTYPE_NAMES[io.dtype];
  return `<InputDataType.${name}: ${DATA_TYPE_CODES[name]}>`;
}

/** `key                 : value` (keys longer than 20 characters are not padded). */
export function kv(key: string, value: string): string {
  return `${key.padEnd(20)}: ${value}`;
}

function groupLines(groups: BinParamGroup[], name: string): string[] {
  const lines = [`############# ${name} info #############`];
  const of = groups.filter((g) => g.group === name);
  if (name === 'input_parameters') {
    for (const g of of) {
      lines.push('------', `---------input info : ${g.input} ---------`);
      for (const p of g.params) lines.push(kv(p.key, p.value));
      lines.push(`---------input info : ${g.input} end -------`);
    }
    if (of.length) lines.push('------');
    return lines;
  }
  for (const g of of) for (const p of g.params) lines.push(kv(p.key, p.value));
  return lines;
}

/** The report of one model, from its `********* name info *********` header on. */
export function modelInfoLines(m: BinModel): string[] {
  const lines = [`********* ${m.name} info *********`, '############# model deps info #############'];
  lines.push(
    kv('nx-ptq version', m.deps.nxPtqVersion || '--'),
    kv('compiler version', m.deps.compilerVersion || '--'),
    kv('runtime version', m.deps.runtimeVersion || '--'),
    kv('bin format version', String(m.deps.formatVersion)),
  );
  const names = [...GROUP_ORDER];
  for (const g of m.params) if (!names.includes(g.group)) names.push(g.group);
  for (const name of names) lines.push(...groupLines(m.params, name));
  lines.push('--------- input/output types -');
  lines.push(kv('model input types', `[${m.inputs.map((io) => dataTypeName(io, true)).join(', ')}]`));
  lines.push(kv('model output types', `[${m.outputs.map((io) => dataTypeName(io, false)).join(', ')}]`));
  if (m.deletedNodes.length) {
    lines.push('--------- deleted nodes -');
    for (const d of m.deletedNodes) lines.push(`deleted nodes: ${d.name}`);
  }
  return lines;
}

export interface ModelInfoReport {
  /** what the tool prints */
  lines: string[];
  /** the lines of deleted_nodes_info.txt (empty: no file) */
  deleted: string[];
  models: BinModel[];
}

/**
 * The report for `name` (one model of a packed file), or for every model of the file. The
 * first two lines are the tool's banner (`toolVersion`).
 */
export function modelInfoReport(bin: BinFile, name: string | undefined, source: string, toolVersion: string): ModelInfoReport {
  const models = name !== undefined || !bin.packed ? [selectModel(bin, name, source)] : bin.models;
  const lines = ['Start ptq model-info....', `ptq model-info version ${toolVersion}`];
  if (bin.packed && name === undefined) lines.push(`INFO '${source}' is a packed model with ${bin.models.length} models: ${bin.models.map((m) => m.name).join(', ')}`);
  for (const m of models) lines.push(...modelInfoLines(m));
  const deleted = models.flatMap((m) => m.deletedNodes.map((d) => d.info || d.name));
  return { lines, deleted, models };
}

/** Write deleted_nodes_info.txt into `dir` (atomically); returns its path. */
export function writeDeletedNodesInfo(dir: string, deleted: readonly string[]): string {
  const file = path.join(dir, DELETED_NODES_FILE);
  writeFileAtomic(file, deleted.map((l) => `${l.replace(/[\r\n]+/g, ' ')}\n`).join(''));
  return file;
}
