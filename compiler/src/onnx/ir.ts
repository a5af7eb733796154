import { PtqError } from '../errors';
import { DType } from './dtype';
import { Tensor } from './tensor';

/** A dimension: a fixed size, or a symbolic name (`N`, `batch`, `?` when unnamed). */
export type Dim = number | string;

export interface ValueType {
  dtype: DType;
  /** undefined = rank unknown. */
  shape?: Dim[];
}

export interface ValueInfo {
  name: string;
  /** Tensor type; undefined when the model gives none (or a non-tensor type kept in `other`). */
  type?: ValueType;
  docString?: string;
  /** Non-tensor TypeProto (sequence, map, optional) kept verbatim for round trips. */
  other?: unknown;
  /** Element type code we cannot hold (e.g. FLOAT8), kept verbatim. */
  elemTypeCode?: number;
  metadataProps?: Record<string, string>;
}

export type AttrType =
  | 'float' | 'int' | 'string' | 'tensor' | 'graph' | 'floats' | 'ints' | 'strings' | 'tensors' | 'graphs' | 'other';

export type Attribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: Tensor[] }
  | { type: 'graphs'; value: Graph[] }
  /** sparse tensors, type protos, or a `ref_attr_name` reference inside a function: kept verbatim. */
  | { type: 'other'; value: unknown };

export class Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Attribute>;
  docString?: string;
  /** Verbatim extra fields (overload, metadata_props) for round trips. */
  extra?: Record<string, unknown>;

  constructor(init: {
    opType: string;
    inputs?: string[];
    outputs?: string[];
    name?: string;
    domain?: string;
    attrs?: Map<string, Attribute> | Record<string, Attribute>;
    docString?: string;
  }) {
    this.opType = init.opType;
    this.name = init.name ?? '';
    this.domain = init.domain ?? '';
    this.inputs = init.inputs ? init.inputs.slice() : [];
    this.outputs = init.outputs ? init.outputs.slice() : [];
    const a = init.attrs;
    this.attrs = a instanceof Map ? new Map(a) : new Map(Object.entries(a ?? {}));
    this.docString = init.docString;
  }

  /** `name` if it has one, else a readable stand-in for messages. */
  get label(): string {
    return this.name || `${this.opType}(${this.outputs[0] ?? ''})`;
  }

  has(name: string): boolean {
    return this.attrs.has(name);
  }

  int(name: string, def: number): number;
  int(name: string): number | undefined;
  int(name: string, def?: number): number | undefined {
    const a = this.attrs.get(name);
    if (!a) return def;
    if (a.type === 'int' || a.type === 'float') return a.value;
    throw this.attrTypeError(name, 'int', a.type);
  }

  float(name: string, def: number): number;
  float(name: string): number | undefined;
  float(name: string, def?: number): number | undefined {
    const a = this.attrs.get(name);
    if (!a) return def;
    if (a.type === 'float' || a.type === 'int') return a.value;
    throw this.attrTypeError(name, 'float', a.type);
  }

  str(name: string, def: string): string;
  str(name: string): string | undefined;
  str(name: string, def?: string): string | undefined {
    const a = this.attrs.get(name);
    if (!a) return def;
    if (a.type === 'string') return a.value;
    throw this.attrTypeError(name, 'string', a.type);
  }

  ints(name: string, def: number[]): number[];
  ints(name: string): number[] | undefined;
  ints(name: string, def?: number[]): number[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return def;
    if (a.type === 'ints' || a.type === 'floats') return a.value;
    if (a.type === 'int') return [a.value];
    throw this.attrTypeError(name, 'ints', a.type);
  }

  floats(name: string, def: number[]): number[];
  floats(name: string): number[] | undefined;
  floats(name: string, def?: number[]): number[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return def;
    if (a.type === 'floats' || a.type === 'ints') return a.value;
    throw this.attrTypeError(name, 'floats', a.type);
  }

  strs(name: string): string[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'strings') return a.value;
    throw this.attrTypeError(name, 'strings', a.type);
  }

  tensor(name: string): Tensor | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'tensor') return a.value;
    throw this.attrTypeError(name, 'tensor', a.type);
  }

  graph(name: string): Graph | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'graph') return a.value;
    throw this.attrTypeError(name, 'graph', a.type);
  }

  setAttr(name: string, attr: Attribute): void {
    this.attrs.set(name, attr);
  }

  private attrTypeError(name: string, want: string, got: string): PtqError {
    return new PtqError('E_MODEL_ATTR', `node '${this.label}' (${this.opType}): attribute '${name}' is ${got}, expected ${want}`, {
      subject: this.label,
      fix: 'fix the exporter or the model so the attribute has the type the ONNX operator defines',
    });
  }
}

