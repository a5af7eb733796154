import { Graph } from '../onnx/ir';

/**
 * Names used in a graph, to make fresh ones: `'values'` (inputs, outputs, initializers, node
 * inputs/outputs, value_info) or `'nodes'` (node names) — ONNX keeps the two apart, so a
 * node may share its output's name.
 */
export class Namer {
  private readonly used = new Set<string>();

  constructor(g?: Graph, what: 'values' | 'nodes' = 'values') {
    if (g) collectNames(g, this.used, what);
  }

  /** `base` if free, else `base_1`, `base_2`, … (and claims it). */
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  claim(name: string): void {
    this.used.add(name);
  }

  has(name: string): boolean {
    return this.used.has(name);
  }
}

function collectNames(g: Graph, used: Set<string>, what: 'values' | 'nodes'): void {
  if (what === 'values') {
    for (const v of [...g.inputs, ...g.outputs]) used.add(v.name);
    for (const k of g.initializers.keys()) used.add(k);
    for (const k of g.valueInfo.keys()) used.add(k);
  }
  for (const n of g.nodes) {
    if (what === 'nodes' && n.name) used.add(n.name);
    if (what === 'values') {
      for (const o of n.outputs) if (o) used.add(o);
      for (const i of n.inputs) if (i) used.add(i);
    }
    for (const a of n.attrs.values()) {
      if (a.type === 'graph') collectNames(a.value, used, what);
      else if (a.type === 'graphs') a.value.forEach((s) => collectNames(s, used, what));
    }
  }
}

export { cloneModel, cloneGraph, cloneValueInfo, cloneNode } from '../onnx/clone';
