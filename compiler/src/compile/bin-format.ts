import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { PtqError } from '../errors';
import { bytesPerElement, DType, dtypeFromOnnx, dtypeToOnnx } from '../onnx/dtype';
import { writeFileAtomic } from '../onnx/encode';

/**
 * Reading and writing the `.bin` (compiler/proto/bin.proto, shared/DESIGN.md §4). This module
 * knows the container only: the envelope (deps, parameters, inputs/outputs, deleted nodes,
 * perf) and the structure of the program (values, constants, segments of ops), checked so
 * that a reader never follows a dangling name. What each op type means is the runtime's
 * business (runtime/). Every malformed file — truncated, bit-flipped, not a `.bin` at all —
 * becomes one `E_BIN_FORMAT` PtqError naming the file.
 *
 * Constants' bytes stay views of the file's buffer (no second copy of the weights).
 */

export const BIN_MAGIC = 'nx-ptq-bin';
export const BIN_FORMAT_VERSION = 1;

export interface BinFile {
  formatVersion: number;
  packed: boolean;
  models: BinModel[];
}

export interface BinDeps {
  nxPtqVersion: string;
  compilerVersion: string;
  runtimeVersion: string;
  formatVersion: number;
}

export interface BinParam {
  key: string;
  value: string;
}

export interface BinParamGroup {
  /** model_parameters | input_parameters | calibration_parameters | compiler_parameters */
  group: string;
  /** the model input an input_parameters group describes ('' otherwise) */
  input: string;
  params: BinParam[];
}

/** An attribute: exactly one of the value fields is set. */
export interface BinAttr {
  name: string;
  f?: number;
  i?: number;
  s?: string;
  floats?: number[];
  ints?: number[];
}

export interface BinIo {
  name: string;
  value: string;
  dtype: DType;
  shape: number[];
  layout: string;
  typeRt: string;
  typeTrain: string;
  spaceAndRange: string;
  source: string;
  /** 0 for a float value */
  scale: number;
  zeroPoint: number;
}

export interface BinValue {
  name: string;
  dtype: DType;
  shape: number[];
  layout: string;
  /** 0 for a float value */
  scale: number;
  /** byte offset in the activation arena, −1 outside it (model inputs/outputs) */
  offset: number;
  bytes: number;
  firstUse: number;
  lastUse: number;
}

export interface BinTensor {
  name: string;
  dtype: DType;
  dims: number[];
  /** little-endian element bytes (a view of the file when decoded) */
  raw: Uint8Array;
}

export interface BinOpPerf {
  ops: number;
  computeMs: number;
  dataMs: number;
  latencyMs: number;
  loadedBytes: number;
  storedBytes: number;
}

export interface BinOp {
  name: string;
  type: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: BinAttr[];
  sourceNodes: string[];
  perf?: BinOpPerf;
  functionCall: number;
}

export interface BinSegmentPerf {
  latencyMs: number;
  ops: number;
  loadedBytes: number;
  storedBytes: number;
  functionCalls: number;
}

export type SegmentKind = 'bpu' | 'cpu';

export interface BinSegment {
  name: string;
  kind: SegmentKind;
  ops: BinOp[];
  inputs: string[];
  outputs: string[];
  perf?: BinSegmentPerf;
}

export interface BinDeletedNode {
  name: string;
  opType: string;
  position: 'input' | 'output';
  io: string;
  attrs: BinAttr[];
  info: string;
}

export interface BinModel {
  name: string;
  march: string;
  deps: BinDeps;
  params: BinParamGroup[];
  inputs: BinIo[];
  outputs: BinIo[];
  values: BinValue[];
  tensors: BinTensor[];
  segments: BinSegment[];
  arenaBytes: number;
  deletedNodes: BinDeletedNode[];
  /** perf/ PerfEstimate as JSON ('' when absent) */
  perfJson: string;
  debug: boolean;
  graphName: string;
}

// ---------------------------------------------------------------------------------------------
// protobuf

let root: protobuf.Root | undefined;

function binType(name: string): protobuf.Type {
  if (!root) {
    root = new protobuf.Root();
    root.loadSync(path.join(__dirname, '..', '..', 'proto', 'bin.proto'), { keepCase: true });
    root.resolveAll();
  }
  return root.lookupType(`nxptq.bin.${name}`);
}

