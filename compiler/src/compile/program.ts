import type { BinAttr, BinDeletedNode } from './bin-format';
import type { DType } from '../onnx/dtype';
import type { Tensor } from '../onnx/tensor';

/**
 * The compiler's working form of a `.bin` model: values with their logical (ONNX) dims and
 * physical layout, constants, and ops in execution order. The lowering (lower.ts) builds it
 * from `***_quantized_model.onnx`; the passes (layout.ts, fuse.ts, remove-nodes.ts,
 * schedule.ts) rewrite it; emit.ts turns it into a BinModel.
 */

/** Our own op types (the fused BPU operators and the CPU boundary ops) live in this domain. */
export const NX_DOMAIN = 'nx_ptq';

/**
 * Physical storage of a value: 'plain' = the logical (ONNX) order; 'nhwc' = a rank-4 value
 * whose logical dims are [N, C, H, W], stored channels-last [N, H, W, C].
 */
export type Layout = 'plain' | 'nhwc';

export type Device = 'bpu' | 'cpu';

export interface PValue {
  name: string;
  dtype: DType;
  /** logical (ONNX) dims */
  dims: number[];
  /** int8/int16 quantization scale (0 = not a quantized value) */
  scale: number;
  layout: Layout;
}

export interface POp {
  name: string;
  /** an NX_DOMAIN op type, or an ONNX op type (domain '' or a custom domain) run by the op registry */
  type: string;
  domain: string;
  device: Device;
  /** value or constant names; '' = an absent optional input */
  inputs: string[];
  outputs: string[];
  attrs: BinAttr[];
  /** quantized-model nodes this op stands for */
  sources: string[];
  /**
   * An ONNX op of a node_info int16 pattern (lower.ts `markInt16`): on the BPU, computing in
   * the logical order (layout.ts leaves its outputs plain; the runtime converts NHWC inputs).
   */
  int16Pattern?: boolean;
}

export interface PInput {
  /** the application-facing name (the quantized model's input name) */
  name: string;
  /** the value the application's data is bound to */
  value: string;
  /** input_type_rt, input_type_train, input_layout_rt, input_space_and_range, input_source */
  typeRt: string;
  typeTrain: string;
  layoutRt: string;
  spaceAndRange: string;
  source: string;
}

export interface POutput {
  name: string;
  value: string;
}

export interface Program {
  name: string;
  graphName: string;
  values: Map<string, PValue>;
  consts: Map<string, Tensor>;
  ops: POp[];
  inputs: PInput[];
  outputs: POutput[];
  deleted: BinDeletedNode[];
  /** log lines of the passes (fusions, conversions, deletions) */
  notes: string[];
  /** quantized-model nodes of the HzPreprocess stage (input normalisation, colour conversion) */
  preprocessNodes: Set<string>;
}

// ------------------------------------------------------------------------------------------
// attributes

export const attr = {
  i: (name: string, i: number): BinAttr => ({ name, i }),
  f: (name: string, f: number): BinAttr => ({ name, f }),
  s: (name: string, s: string): BinAttr => ({ name, s }),
  ints: (name: string, ints: number[]): BinAttr => ({ name, ints: ints.slice() }),
  floats: (name: string, floats: ArrayLike<number>): BinAttr => ({ name, floats: Array.from(floats) }),
};

export function getAttr(op: { attrs: BinAttr[] }, name: string): BinAttr | undefined {
  return op.attrs.find((a) => a.name === name);
}

export function setAttr(op: { attrs: BinAttr[] }, a: BinAttr): void {
  const k = op.attrs.findIndex((x) => x.name === a.name);
  if (k >= 0) op.attrs[k] = a;
  else op.attrs.push(a);
}

export function removeAttr(op: { attrs: BinAttr[] }, name: string): void {
  const k = op.attrs.findIndex((x) => x.name === name);
  if (k >= 0) op.attrs.splice(k, 1);
}

export function attrInt(op: { attrs: BinAttr[] }, name: string, def?: number): number | undefined {
  return getAttr(op, name)?.i ?? def;
}

export function attrFloat(op: { attrs: BinAttr[] }, name: string, def?: number): number | undefined {
  return getAttr(op, name)?.f ?? def;
}

export function attrStr(op: { attrs: BinAttr[] }, name: string, def?: string): string | undefined {
  return getAttr(op, name)?.s ?? def;
}

