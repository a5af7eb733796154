import * as path from 'path';
import { BinAttr, BinDeletedNode, BinFile, BinIo, BinModel, BinSegment, attrOf } from '../compile/bin-format';
import { PtqError } from '../errors';
import { integerRange } from '../onnx/dtype';
import {
  BoundaryOp,
  canonicalType,
  castTarget,
  DELETABLE_TYPES,
  deletableOps,
  describeValue,
  INPUT_SIDE_TYPES,
  numberAttr,
  numericParam,
  OUTPUT_SIDE_TYPES,
  permOf,
} from './boundary';

/**
 * `ptq model-modifier` (hb_model_modifier): delete boundary ops of a `.bin` one by one, in the
 * order asked. After each deletion the model input (output) binds to the op's other value —
 * its element type, shape, layout and scale come from the values table — so the runtime still
 * executes the model, now taking (giving) what the op used to take (give). A DeletedNode
 * record keeps what the application must now do itself (the reference's Quantize / Dequantize
 * formulas with the op's scale and zero point, a Transpose's perm, ...): `ptq model-info`
 * prints it and writes it to deleted_nodes_info.txt.
 */

/** Arena alignment of the compiler's memory plan (compile/schedule.ts). */
const ARENA_ALIGN = 64;

export type ModifierAction = { kind: 'remove'; name: string } | { kind: 'all'; type: string };

export interface ModifyResult {
  model: BinModel;
  removed: BinDeletedNode[];
  /** the tool's messages, in order */
  lines: string[];
}

/** The names of the ops deletable now (what `ptq model-modifier M.bin` lists). */
export function deletableNames(m: BinModel): string[] {
  return deletableOps(m).map((b) => b.op.name);
}

/** `['a', 'b']`, the reference's (Python) list spelling. */
export function pyList(names: readonly string[]): string {
  return `[${names.map((n) => `'${n}'`).join(', ')}]`;
}

/** `INFO Nodes that can be deleted: [...]` */
export function deletableLine(m: BinModel): string {
  return `INFO Nodes that can be deleted: ${pyList(deletableNames(m))}`;
}

/** The refusal for a packed file (the reference's text). */
export function packedNotSupported(source: string): PtqError {
  return new PtqError('E_PACKED', 'pack model is not supported', {
    subject: source,
    fix: `modify the original .bin files, then pack them again (ptq pack); '${source}' holds several models`,
  });
}

/** `<dir>/<name>_modified.bin` next to `file`. */
export function modifiedName(file: string): string {
  const ext = path.extname(file);
  const base = ext.toLowerCase() === '.bin' ? file.slice(0, -ext.length) : file;
  return `${base}_modified.bin`;
}

/** Apply `actions` to the only model of `bin` (packed files are refused). */
export function modifyBin(bin: BinFile, actions: readonly ModifierAction[], source: string): { bin: BinFile; result: ModifyResult } {
  if (bin.packed || bin.models.length !== 1) throw packedNotSupported(source);
  const result = modifyModel(bin.models[0], actions, source);
  return { bin: { formatVersion: bin.formatVersion, packed: false, models: [result.model] }, result };
}

/**
 * Delete ops in the order of `actions`: `remove` one named op (it must be deletable at that
 * moment), `all` every op of a type, repeatedly, until none of that type is deletable; at the
 * end the `all` types are tried again until none of them has a deletable op left.
 * All or nothing: an op that cannot be deleted is a PtqError and no model is returned.
 */
export function modifyModel(model: BinModel, actions: readonly ModifierAction[], source: string): ModifyResult {
  let m = model;
  const removed: BinDeletedNode[] = [];
  const lines: string[] = [];
  const remove = (b: BoundaryOp): void => {
    lines.push(`Node '${b.op.name}' found, its OP type is '${b.type}'`);
    const r = removeBoundaryOp(m, b);
    m = r.model;
    removed.push(r.record);
    lines.push(`Node '${b.op.name}' info: ${r.record.info}`);
    lines.push(`Node '${b.op.name}' is removed`);
  };
  const deleteAll = (type: string): number => {
    let count = 0;
    for (;;) {
      const next = deletableOps(m).find((b) => b.type === type);
      if (!next) return count;
      remove(next);
      count++;
    }
  };
  const counts = new Map<string, number>();
  for (const action of actions) {
    if (action.kind === 'remove') {
      remove(findDeletable(m, action.name, source));
      continue;
    }
    const type = checkType(action.type);
    counts.set(type, (counts.get(type) ?? 0) + deleteAll(type));
  }
  // `-a` means every node of the type: one deleted later can free one of an earlier type
  for (let more = counts.size > 0; more; ) {
    more = false;
    for (const [type, n] of counts) {
      const k = deleteAll(type);
      if (k) {
        counts.set(type, n + k);
        more = true;
      }
    }
  }
  for (const [type, n] of counts) if (n === 0) lines.push(`WARNING no deletable node of type '${type}' (deletable now: ${pyList(deletableNames(m))})`);
  if (removed.length === 0) {
    throw new PtqError('E_MODIFIER_NOTHING', `nothing was deleted from '${source}'`, {
      subject: source,
      fix: `the deletable nodes now are ${pyList(deletableNames(m))} (list them with: ptq model-modifier ${source})`,
    });
  }
  return { model: m, removed, lines };
}

