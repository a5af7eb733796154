import { Attribute, Graph, Model, Node, ValueInfo } from '../../src/onnx/ir';
import { Tensor } from '../../src/onnx/tensor';

/**
 * Structural equality of two IR models: every header field, graph, node, attribute,
 * value type and tensor (tensors compared by dtype, dims and exact element bytes, so NaN
 * payloads and -0 count). Returns the differences as `path: what` lines (empty = equal).
 */
export function diffModels(a: Model, b: Model, limit = 20): string[] {
  const d = new Differ(limit);
  d.eq('irVersion', a.irVersion, b.irVersion);
  d.deep('opsetImports', a.opsetImports, b.opsetImports);
  d.eq('producerName', a.producerName, b.producerName);
  d.eq('producerVersion', a.producerVersion, b.producerVersion);
  d.eq('domain', a.domain, b.domain);
  d.eq('modelVersion', a.modelVersion, b.modelVersion);
  d.eq('docString', a.docString, b.docString);
  d.deep('metadataProps', a.metadataProps, b.metadataProps);
  d.deep('extra', a.extra, b.extra);
  d.graph('graph', a.graph, b.graph);
  return d.out;
}

export function diffGraphs(a: Graph, b: Graph, limit = 20): string[] {
  const d = new Differ(limit);
  d.graph('graph', a, b);
  return d.out;
}

/** undefined when equal, else the first difference. */
export function diffTensors(a: Tensor, b: Tensor): string | undefined {
  if (a.dtype !== b.dtype) return `dtype ${a.dtype} vs ${b.dtype}`;
  if (a.dims.join(',') !== b.dims.join(',')) return `dims [${a.dims}] vs [${b.dims}]`;
  if (a.dtype === 'string') {
    const x = a.data as string[];
    const y = b.data as string[];
    const i = x.findIndex((v, k) => v !== y[k]);
    return i < 0 ? undefined : `element ${i}: '${x[i]}' vs '${y[i]}'`;
  }
  const x = a.rawBytes();
  const y = b.rawBytes();
  if (x.byteLength !== y.byteLength) return `${x.byteLength} bytes vs ${y.byteLength}`;
  for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return `byte ${i}: ${x[i]} vs ${y[i]}`;
  return undefined;
}

class Differ {
  readonly out: string[] = [];
  constructor(private readonly limit: number) {}

  private add(path: string, what: string): void {
    if (this.out.length < this.limit) this.out.push(`${path}: ${what}`);
  }

  eq(path: string, a: unknown, b: unknown): void {
    if (!Object.is(a, b)) this.add(path, `${fmt(a)} vs ${fmt(b)}`);
  }

  deep(path: string, a: unknown, b: unknown): void {
    const why = deepDiff(a, b);
    if (why !== undefined) this.add(path, why);
  }

  graph(path: string, a: Graph, b: Graph): void {
    this.eq(`${path}.name`, a.name, b.name);
    this.eq(`${path}.docString`, a.docString, b.docString);
    this.values(`${path}.inputs`, a.inputs, b.inputs);
    this.values(`${path}.outputs`, a.outputs, b.outputs);
    this.values(`${path}.valueInfo`, [...a.valueInfo.values()], [...b.valueInfo.values()]);
    this.eq(`${path}.valueInfo keys`, [...a.valueInfo.keys()].join('|'), [...b.valueInfo.keys()].join('|'));
    this.eq(`${path}.initializers`, [...a.initializers.keys()].join('|'), [...b.initializers.keys()].join('|'));
    for (const [k, t] of a.initializers) {
      const u = b.initializers.get(k);
      if (!u) continue;
      const why = diffTensors(t, u);
      if (why) this.add(`${path}.initializers['${k}']`, why);
    }
    this.eq(`${path}.nodes.length`, a.nodes.length, b.nodes.length);
    a.nodes.forEach((n, i) => {
      const m = b.nodes[i];
      if (m) this.node(`${path}.nodes[${i}](${n.label})`, n, m);
    });
    this.deep(`${path}.extra`, a.extra, b.extra);
  }

  node(path: string, a: Node, b: Node): void {
    this.eq(`${path}.name`, a.name, b.name);
    this.eq(`${path}.opType`, a.opType, b.opType);
    this.eq(`${path}.domain`, a.domain, b.domain);
    this.deep(`${path}.inputs`, a.inputs, b.inputs);
    this.deep(`${path}.outputs`, a.outputs, b.outputs);
    this.eq(`${path}.docString`, a.docString, b.docString);
    this.deep(`${path}.extra`, a.extra, b.extra);
    this.eq(`${path}.attrs`, [...a.attrs.keys()].join('|'), [...b.attrs.keys()].join('|'));
    for (const [k, x] of a.attrs) {
      const y = b.attrs.get(k);
      if (y) this.attr(`${path}.${k}`, x, y);
    }
  }

  attr(path: string, a: Attribute, b: Attribute): void {
    if (a.type !== b.type) return this.add(path, `type ${a.type} vs ${b.type}`);
    switch (a.type) {
      case 'tensor': {
        const why = diffTensors(a.value, b.value as Tensor);
        if (why) this.add(path, why);
        return;
      }
      case 'tensors': {
        const bv = b.value as Tensor[];
        if (a.value.length !== bv.length) return this.add(path, `${a.value.length} tensors vs ${bv.length}`);
        a.value.forEach((t, i) => {
          const why = diffTensors(t, bv[i]);
          if (why) this.add(`${path}[${i}]`, why);
        });
        return;
      }
      case 'graph':
        return this.graph(path, a.value, b.value as Graph);
      case 'graphs': {
        const bv = b.value as Graph[];
        if (a.value.length !== bv.length) return this.add(path, `${a.value.length} graphs vs ${bv.length}`);
        a.value.forEach((g, i) => this.graph(`${path}[${i}]`, g, bv[i]));
        return;
      }
      default:
        return this.deep(path, a.value, b.value);
    }
  }

  values(path: string, a: ValueInfo[], b: ValueInfo[]): void {
    if (a.length !== b.length) return this.add(path, `${a.length} values vs ${b.length}`);
    a.forEach((v, i) => this.deep(`${path}[${i}](${v.name})`, v, b[i]));
  }
}

/**
 * Deep equality for plain data (and verbatim protobufjs messages kept in `extra`/`other`):
 * numbers by Object.is, typed arrays and Buffers bytewise, objects by own enumerable keys.
 */
export function deepDiff(a: unknown, b: unknown, path = ''): string | undefined {
  if (Object.is(a, b)) return undefined;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    return `${path || 'value'}: ${fmt(a)} vs ${fmt(b)}`;
  }
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b)) return `${path}: bytes vs non-bytes`;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.byteLength !== y.byteLength || x.some((v, i) => v !== y[i])) return `${path}: bytes differ`;
    return undefined;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined).sort();
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined).sort();
  if (ka.join('|') !== kb.join('|')) return `${path}: keys [${ka}] vs [${kb}]`;
  for (const k of ka) {
    const why = deepDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    if (why) return why;
  }
  return undefined;
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}
