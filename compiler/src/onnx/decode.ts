import * as fs from 'fs';
import * as protobuf from 'protobufjs';
import { PtqError } from '../errors';
import { dtypeFromOnnx, ONNX_TYPE_NAMES, DType } from './dtype';
import { Attribute, Dim, Graph, Model, Node, ValueInfo, ValueType } from './ir';
import { onnxType } from './proto';
import { Tensor, tensorFrom } from './tensor';

/* eslint-disable @typescript-eslint/no-explicit-any -- protobufjs messages are untyped here */
type Msg = any;

const ATTR_TYPES: Record<number, Attribute['type']> = {
  1: 'float', 2: 'int', 3: 'string', 4: 'tensor', 5: 'graph', 6: 'floats', 7: 'ints', 8: 'strings', 9: 'tensors', 10: 'graphs',
};

const utf8 = new TextDecoder('utf-8');

/** Read and decode an ONNX model file. */
export function loadModel(file: string): Model {
  return decodeModel(readModelFile(file), file);
}

/** The bytes of a model file, or a one-line PtqError naming it (missing, a directory, unreadable). */
export function readModelFile(file: string): Buffer {
  try {
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    return fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read model file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: file,
      fix: 'check the path (relative paths are resolved against the current directory or the YAML file)',
    });
  }
}

/** Decode ModelProto bytes into the IR. Tensor bytes stay views of `bytes` until used. */
export function decodeModel(bytes: Uint8Array, source = '<bytes>'): Model {
  let msg: Msg;
  try {
    const reader = Buffer.isBuffer(bytes) ? new (protobuf as any).BufferReader(bytes) : protobuf.Reader.create(bytes);
    msg = onnxType('ModelProto').decode(reader);
  } catch (e) {
    throw new PtqError('E_MODEL_DECODE', `'${source}' is not a valid ONNX model (${describeDecodeError(e)})`, {
      subject: source,
      fix: 'the file is truncated or not an ONNX ModelProto; re-export or re-download it',
    });
  }
  if (!msg.graph) {
    throw new PtqError('E_MODEL_DECODE', `'${source}' is not a valid ONNX model (no graph)`, {
      subject: source,
      fix: 'the file is truncated or not an ONNX ModelProto; re-export it',
    });
  }
  const ctx: DecodeCtx = { source };
  let graph: Graph;
  try {
    graph = decodeGraph(msg.graph, ctx);
  } catch (e) {
    if (e instanceof PtqError) throw e;
    throw new PtqError('E_MODEL_DECODE', `'${source}' is not a valid ONNX model (${describeDecodeError(e)})`, {
      subject: source,
      fix: 'the file is corrupt; re-export it',
    });
  }
  const extra: Record<string, unknown> = {};
  if (msg.functions?.length) extra.functions = msg.functions;
  if (msg.training_info?.length) extra.training_info = msg.training_info;
  const model = new Model(graph, {
    irVersion: num(msg.ir_version),
    opsetImports: (msg.opset_import ?? []).map((o: Msg) => ({ domain: o.domain ?? '', version: num(o.version) })),
    producerName: msg.producer_name ?? '',
    producerVersion: msg.producer_version ?? '',
    domain: msg.domain ?? '',
    modelVersion: num(msg.model_version),
    docString: msg.doc_string ?? '',
    metadataProps: kv(msg.metadata_props),
    extra: Object.keys(extra).length ? extra : undefined,
  });
  if (!msg.opset_import?.length) {
    if (num(msg.ir_version) >= 3) {
      throw new PtqError('E_MODEL_DECODE', `'${source}' is not a valid ONNX model (it imports no opset; the file may be truncated)`, {
        subject: source,
        fix: 'the file is truncated or was written by a broken exporter; re-export it',
      });
    }
    model.opsetImports = [{ domain: '', version: 1 }];
  }
  return model;
}

interface DecodeCtx {
  source: string;
}

