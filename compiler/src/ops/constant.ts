import { allocData } from '../kernels/copy';
import { firstStored, intsOf, opError, storedValue, UNKNOWN_DIM } from '../kernels/op-args';
import { DType, dtypeFromOnnx, isBigInt } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- element writes are generic over number and bigint storage */

/** Constant, ConstantOfShape, Range, EyeLike: tensors made from attributes and shapes; CPU ops. */

/** Constant's value from whichever `value*` attribute is set (exactly one must be). */
function constantValue(node: Node): Tensor {
  const set = [...node.attrs.keys()].filter((k) => k === 'value' || k === 'sparse_value' || k.startsWith('value_'));
  if (set.length !== 1) {
    throw opError(node, 'E_MODEL_ATTR', `needs exactly one value attribute, has ${set.length ? set.join(', ') : 'none'}`, 're-export the model');
  }
  const name = set[0];
  const a = node.attrs.get(name)!;
  if (name === 'value' && a.type === 'tensor') return a.value;
  if (name === 'value_float' && (a.type === 'float' || a.type === 'int')) return tensorFrom('float32', [], [a.value]);
  if (name === 'value_floats' && (a.type === 'floats' || a.type === 'ints')) return tensorFrom('float32', [a.value.length], a.value);
  if (name === 'value_int' && (a.type === 'int' || a.type === 'float')) return tensorFrom('int64', [], [a.value]);
  if (name === 'value_ints' && (a.type === 'ints' || a.type === 'floats')) return tensorFrom('int64', [a.value.length], a.value);
  if (name === 'value_string' && a.type === 'string') return new Tensor('string', [], [a.value]);
  if (name === 'value_strings' && a.type === 'strings') return new Tensor('string', [a.value.length], a.value.slice());
  if (name === 'sparse_value') {
    throw opError(node, 'E_UNSUPPORTED_ATTR', 'sparse_value constants are not supported', 'store the constant as a dense tensor (value)');
  }
  throw opError(node, 'E_MODEL_ATTR', `attribute '${name}' has type ${a.type}`, 're-export the model');
}

/** ConstantOfShape: a tensor of the given dims filled with `value` (default float32 0). */
function runConstantOfShape(node: Node, shape: Tensor): Tensor {
  const dims = intsOf(shape)!;
  if (dims.some((d) => d < 0)) throw opError(node, 'E_MODEL_SHAPE', `shape [${dims}] has a negative size`, 'sizes must be >= 0');
  const v = node.tensor('value');
  const dtype: DType = v?.dtype ?? 'float32';
  const out = allocData(dtype, dims.reduce((a, b) => a * b, 1));
  if (v && v.size > 0) (out as any).fill(firstStored(v));
  return new Tensor(dtype, dims, out);
}

function inferConstantOfShape(node: Node, [s]: (ValueFacts | undefined)[]): ValueFacts[] {
  const dtype = node.tensor('value')?.dtype ?? 'float32';
  const dims = intsOf(s?.value);
  if (dims) return [{ dtype, shape: dims }];
  const len = s?.shape?.[0];
  return [{ dtype, shape: typeof len === 'number' ? Array.from({ length: len }, () => UNKNOWN_DIM) : undefined }];
}

/** Range: start, start + delta, … while before `limit`; ceil((limit - start) / delta) elements. */
function runRange(node: Node, [start, limit, delta]: Tensor[]): Tensor {
  const dtype = start.dtype;
  const s = firstStored(start);
  const l = firstStored(limit);
  const d = firstStored(delta);
  if (isBigInt(dtype)) {
    const S = s as bigint;
    const D = d as bigint;
    if (D === 0n) throw opError(node, 'E_MODEL_ATTR', 'delta is 0', 'use a non-zero delta');
    const span = (l as bigint) - S;
    // ceil division on bigints, clamped at 0
    let n = span / D + (span % D !== 0n && (span > 0n) === (D > 0n) ? 1n : 0n);
    if (n < 0n) n = 0n;
    const out = new BigInt64Array(Number(n));
    for (let i = 0; i < out.length; i++) out[i] = S + BigInt(i) * D;
    return new Tensor(dtype, [out.length], out);
  }
  const S = Number(s);
  const D = Number(d);
  if (D === 0) throw opError(node, 'E_MODEL_ATTR', 'delta is 0', 'use a non-zero delta');
  const n = Math.max(Math.ceil((Number(l) - S) / D), 0);
  const out = allocData(dtype, n) as any;
  for (let i = 0; i < n; i++) out[i] = S + i * D;
  return new Tensor(dtype, [n], out);
}

/** EyeLike: zeros of the input's 2-D shape with ones on diagonal k, in `dtype` (default the input's). */
function eyeDtype(node: Node, input: DType | undefined): DType | undefined {
  const code = node.int('dtype');
  if (code === undefined) return input;
  const d = dtypeFromOnnx(code);
  if (!d || d === 'string') throw opError(node, 'E_MODEL_ATTR', `dtype ${code} is not a supported numeric element type`, 'use a numeric TensorProto data type');
  return d;
}

function runEyeLike(node: Node, x: Tensor): Tensor {
  if (x.rank !== 2) throw opError(node, 'E_MODEL_SHAPE', `input has rank ${x.rank}, expected 2`, 'EyeLike takes a 2-D input');
  const dtype = eyeDtype(node, x.dtype)!;
  const [rows, cols] = x.dims;
  const k = node.int('k', 0);
  const out = allocData(dtype, rows * cols) as any;
  const one = storedValue(dtype, 1);
  for (let i = Math.max(0, -k); i < rows && i + k < cols; i++) out[i * cols + i + k] = one;
  return new Tensor(dtype, x.dims, out);
}

export const ops: OpDef[] = [
  {
    type: 'Constant',
    quant: 'cpu',
    infer: ({ node }) => {
      const t = constantValue(node);
      return [{ dtype: t.dtype, shape: t.dims.slice(), value: t }];
    },
    run: ({ node }) => [constantValue(node)],
  },
  {
    type: 'ConstantOfShape',
    quant: 'cpu',
    nativeHalf: true,
    infer: ({ node }, inputs) => inferConstantOfShape(node, inputs),
    run: ({ node }, [s]) => [runConstantOfShape(node, s!)],
  },
  {
    type: 'Range',
    quant: 'cpu',
    sinceOpset: 11,
    infer: (_ctx, [s]) => [{ dtype: s?.dtype, shape: [UNKNOWN_DIM] }],
    run: ({ node }, inputs) => [runRange(node, inputs as Tensor[])],
  },
  {
    type: 'EyeLike',
    quant: 'cpu',
    nativeHalf: true,
    sinceOpset: 9,
    infer: ({ node }, [x]) => [{ dtype: eyeDtype(node, x?.dtype), shape: x?.shape }],
    run: ({ node }, [x]) => [runEyeLike(node, x!)],
  },
];
