import { Attribute, Graph, Model, Node, ValueInfo } from './ir';

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

/** A model with `model`'s header (IR version, opsets, producer, metadata) around another graph. */
export function withGraph(model: Model, graph: Graph, header: Partial<Pick<Model, 'producerName' | 'metadataProps'>> = {}): Model {
  return new Model(graph, {
    irVersion: model.irVersion,
    opsetImports: model.opsetImports.map((o) => ({ ...o })),
    producerName: header.producerName ?? model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    metadataProps: header.metadataProps ?? { ...model.metadataProps },
  });
}
