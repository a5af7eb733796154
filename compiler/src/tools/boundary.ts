import { BinAttr, BinModel, BinOp, BinTensor, attrOf } from '../compile/bin-format';
import { dtypeFromOnnx } from '../onnx/dtype';
import { Tensor } from '../onnx/tensor';

/**
 * What `ptq model-modifier` may delete (the reference's hb_model_modifier rule): a Quantize or
 * Transpose op reading a model input, or a Transpose, Dequantize, Cast, Reshape or Softmax op
 * writing a model output — with nothing else between it and the model boundary. This module
 * finds such ops in a BinModel; modifier.ts removes them.
 */

/** Node types deletable at a model input, in the reference's spelling. */
export const INPUT_SIDE_TYPES: readonly string[] = ['Quantize', 'Transpose'];
/** Node types deletable at a model output. */
export const OUTPUT_SIDE_TYPES: readonly string[] = ['Transpose', 'Dequantize', 'Cast', 'Reshape', 'Softmax'];
/** Every type `-a/--all` accepts. */
export const DELETABLE_TYPES: readonly string[] = ['Transpose', 'Quantize', 'Dequantize', 'Cast', 'Reshape', 'Softmax'];

/** Spellings of the same operation in `.bin` CPU segments (ONNX names) and the reference (Hz names). */
const TYPE_ALIASES: Readonly<Record<string, string>> = {
  QuantizeLinear: 'Quantize',
  HzQuantize: 'Quantize',
  DequantizeLinear: 'Dequantize',
  HzDequantize: 'Dequantize',
  // the compiler's layout conversion of a model input/output, and ONNX Flatten
  LayoutConvert: 'Transpose',
  Flatten: 'Reshape',
};

/** The reference's name of an op type (`QuantizeLinear` → `Quantize`); other types unchanged. */
export function canonicalType(type: string): string {
  return TYPE_ALIASES[type] ?? type;
}

/** A deletable op and the model boundary it sits on. */
export interface BoundaryOp {
  op: BinOp;
  /** index of its segment in model.segments */
  segment: number;
  /** 0-based execution step of the op (over all segments, in order) */
  step: number;
  position: 'input' | 'output';
  /** canonical type (Quantize, Transpose, ...) */
  type: string;
  /** the value on the boundary now (a model input or output value) */
  boundaryValue: string;
  /** the value the boundary moves to once the op is gone */
  innerValue: string;
}

interface Use {
  op: BinOp;
  segment: number;
  step: number;
}

/** Who reads each value (op inputs; a value read twice by one op counts twice). */
export function readersOf(m: BinModel): Map<string, Use[]> {
  const readers = new Map<string, Use[]>();
  let step = 0;
  m.segments.forEach((s, segment) => {
    for (const op of s.ops) {
      for (const v of op.inputs) {
        if (!v) continue;
        const list = readers.get(v);
        if (list) list.push({ op, segment, step });
        else readers.set(v, [{ op, segment, step }]);
      }
      step++;
    }
  });
  return readers;
}

/** Every op with its segment index and execution step. */
export function opsOf(m: BinModel): Use[] {
  const out: Use[] = [];
  m.segments.forEach((s, segment) => s.ops.forEach((op) => out.push({ op, segment, step: out.length })));
  return out;
}

/**
 * The ops deletable now, in execution order. An input-side op reads a model input (its first
 * input) that nothing else reads and has one output; an output-side op writes exactly one value,
 * a model output nobody reads, from an activation. Every other input of the op must be a
 * constant (scale, zero point, shape): removing the op must not cut another path.
 */
export function deletableOps(m: BinModel): BoundaryOp[] {
  const constants = new Set(m.tensors.map((t) => t.name));
  const inputs = new Set(m.inputs.map((io) => io.value));
  const outputs = new Set(m.outputs.map((io) => io.value));
  const readers = readersOf(m);
  const found: BoundaryOp[] = [];
  for (const { op, segment, step } of opsOf(m)) {
    const type = canonicalType(op.type);
    const data = op.inputs[0];
    const written = op.outputs.filter((o) => o !== '');
    if (!data || written.length !== 1 || op.outputs.length !== 1) continue;
    const rest = op.inputs.slice(1).filter((v) => v !== '');
    if (!rest.every((v) => constants.has(v))) continue;
    const out = written[0];
    if (
      INPUT_SIDE_TYPES.includes(type) &&
      inputs.has(data) &&
      !outputs.has(data) &&
      !inputs.has(out) &&
      (readers.get(data) ?? []).length === 1
    ) {
      found.push({ op, segment, step, position: 'input', type, boundaryValue: data, innerValue: out });
    } else if (
      OUTPUT_SIDE_TYPES.includes(type) &&
      outputs.has(out) &&
      !(readers.get(out)?.length) &&
      !constants.has(data) &&
      !inputs.has(data)
    ) {
      found.push({ op, segment, step, position: 'output', type, boundaryValue: out, innerValue: data });
    }
  }
  return found;
}

/** The numbers of a constant (little-endian raw bytes); undefined for non-numeric types. */
export function constantValues(t: BinTensor): number[] | undefined {
  if (t.dtype === 'string' || t.dtype === 'bool') return undefined;
  return Tensor.fromRaw(t.dtype, t.dims, t.raw).toNumbers();
}

/**
 * A numeric parameter of an op: the attribute `name`, else the constant at input `index`
 * (ONNX QuantizeLinear/Reshape/... keep scale, zero point and shape as inputs).
 */
export function numericParam(m: BinModel, op: BinOp, name: string, index: number): number[] | undefined {
  const a = attrOf(op.attrs, name);
  if (a) {
    if (a.f !== undefined) return [a.f];
    if (a.i !== undefined) return [a.i];
    if (a.floats !== undefined) return a.floats.slice();
    if (a.ints !== undefined) return a.ints.slice();
  }
  const input = op.inputs[index];
  if (!input) return undefined;
  const t = m.tensors.find((x) => x.name === input);
  return t ? constantValues(t) : undefined;
}

/** The perm of a Transpose (attribute or constant input) or of a LayoutConvert (its from/to layouts). */
export function permOf(m: BinModel, op: BinOp, rank: number): number[] {
  if (op.type === 'LayoutConvert') {
    const to = attrOf(op.attrs, 'to')?.s;
    return to === 'NHWC' ? [0, 2, 3, 1] : [0, 3, 1, 2];
  }
  return numericParam(m, op, 'perm', 1) ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

/** An attribute holding one number or a list (integers when `int`). */
export function numberAttr(name: string, values: number[], int: boolean): BinAttr {
  if (values.length === 1) return int ? { name, i: values[0] } : { name, f: values[0] };
  return int ? { name, ints: values.slice() } : { name, floats: values.slice() };
}

/** `float32[1,3,224,224] NCHW` */
export function describeValue(m: BinModel, name: string): string {
  const v = m.values.find((x) => x.name === name);
  if (!v) return `'${name}'`;
  return `${v.dtype}[${v.shape.join(',')}]${v.layout ? ` ${v.layout}` : ''}`;
}

/** The ONNX element type name of a Cast's `to` (undefined when unknown). */
export function castTarget(code: number | undefined): string | undefined {
  if (code === undefined) return undefined;
  return dtypeFromOnnx(code);
}