/** A (sub)graph: nodes, named inputs/outputs, initializers, value types. */
export class Graph {
  name: string;
  docString?: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Tensor>;
  valueInfo: Map<string, ValueInfo>;
  /** Verbatim fields the IR does not interpret (sparse initializers, annotations, metadata). */
  extra?: Record<string, unknown>;

  constructor(init: Partial<Pick<Graph, 'name' | 'nodes' | 'inputs' | 'outputs' | 'initializers' | 'valueInfo' | 'docString'>> = {}) {
    this.name = init.name ?? 'graph';
    this.nodes = init.nodes ?? [];
    this.inputs = init.inputs ?? [];
    this.outputs = init.outputs ?? [];
    this.initializers = init.initializers ?? new Map();
    this.valueInfo = init.valueInfo ?? new Map();
    this.docString = init.docString;
  }

  /** Graph inputs that are not initializers (IR < 4 lists initializers as inputs too). */
  get realInputs(): ValueInfo[] {
    return this.inputs.filter((v) => !this.initializers.has(v.name));
  }

  /** The node producing each value. */
  producers(): Map<string, Node> {
    const m = new Map<string, Node>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** The nodes consuming each value (a node reading a value twice is listed once). */
  consumers(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    for (const n of this.nodes) {
      for (const i of new Set(n.inputs)) {
        if (!i) continue;
        let l = m.get(i);
        if (!l) m.set(i, (l = []));
        l.push(n);
      }
    }
    return m;
  }

  /** Type of a value: graph input/output, value_info, or initializer. */
  typeOf(name: string): ValueType | undefined {
    const init = this.initializers.get(name);
    if (init) return { dtype: init.dtype, shape: init.dims.slice() };
    const vi = this.valueInfo.get(name) ?? this.inputs.find((v) => v.name === name) ?? this.outputs.find((v) => v.name === name);
    return vi?.type;
  }

  /**
   * Nodes in a topological order (stable: keeps the file order when it is already valid).
   * `outer` names values visible from an enclosing graph. Throws a PtqError naming the node
   * on a reference to a missing value or a cycle.
   */
  topoSort(outer: ReadonlySet<string> = new Set()): Node[] {
    const available = new Set<string>(outer);
    for (const v of this.inputs) available.add(v.name);
    for (const k of this.initializers.keys()) available.add(k);
    const producer = this.producers();
    for (const n of this.nodes) {
      for (const i of n.inputs) {
        if (i && !available.has(i) && !producer.has(i)) {
          throw new PtqError('E_MODEL_GRAPH', `node '${n.label}' (${n.opType}) reads value '${i}', which no node, input or initializer provides`, {
            subject: n.label,
            fix: 're-export the model; the graph is incomplete',
          });
        }
      }
    }
    // Kahn's algorithm over node indices; ties resolved by original position.
    const pending = new Int32Array(this.nodes.length);
    const users = new Map<string, number[]>();
    this.nodes.forEach((n, i) => {
      const deps = new Set<string>();
      for (const inp of [...n.inputs, ...subgraphOuterRefs(n)]) {
        if (inp && !available.has(inp) && producer.has(inp)) deps.add(inp);
      }
      pending[i] = deps.size;
      for (const d of deps) {
        let l = users.get(d);
        if (!l) users.set(d, (l = []));
        l.push(i);
      }
    });
    const ready: number[] = [];
    for (let i = 0; i < pending.length; i++) if (pending[i] === 0) ready.push(i);
    const order: Node[] = [];
    const produced = new Set<string>();
    while (ready.length) {
      const i = popMin(ready);
      const n = this.nodes[i];
      order.push(n);
      for (const o of n.outputs) {
        if (!o || produced.has(o)) continue;
        produced.add(o);
        for (const u of users.get(o) ?? []) if (--pending[u] === 0) ready.push(u);
      }
    }
    if (order.length !== this.nodes.length) {
      const done = new Set(order);
      const stuck = this.nodes.find((n) => !done.has(n)) as Node;
      throw new PtqError('E_MODEL_CYCLE', `the graph has a cycle through node '${stuck.label}' (${stuck.opType})`, {
        subject: stuck.label,
        fix: 're-export the model; ONNX graphs must be acyclic',
      });
    }
    return order;
  }

  /** Reorder `nodes` topologically in place. */
  sortInPlace(outer?: ReadonlySet<string>): void {
    this.nodes = this.topoSort(outer);
  }

  /** Insert `node` before position `at` (default: the end). */
  insertNode(node: Node, at = this.nodes.length): void {
    this.nodes.splice(at, 0, node);
  }

  /**
   * Remove `node`. When `rewire` is given (a value that stays), every reader of the node's
   * first output reads `rewire` instead; graph outputs are renamed so their names survive.
   */
  removeNode(node: Node, rewire?: string): void {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new Error(`node ${node.label} is not in graph ${this.name}`);
    this.nodes.splice(i, 1);
    if (rewire !== undefined && node.outputs[0]) {
      const out = node.outputs[0];
      if (this.outputs.some((o) => o.name === out)) {
        // keep the graph output name: make the producer of `rewire` write `out` directly
        const prod = this.producers().get(rewire);
        const isGraphInput = this.inputs.some((v) => v.name === rewire) || this.initializers.has(rewire);
        if (prod && !isGraphInput && !this.outputs.some((o) => o.name === rewire)) {
          this.renameValue(rewire, out);
          return;
        }
        this.insertNode(new Node({ opType: 'Identity', name: `${node.name || out}_identity`, inputs: [rewire], outputs: [out] }), i);
        return;
      }
      this.replaceUses(out, rewire);
    }
  }

  /** Replace `old` by the nodes `replacement` (at its position). */
  replaceNode(old: Node, replacement: Node[]): void {
    const i = this.nodes.indexOf(old);
    if (i < 0) throw new Error(`node ${old.label} is not in graph ${this.name}`);
    this.nodes.splice(i, 1, ...replacement);
  }

  /** Make every reader of `from` (nodes and graph outputs) read `to` instead. */
  replaceUses(from: string, to: string): void {
    for (const n of this.nodes) {
      for (let k = 0; k < n.inputs.length; k++) if (n.inputs[k] === from) n.inputs[k] = to;
      for (const a of n.attrs.values()) {
        if (a.type === 'graph') a.value.replaceOuterUses(from, to);
        else if (a.type === 'graphs') a.value.forEach((g) => g.replaceOuterUses(from, to));
      }
    }
  }

  /** Rename a value everywhere: producer, readers, graph inputs/outputs, initializer, value_info. */
  renameValue(from: string, to: string): void {
    if (from === to) return;
    for (const n of this.nodes) {
      for (let k = 0; k < n.outputs.length; k++) if (n.outputs[k] === from) n.outputs[k] = to;
    }
    this.replaceUses(from, to);
    for (const v of [...this.inputs, ...this.outputs]) if (v.name === from) v.name = to;
    const t = this.initializers.get(from);
    if (t) {
      this.initializers.delete(from);
      this.initializers.set(to, t);
    }
    const vi = this.valueInfo.get(from);
    if (vi) {
      this.valueInfo.delete(from);
      vi.name = to;
      this.valueInfo.set(to, vi);
    }
  }

  /** Outer-scope rename inside a subgraph: only where the name is not defined locally. */
  private replaceOuterUses(from: string, to: string): void {
    const local = new Set<string>([...this.inputs.map((v) => v.name), ...this.initializers.keys()]);
    for (const n of this.nodes) for (const o of n.outputs) local.add(o);
    if (local.has(from)) return;
    this.replaceUses(from, to);
    for (const o of this.outputs) if (o.name === from) o.name = to;
  }

  /**
   * Remove nodes whose outputs nothing needs, then initializers, value_info and
   * (initializer-backed) inputs that nothing reads. Graph outputs are kept.
   */
  pruneUnused(): number {
    const needed = new Set<string>(this.outputs.map((o) => o.name));
    const keep = new Set<Node>();
    const order = this.nodes.slice().reverse();
    let changed = true;
    while (changed) {
      changed = false;
      for (const n of order) {
        if (keep.has(n)) continue;
        if (n.outputs.some((o) => o && needed.has(o)) || hasSideEffects(n)) {
          keep.add(n);
          changed = true;
          for (const i of n.inputs) if (i) needed.add(i);
          for (const r of subgraphOuterRefs(n)) needed.add(r);
        }
      }
    }
    const before = this.nodes.length;
    this.nodes = this.nodes.filter((n) => keep.has(n));
    for (const k of [...this.initializers.keys()]) {
      if (!needed.has(k)) {
        this.initializers.delete(k);
        this.inputs = this.inputs.filter((v) => v.name !== k);
      }
    }
    const live = new Set<string>([...needed]);
    for (const n of this.nodes) for (const o of n.outputs) live.add(o);
    for (const k of [...this.valueInfo.keys()]) if (!live.has(k)) this.valueInfo.delete(k);
    return before - this.nodes.length;
  }

  /** Check the graph is well formed (names resolve, single producers, no cycle). */
  validate(outer: ReadonlySet<string> = new Set()): void {
    const seen = new Set<string>();
    for (const n of this.nodes) {
      for (const o of n.outputs) {
        if (!o) continue;
        if (seen.has(o)) {
          throw new PtqError('E_MODEL_GRAPH', `value '${o}' is produced twice (again by node '${n.label}')`, {
            subject: n.label,
            fix: 'every value in an ONNX graph must have exactly one producer',
          });
        }
        seen.add(o);
      }
    }
    this.topoSort(outer);
    const known = new Set<string>([...outer, ...this.inputs.map((v) => v.name), ...this.initializers.keys(), ...seen]);
    for (const o of this.outputs) {
      if (!known.has(o.name)) {
        throw new PtqError('E_MODEL_GRAPH', `graph output '${o.name}' is not produced by any node`, {
          subject: o.name,
          fix: 're-export the model; the graph is incomplete',
        });
      }
    }
  }
}

/** Remove and return the smallest entry (keeps file order among ready nodes). */
function popMin(a: number[]): number {
  let k = 0;
  for (let i = 1; i < a.length; i++) if (a[i] < a[k]) k = i;
  const v = a[k];
  a[k] = a[a.length - 1];
  a.pop();
  return v;
}

/** Values an If/Loop/Scan body reads from the enclosing scope. */
export function subgraphOuterRefs(n: Node): string[] {
  const refs: string[] = [];
  for (const a of n.attrs.values()) {
    const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
    for (const g of gs) refs.push(...outerRefsOf(g));
  }
  return refs;
}

function outerRefsOf(g: Graph): string[] {
  const local = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) local.add(o);
  const refs = new Set<string>();
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i && !local.has(i)) refs.add(i);
    for (const r of subgraphOuterRefs(n)) if (!local.has(r)) refs.add(r);
  }
  for (const o of g.outputs) if (!local.has(o.name)) refs.add(o.name);
  return [...refs];
}

function hasSideEffects(_n: Node): boolean {
  return false;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

/** A model: the graph plus the ModelProto header. */
export class Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  metadataProps: Record<string, string>;
  graph: Graph;
  /** Verbatim fields the IR does not interpret (model-local functions, training info). */
  extra?: Record<string, unknown>;

  constructor(graph: Graph, init: Partial<Omit<Model, 'graph' | 'opset'>> = {}) {
    this.graph = graph;
    this.irVersion = init.irVersion ?? 8;
    this.opsetImports = init.opsetImports ?? [{ domain: '', version: 13 }];
    this.producerName = init.producerName ?? 'nx-ptq';
    this.producerVersion = init.producerVersion ?? '';
    this.domain = init.domain ?? '';
    this.modelVersion = init.modelVersion ?? 0;
    this.docString = init.docString ?? '';
    this.metadataProps = init.metadataProps ?? {};
    this.extra = init.extra;
  }

  /** The imported opset version of `domain` ('' and 'ai.onnx' are the default domain). */
  opset(domain = ''): number | undefined {
    const d = domain === 'ai.onnx' ? '' : domain;
    return this.opsetImports.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d)?.version;
  }
}