function checkType(type: string): string {
  const t = canonicalType(type);
  if (!DELETABLE_TYPES.includes(t)) {
    throw new PtqError('E_CLI_ARGS', `model-modifier: '-a ${type}': only ${DELETABLE_TYPES.join(', ')} nodes can be deleted`, {
      subject: type,
      fix: `use -a with one of: ${DELETABLE_TYPES.join(', ')}`,
    });
  }
  return t;
}

/** The named op, which must be deletable now; a PtqError saying why not otherwise. */
function findDeletable(m: BinModel, name: string, source: string): BoundaryOp {
  const now = deletableOps(m);
  const hit = now.find((b) => b.op.name === name);
  if (hit) return hit;
  const list = pyList(now.map((b) => b.op.name));
  const op = m.segments.flatMap((s) => s.ops).find((o) => o.name === name);
  if (!op) {
    throw new PtqError('E_NODE_NAME', `'${source}' has no node named '${name}'`, {
      subject: name,
      fix: `the deletable nodes now are ${list} (list them with: ptq model-modifier ${source})`,
    });
  }
  const type = canonicalType(op.type);
  const why =
    INPUT_SIDE_TYPES.includes(type) || OUTPUT_SIDE_TYPES.includes(type)
      ? `it is not next to a model ${INPUT_SIDE_TYPES.includes(type) && !OUTPUT_SIDE_TYPES.includes(type) ? 'input' : OUTPUT_SIDE_TYPES.includes(type) && !INPUT_SIDE_TYPES.includes(type) ? 'output' : 'input or output'} (other nodes sit between it and the model boundary, or read the same value)`
      : `only ${INPUT_SIDE_TYPES.join('/')} nodes at a model input and ${OUTPUT_SIDE_TYPES.join('/')} nodes at a model output can be deleted`;
  throw new PtqError('E_NODE_NOT_DELETABLE', `node '${name}' (${op.type}) of '${source}' cannot be deleted: ${why}`, {
    subject: name,
    fix: `delete nodes one by one from the boundary inward; the deletable nodes now are ${list}`,
  });
}

// ---------------------------------------------------------------------------------------------
// one deletion

/** Remove one deletable op; returns the new model (the input is not changed) and its record. */
export function removeBoundaryOp(model: BinModel, b: BoundaryOp): { model: BinModel; record: BinDeletedNode } {
  const m = copyModel(model);
  const record = deletedRecord(model, b);
  const inner = m.values.find((v) => v.name === b.innerValue);
  if (!inner) throw new Error(`value '${b.innerValue}' is not in the values table`);
  const zp = b.type === 'Quantize' || b.type === 'Dequantize' ? zeroPointOf(model, b) : undefined;
  const ios: BinIo[] = b.position === 'input' ? m.inputs : m.outputs;
  for (const io of ios) {
    if (io.value !== b.boundaryValue) continue;
    io.value = inner.name;
    io.dtype = inner.dtype;
    io.shape = inner.shape.slice();
    io.layout = inner.layout;
    io.scale = inner.scale;
    if (zp !== undefined && zp.length === 1) io.zeroPoint = zp[0];
  }
  // the op leaves its segment (an emptied segment goes)
  const seg = m.segments[b.segment];
  seg.ops = seg.ops.filter((o) => o.name !== b.op.name);
  m.segments = m.segments.filter((s) => s.ops.length > 0);
  // values and constants nothing refers to any more
  const used = new Set<string>();
  for (const io of [...m.inputs, ...m.outputs]) used.add(io.value);
  for (const s of m.segments) for (const o of s.ops) for (const v of [...o.inputs, ...o.outputs]) if (v) used.add(v);
  m.values = m.values.filter((v) => used.has(v.name));
  m.tensors = m.tensors.filter((t) => used.has(t.name));
  // the memory plan: model inputs/outputs live outside the arena (used from before the first
  // step / until after the last); later steps move up by one; the arena ends where its last
  // value does (64-byte aligned, as the compiler plans it)
  const steps = m.segments.reduce((n, sg) => n + sg.ops.length, 0);
  for (const v of m.values) {
    if (v.firstUse > b.step) v.firstUse--;
    if (v.lastUse > b.step) v.lastUse--;
    if (v.name !== inner.name) continue;
    v.offset = -1;
    if (b.position === 'input') v.firstUse = -1;
    else v.lastUse = steps;
  }
  const end = m.values.reduce((e, v) => (v.offset >= 0 ? Math.max(e, v.offset + v.bytes) : e), 0);
  m.arenaBytes = Math.min(m.arenaBytes, Math.ceil(end / ARENA_ALIGN) * ARENA_ALIGN);
  refreshSegmentBoundaries(m);
  m.deletedNodes = [...m.deletedNodes, record];
  return { model: m, record };
}

