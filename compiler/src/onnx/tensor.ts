import { arrayCtor, bytesPerElement, DType, isBigInt, TypedArray } from './dtype';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../kernels/float16';

export type TensorData = TypedArray | string[];

/**
 * A dense tensor: element type, dims and a typed array (strings as string[]).
 * float16/bfloat16 are stored as Uint16Array bit patterns, bool as Uint8Array,
 * int64/uint64 as BigInt64Array/BigUint64Array so values round-trip exactly.
 *
 * Tensors decoded from a model keep a view of the file's bytes (`raw`) and only build
 * their typed array on first access: decoding a large model copies no weights, and a
 * weight whose bytes happen to be aligned is never copied at all.
 */
export class Tensor {
  readonly dtype: DType;
  readonly dims: number[];
  private _data: TensorData | undefined;
  private _raw: Uint8Array | undefined;

  constructor(dtype: DType, dims: readonly number[], data?: TensorData) {
    this.dtype = dtype;
    this.dims = dims.slice();
    const n = sizeOf(dims);
    if (data === undefined) {
      this._data = dtype === 'string' ? new Array<string>(n).fill('') : new (arrayCtor(dtype))(n);
    } else {
      if (data.length !== n) {
        throw new Error(`tensor data has ${data.length} elements, dims [${dims.join(',')}] need ${n}`);
      }
      this._data = data;
    }
  }

  /** A tensor whose elements are the little-endian bytes `raw` (kept as a view, decoded lazily). */
  static fromRaw(dtype: DType, dims: readonly number[], raw: Uint8Array): Tensor {
    const n = sizeOf(dims);
    const need = n * bytesPerElement(dtype);
    if (raw.byteLength !== need) {
      throw new RangeError(`raw_data has ${raw.byteLength} bytes, ${dtype}[${dims.join(',')}] needs ${need}`);
    }
    const t = Object.create(Tensor.prototype) as Tensor;
    (t as { dtype: DType }).dtype = dtype;
    (t as { dims: number[] }).dims = dims.slice();
    t._raw = raw;
    t._data = undefined;
    return t;
  }

  get size(): number {
    return sizeOf(this.dims);
  }

  get rank(): number {
    return this.dims.length;
  }

  get data(): TensorData {
    if (this._data === undefined) this._data = decodeRaw(this.dtype, this._raw as Uint8Array);
    return this._data;
  }

  /** The typed array (throws for string tensors). */
  get array(): TypedArray {
    const d = this.data;
    if (Array.isArray(d)) throw new Error('string tensor has no typed array');
    return d;
  }

  /** Little-endian bytes of the elements, without copying when possible. */
  rawBytes(): Uint8Array {
    if (this._raw) return this._raw;
    const d = this.data;
    if (Array.isArray(d)) throw new Error('string tensors have no raw bytes');
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }

  /** Elements as plain numbers (int64 converted; float16/bfloat16 decoded). */
  toNumbers(): number[] {
    const d = this.data;
    if (Array.isArray(d)) throw new Error('string tensor has no numbers');
    const out = new Array<number>(d.length);
    if (this.dtype === 'float16') for (let i = 0; i < d.length; i++) out[i] = halfToFloat(d[i] as number);
    else if (this.dtype === 'bfloat16') for (let i = 0; i < d.length; i++) out[i] = bfloat16ToFloat(d[i] as number);
    else for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
    return out;
  }

  /** Float32 copy of the elements (decodes half types). */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32') return this.data as Float32Array;
    return Float32Array.from(this.toNumbers());
  }

  reshape(dims: readonly number[]): Tensor {
    if (sizeOf(dims) !== this.size) throw new Error(`cannot reshape [${this.dims}] to [${dims}]`);
    if (this._data === undefined && this._raw) return Tensor.fromRaw(this.dtype, dims, this._raw);
    return new Tensor(this.dtype, dims, this.data);
  }
}

export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function decodeRaw(dtype: DType, raw: Uint8Array): TensorData {
  if (dtype === 'string') throw new Error('string tensors are never stored as raw_data');
  const Ctor = arrayCtor(dtype);
  const bpe = Ctor.BYTES_PER_ELEMENT;
  const n = raw.byteLength / bpe;
  if (raw.byteOffset % bpe === 0) return new Ctor(raw.buffer, raw.byteOffset, n);
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(raw);
  return out;
}

/** Build a tensor of `dtype` from plain numbers (rounding/conversion as typed arrays do). */
export function tensorFrom(dtype: DType, dims: readonly number[], values: ArrayLike<number | bigint>): Tensor {
  if (dtype === 'string') throw new Error('use new Tensor for strings');
  const Ctor = arrayCtor(dtype);
  const out = new Ctor(values.length);
  if (isBigInt(dtype)) {
    const o = out as BigInt64Array;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      o[i] = typeof v === 'bigint' ? v : toInt64(v);
    }
  } else if (dtype === 'float16') {
    for (let i = 0; i < values.length; i++) out[i] = floatToHalf(Number(values[i]));
  } else if (dtype === 'bfloat16') {
    for (let i = 0; i < values.length; i++) out[i] = floatToBfloat16(Number(values[i]));
  } else if (dtype === 'bool') {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  }
  return new Tensor(dtype, dims, out);
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** A JS number as int64, saturating (so 2**63, the double nearest INT64_MAX, stays INT64_MAX). */
export function toInt64(v: number): bigint {
  if (Number.isNaN(v)) return 0n;
  if (!Number.isFinite(v)) return v > 0 ? INT64_MAX : INT64_MIN;
  const b = BigInt(Math.trunc(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

export function scalar(dtype: DType, v: number): Tensor {
  return tensorFrom(dtype, [], [v]);
}
