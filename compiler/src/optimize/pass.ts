import { isPtqError } from '../errors';
import { isFloat } from '../onnx/dtype';
import { Graph, Model, Node, subgraphOuterRefs } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { ValueFacts } from '../ops/registry';

/** What one pass did: how many rewrites, and one line per rewrite or refusal worth telling. */
export interface PassResult {
  changed: number;
  notes: string[];
}

/** A graph pass: mutates the model in place and says what it changed. */
export type Pass = (model: Model) => PassResult;

/**
 * The constant value of `name`, or undefined: an initializer counts as constant unless it is
 * also listed as a graph input in a model of IR version 4 or later, where the listing makes it
 * an overridable default (before IR 4 every initializer had to be listed, so the listing means nothing).
 */
export function constantOf(model: Model, name: string): Tensor | undefined {
  if (!name) return undefined;
  const t = model.graph.initializers.get(name);
  if (!t) return undefined;
  if (model.irVersion >= 4 && model.graph.inputs.some((v) => v.name === name)) return undefined;
  return t;
}

/** Readers of every value: node inputs and references from If/Loop/Scan bodies (a node reading a value twice counts once). */
export function readersOf(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const v of new Set([...n.inputs, ...subgraphOuterRefs(n)])) {
      if (!v) continue;
      let l = m.get(v);
      if (!l) m.set(v, (l = []));
      l.push(n);
    }
  }
  return m;
}

export function isGraphOutput(g: Graph, name: string): boolean {
  return g.outputs.some((o) => o.name === name);
}

/** True when `name` is read by exactly `node` (and is not a graph output): rewriting it affects nobody else. */
export function onlyReadBy(g: Graph, readers: Map<string, Node[]>, name: string, node: Node): boolean {
  const r = readers.get(name) ?? [];
  return r.length === 1 && r[0] === node && !isGraphOutput(g, name);
}

/** A value name not used anywhere in the graph yet: `base`, else `base_1`, `base_2`, … */
export function freshName(g: Graph, base: string): string {
  const used = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name), ...g.outputs.map((v) => v.name)]);
  for (const n of g.nodes) {
    for (const v of n.inputs) used.add(v);
    for (const v of n.outputs) used.add(v);
  }
  if (!used.has(base)) return base;
  let k = 1;
  while (used.has(`${base}_${k}`)) k++;
  return `${base}_${k}`;
}

/**
 * Give `node` the constant `t` as input `k`: the initializer is replaced in place when only
 * this node reads it, otherwise a new initializer is added (shared weights stay intact).
 * A fresh tensor is always stored, never the old one mutated (kernels cache packed weights per tensor).
 */
export function setConstantInput(model: Model, node: Node, k: number, t: Tensor, base: string): void {
  const g = model.graph;
  const old = node.inputs[k];
  if (old && g.initializers.has(old) && constantOf(model, old) && onlyReadBy(g, readersOf(g), old, node)) {
    g.initializers.set(old, t);
    return;
  }
  const name = freshName(g, base);
  addInitializer(model, name, t);
  while (node.inputs.length <= k) node.inputs.push('');
  node.inputs[k] = name;
}

/** Add initializer `name`; before IR 4 every initializer must also be listed as a graph input. */
export function addInitializer(model: Model, name: string, t: Tensor): void {
  const g = model.graph;
  g.initializers.set(name, t);
  if (model.irVersion < 4 && !g.inputs.some((v) => v.name === name)) g.inputs.push({ name, type: { dtype: t.dtype, shape: t.dims.slice() } });
}

/** A float tensor of `dtype` from float64 values (float16/bfloat16 rounded by tensorFrom). */
export function floatTensor(dtype: Tensor['dtype'], dims: readonly number[], values: Float64Array): Tensor {
  if (dtype === 'float64') return new Tensor('float64', dims, values);
  if (dtype === 'float32') return new Tensor('float32', dims, new Float32Array(values));
  return tensorFrom(dtype, dims, values);
}

/** Elements of a float tensor as a fresh float64 array (the caller may write it), or undefined for other types. */
export function floatValues(t: Tensor): Float64Array | undefined {
  if (!isFloat(t.dtype)) return undefined;
  if (t.dtype === 'float64' || t.dtype === 'float32') return new Float64Array(t.array as Float64Array | Float32Array);
  return new Float64Array(t.toNumbers());
}

/**
 * The values of constant `t` per channel when it varies along `axis` only, for an operand of
 * rank `rank` (numpy broadcasting: dims right-aligned). Returns `channels` values (a scalar or
 * size-1 channel dim is repeated), or undefined when `t` varies along another axis, has more
 * dims than the operand, or has a channel dim other than 1 or `channels`.
 */
export function perChannel(t: Tensor, rank: number, axis: number, channels: number): Float64Array | undefined {
  const v = floatValues(t);
  if (!v || t.rank > rank) return undefined;
  const offset = rank - t.rank;
  let c = 1;
  for (let i = 0; i < t.rank; i++) {
    const d = t.dims[i];
    if (i + offset === axis) c = d;
    else if (d !== 1) return undefined;
  }
  if (c !== 1 && c !== channels) return undefined;
  const out = new Float64Array(channels);
  for (let i = 0; i < channels; i++) out[i] = v[c === 1 ? 0 : i];
  return out;
}

/** `node.label` with the op type, for notes. */
export function describe(node: Node): string {
  return `${node.opType} '${node.label}'`;
}

/**
 * Shape facts of every value (inferShapes without writing anything back), with overridable
 * initializers (see constantOf) treated as the inputs they are; null when inference fails on a
 * model error, so a pass can skip what needs shapes instead of failing.
 */
export function shapeFacts(model: Model, inputShapes?: Record<string, number[]>): Map<string, ValueFacts> | null {
  const g = model.graph;
  const constants = new Map([...g.initializers].filter(([name]) => constantOf(model, name)));
  const view = new Model(new Graph({ name: g.name, nodes: g.nodes, inputs: g.inputs, outputs: g.outputs, initializers: constants, valueInfo: g.valueInfo }), {
    irVersion: model.irVersion,
    opsetImports: model.opsetImports,
  });
  try {
    return inferShapes(view, { inputShapes, apply: false });
  } catch (e) {
    if (isPtqError(e)) return null;
    throw e;
  }
}