/** Segment inputs/outputs after ops moved: drop stale names, add the new crossings. */
function refreshSegmentBoundaries(m: BinModel): void {
  const constants = new Set(m.tensors.map((t) => t.name));
  const producer = new Map<string, number>();
  m.segments.forEach((s, k) => s.ops.forEach((o) => o.outputs.forEach((v) => v && producer.set(v, k))));
  const readOutside = new Set<string>();
  m.segments.forEach((s, k) => {
    for (const o of s.ops) for (const v of o.inputs) if (v && producer.has(v) && producer.get(v) !== k) readOutside.add(v);
  });
  for (const io of m.outputs) readOutside.add(io.value);
  m.segments.forEach((s: BinSegment, k) => {
    const reads: string[] = [];
    const writes: string[] = [];
    for (const o of s.ops) {
      for (const v of o.inputs) if (v && producer.get(v) !== k && !reads.includes(v)) reads.push(v);
      for (const v of o.outputs) if (v) writes.push(v);
    }
    const inputs = s.inputs.filter((v) => reads.includes(v));
    for (const v of reads) if (!constants.has(v) && !inputs.includes(v)) inputs.push(v);
    const outputs = s.outputs.filter((v) => writes.includes(v));
    for (const v of writes) if (readOutside.has(v) && !outputs.includes(v)) outputs.push(v);
    s.inputs = inputs;
    s.outputs = outputs;
  });
}

/** A copy deep enough that editing ios, values, segments and op lists leaves `m` alone (constants' bytes are shared). */
function copyModel(m: BinModel): BinModel {
  return {
    ...m,
    inputs: m.inputs.map((io) => ({ ...io, shape: io.shape.slice() })),
    outputs: m.outputs.map((io) => ({ ...io, shape: io.shape.slice() })),
    values: m.values.map((v) => ({ ...v, shape: v.shape.slice() })),
    tensors: m.tensors.slice(),
    segments: m.segments.map((s) => ({ ...s, ops: s.ops.slice(), inputs: s.inputs.slice(), outputs: s.outputs.slice() })),
    deletedNodes: m.deletedNodes.slice(),
  };
}

// ---------------------------------------------------------------------------------------------
// what the application must now do

function scaleOf(m: BinModel, b: BoundaryOp): number[] {
  const s = numericParam(m, b.op, 'scale', 1);
  if (s && s.length) return s;
  // the integer side's scale from the values table (Quantize: its output; Dequantize: its input)
  const v = m.values.find((x) => x.name === b.innerValue);
  return [v?.scale ?? 0];
}

function zeroPointOf(m: BinModel, b: BoundaryOp): number[] {
  const z = numericParam(m, b.op, 'zero_point', 2);
  return z && z.length ? z : [0];
}

/**
 * NHWC values are stored channels-last with their shape in that order; an op that is not
 * elementwise (Reshape, Softmax) works on the logical NCHW order, so its record says where the
 * data is NHWC (`in_layout`: what the application gets, `out_layout`: what the op gave).
 */
function layoutAttrs(m: BinModel, b: BoundaryOp): BinAttr[] {
  const layout = (name: string): string => m.values.find((v) => v.name === name)?.layout ?? '';
  const out: BinAttr[] = [];
  if (layout(b.innerValue) === 'NHWC') out.push({ name: 'in_layout', s: 'NHWC' });
  if (layout(b.boundaryValue) === 'NHWC') out.push({ name: 'out_layout', s: 'NHWC' });
  return out;
}

