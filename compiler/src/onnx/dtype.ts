/** ONNX element types as names, with their TensorProto.DataType numbers and typed-array storage. */
export type DType =
  | 'float32' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'int32' | 'int64' | 'string' | 'bool'
  | 'float16' | 'float64' | 'uint32' | 'uint64' | 'bfloat16';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export type NumericArray = Exclude<TypedArray, BigInt64Array | BigUint64Array>;

const CODES: Record<DType, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13, bfloat16: 16,
};
const BY_CODE = new Map<number, DType>(Object.entries(CODES).map(([k, v]) => [v, k as DType]));

/** Names of element types we can hold, for messages about the others. */
export const ONNX_TYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64',
  8: 'STRING', 9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64',
  15: 'COMPLEX128', 16: 'BFLOAT16', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4',
};

export function dtypeToOnnx(d: DType): number {
  return CODES[d];
}

export function dtypeFromOnnx(code: number): DType | undefined {
  return BY_CODE.get(code);
}

type ArrayCtor = { new (n: number): TypedArray; new (buf: ArrayBufferLike, off: number, len: number): TypedArray; BYTES_PER_ELEMENT: number };

const CTORS: Record<Exclude<DType, 'string'>, ArrayCtor> = {
  float32: Float32Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  int32: Int32Array, int64: BigInt64Array as unknown as ArrayCtor, bool: Uint8Array, float16: Uint16Array,
  float64: Float64Array, uint32: Uint32Array, uint64: BigUint64Array as unknown as ArrayCtor, bfloat16: Uint16Array,
};

export function arrayCtor(d: DType): ArrayCtor {
  if (d === 'string') throw new Error('string tensors have no typed-array storage');
  return CTORS[d];
}

export function bytesPerElement(d: DType): number {
  return d === 'string' ? 0 : CTORS[d].BYTES_PER_ELEMENT;
}

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export function isBigInt(d: DType): boolean {
  return d === 'int64' || d === 'uint64';
}

export function isInteger(d: DType): boolean {
  return d === 'int8' || d === 'uint8' || d === 'int16' || d === 'uint16' || d === 'int32' || d === 'uint32' || d === 'int64' || d === 'uint64';
}

/** [min, max] of an integer element type that fits in a JS number; undefined for the others. */
export function integerRange(d: string): [number, number] | undefined {
  switch (d) {
    case 'int8': return [-128, 127];
    case 'uint8': return [0, 255];
    case 'int16': return [-32768, 32767];
    case 'uint16': return [0, 65535];
    case 'int32': return [-2147483648, 2147483647];
    case 'uint32': return [0, 4294967295];
    default: return undefined;
  }
}
