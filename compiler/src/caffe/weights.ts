import * as os from 'os';
import { PtqError } from '../errors';
import { caffeType } from './schema';

/** One learned parameter blob of a layer: its shape and float32 values. */
export interface CaffeBlob {
  shape: number[];
  data: Float32Array;
}

/**
 * Read the blobs of every layer of a `.caffemodel` (a binary NetParameter), by layer name.
 *
 * A trained model is mostly packed float arrays. Decoding it with a generic protobuf
 * decoder would build a JS number per weight; instead this walks the wire format and
 * reads only layer names and blobs: each blob's `data` becomes a Float32Array *view* of
 * `bytes`. A packed run that does not start on a 4-byte boundary is first moved down by
 * 1–3 bytes inside `bytes`, over its own (already read) tag and length, so it can be viewed
 * without a copy; only tiny runs whose header is shorter than the shift are copied.
 * So the buffer is modified (it is no longer a valid caffemodel afterwards) and must stay
 * alive as long as the weights are used; the result costs no second copy of the weights.
 *
 * Field numbers come from caffe.proto via reflection. V1 `layers` are read like `layer`.
 */
export function readCaffemodel(bytes: Uint8Array, source = '<caffemodel>'): Map<string, CaffeBlob[]> {
  const f = fieldNumbers();
  const r = new WireReader(bytes, source);
  const out = new Map<string, CaffeBlob[]>();
  let layerCount = 0;
  r.fields(0, bytes.byteLength, (field, wire, start, end) => {
    if (wire !== 2 || (field !== f.netLayer && field !== f.netLayersV1)) return;
    layerCount++;
    const v1 = field === f.netLayersV1;
    const nameField = v1 ? f.v1Name : f.layerName;
    const blobsField = v1 ? f.v1Blobs : f.layerBlobs;
    let name: string | undefined;
    let v0 = false;
    const blobs: CaffeBlob[] = [];
    r.fields(start, end, (lf, lw, ls, le) => {
      if (lw !== 2) return;
      if (lf === nameField) name = r.text(ls, le);
      else if (lf === blobsField) blobs.push(readBlob(r, f, ls, le, () => name));
      else if (v1 && lf === V0_LAYER_FIELD) v0 = true;
    });
    if (v0 && name === undefined) {
      throw new PtqError('E_CAFFE_MODEL', `caffemodel '${source}' uses the V0 layer format (before 2014)`, {
        subject: source,
        fix: "upgrade it with Caffe's upgrade_net_proto_binary tool",
      });
    }
    if (name === undefined) {
      throw r.corrupt(`layer #${layerCount} has no name`);
    }
    out.set(name, blobs);
  });
  if (layerCount === 0 && bytes.byteLength > 0) throw r.corrupt('it contains no layers');
  return out;
}

/** V1LayerParameter field 1 held the V0 layer description (not declared in caffe.proto). */
const V0_LAYER_FIELD = 1;

interface FieldNumbers {
  netLayer: number;
  netLayersV1: number;
  layerName: number;
  layerBlobs: number;
  v1Name: number;
  v1Blobs: number;
  blobShape: number;
  blobData: number;
  blobDoubleData: number;
  blobLegacy: number[];
  shapeDim: number;
}

let numbers: FieldNumbers | undefined;

function fieldNumbers(): FieldNumbers {
  if (!numbers) {
    const id = (type: string, name: string): number => caffeType(type).fields[name].id;
    numbers = {
      netLayer: id('NetParameter', 'layer'),
      netLayersV1: id('NetParameter', 'layers'),
      layerName: id('LayerParameter', 'name'),
      layerBlobs: id('LayerParameter', 'blobs'),
      v1Name: id('V1LayerParameter', 'name'),
      v1Blobs: id('V1LayerParameter', 'blobs'),
      blobShape: id('BlobProto', 'shape'),
      blobData: id('BlobProto', 'data'),
      blobDoubleData: id('BlobProto', 'double_data'),
      blobLegacy: ['num', 'channels', 'height', 'width'].map((n) => id('BlobProto', n)),
      shapeDim: id('BlobShape', 'dim'),
    };
  }
  return numbers;
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

function readBlob(r: WireReader, f: FieldNumbers, start: number, end: number, layer: () => string | undefined): CaffeBlob {
  let shape: number[] | undefined;
  const legacy: (number | undefined)[] = [undefined, undefined, undefined, undefined];
  const runs: Float32Array[] = [];
  let loose: number[] | undefined;
  r.fields(start, end, (field, wire, s, e, fieldStart) => {
    if (field === f.blobShape && wire === 2) {
      shape = [];
      const dims = shape;
      r.fields(s, e, (df, dw, ds, de) => {
        if (df !== f.shapeDim) return;
        if (dw === 0) dims.push(ds);
        else if (dw === 2) {
          for (let p = ds; p < de; ) {
            const [d, next] = r.varintAt(p);
            dims.push(d);
            p = next;
          }
        }
      });
    } else if (field === f.blobData && wire === 2) {
      runs.push(r.floatRun(fieldStart, s, e));
    } else if (field === f.blobData && wire === 5) {
      (loose ??= []).push(r.float32At(s));
    } else if (field === f.blobDoubleData && wire === 2) {
      runs.push(r.doubleRun(s, e));
    } else if (field === f.blobDoubleData && wire === 1) {
      (loose ??= []).push(r.float64At(s));
    } else if (wire === 0) {
      const k = f.blobLegacy.indexOf(field);
      if (k >= 0) legacy[k] = s;
    }
  });
  if (loose) runs.push(Float32Array.from(loose));
  const data = runs.length === 1 ? runs[0] : concat(runs);
  const dims = shape ?? (legacy.some((d) => d !== undefined) ? legacy.map((d) => d ?? 0) : [data.length]);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw r.corrupt(`a blob of layer '${layer() ?? '?'}' has shape [${dims.join(',')}] (${count} values) but ${data.length} values`);
  }
  return { shape: dims, data };
}

