import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { LayerParameter } from './schema';
import { CaffeBlob } from './weights';

/** Attribute values as written by the layer converters; integers → int, `float()` for floats. */
export type AttrInit = number | number[] | string | Attribute;

export function float(v: number): Attribute {
  return { type: 'float', value: v };
}

function toAttr(v: AttrInit): Attribute {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  if (Array.isArray(v)) return v.every(Number.isInteger) ? { type: 'ints', value: v } : { type: 'floats', value: v };
  return v;
}

/**
 * What a value is, for naming it once the whole net is converted: a graph input or the last
 * version of a Caffe blob gets the blob name; an earlier version of an in-place blob
 * `<blob>_<layer>`; a value or constant a layer needs internally `<layer>_<what>`.
 */
type Hint = { kind: 'blob'; blob: string; layer: string } | { kind: 'helper'; name: string };

/**
 * Collects the ONNX nodes, constants and value shapes of a converted net. Values get
 * provisional ids while converting (in-place Caffe layers make the final names depend on
 * later layers); `finalNames` turns them into names at the end.
 */
export class GraphEmitter {
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, Tensor>();
  private readonly shapes = new Map<string, number[]>();
  private readonly hints = new Map<string, Hint>();
  private seq = 0;

  /** A new value id (ids contain a NUL, so they never clash with a Caffe name). */
  newValue(shape: readonly number[], hint: Hint): string {
    const id = `\u0000${this.seq++}`;
    this.shapes.set(id, shape.slice());
    this.hints.set(id, hint);
    return id;
  }

  shapeOf(id: string): number[] {
    const s = this.shapes.get(id);
    if (!s) throw new Error(`caffe converter: unknown value ${JSON.stringify(id)}`);
    return s;
  }

  constant(name: string, t: Tensor): string {
    const id = this.newValue(t.dims, { kind: 'helper', name });
    this.initializers.set(id, t);
    return id;
  }

  addNode(opType: string, name: string, inputs: string[], outputs: string[], attrs: Record<string, AttrInit> = {}): Node {
    const a: Record<string, Attribute> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = toAttr(v);
    const n = new Node({ opType, name, inputs, outputs, attrs: a });
    this.nodes.push(n);
    return n;
  }

  /**
   * Final names: `reserved` (graph inputs, last versions of blobs) keep theirs; everything
   * else gets its hint, made unique with `_1`, `_2`… Node names are made unique the same way.
   */
  finalNames(reserved: Map<string, string>): Map<string, string> {
    const used = new Set<string>(reserved.values());
    const out = new Map<string, string>(reserved);
    const unique = (base: string): string => {
      let n = base;
      for (let k = 1; used.has(n); k++) n = `${base}_${k}`;
      used.add(n);
      return n;
    };
    for (const [id, h] of this.hints) {
      if (out.has(id)) continue;
      out.set(id, unique(h.kind === 'blob' ? `${h.blob}_${h.layer}` : h.name));
    }
    const nodeNames = new Set<string>();
    for (const n of this.nodes) {
      let name = n.name;
      for (let k = 1; nodeNames.has(name); k++) name = `${n.name}_${k}`;
      nodeNames.add(name);
      n.name = name;
    }
    return out;
  }
}

/** The view of the converter a layer's conversion function works with. */
export class LayerContext {
  readonly name: string;
  readonly type: string;

  constructor(
    private readonly em: GraphEmitter,
    readonly layer: LayerParameter,
    /** ids of the bottom values */
    readonly bottoms: string[],
    private readonly weights: CaffeBlob[] | undefined,
    private readonly where: string,
  ) {
    this.name = layer.name ?? '';
    this.type = layer.type ?? '';
  }

  get tops(): string[] {
    return this.layer.top ?? [];
  }

  shape(id: string): number[] {
    return this.em.shapeOf(id);
  }

  /** Shape of bottom `i`. */
  inShape(i = 0): number[] {
    return this.em.shapeOf(this.bottoms[i]);
  }

  error(msg: string, fix = 'correct the layer in the prototxt'): PtqError {
    return new PtqError('E_CAFFE_LAYER', `layer '${this.name}' (${this.type}, ${this.where}): ${msg}`, { subject: this.name, fix });
  }

  expectBottoms(min: number, max = min): void {
    const n = this.bottoms.length;
    if (n < min || n > max) throw this.error(`has ${n} bottom(s), needs ${min === max ? min : `${min} to ${max === Infinity ? 'any number' : max}`}`);
  }

  expectTops(min: number, max = min): void {
    const n = this.tops.length;
    if (n < min || n > max) throw this.error(`has ${n} top(s), needs ${min === max ? min : `${min} to ${max === Infinity ? 'any number' : max}`}`);
  }

  /** Number of learned blobs the caffemodel holds for this layer. */
  get blobCount(): number {
    return this.weights?.length ?? 0;
  }

  /**
   * Learned blob `i` as a float32 tensor of `dims` (a view of the weights, no copy). The
   * stored shape must be `dims`, or the same sizes with extra 1s (legacy 4-D blobs).
   */
  blob(i: number, dims: readonly number[], what: string): Tensor {
    const b = this.rawBlob(i, what);
    const want = dims.reduce((a, d) => a * d, 1);
    const squeeze = (s: readonly number[]): string => s.filter((d) => d !== 1).join(',');
    if (b.data.length !== want || squeeze(b.shape) !== squeeze(dims)) {
      throw this.error(`the caffemodel's ${what} blob has shape [${b.shape.join(',')}], the prototxt implies [${dims.join(',')}]`, 'use the caffemodel trained with this prototxt');
    }
    return new Tensor('float32', dims, b.data);
  }

  rawBlob(i: number, what: string): CaffeBlob {
    if (!this.weights) throw this.error('has no weights in the caffemodel', 'use the caffemodel trained with this prototxt (layers are matched by name)');
    const b = this.weights[i];
    if (!b) throw this.error(`needs a ${what} blob (#${i}) but the caffemodel has ${this.weights.length} blob(s) for it`, 'use the caffemodel trained with this prototxt');
    return b;
  }

  constant(what: string, t: Tensor): string {
    return this.em.constant(`${this.name}_${what}`, t);
  }

  /**
   * Add the node that produces the layer's tops: named like the layer, outputs named after
   * the tops. Returns the output ids.
   */
  main(opType: string, inputs: string[], attrs: Record<string, AttrInit>, shapes: number[][]): string[] {
    const outs = shapes.map((s, k) => this.em.newValue(s, { kind: 'blob', blob: this.tops[k] ?? `${this.name}_${k}`, layer: this.name }));
    this.em.addNode(opType, this.name, inputs, outs, attrs);
    return outs;
  }

  /** Add a helper node (named `<layer>_<what>`) with one output. */
  helper(what: string, opType: string, inputs: string[], attrs: Record<string, AttrInit>, shape: number[]): string {
    const out = this.em.newValue(shape, { kind: 'helper', name: `${this.name}_${what}` });
    this.em.addNode(opType, `${this.name}_${what}`, inputs, [out], attrs);
    return out;
  }

  /** The node most recently added (for conversions that mark it for later passes). */
  get lastNode(): Node {
    return this.em.nodes[this.em.nodes.length - 1];
  }
}
