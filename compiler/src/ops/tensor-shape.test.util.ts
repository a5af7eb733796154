/**
 * Test helpers for the data-movement operator tests (not an operator module: the `.test.` in
 * the name keeps ops/index.ts from loading it, and jest only runs `*.test.ts`).
 */
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp, ValueFacts } from './registry';

export type AttrInput = number | string | number[] | string[] | Tensor | { float: number } | { floats: number[] };

export function toAttr(v: AttrInput): Attribute {
  if (v instanceof Tensor) return { type: 'tensor', value: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.length && typeof v[0] === 'string') return { type: 'strings', value: v as string[] };
    return (v as number[]).every(Number.isInteger) ? { type: 'ints', value: v as number[] } : { type: 'floats', value: v as number[] };
  }
  if ('float' in v) return { type: 'float', value: v.float };
  return { type: 'floats', value: v.floats };
}

export function makeNode(opType: string, nInputs: number, attrs: Record<string, AttrInput> = {}, nOutputs = 1): Node {
  const a: Record<string, Attribute> = {};
  for (const [k, v] of Object.entries(attrs)) a[k] = toAttr(v);
  return new Node({
    opType,
    name: `${opType.toLowerCase()}_under_test`,
    inputs: Array.from({ length: nInputs }, (_, i) => `in${i}`),
    outputs: Array.from({ length: nOutputs }, (_, i) => `out${i}`),
    attrs: a,
  });
}

/** Run an op the way the engine does (including its float16 handling). Undefined inputs are absent optional inputs. */
export function runOp(opType: string, opset: number, inputs: (Tensor | undefined)[], attrs: Record<string, AttrInput> = {}, nOutputs = 1): Tensor[] {
  const op = findOp('', opType);
  if (!op) throw new Error(`${opType} is not registered`);
  const node = makeNode(opType, inputs.length, attrs, nOutputs);
  inputs.forEach((t, i) => {
    if (!t) node.inputs[i] = '';
  });
  return runStep({ node, op, opset }, inputs);
}

export function inferOp(opType: string, opset: number, facts: (ValueFacts | undefined)[], attrs: Record<string, AttrInput> = {}, nOutputs = 1): ValueFacts[] {
  const op = findOp('', opType);
  if (!op) throw new Error(`${opType} is not registered`);
  return op.infer({ node: makeNode(opType, facts.length, attrs, nOutputs), opset }, facts);
}

/** Facts of a constant. */
export const known = (t: Tensor): ValueFacts => ({ dtype: t.dtype, shape: t.dims.slice(), value: t });

export const f32 = (dims: number[], v: ArrayLike<number>): Tensor => tensorFrom('float32', dims, v);
export const i64 = (v: number[], dims: number[] = [v.length]): Tensor => tensorFrom('int64', dims, v);
export const i32 = (v: number[], dims: number[] = [v.length]): Tensor => tensorFrom('int32', dims, v);
/** 0, 1, 2, … (n of them) */
export const iota = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
export const sizeOfDims = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Row-major multi-index of flat position i. */
export function unravel(i: number, dims: readonly number[]): number[] {
  const idx = new Array<number>(dims.length);
  for (let d = dims.length - 1; d >= 0; d--) {
    idx[d] = i % dims[d];
    i = Math.floor(i / dims[d]);
  }
  return idx;
}

export function ravel(idx: readonly number[], dims: readonly number[]): number {
  let f = 0;
  for (let d = 0; d < dims.length; d++) f = f * dims[d] + idx[d];
  return f;
}

/** A deterministic pseudo-random sequence in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export const values = (t: Tensor): (number | string)[] => (t.dtype === 'string' ? (t.data as string[]).slice() : t.toNumbers());