function nhwcNote(m: BinModel, b: BoundaryOp): string {
  const a = layoutAttrs(m, b);
  if (!a.length) return '';
  const parts = a.map((x) => (x.name === 'in_layout' ? 'it is stored NHWC: take it to NCHW first' : 'store the result NHWC'));
  return ` (${parts.join('; ')})`;
}

function fmtList(xs: number[]): string {
  return xs.length === 1 ? String(xs[0]) : `[${xs.join(',')}]`;
}

/** The DeletedNode record of `b` (attributes the application needs, and one line for deleted_nodes_info.txt). */
export function deletedRecord(m: BinModel, b: BoundaryOp): BinDeletedNode {
  const io = (b.position === 'input' ? m.inputs : m.outputs).filter((x) => x.value === b.boundaryValue).map((x) => x.name);
  const ioName = io.join(',');
  const before = b.position === 'input' ? describeValue(m, b.boundaryValue) : describeValue(m, b.innerValue);
  const after = b.position === 'input' ? describeValue(m, b.innerValue) : describeValue(m, b.boundaryValue);
  const attrs: BinAttr[] = [];
  let todo: string;
  const axis = attrOf(b.op.attrs, 'axis');
  switch (b.type) {
    case 'Quantize': {
      const scale = scaleOf(m, b);
      const zp = zeroPointOf(m, b);
      const inner = m.values.find((v) => v.name === b.innerValue);
      const [lo, hi] = integerRange(inner?.dtype ?? 'int8') ?? [-128, 127];
      attrs.push(numberAttr('scale', scale, false), numberAttr('zero_point', zp, true));
      if (scale.length > 1 && axis?.i !== undefined) attrs.push({ name: 'axis', i: axis.i });
      todo = `feed ${inner?.dtype ?? 'int8'} data quantized as qx = clamp(round(x / scale) + zero_point, ${lo}, ${hi}) with scale=${fmtList(scale)} zero_point=${fmtList(zp)}${scale.length > 1 && axis?.i !== undefined ? ` along axis ${axis.i}` : ''}`;
      break;
    }
    case 'Dequantize': {
      const scale = scaleOf(m, b);
      const zp = zeroPointOf(m, b);
      attrs.push(numberAttr('scale', scale, false), numberAttr('zero_point', zp, true));
      if (scale.length > 1 && axis?.i !== undefined) attrs.push({ name: 'axis', i: axis.i });
      todo = `dequantize the output as deqx = (x - zero_point) * scale with scale=${fmtList(scale)} zero_point=${fmtList(zp)}${scale.length > 1 && axis?.i !== undefined ? ` along axis ${axis.i}` : ''}`;
      break;
    }
    case 'Transpose': {
      const rank = m.values.find((v) => v.name === b.boundaryValue)?.shape.length ?? 0;
      const perm = permOf(m, b.op, rank);
      attrs.push({ name: 'perm', ints: perm });
      todo = b.position === 'input' ? `feed the data transposed with perm=[${perm.join(',')}]` : `transpose the output with perm=[${perm.join(',')}]`;
      break;
    }
    case 'Cast': {
      const to = attrOf(b.op.attrs, 'to')?.i;
      const target = castTarget(to) ?? m.values.find((v) => v.name === b.boundaryValue)?.dtype ?? 'float32';
      if (to !== undefined) attrs.push({ name: 'to', i: to });
      attrs.push({ name: 'dtype', s: target });
      todo = `cast the output to ${target}`;
      break;
    }
    case 'Reshape': {
      const shape = m.values.find((v) => v.name === b.boundaryValue)?.shape ?? [];
      attrs.push({ name: 'shape', ints: shape.slice() }, ...layoutAttrs(m, b));
      todo = `reshape the output${nhwcNote(m, b)} to [${shape.join(',')}]`;
      break;
    }
    case 'Softmax': {
      const ax = axis?.i ?? -1;
      attrs.push({ name: 'axis', i: ax }, ...layoutAttrs(m, b));
      todo = `apply Softmax over axis ${ax} to the output${nhwcNote(m, b)}`;
      break;
    }
    default:
      todo = `apply ${b.type} to the ${b.position}`;
  }
  const info = `${b.op.name}: ${b.type} at model ${b.position} '${ioName}' (${before} -> ${after}); the application must ${todo}`;
  return { name: b.op.name, opType: b.type, position: b.position, io: ioName, attrs, info };
}