/** A decoder exception as the reason in a one-line message. */
export function describeDecodeError(e: unknown): string {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return 'nesting too deep';
  const msg = (e as Error).message ?? String(e);
  const cut = /index out of range: (\d+) \+ (\d+) > (\d+)/.exec(msg);
  if (cut) return `it is cut short: a field at byte ${cut[1]} needs ${cut[2]} more byte(s), the data ends at ${cut[3]}`;
  return msg;
}

function num(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

function big(v: unknown): bigint {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'object' && v !== null && 'high' in v) {
    const l = v as { high: number; low: number; unsigned: boolean };
    const u = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
    return l.unsigned ? u : BigInt.asIntN(64, u);
  }
  return BigInt(String(v));
}

function kv(list: Msg[] | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  for (const e of list ?? []) o[e.key ?? ''] = e.value ?? '';
  return o;
}

export function decodeGraph(g: Msg, ctx: DecodeCtx): Graph {
  const graph = new Graph({ name: g.name ?? '', docString: g.doc_string || undefined });
  for (const t of g.initializer ?? []) graph.initializers.set(t.name ?? '', decodeTensor(t, ctx));
  graph.inputs = (g.input ?? []).map((v: Msg) => decodeValueInfo(v));
  graph.outputs = (g.output ?? []).map((v: Msg) => decodeValueInfo(v));
  for (const v of g.value_info ?? []) {
    const vi = decodeValueInfo(v);
    graph.valueInfo.set(vi.name, vi);
  }
  graph.nodes = (g.node ?? []).map((n: Msg) => decodeNode(n, ctx));
  const extra: Record<string, unknown> = {};
  if (g.sparse_initializer?.length) extra.sparse_initializer = g.sparse_initializer;
  if (g.quantization_annotation?.length) extra.quantization_annotation = g.quantization_annotation;
  if (g.metadata_props?.length) extra.metadata_props = g.metadata_props;
  if (Object.keys(extra).length) graph.extra = extra;
  return graph;
}

function decodeNode(n: Msg, ctx: DecodeCtx): Node {
  const node = new Node({
    opType: n.op_type ?? '',
    name: n.name ?? '',
    domain: n.domain ?? '',
    inputs: n.input ?? [],
    outputs: n.output ?? [],
    docString: n.doc_string || undefined,
  });
  for (const a of n.attribute ?? []) node.attrs.set(a.name ?? '', decodeAttr(a, ctx));
  const extra: Record<string, unknown> = {};
  if (n.overload) extra.overload = n.overload;
  if (n.metadata_props?.length) extra.metadata_props = n.metadata_props;
  if (Object.keys(extra).length) node.extra = extra;
  return node;
}

function decodeAttr(a: Msg, ctx: DecodeCtx): Attribute {
  let type = ATTR_TYPES[a.type ?? 0];
  if (a.ref_attr_name) return { type: 'other', value: a };
  if (!type) {
    // IR < 4 may omit `type`; infer it from the field that is set.
    if (a.t) type = 'tensor';
    else if (a.g) type = 'graph';
    else if (a.floats?.length) type = 'floats';
    else if (a.ints?.length) type = 'ints';
    else if (a.strings?.length) type = 'strings';
    else if (a.tensors?.length) type = 'tensors';
    else if (a.graphs?.length) type = 'graphs';
    else if (a.s?.length) type = 'string';
    else if (a.i !== undefined && num(a.i) !== 0) type = 'int';
    else if (a.f !== undefined && a.f !== 0) type = 'float';
    else return { type: 'other', value: a };
  }
  switch (type) {
    case 'float': return { type, value: a.f ?? 0 };
    case 'int': return { type, value: num(a.i) };
    case 'string': return { type, value: utf8.decode(a.s ?? new Uint8Array()) };
    case 'tensor': return { type, value: decodeTensor(a.t, ctx) };
    case 'graph': return { type, value: decodeGraph(a.g, ctx) };
    case 'floats': return { type, value: (a.floats ?? []).slice() };
    case 'ints': return { type, value: (a.ints ?? []).map(num) };
    case 'strings': return { type, value: (a.strings ?? []).map((s: Uint8Array) => utf8.decode(s)) };
    case 'tensors': return { type, value: (a.tensors ?? []).map((t: Msg) => decodeTensor(t, ctx)) };
    case 'graphs': return { type, value: (a.graphs ?? []).map((g: Msg) => decodeGraph(g, ctx)) };
    default: return { type: 'other', value: a };
  }
}

