import * as fs from 'fs';
import * as path from 'path';
import { dtypeToOnnx, isBigInt } from './dtype';
import { Attribute, Dim, Graph, Model, Node, ValueInfo } from './ir';
import { onnxType } from './proto';
import { Tensor } from './tensor';

/* eslint-disable @typescript-eslint/no-explicit-any -- plain objects for protobufjs */
type Obj = Record<string, any>;

const ATTR_CODES: Record<string, number> = {
  float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7, strings: 8, tensors: 9, graphs: 10,
};
const utf8 = new TextEncoder();

/** Encode the IR as ModelProto bytes. */
export function encodeModel(model: Model): Uint8Array {
  const obj: Obj = {
    ir_version: model.irVersion,
    opset_import: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producer_name: model.producerName,
    producer_version: model.producerVersion,
    domain: model.domain,
    model_version: model.modelVersion,
    doc_string: model.docString,
    graph: encodeGraph(model.graph),
    metadata_props: Object.entries(model.metadataProps).map(([key, value]) => ({ key, value })),
  };
  if (model.extra?.functions) obj.functions = model.extra.functions;
  if (model.extra?.training_info) obj.training_info = model.extra.training_info;
  return onnxType('ModelProto').encode(obj).finish();
}

/** Write a model atomically (temp file + rename): no half-written file survives a failure. */
export function saveModel(model: Model, file: string): void {
  writeFileAtomic(file, encodeModel(model));
}

export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function encodeGraph(g: Graph): Obj {
  const o: Obj = {
    node: g.nodes.map(encodeNode),
    name: g.name,
    initializer: [...g.initializers].map(([name, t]) => encodeTensor(t, name)),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    value_info: [...g.valueInfo.values()].map(encodeValueInfo),
  };
  if (g.docString) o.doc_string = g.docString;
  if (g.extra) Object.assign(o, g.extra);
  return o;
}

function encodeNode(n: Node): Obj {
  const o: Obj = {
    input: n.inputs,
    output: n.outputs,
    name: n.name,
    op_type: n.opType,
    attribute: [...n.attrs].map(([name, a]) => encodeAttr(name, a)),
  };
  if (n.domain) o.domain = n.domain;
  if (n.docString) o.doc_string = n.docString;
  if (n.extra) Object.assign(o, n.extra);
  return o;
}

function encodeAttr(name: string, a: Attribute): Obj {
  if (a.type === 'other') return a.value as Obj;
  const o: Obj = { name, type: ATTR_CODES[a.type] };
  switch (a.type) {
    case 'float': o.f = a.value; break;
    case 'int': o.i = a.value; break;
    case 'string': o.s = utf8.encode(a.value); break;
    case 'tensor': o.t = encodeTensor(a.value); break;
    case 'graph': o.g = encodeGraph(a.value); break;
    case 'floats': o.floats = a.value; break;
    case 'ints': o.ints = a.value; break;
    case 'strings': o.strings = a.value.map((s) => utf8.encode(s)); break;
    case 'tensors': o.tensors = a.value.map((t) => encodeTensor(t)); break;
    case 'graphs': o.graphs = a.value.map(encodeGraph); break;
  }
  return o;
}

function encodeValueInfo(v: ValueInfo): Obj {
  const o: Obj = { name: v.name };
  if (v.type) {
    const tt: Obj = { elem_type: dtypeToOnnx(v.type.dtype) };
    if (v.type.shape) tt.shape = { dim: v.type.shape.map(encodeDim) };
    o.type = { tensor_type: tt };
  } else if (v.other) {
    o.type = v.other;
  }
  if (v.docString) o.doc_string = v.docString;
  if (v.metadataProps) o.metadata_props = Object.entries(v.metadataProps).map(([key, value]) => ({ key, value }));
  return o;
}

function encodeDim(d: Dim): Obj {
  if (typeof d === 'number') return { dim_value: d };
  return d === '?' ? {} : { dim_param: d };
}

/** Tensor → TensorProto object; numeric data goes to raw_data (as every modern exporter does). */
export function encodeTensor(t: Tensor, name?: string): Obj {
  const o: Obj = { dims: t.dims, data_type: dtypeToOnnx(t.dtype) };
  if (name !== undefined) o.name = name;
  if (t.dtype === 'string') {
    o.string_data = (t.data as string[]).map((s) => utf8.encode(s));
  } else if (isBigInt(t.dtype) || t.size > 0) {
    o.raw_data = t.rawBytes();
  }
  return o;
}