export function attrInts(op: { attrs: BinAttr[] }, name: string, def?: number[]): number[] | undefined {
  return getAttr(op, name)?.ints ?? def;
}

export function attrFloats(op: { attrs: BinAttr[] }, name: string, def?: number[]): number[] | undefined {
  return getAttr(op, name)?.floats ?? def;
}

// ------------------------------------------------------------------------------------------
// layouts

/** Physical dims of a value. */
export function physicalDims(v: Pick<PValue, 'dims' | 'layout'>): number[] {
  const d = v.dims;
  return v.layout === 'nhwc' ? [d[0], d[2], d[3], d[1]] : d.slice();
}

/** Logical dims from physical ones. */
export function logicalDims(phys: readonly number[], layout: Layout): number[] {
  return layout === 'nhwc' ? [phys[0], phys[3], phys[1], phys[2]] : phys.slice();
}

/** For each physical axis, the logical axis it holds. */
export function physToLogical(layout: Layout, rank: number): number[] {
  return layout === 'nhwc' ? [0, 2, 3, 1] : Array.from({ length: rank }, (_, i) => i);
}

/** Logical axis → physical axis. */
export function logicalToPhysAxis(layout: Layout, axis: number): number {
  return layout === 'nhwc' ? [0, 3, 1, 2][axis] : axis;
}

/**
 * Whether two storages of the same elements hold them in the same byte order: the axes of
 * size > 1, in the order they are stored, are the same logical axes.
 */
export function sameBytes(dims: readonly number[], a: Layout, b: Layout): boolean {
  if (a === b) return true;
  const order = (l: Layout): number[] => physToLogical(l, dims.length).filter((ax) => dims[ax] > 1);
  const x = order(a);
  const y = order(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

// ------------------------------------------------------------------------------------------
// graph helpers

/** Producer op of every value. */
export function producers(p: Program): Map<string, POp> {
  const m = new Map<string, POp>();
  for (const op of p.ops) for (const o of op.outputs) if (o) m.set(o, op);
  return m;
}

/** Ops reading every value (an op reading a value twice is listed once). */
export function consumers(p: Program): Map<string, POp[]> {
  const m = new Map<string, POp[]>();
  for (const op of p.ops) {
    for (const i of new Set(op.inputs)) {
      if (!i) continue;
      let l = m.get(i);
      if (!l) m.set(i, (l = []));
      l.push(op);
    }
  }
  return m;
}

/** Values the application reads (model outputs). */
export function outputValues(p: Program): Set<string> {
  return new Set(p.outputs.map((o) => o.value));
}

/** Replace every read of `from` by `to` (ops and outputs). */
export function replaceUses(p: Program, from: string, to: string): void {
  for (const op of p.ops) op.inputs = op.inputs.map((i) => (i === from ? to : i));
  for (const o of p.outputs) if (o.value === from) o.value = to;
}

/** Drop values no op, input or output mentions; drop constants no op reads. */
export function pruneProgram(p: Program): void {
  const used = new Set<string>();
  for (const op of p.ops) {
    for (const i of op.inputs) if (i) used.add(i);
    for (const o of op.outputs) if (o) used.add(o);
  }
  for (const i of p.inputs) used.add(i.value);
  for (const o of p.outputs) used.add(o.value);
  for (const k of [...p.values.keys()]) if (!used.has(k)) p.values.delete(k);
  for (const k of [...p.consts.keys()]) if (!used.has(k)) p.consts.delete(k);
}

/** Fresh names that do not collide with any existing value, constant or op name. */
export class Names {
  private readonly used = new Set<string>();
  constructor(p?: Program) {
    if (p) {
      for (const k of p.values.keys()) this.used.add(k);
      for (const k of p.consts.keys()) this.used.add(k);
      for (const op of p.ops) this.used.add(op.name);
      for (const i of p.inputs) this.used.add(i.name);
      for (const o of p.outputs) this.used.add(o.name);
    }
  }

  claim(name: string): void {
    this.used.add(name);
  }

  has(name: string): boolean {
    return this.used.has(name);
  }

  fresh(base: string): string {
    let n = base;
    for (let k = 1; this.used.has(n); k++) n = `${base}_${k}`;
    this.used.add(n);
    return n;
  }
}