function decodeValueInfo(v: Msg): ValueInfo {
  const vi: ValueInfo = { name: v.name ?? '' };
  if (v.doc_string) vi.docString = v.doc_string;
  if (v.metadata_props?.length) vi.metadataProps = kv(v.metadata_props);
  const tt = v.type?.tensor_type;
  if (tt) {
    const dtype = dtypeFromOnnx(tt.elem_type ?? 0);
    if (dtype) {
      const t: ValueType = { dtype };
      if (tt.shape) t.shape = (tt.shape.dim ?? []).map(decodeDim);
      vi.type = t;
    } else {
      vi.other = v.type;
      vi.elemTypeCode = tt.elem_type ?? 0;
    }
  } else if (v.type) {
    vi.other = v.type;
  }
  return vi;
}

function decodeDim(d: Msg): Dim {
  if (Object.prototype.hasOwnProperty.call(d, 'dim_value')) return num(d.dim_value);
  if (d.dim_param) return d.dim_param;
  return '?';
}

/** TensorProto → Tensor. raw_data stays a view of the file bytes. */
export function decodeTensor(t: Msg, ctx: DecodeCtx): Tensor {
  const name = t.name ?? '';
  if (t.data_location === 1 || t.external_data?.length) {
    throw new PtqError('E_MODEL_EXTERNAL_DATA', `tensor '${name}' in '${ctx.source}' keeps its data in an external file, which nx-ptq does not read`, {
      subject: name,
      fix: "save the model with all tensors inside (onnx.save_model(m, path, save_as_external_data=False)) — models over 2 GB cannot be converted",
    });
  }
  const code = t.data_type ?? 0;
  const dtype = dtypeFromOnnx(code);
  if (!dtype) {
    throw new PtqError('E_MODEL_DTYPE', `tensor '${name}' has element type ${ONNX_TYPE_NAMES[code] ?? code}, which nx-ptq does not support`, {
      subject: name,
      fix: 'export the model with float32/int8/int32/int64 tensors',
    });
  }
  const dims: number[] = (t.dims ?? []).map(num);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new RangeError(`tensor '${name}' has invalid dims [${dims.join(',')}]`);
  const raw: Uint8Array | undefined = t.raw_data;
  if (raw && raw.byteLength > 0 && dtype !== 'string') return Tensor.fromRaw(dtype, dims, raw);
  return fromTypedFields(dtype, dims, t, name);
}

function fromTypedFields(dtype: DType, dims: number[], t: Msg, name: string): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  let vals: ArrayLike<number | bigint>;
  switch (dtype) {
    case 'string': {
      const s = (t.string_data ?? []).map((b: Uint8Array) => utf8.decode(b));
      check(s.length, n, name);
      return new Tensor('string', dims, s);
    }
    case 'float32': vals = t.float_data ?? []; break;
    case 'float64': vals = t.double_data ?? []; break;
    case 'int64': vals = (t.int64_data ?? []).map(big); break;
    case 'uint64': vals = (t.uint64_data ?? []).map((v: unknown) => BigInt.asUintN(64, big(v))); break;
    case 'uint32': vals = (t.uint64_data ?? []).map(num); break;
    default: vals = t.int32_data ?? []; // int8..int32, uint8, uint16, bool, float16/bfloat16 bit patterns
  }
  check(vals.length, n, name);
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(vals[i]);
    return new Tensor(dtype, dims, out);
  }
  return tensorFrom(dtype, dims, vals);
}

function check(got: number, want: number, name: string): void {
  if (got !== want) throw new RangeError(`tensor '${name}' holds ${got} values, its dims need ${want}`);
}
