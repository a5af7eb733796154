import { Attribute, Graph, Model, Node, ValueInfo } from '../onnx/ir';

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

/** A copy of `model` whose structure (nodes, lists, maps, subgraphs) can be edited freely; tensors are shared. */
export function cloneModel(model: Model): Model {
  return new Model(cloneGraph(model.graph), {
    irVersion: model.irVersion,
    opsetImports: model.opsetImports.map((o) => ({ ...o })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    metadataProps: { ...model.metadataProps },
    extra: model.extra,
  });
}

export function cloneGraph(g: Graph): Graph {
  const c = new Graph({
    name: g.name,
    docString: g.docString,
    nodes: g.nodes.map(cloneNode),
    inputs: g.inputs.map(cloneValueInfo),
    outputs: g.outputs.map(cloneValueInfo),
    initializers: new Map(g.initializers),
    valueInfo: new Map([...g.valueInfo].map(([k, v]) => [k, cloneValueInfo(v)])),
  });
  c.extra = g.extra;
  return c;
}

export function cloneValueInfo(v: ValueInfo): ValueInfo {
  return { ...v, type: v.type ? { dtype: v.type.dtype, shape: v.type.shape?.slice() } : undefined };
}

export function cloneNode(n: Node): Node {
  const attrs = new Map<string, Attribute>();
  for (const [k, a] of n.attrs) {
    if (a.type === 'graph') attrs.set(k, { type: 'graph', value: cloneGraph(a.value) });
    else if (a.type === 'graphs') attrs.set(k, { type: 'graphs', value: a.value.map(cloneGraph) });
    else if (a.type === 'ints' || a.type === 'floats') attrs.set(k, { type: a.type, value: a.value.slice() } as Attribute);
    else attrs.set(k, a);
  }
  const c = new Node({ opType: n.opType, name: n.name, domain: n.domain, inputs: n.inputs, outputs: n.outputs, attrs, docString: n.docString });
  c.extra = n.extra;
  return c;
}
