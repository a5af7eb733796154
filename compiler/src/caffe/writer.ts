import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { caffeType, V1_LAYER_TYPES } from './schema';

/**
 * Writes Caffe models (prototxt text + caffemodel bytes) from a small JS description, for
 * fixtures, tests and benchmarks. The description is a NetParameter in its text-format
 * spelling (snake_case field names, enum value names) whose layers may carry `blobs`:
 *
 *   { name: 'tiny', layer: [
 *       { name: 'data', type: 'Input', top: ['data'], input_param: { shape: [{ dim: [1, 3, 8, 8] }] } },
 *       { name: 'conv1', type: 'Convolution', bottom: ['data'], top: ['conv1'],
 *         convolution_param: { num_output: 4, kernel_size: [3] },
 *         blobs: [{ shape: [4, 3, 3, 3], data: weights }, { shape: [4], data: bias }] } ] }
 *
 * Blobs go to the caffemodel only (with the full layer definition, as Caffe saves it), in
 * Caffe's own field order (data before shape). `v1: true` writes the pre-2015 `layers`
 * format (enum types, legacy 4-D blob shapes) instead.
 */

export interface BlobSpec {
  shape: number[];
  data: Float32Array | number[];
}

export interface LayerSpec {
  name: string;
  type: string;
  bottom?: string[];
  top?: string[];
  blobs?: BlobSpec[];
  /** any other LayerParameter field, e.g. convolution_param, include */
  [field: string]: unknown;
}

export interface NetSpec {
  name?: string;
  input?: string[];
  input_shape?: { dim: number[] }[];
  input_dim?: number[];
  state?: Record<string, unknown>;
  layer: LayerSpec[];
  /** write V1 `layers` (enum types, legacy blob shapes) */
  v1?: boolean;
}

type Obj = Record<string, unknown>;

// ------------------------------------------------------------------ prototxt

export function writePrototxt(spec: NetSpec): string {
  const net = caffeType('NetParameter');
  const lines: string[] = [];
  const head: Obj = {};
  for (const k of ['name', 'input', 'input_shape', 'input_dim', 'state'] as const) if (spec[k] !== undefined) head[k] = spec[k];
  writeFields(head, net, '', lines);
  const layerType = caffeType(spec.v1 ? 'V1LayerParameter' : 'LayerParameter');
  for (const l of spec.layer) {
    lines.push(`${spec.v1 ? 'layers' : 'layer'} {`);
    writeFields(layerFields(l, spec.v1 ?? false), layerType, '  ', lines);
    lines.push('}');
  }
  return `${lines.join('\n')}\n`;
}

function layerFields(l: LayerSpec, v1: boolean): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(l)) if (k !== 'blobs' && v !== undefined) out[k] = v;
  if (v1) out.type = v1TypeName(l.type);
  return out;
}

function v1TypeName(type: string): string {
  const e = Object.entries(V1_LAYER_TYPES).find(([, t]) => t === type);
  if (!e) throw new Error(`layer type ${type} has no V1 enum value`);
  return e[0];
}

function writeFields(obj: Obj, type: protobuf.Type, indent: string, out: string[]): void {
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key];
    if (!field) throw new Error(`caffe writer: ${type.name} has no field '${key}'`);
    field.resolve();
    const values = Array.isArray(value) ? value : [value];
    if (!field.repeated && Array.isArray(value)) throw new Error(`caffe writer: ${type.name}.${key} is not repeated`);
    for (const v of values) {
      if (field.resolvedType instanceof protobuf.Type) {
        out.push(`${indent}${key} {`);
        writeFields(v as Obj, field.resolvedType, `${indent}  `, out);
        out.push(`${indent}}`);
      } else {
        out.push(`${indent}${key}: ${formatScalar(v, field)}`);
      }
    }
  }
}

function formatScalar(v: unknown, field: protobuf.Field): string {
  if (field.resolvedType instanceof protobuf.Enum) return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    return String(v);
  }
  throw new Error(`caffe writer: bad value ${String(v)} for ${field.name}`);
}