function concat(runs: Float32Array[]): Float32Array {
  const out = new Float32Array(runs.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of runs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

type FieldVisitor = (field: number, wire: number, start: number, end: number, fieldStart: number) => void;

/**
 * Minimal protobuf wire-format walker over one buffer. For each field the visitor gets the
 * value's range (length-delimited), the varint value as `start` (wire type 0), or the offset
 * of the fixed-size value (wire types 1 and 5).
 */
class WireReader {
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly source: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  corrupt(msg: string): PtqError {
    return new PtqError('E_CAFFE_MODEL', `caffemodel '${this.source}' is not a valid Caffe model: ${msg}`, {
      subject: this.source,
      fix: 'check that the file is the binary .caffemodel (not the prototxt) and is complete',
    });
  }

  varintAt(pos: number): [number, number] {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.buf.byteLength) throw this.corrupt('truncated varint');
      const b = this.buf[pos++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return [v, pos];
      mul *= 128;
    }
    throw this.corrupt('malformed varint');
  }

  fields(start: number, end: number, visit: FieldVisitor): void {
    let p = start;
    while (p < end) {
      const fieldStart = p;
      const [key, p1] = this.varintAt(p);
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (field === 0) throw this.corrupt(`field number 0 at byte ${p}`);
      switch (wire) {
        case 0: {
          const [v, p2] = this.varintAt(p1);
          visit(field, wire, v, v, fieldStart);
          p = p2;
          break;
        }
        case 1:
          this.need(p1 + 8, end);
          visit(field, wire, p1, p1 + 8, fieldStart);
          p = p1 + 8;
          break;
        case 2: {
          const [len, p2] = this.varintAt(p1);
          this.need(p2 + len, end);
          visit(field, wire, p2, p2 + len, fieldStart);
          p = p2 + len;
          break;
        }
        case 5:
          this.need(p1 + 4, end);
          visit(field, wire, p1, p1 + 4, fieldStart);
          p = p1 + 4;
          break;
        default:
          throw this.corrupt(`unsupported wire type ${wire} at byte ${p}`);
      }
    }
    if (p !== end) throw this.corrupt('a message overruns its length');
  }

  private need(pos: number, end: number): void {
    if (pos > end) throw this.corrupt('truncated field');
  }

  text(start: number, end: number): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('utf8');
  }

  float32At(pos: number): number {
    return this.view.getFloat32(pos, true);
  }

  float64At(pos: number): number {
    return this.view.getFloat64(pos, true);
  }

  /** A packed float run as a view of the buffer (moved onto a 4-byte boundary first when needed). */
  floatRun(fieldStart: number, start: number, end: number): Float32Array {
    const len = end - start;
    if (len % 4 !== 0) throw this.corrupt('packed float data is not a multiple of 4 bytes');
    const n = len / 4;
    if (!LITTLE_ENDIAN) {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = this.view.getFloat32(start + 4 * i, true);
      return out;
    }
    const shift = (this.buf.byteOffset + start) % 4;
    if (shift === 0) return new Float32Array(this.buf.buffer, this.buf.byteOffset + start, n);
    if (shift <= start - fieldStart) {
      // The tag and length before the data are read already: slide the floats over them.
      this.buf.copyWithin(start - shift, start, end);
      return new Float32Array(this.buf.buffer, this.buf.byteOffset + start - shift, n);
    }
    const copy = new Float32Array(n);
    new Uint8Array(copy.buffer).set(this.buf.subarray(start, end));
    return copy;
  }

  doubleRun(start: number, end: number): Float32Array {
    const len = end - start;
    if (len % 8 !== 0) throw this.corrupt('packed double data is not a multiple of 8 bytes');
    const out = new Float32Array(len / 8);
    for (let i = 0; i < out.length; i++) out[i] = this.view.getFloat64(start + 8 * i, true);
    return out;
  }
}
