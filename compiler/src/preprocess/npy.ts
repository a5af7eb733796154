import * as fs from 'fs';
import { PtqError } from '../errors';
import { DType } from '../onnx/dtype';
import { writeFileAtomic } from '../onnx/encode';
import { Tensor } from '../onnx/tensor';

/**
 * NumPy `.npy` files (format versions 1, 2 and 3): little-endian, C-order arrays of
 * f4 f8 f2 i1 u1 i2 u2 i4 u4 i8 u8 b1, and unicode strings (<U). Format:
 * numpy/lib/format.py's documented layout — magic `\x93NUMPY`, version, header length,
 * a Python dict literal padded to a multiple of 64 bytes, then the raw data.
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR_TO_DTYPE: Record<string, DType> = {
  f4: 'float32', f8: 'float64', f2: 'float16',
  i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64',
  b1: 'bool',
};
const DTYPE_TO_DESCR: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(DESCR_TO_DTYPE).map(([k, v]) => [v, k]));
const ITEM_SIZE: Record<string, number> = { f4: 4, f8: 8, f2: 2, i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8, b1: 1 };

/** Read a `.npy` file into a Tensor. */
export function readNpy(file: string): Tensor {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: file,
      fix: 'check the path',
    });
  }
  return parseNpy(bytes, file);
}

/** Decode `.npy` bytes; `source` names the file in messages. */
export function parseNpy(bytes: Uint8Array, source = '<npy>'): Tensor {
  const bad = (why: string, fix = 'write the file with numpy.save'): PtqError =>
    new PtqError('E_NPY', `'${source}' is not a usable .npy file: ${why}`, { subject: source, fix });
  if (bytes.byteLength < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('it does not start with the .npy magic \\x93NUMPY');
  const major = bytes[6];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = bytes[8] | (bytes[9] << 8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.byteLength < 12) throw bad('the header is truncated');
    headerLen = (bytes[8] | (bytes[9] << 8) | (bytes[10] << 16)) + bytes[11] * 2 ** 24;
    start = 12;
  } else {
    throw bad(`format version ${major}.${bytes[7]} is unknown (1.0, 2.0 and 3.0 are read)`);
  }
  if (start + headerLen > bytes.byteLength) throw bad('the header is truncated');
  const headerBytes = bytes.subarray(start, start + headerLen);
  const header = major === 3 ? new TextDecoder('utf-8').decode(headerBytes) : latin1(headerBytes);
  let dict: Record<string, PyValue>;
  try {
    dict = parseHeaderDict(header);
  } catch (e) {
    throw bad(`its header ${JSON.stringify(header.trim())} cannot be read (${(e as Error).message})`);
  }
  const descr = dict.descr;
  const fortran = dict.fortran_order;
  const shape = dict.shape;
  if (typeof descr !== 'string') throw bad("its header has no 'descr' string (record arrays are not read)");
  if (typeof fortran !== 'boolean') throw bad("its header has no 'fortran_order'");
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw bad("its header has no valid 'shape' tuple");
  }
  const dims = shape as number[];
  const order = descr[0];
  const code = '<>|='.includes(order) ? descr.slice(1) : descr;
  const size = dims.reduce((a, b) => a * b, 1);
  const data = bytes.subarray(start + headerLen);

  if (fortran && dims.filter((d) => d > 1).length > 1) {
    throw bad('the array is in Fortran (column-major) order', 'save a C-order array: numpy.save(f, numpy.ascontiguousarray(a))');
  }
  const str = /^U(\d+)$/.exec(code);
  const itemSize = str ? 4 * Number(str[1]) : ITEM_SIZE[code];
  if (itemSize === undefined) {
    throw bad(`its dtype '${descr}' is not supported (f4, f8, f2, i1, u1, i2, u2, i4, u4, i8, u8, b1, U)`, 'convert the array, e.g. a.astype(numpy.float32)');
  }
  if (order === '>' && itemSize > 1) {
    throw bad(`it is big-endian ('${descr}')`, "save it little-endian: a.astype(a.dtype.newbyteorder('<'))");
  }
  const need = size * itemSize;
  if (data.byteLength < need) throw bad(`it holds ${data.byteLength} data bytes, shape (${dims.join(', ')}) of '${descr}' needs ${need} (truncated?)`);
  if (data.byteLength > need) throw bad(`it has ${data.byteLength - need} bytes after the array data`);

  if (str) {
    const strs = decodeUtf32(data, size, Number(str[1]));
    if (!strs) throw bad('it holds a character code that is not Unicode');
    return new Tensor('string', dims, strs);
  }
  const dtype = DESCR_TO_DTYPE[code];
  const copy = new Uint8Array(need); // aligned, and independent of the file buffer
  copy.set(data.subarray(0, need));
  const t = Tensor.fromRaw(dtype, dims, copy);
  if (dtype === 'bool') {
    const a = t.array as Uint8Array;
    for (let i = 0; i < a.length; i++) if (a[i] > 1) throw bad(`its bool element ${i} is ${a[i]} (not 0 or 1)`);
  }
  return t;
}