const ATTR = { UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, FLOATS: 4, INTS: 5 } as const;

/* eslint-disable @typescript-eslint/no-explicit-any -- protobuf plain objects */
type Obj = Record<string, any>;

function attrToProto(a: BinAttr): Obj {
  if (a.f !== undefined) return { name: a.name, type: ATTR.FLOAT, f: a.f };
  if (a.i !== undefined) return { name: a.name, type: ATTR.INT, i: a.i };
  if (a.s !== undefined) return { name: a.name, type: ATTR.STRING, s: a.s };
  if (a.floats !== undefined) return { name: a.name, type: ATTR.FLOATS, floats: a.floats };
  if (a.ints !== undefined) return { name: a.name, type: ATTR.INTS, ints: a.ints };
  throw new Error(`attribute '${a.name}' has no value`);
}

function ioToProto(io: BinIo): Obj {
  return {
    name: io.name, value: io.value, dtype: dtypeToOnnx(io.dtype), shape: io.shape, layout: io.layout,
    type_rt: io.typeRt, type_train: io.typeTrain, space_and_range: io.spaceAndRange, source: io.source,
    scale: io.scale, zero_point: io.zeroPoint,
  };
}

function modelToProto(m: BinModel): Obj {
  return {
    name: m.name,
    march: m.march,
    deps: {
      nx_ptq_version: m.deps.nxPtqVersion, compiler_version: m.deps.compilerVersion,
      runtime_version: m.deps.runtimeVersion, format_version: m.deps.formatVersion,
    },
    params: m.params.map((g) => ({ group: g.group, input: g.input, params: g.params.map((p) => ({ key: p.key, value: p.value })) })),
    inputs: m.inputs.map(ioToProto),
    outputs: m.outputs.map(ioToProto),
    values: m.values.map((v) => ({
      name: v.name, dtype: dtypeToOnnx(v.dtype), shape: v.shape, layout: v.layout, scale: v.scale,
      offset: v.offset, bytes: v.bytes, first_use: v.firstUse, last_use: v.lastUse,
    })),
    tensors: m.tensors.map((t) => ({ name: t.name, dtype: dtypeToOnnx(t.dtype), dims: t.dims, raw: t.raw })),
    segments: m.segments.map((s) => ({
      name: s.name,
      kind: s.kind === 'bpu' ? 0 : 1,
      inputs: s.inputs,
      outputs: s.outputs,
      perf: s.perf && {
        latency_ms: s.perf.latencyMs, ops: s.perf.ops, loaded_bytes: s.perf.loadedBytes,
        stored_bytes: s.perf.storedBytes, function_calls: s.perf.functionCalls,
      },
      ops: s.ops.map((o) => ({
        name: o.name, type: o.type, domain: o.domain, inputs: o.inputs, outputs: o.outputs,
        attrs: o.attrs.map(attrToProto), source_nodes: o.sourceNodes, function_call: o.functionCall,
        perf: o.perf && {
          ops: o.perf.ops, compute_ms: o.perf.computeMs, data_ms: o.perf.dataMs, latency_ms: o.perf.latencyMs,
          loaded_bytes: o.perf.loadedBytes, stored_bytes: o.perf.storedBytes,
        },
      })),
    })),
    arena_bytes: m.arenaBytes,
    deleted_nodes: m.deletedNodes.map((d) => ({
      name: d.name, op_type: d.opType, position: d.position, io: d.io, attrs: d.attrs.map(attrToProto), info: d.info,
    })),
    perf_json: m.perfJson,
    debug: m.debug,
    graph_name: m.graphName,
  };
}

/** Encode a `.bin` (deterministic: the same BinFile gives the same bytes). */
export function encodeBin(file: BinFile): Uint8Array {
  for (const m of file.models) validateModel(m, '<encode>');
  const T = binType('BinFile');
  const msg = T.fromObject({
    format_version: file.formatVersion,
    magic: BIN_MAGIC,
    packed: file.packed,
    models: file.models.map(modelToProto),
  });
  return T.encode(msg).finish();
}

export function writeBinFile(file: string, bin: BinFile): void {
  writeFileAtomic(file, encodeBin(bin));
}

// ---------------------------------------------------------------------------------------------
// decoding

class FormatError extends Error {}