// ---------------------------------------------------------------- caffemodel

/**
 * The caffemodel as a list of byte chunks (headers plus views of the blob data), so a large
 * model can be written to a file without building it in memory twice.
 */
export function caffemodelChunks(spec: NetSpec): Uint8Array[] {
  const v1 = spec.v1 ?? false;
  const netType = caffeType('NetParameter');
  const layerType = caffeType(v1 ? 'V1LayerParameter' : 'LayerParameter');
  const layerField = netType.fields[v1 ? 'layers' : 'layer'].id;
  const blobsField = layerType.fields.blobs.id;
  const chunks: Uint8Array[] = [];
  if (spec.name !== undefined) chunks.push(netType.encode(netType.fromObject({ name: spec.name })).finish());
  for (const l of spec.layer) {
    const header = layerType.encode(layerType.fromObject(layerFields(l, v1))).finish();
    const blobs = (l.blobs ?? []).map((b) => blobChunks(b, v1));
    const blobsLen = blobs.reduce((n, b) => n + tagLen(blobsField, b.length) + b.length, 0);
    chunks.push(Uint8Array.from([...key(layerField, 2), ...varint(header.length + blobsLen)]), header);
    for (const b of blobs) {
      chunks.push(Uint8Array.from([...key(blobsField, 2), ...varint(b.length)]));
      chunks.push(...b.parts);
    }
  }
  return chunks;
}

export function encodeCaffemodel(spec: NetSpec): Uint8Array {
  return Buffer.concat(caffemodelChunks(spec));
}

/** Write `<dir>/<base>.prototxt` and `<dir>/<base>.caffemodel`; returns the two paths. */
export function writeCaffeFiles(spec: NetSpec, dir: string, base = spec.name ?? 'net'): { prototxt: string; caffemodel: string } {
  fs.mkdirSync(dir, { recursive: true });
  const prototxt = path.join(dir, `${base}.prototxt`);
  const caffemodel = path.join(dir, `${base}.caffemodel`);
  fs.writeFileSync(prototxt, writePrototxt(spec));
  const fd = fs.openSync(caffemodel, 'w');
  try {
    for (const c of caffemodelChunks(spec)) fs.writeSync(fd, c);
  } finally {
    fs.closeSync(fd);
  }
  return { prototxt, caffemodel };
}

interface EncodedBlob {
  parts: Uint8Array[];
  length: number;
}

function blobChunks(b: BlobSpec, v1: boolean): EncodedBlob {
  const blob = caffeType('BlobProto').fields;
  const data = b.data instanceof Float32Array ? b.data : Float32Array.from(b.data);
  const count = b.shape.reduce((a, d) => a * d, 1);
  if (count !== data.length) throw new Error(`caffe writer: blob shape [${b.shape.join(',')}] needs ${count} values, got ${data.length}`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const parts: Uint8Array[] = [];
  if (v1) {
    if (b.shape.length > 4) throw new Error('caffe writer: legacy blobs have at most 4 axes');
    const dims = [...new Array<number>(4 - b.shape.length).fill(1), ...b.shape];
    const legacy = ['num', 'channels', 'height', 'width'].flatMap((n, i) => [...key(blob[n].id, 0), ...varint(dims[i])]);
    parts.push(Uint8Array.from(legacy));
  }
  parts.push(Uint8Array.from([...key(blob.data.id, 2), ...varint(bytes.length)]), bytes);
  if (!v1) {
    const dims = b.shape.flatMap((d) => varint(d));
    const shapeMsg = [...key(caffeType('BlobShape').fields.dim.id, 2), ...varint(dims.length), ...dims];
    parts.push(Uint8Array.from([...key(blob.shape.id, 2), ...varint(shapeMsg.length), ...shapeMsg]));
  }
  return { parts, length: parts.reduce((n, p) => n + p.length, 0) };
}

function key(field: number, wire: number): number[] {
  return varint(field * 8 + wire);
}

function tagLen(field: number, len: number): number {
  return key(field, 2).length + varint(len).length;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