/** Encode a Tensor as `.npy` bytes (format 1.0, or 2.0 for a header over 64 KiB). */
export function encodeNpy(t: Tensor, name = 'tensor'): Uint8Array {
  let descr: string;
  let data: Uint8Array;
  if (t.dtype === 'string') {
    const strs = t.data as string[];
    const width = Math.max(1, ...strs.map((s) => [...s].length));
    descr = `<U${width}`;
    data = encodeUtf32(strs, width);
  } else {
    const code = DTYPE_TO_DESCR[t.dtype];
    if (!code) {
      throw new PtqError('E_NPY', `tensor '${name}' is ${t.dtype}, which .npy cannot hold`, {
        subject: name,
        fix: 'convert it to float32 first',
      });
    }
    descr = `${ITEM_SIZE[code] === 1 ? '|' : '<'}${code}`;
    data = t.rawBytes();
  }
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  let prefix = 10;
  let major = 1;
  if (prefix + dict.length + 1 > 0xffff) {
    major = 2;
    prefix = 12;
  }
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  dict = dict + ' '.repeat(total - prefix - dict.length - 1) + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const hl = dict.length;
  if (major === 1) {
    out[8] = hl & 0xff;
    out[9] = hl >> 8;
  } else {
    new DataView(out.buffer).setUint32(8, hl, true);
  }
  for (let i = 0; i < hl; i++) out[prefix + i] = dict.charCodeAt(i);
  out.set(data, total);
  return out;
}

/** Write a Tensor as a `.npy` file, atomically (temp file + rename). */
export function writeNpy(file: string, t: Tensor, name?: string): void {
  writeFileAtomic(file, encodeNpy(t, name ?? file));
}

// ---- the header: a Python dict literal of strings, booleans, ints and tuples ----

type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue };

function parseHeaderDict(text: string): Record<string, PyValue> {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`${what} at character ${i}`);
  };
  const value = (): PyValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: Record<string, PyValue> = {};
      for (;;) {
        ws();
        if (text[i] === '}') {
          i++;
          return o;
        }
        const k = value();
        if (typeof k !== 'string') fail('expected a string key');
        ws();
        if (text[i++] !== ':') fail("expected ':'");
        o[k as string] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const a: PyValue[] = [];
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          return a;
        }
        a.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+)L?/.exec(text.slice(i));
    if (!m) return fail('unexpected text');
    i += m[0].length;
    if (m[1] === 'True') return true;
    if (m[1] === 'False') return false;
    if (m[1] === 'None') return null;
    return Number(m[1]);
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing text');
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a dict');
  return v;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** UTF-32LE fixed-width strings (NUL-padded); undefined when a code is not a code point. */
function decodeUtf32(data: Uint8Array, n: number, width: number): string[] | undefined {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Array<string>(n);
  for (let k = 0; k < n; k++) {
    let s = '';
    for (let j = 0; j < width; j++) {
      const cp = dv.getUint32((k * width + j) * 4, true);
      if (cp === 0) break; // numpy pads with NULs
      if (cp > 0x10ffff) return undefined;
      s += String.fromCodePoint(cp);
    }
    out[k] = s;
  }
  return out;
}

function encodeUtf32(strs: string[], width: number): Uint8Array {
  const out = new Uint8Array(strs.length * width * 4);
  const dv = new DataView(out.buffer);
  strs.forEach((s, k) => {
    let j = 0;
    for (const ch of s) dv.setUint32((k * width + j++) * 4, ch.codePointAt(0) as number, true);
  });
  return out;
}