function fail(msg: string): never {
  throw new FormatError(msg);
}

const MAX_DIM = 2 ** 31 - 1;

function num(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'object' && v !== null && 'toNumber' in v ? (v as { toNumber(): number }).toNumber() : Number(v ?? 0);
  if (!Number.isFinite(n)) fail(`${what} is not a number`);
  return n;
}

function dims(v: unknown, what: string): number[] {
  const a = (v as unknown[] | undefined) ?? [];
  if (a.length > 16) fail(`${what} has rank ${a.length}`);
  return a.map((d, i) => {
    const n = num(d, `${what}[${i}]`);
    if (!Number.isInteger(n) || n < 0 || n > MAX_DIM) fail(`${what}[${i}] = ${n} is not a valid dimension`);
    return n;
  });
}

function dtype(code: unknown, what: string): DType {
  const d = dtypeFromOnnx(num(code, what));
  if (!d || d === 'string') fail(`${what} has unknown element type ${String(code)}`);
  return d;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function attrFrom(o: Obj, what: string): BinAttr {
  const name = str(o.name);
  switch (o.type) {
    case ATTR.FLOAT:
      return { name, f: num(o.f, what) };
    case ATTR.INT:
      return { name, i: num(o.i, what) };
    case ATTR.STRING:
      return { name, s: str(o.s) };
    case ATTR.FLOATS:
      return { name, floats: ((o.floats as unknown[]) ?? []).map((x) => num(x, what)) };
    case ATTR.INTS:
      return { name, ints: ((o.ints as unknown[]) ?? []).map((x) => num(x, what)) };
    default:
      return fail(`${what} '${name}' has no value`);
  }
}

function ioFrom(o: Obj, what: string): BinIo {
  return {
    name: str(o.name), value: str(o.value), dtype: dtype(o.dtype, `${what} '${str(o.name)}'`),
    shape: dims(o.shape, `${what} '${str(o.name)}' shape`), layout: str(o.layout), typeRt: str(o.type_rt),
    typeTrain: str(o.type_train), spaceAndRange: str(o.space_and_range), source: str(o.source),
    scale: num(o.scale, 'scale'), zeroPoint: num(o.zero_point, 'zero_point'),
  };
}

function modelFrom(o: Obj): BinModel {
  const d = (o.deps ?? {}) as Obj;
  const name = str(o.name);
  const tensors: BinTensor[] = ((o.tensors as Obj[]) ?? []).map((t) => {
    const raw = t.raw instanceof Uint8Array ? t.raw : new Uint8Array(0);
    return { name: str(t.name), dtype: dtype(t.dtype, `constant '${str(t.name)}'`), dims: dims(t.dims, `constant '${str(t.name)}' dims`), raw };
  });
  return {
    name,
    march: str(o.march),
    deps: {
      nxPtqVersion: str(d.nx_ptq_version), compilerVersion: str(d.compiler_version),
      runtimeVersion: str(d.runtime_version), formatVersion: num(d.format_version, 'deps.format_version'),
    },
    params: ((o.params as Obj[]) ?? []).map((g) => ({
      group: str(g.group), input: str(g.input),
      params: ((g.params as Obj[]) ?? []).map((p) => ({ key: str(p.key), value: str(p.value) })),
    })),
    inputs: ((o.inputs as Obj[]) ?? []).map((x) => ioFrom(x, 'input')),
    outputs: ((o.outputs as Obj[]) ?? []).map((x) => ioFrom(x, 'output')),
    values: ((o.values as Obj[]) ?? []).map((v) => ({
      name: str(v.name), dtype: dtype(v.dtype, `value '${str(v.name)}'`), shape: dims(v.shape, `value '${str(v.name)}' shape`),
      layout: str(v.layout), scale: num(v.scale, 'scale'), offset: num(v.offset, 'offset'), bytes: num(v.bytes, 'bytes'),
      firstUse: num(v.first_use, 'first_use'), lastUse: num(v.last_use, 'last_use'),
    })),
    tensors,
    segments: ((o.segments as Obj[]) ?? []).map((s) => ({
      name: str(s.name),
      kind: s.kind === 1 ? 'cpu' : s.kind === 0 || s.kind === undefined ? 'bpu' : fail(`segment '${str(s.name)}' has unknown kind ${String(s.kind)}`),
      inputs: ((s.inputs as unknown[]) ?? []).map(str),
      outputs: ((s.outputs as unknown[]) ?? []).map(str),
      perf: s.perf ? {
        latencyMs: num(s.perf.latency_ms, 'perf'), ops: num(s.perf.ops, 'perf'), loadedBytes: num(s.perf.loaded_bytes, 'perf'),
        storedBytes: num(s.perf.stored_bytes, 'perf'), functionCalls: num(s.perf.function_calls, 'perf'),
      } : undefined,
      ops: ((s.ops as Obj[]) ?? []).map((op) => ({
        name: str(op.name), type: str(op.type), domain: str(op.domain),
        inputs: ((op.inputs as unknown[]) ?? []).map(str), outputs: ((op.outputs as unknown[]) ?? []).map(str),
        attrs: ((op.attrs as Obj[]) ?? []).map((a) => attrFrom(a, `attribute of op '${str(op.name)}'`)),
        sourceNodes: ((op.source_nodes as unknown[]) ?? []).map(str),
        functionCall: num(op.function_call, 'function_call'),
        perf: op.perf ? {
          ops: num(op.perf.ops, 'perf'), computeMs: num(op.perf.compute_ms, 'perf'), dataMs: num(op.perf.data_ms, 'perf'),
          latencyMs: num(op.perf.latency_ms, 'perf'), loadedBytes: num(op.perf.loaded_bytes, 'perf'), storedBytes: num(op.perf.stored_bytes, 'perf'),
        } : undefined,
      })),
    })),
    arenaBytes: num(o.arena_bytes, 'arena_bytes'),
    deletedNodes: ((o.deleted_nodes as Obj[]) ?? []).map((x) => ({
      name: str(x.name), opType: str(x.op_type),
      position: x.position === 'output' ? 'output' : x.position === 'input' ? 'input' : fail(`deleted node '${str(x.name)}' has position '${str(x.position)}'`),
      io: str(x.io), attrs: ((x.attrs as Obj[]) ?? []).map((a) => attrFrom(a, `attribute of deleted node '${str(x.name)}'`)), info: str(x.info),
    })),
    perfJson: str(o.perf_json),
    debug: o.debug === true,
    graphName: str(o.graph_name),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function elements(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Structural checks: unique names, constants' byte sizes, and a program in which every op
 * reads only model inputs, constants or values produced by an earlier op, and every model
 * output is produced. Throws FormatError (plain Error when encoding our own mistakes).
 */
function validateModel(m: BinModel, source: string): void {
  const where = `model '${m.name}'`;
  if (!m.name) fail('a model has no name');
  const tensors = new Set<string>();
  for (const t of m.tensors) {
    if (!t.name || tensors.has(t.name)) fail(`${where}: constant name '${t.name}' is empty or repeated`);
    tensors.add(t.name);
    const want = elements(t.dims) * bytesPerElement(t.dtype);
    if (t.raw.length !== want) fail(`${where}: constant '${t.name}' has ${t.raw.length} bytes, its ${t.dtype}[${t.dims.join('x')}] needs ${want}`);
  }
  const values = new Map<string, BinValue>();
  for (const v of m.values) {
    if (!v.name || values.has(v.name) || tensors.has(v.name)) fail(`${where}: value name '${v.name}' is empty or repeated`);
    if (elements(v.shape) > MAX_DIM) fail(`${where}: value '${v.name}' is too large`);
    values.set(v.name, v);
  }
  if (m.inputs.length === 0) fail(`${where} has no inputs`);
  if (m.outputs.length === 0) fail(`${where} has no outputs`);
  const defined = new Set<string>(tensors);
  for (const io of m.inputs) {
    if (!values.has(io.value)) fail(`${where}: input '${io.name}' binds to unknown value '${io.value}'`);
    defined.add(io.value);
  }
  const seenOps = new Set<string>();
  for (const s of m.segments) {
    for (const op of s.ops) {
      if (!op.type) fail(`${where}: op '${op.name}' has no type`);
      if (seenOps.has(op.name)) fail(`${where}: op name '${op.name}' is repeated`);
      seenOps.add(op.name);
      for (const i of op.inputs) {
        if (i !== '' && !defined.has(i)) fail(`${where}: op '${op.name}' reads '${i}' before anything produces it`);
      }
      for (const o of op.outputs) {
        if (o === '') continue;
        if (!values.has(o)) fail(`${where}: op '${op.name}' writes unknown value '${o}'`);
        if (defined.has(o)) fail(`${where}: value '${o}' is produced twice`);
        defined.add(o);
      }
    }
  }
  for (const io of m.outputs) {
    if (!defined.has(io.value)) fail(`${where}: output '${io.name}' (value '${io.value}') is never produced`);
  }
  void source;
}

/** Decode `.bin` bytes; any malformation is one E_BIN_FORMAT PtqError naming `source`. */
export function decodeBin(bytes: Uint8Array, source = '<bytes>'): BinFile {
  const bad = (why: string): PtqError =>
    new PtqError('E_BIN_FORMAT', `'${source}' is not a valid nx-ptq .bin model (${why})`, {
      subject: source,
      fix: 'the file is truncated, corrupted or not a .bin; compile the model again (nx run <model>:compile or ptq makertbin)',
    });
  let o: Record<string, unknown>;
  try {
    const T = binType('BinFile');
    const reader = Buffer.isBuffer(bytes)
      ? new (protobuf as unknown as { BufferReader: new (b: Buffer) => protobuf.Reader }).BufferReader(bytes)
      : protobuf.Reader.create(bytes);
    o = T.toObject(T.decode(reader), { longs: Number, arrays: true, defaults: false }) as Record<string, unknown>;
  } catch (e) {
    throw bad(e instanceof Error ? e.message.split('\n')[0] : String(e));
  }
  if (o.magic !== BIN_MAGIC) throw bad(`no '${BIN_MAGIC}' header`);
  const version = typeof o.format_version === 'number' ? o.format_version : 0;
  if (version < 1) throw bad('no format version');
  if (version > BIN_FORMAT_VERSION) {
    throw new PtqError('E_BIN_VERSION', `'${source}' has .bin format version ${version}; this nx-ptq reads up to ${BIN_FORMAT_VERSION}`, {
      subject: source,
      fix: 'use the nx-ptq version that compiled it, or recompile the model with this one',
    });
  }
  try {
    const models = ((o.models as Record<string, unknown>[] | undefined) ?? []).map(modelFrom);
    if (models.length === 0) fail('no model');
    const names = new Set<string>();
    for (const m of models) {
      if (names.has(m.name)) fail(`model name '${m.name}' is repeated`);
      names.add(m.name);
      validateModel(m, source);
    }
    const packed = o.packed === true;
    if (!packed && models.length > 1) fail('several models in a file not marked packed');
    return { formatVersion: version, packed, models };
  } catch (e) {
    if (e instanceof FormatError) throw bad(e.message);
    if (e instanceof PtqError) throw e;
    throw bad(e instanceof Error ? e.message : String(e));
  }
}

/** Read a `.bin` file (one-line PtqErrors for a missing or malformed file). */
export function readBinFile(file: string): BinFile {
  let bytes: Buffer;
  try {
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read model file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: file,
      fix: 'check the path of the .bin (compile the model first: nx run <model>:compile)',
    });
  }
  return decodeBin(bytes, file);
}

/**
 * The model a tool works on: `name` when given (one-line error listing the names if absent),
 * else the only model of the file; a packed file without `name` is an error unless
 * `allowAll` (then undefined = all models).
 */
export function selectModel(bin: BinFile, name: string | undefined, source: string): BinModel {
  const names = bin.models.map((m) => m.name);
  if (name !== undefined) {
    const m = bin.models.find((x) => x.name === name);
    if (!m) {
      throw new PtqError('E_MODEL_NAME', `'${source}' has no model named '${name}'`, {
        subject: name,
        fix: `use -m with one of: ${names.join(', ')}`,
      });
    }
    return m;
  }
  if (bin.models.length > 1) {
    throw new PtqError('E_MODEL_NAME', `'${source}' is a packed model with ${names.length} models`, {
      subject: source,
      fix: `choose one with -m: ${names.join(', ')}`,
    });
  }
  return bin.models[0];
}

/** Attribute lookup helpers for readers of ops. */
export function attrOf(attrs: BinAttr[], name: string): BinAttr | undefined {
  return attrs.find((a) => a.name === name);
}
