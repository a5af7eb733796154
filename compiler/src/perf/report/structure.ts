import type { Placement } from '../../check/placement';
import type { BinModel } from '../../compile/bin-format';
import type { Model } from '../../onnx/ir';
import type { PerfEstimate } from '../types';

/**
 * The BIN Model Structure picture's graph: ops (BPU or CPU), model inputs and outputs, the
 * values flowing between them, and the BPU subgraphs that box their ops. Built from a `.bin`
 * (what `ptq perf` and the perf stage draw) or from a placed model (the check stage's view, used
 * before anything is compiled).
 */

export type StructureNodeKind = 'BPU' | 'CPU' | 'input' | 'output';

export interface StructureNode {
  /** unique within the structure */
  id: string;
  /** the op / input / output name */
  label: string;
  /** op type (`input` / `output` for the model's boundary) */
  type: string;
  kind: StructureNodeKind;
  /** the BPU subgraph the node belongs to (BPU nodes only) */
  subgraph?: string;
  /** how many ops a collapsed subgraph node stands for */
  members?: number;
}

export interface StructureEdge {
  from: string;
  to: string;
  /** the value(s) flowing, comma-separated when several */
  value: string;
}

export interface ModelStructure {
  /** in execution order */
  nodes: StructureNode[];
  edges: StructureEdge[];
  /** BPU subgraph names, in execution order */
  subgraphs: string[];
}

/** Above this many nodes the picture shows each BPU subgraph as one node. */
export const COLLAPSE_ABOVE = 400;

class Builder {
  readonly nodes: StructureNode[] = [];
  private readonly edgeIndex = new Map<string, StructureEdge>();
  private readonly edges: StructureEdge[] = [];
  private readonly ids = new Set<string>();
  private readonly producers = new Map<string, string>();

  add(node: Omit<StructureNode, 'id'>, prefix: string): string {
    let id = `${prefix}:${node.label}`;
    for (let k = 2; this.ids.has(id); k++) id = `${prefix}:${node.label}#${k}`;
    this.ids.add(id);
    this.nodes.push({ id, ...node });
    return id;
  }

  produces(value: string, id: string): void {
    if (value && !this.producers.has(value)) this.producers.set(value, id);
  }

  reads(value: string, id: string): void {
    const from = this.producers.get(value);
    if (!from || from === id) return;
    const key = `${from}\u0000${id}`;
    const e = this.edgeIndex.get(key);
    if (e) {
      if (!e.value.split(', ').includes(value)) e.value += `, ${value}`;
      return;
    }
    const edge = { from, to: id, value };
    this.edgeIndex.set(key, edge);
    this.edges.push(edge);
  }

  finish(subgraphs: string[]): ModelStructure {
    return { nodes: this.nodes, edges: this.edges, subgraphs };
  }
}

/** The structure of one model of a `.bin`: its segments' ops, inputs and outputs. */
export function structureFromBin(m: BinModel): ModelStructure {
  const b = new Builder();
  for (const io of m.inputs) b.produces(io.value, b.add({ label: io.name, type: 'input', kind: 'input' }, 'input'));
  const subgraphs: string[] = [];
  for (const s of m.segments) {
    if (s.kind === 'bpu' && s.ops.length && !subgraphs.includes(s.name)) subgraphs.push(s.name);
    for (const op of s.ops) {
      const kind = s.kind === 'bpu' ? 'BPU' : 'CPU';
      const id = b.add({ label: op.name, type: op.type, kind, ...(kind === 'BPU' ? { subgraph: s.name } : {}) }, 'op');
      for (const i of op.inputs) b.reads(i, id);
      for (const o of op.outputs) b.produces(o, id);
    }
  }
  for (const io of m.outputs) b.reads(io.value, b.add({ label: io.name, type: 'output', kind: 'output' }, 'output'));
  return b.finish(subgraphs);
}

/**
 * The structure of a placed model (check stage): every placed node, BPU nodes boxed by
 * subgraph (named as the estimate names them when one is given, else `<graph>_subgraph_<id>`).
 */
export function structureFromPlacement(model: Model, placement: Placement, estimate?: PerfEstimate): ModelStructure {
  const g = model.graph;
  const byLabel = new Map(g.nodes.map((n) => [n.label, n] as const));
  const names = new Map<number, string>();
  for (const sg of placement.subgraphs) names.set(sg.id, estimate?.subgraphs.find((s) => s.id === sg.id)?.name ?? `${placement.graphName}_subgraph_${sg.id}`);
  const b = new Builder();
  for (const v of g.realInputs) b.produces(v.name, b.add({ label: v.name, type: 'input', kind: 'input' }, 'input'));
  const subgraphs: string[] = [];
  for (const p of placement.nodes) {
    const node = byLabel.get(p.name);
    if (!node) continue;
    const sg = p.on === 'BPU' && p.subgraph !== undefined ? names.get(p.subgraph) : undefined;
    if (sg && !subgraphs.includes(sg)) subgraphs.push(sg);
    const id = b.add({ label: p.name, type: p.on === 'BPU' ? p.type : p.op, kind: p.on, ...(sg ? { subgraph: sg } : {}) }, 'op');
    for (const i of node.inputs) if (i) b.reads(i, id);
    for (const o of node.outputs) b.produces(o, id);
  }
  for (const v of g.outputs) b.reads(v.name, b.add({ label: v.name, type: 'output', kind: 'output' }, 'output'));
  return b.finish(subgraphs);
}

/** Each BPU subgraph as one node (edges inside it dropped, edges across it kept once). */
export function collapseSubgraphs(s: ModelStructure): ModelStructure {
  const rep = new Map<string, string>();
  const nodes: StructureNode[] = [];
  const seen = new Map<string, StructureNode>();
  for (const n of s.nodes) {
    if (n.kind !== 'BPU' || !n.subgraph) {
      nodes.push(n);
      rep.set(n.id, n.id);
      continue;
    }
    let c = seen.get(n.subgraph);
    if (!c) {
      c = { id: `subgraph:${n.subgraph}`, label: n.subgraph, type: 'BPU subgraph', kind: 'BPU', subgraph: n.subgraph, members: 0 };
      seen.set(n.subgraph, c);
      nodes.push(c);
    }
    c.members = (c.members ?? 0) + (n.members ?? 1);
    rep.set(n.id, c.id);
  }
  const edges: StructureEdge[] = [];
  const index = new Map<string, StructureEdge>();
  for (const e of s.edges) {
    const from = rep.get(e.from)!;
    const to = rep.get(e.to)!;
    if (from === to) continue;
    const key = `${from}\u0000${to}`;
    const have = index.get(key);
    if (have) {
      for (const v of e.value.split(', ')) if (!have.value.split(', ').includes(v)) have.value += `, ${v}`;
      continue;
    }
    const edge = { from, to, value: e.value };
    index.set(key, edge);
    edges.push(edge);
  }
  return { nodes, edges, subgraphs: s.subgraphs };
}
