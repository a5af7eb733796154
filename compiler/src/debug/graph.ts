import { PtqError } from '../errors';
import { isFloat } from '../onnx/dtype';
import { Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';

/**
 * What the accuracy debugger sees in a `***_calibrated_model.onnx` (quantize/calibrated.ts):
 *
 * - calibration nodes: every QuantizeLinear → DequantizeLinear pair, named by its
 *   DequantizeLinear node (`t_HzCalibration`, the reference's HzCalibration node). A pair on a
 *   constant (an initializer) is a weight calibration node, any other an activation
 *   calibration node. Its threshold is the largest value it passes, scale · (qmax − zero point)
 *   (127 · scale for int8 with zero point 0), per channel for per-axis pairs.
 * - ordinary nodes: every other node. An ordinary node's calibration nodes are the pairs it
 *   reads (its activation inputs and weights: what quantizing that node means in the
 *   reference, whose calibration nodes sit in front of the nodes they quantize), plus the
 *   pair that fake-quantizes a model output it computes (no node reads that one).
 *
 * The unit of switching is an edge: (ordinary node, calibration node). A shared activation
 * pair has one edge per reader, so one reader can see the quantized value while another sees
 * the float value (variants.ts).
 */

export type CalibrationKind = 'weight' | 'activation';

export interface CalibrationNode {
  name: string;
  kind: CalibrationKind;
  quantize: Node;
  dequantize: Node;
  /** the float value the pair quantizes (an initializer for weights) */
  input: string;
  /** the fake-quantized value */
  output: string;
  /** per-channel axis of the stored scales (normalised to ≥ 0), undefined per tensor */
  axis: number | undefined;
  scales: Float32Array;
  zeroPoints: Int32Array;
  qmin: number;
  qmax: number;
  /** per channel (one entry per tensor): scale · (qmax − zero point) */
  thresholds: Float64Array;
  /** ordinary nodes reading `output` */
  readers: string[];
  /** `output` is a graph output (the float value `input` is its producer's output) */
  graphOutput: boolean;
}

export interface OrdinaryNode {
  name: string;
  node: Node;
  /** position among the ordinary nodes in topological order */
  order: number;
  /** calibration nodes this node reads or whose graph output it computes, in input order */
  calibration: string[];
  /**
   * The value that stands for the node's output when outputs are compared: its first output,
   * or the graph output its pair gives when that output is fake-quantized as a model output.
   */
  value: string;
  /** whether `value` is a float tensor (comparable) */
  floatOutput: boolean;
}

export interface Edge {
  id: number;
  node: string;
  calibration: string;
  /** input slots of `node` reading the pair's output; empty for a graph-output pair */
  slots: number[];
}

const RANGES: Record<string, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535] };

export class DebugModel {
  readonly nodes: OrdinaryNode[] = [];
  readonly calibration: CalibrationNode[] = [];
  readonly edges: Edge[] = [];
  private readonly byNode = new Map<string, OrdinaryNode>();
  private readonly byCalibration = new Map<string, CalibrationNode>();
  private readonly edgesByNode = new Map<string, Edge[]>();
  private readonly edgesByCalibration = new Map<string, Edge[]>();
  private readonly ancestorsCache = new Map<string, Set<string>>();

  private constructor(
    readonly model: Model,
    /** the model file (or a label) for messages */
    readonly source: string,
  ) {}

  /** Read the calibration structure of a calibrated model; a PtqError when it has no pairs. */
  static of(model: Model, source = model.graph.name || 'model'): DebugModel {
    const dm = new DebugModel(model, source);
    dm.analyse();
    if (!dm.calibration.length) {
      throw new PtqError('E_DEBUG_MODEL', `'${source}' has no calibration nodes (QuantizeLinear → DequantizeLinear pairs)`, {
        subject: source,
        fix: 'give the ***_calibrated_model.onnx the calibrate stage writes',
      });
    }
    return dm;
  }

  private analyse(): void {
    const g = this.model.graph;
    const order = g.topoSort();
    const producers = g.producers();
    const consumers = g.consumers();
    const graphOutputs = new Set(g.outputs.map((o) => o.name));
    const pairNodes = new Set<Node>();
    const isStd = (n: Node | undefined, type: string): n is Node => !!n && (n.domain === '' || n.domain === 'ai.onnx') && n.opType === type;

    for (const dq of order) {
      if (!isStd(dq, 'DequantizeLinear')) continue;
      const q = producers.get(dq.inputs[0]);
      if (!isStd(q, 'QuantizeLinear')) continue;
      // a QuantizeLinear shared with anything else is not a plain pair
      if ((consumers.get(q.outputs[0]) ?? []).some((r) => r !== dq) || graphOutputs.has(q.outputs[0])) continue;
      const scale = g.initializers.get(dq.inputs[1]);
      if (!scale) continue;
      const zpT = dq.inputs[2] ? g.initializers.get(dq.inputs[2]) : undefined;
      const input = q.inputs[0];
      const src = g.initializers.get(input);
      const scales = scale.toFloat32();
      const zp = zpT ? Int32Array.from(zpT.toNumbers(), Number) : new Int32Array(scales.length);
      const [qmin, qmax] = RANGES[zpT?.dtype ?? 'uint8'] ?? [-128, 127];
      const thresholds = new Float64Array(scales.length);
      for (let c = 0; c < scales.length; c++) thresholds[c] = scales[c] * (qmax - (zp[c] ?? zp[0] ?? 0));
      let axis: number | undefined;
      if (scales.length > 1) {
        const rank = (src ?? undefined)?.rank ?? g.typeOf(input)?.shape?.length ?? 0;
        const a = dq.int('axis', 1) as number;
        axis = a < 0 ? a + rank : a;
      }
      const name = dq.name || `${input}_calibration`;
      const node: CalibrationNode = {
        name,
        kind: src ? 'weight' : 'activation',
        quantize: q,
        dequantize: dq,
        input,
        output: dq.outputs[0],
        axis,
        scales,
        zeroPoints: zp,
        qmin,
        qmax,
        thresholds,
        readers: [],
        graphOutput: graphOutputs.has(dq.outputs[0]),
      };
      this.calibration.push(node);
      this.byCalibration.set(name, node);
      pairNodes.add(q);
      pairNodes.add(dq);
    }
    const byOutput = new Map(this.calibration.map((c) => [c.output, c]));

    for (const n of order) {
      if (pairNodes.has(n)) continue;
      let name = n.name || n.label;
      for (let k = 1; this.byNode.has(name) || this.byCalibration.has(name); k++) name = `${n.name || n.label}_${k}`;
      const on: OrdinaryNode = { name, node: n, order: this.nodes.length, calibration: [], value: n.outputs[0] ?? '', floatOutput: false };
      const slots = new Map<string, number[]>();
      n.inputs.forEach((v, k) => {
        const c = v ? byOutput.get(v) : undefined;
        if (!c) return;
        if (!slots.has(c.name)) slots.set(c.name, []);
        (slots.get(c.name) as number[]).push(k);
      });
      for (const [cname, s] of slots) this.addEdge(on, cname, s);
      // a model output this node computes, fake-quantized after it
      for (const c of this.calibration) {
        if (c.graphOutput && c.kind === 'activation' && n.outputs.includes(c.input)) {
          this.addEdge(on, c.name, []);
          if (c.input === on.value) on.value = c.output;
        }
      }
      const t = g.typeOf(on.value);
      on.floatOutput = !!on.value && (t ? isFloat(t.dtype) : true);
      this.nodes.push(on);
      this.byNode.set(name, on);
    }
    for (const c of this.calibration) c.readers = (this.edgesByCalibration.get(c.name) ?? []).filter((e) => e.slots.length).map((e) => e.node);
  }

  private addEdge(on: OrdinaryNode, calibration: string, slots: number[]): void {
    const e: Edge = { id: this.edges.length, node: on.name, calibration, slots };
    this.edges.push(e);
    on.calibration.push(calibration);
    if (!this.edgesByNode.has(on.name)) this.edgesByNode.set(on.name, []);
    (this.edgesByNode.get(on.name) as Edge[]).push(e);
    if (!this.edgesByCalibration.has(calibration)) this.edgesByCalibration.set(calibration, []);
    (this.edgesByCalibration.get(calibration) as Edge[]).push(e);
  }

  node(name: string): OrdinaryNode | undefined {
    return this.byNode.get(name);
  }

  calibrationNode(name: string): CalibrationNode | undefined {
    return this.byCalibration.get(name);
  }

  /** Edges that quantizing `name` switches on: an ordinary node's own, or every reader's of a calibration node. */
  edgesOf(name: string): Edge[] {
    if (this.byNode.has(name)) return this.edgesByNode.get(name) ?? [];
    if (this.byCalibration.has(name)) return this.edgesByCalibration.get(name) ?? [];
    throw this.unknown(name);
  }

  edgesOfKind(kind: CalibrationKind): Edge[] {
    return this.edges.filter((e) => this.byCalibration.get(e.calibration)?.kind === kind);
  }

  /** What a user-given name is: an ordinary node, a weight or an activation calibration node. */
  typeOf(name: string): 'node' | CalibrationKind {
    if (this.byNode.has(name)) return 'node';
    const c = this.byCalibration.get(name);
    if (c) return c.kind;
    throw this.unknown(name);
  }

  /** A PtqError for a name that is not in the model, with the closest names. */
  unknown(name: string, what = 'node'): PtqError {
    const all = [...this.byNode.keys(), ...this.byCalibration.keys()];
    const near = closest(name, all, 3);
    return new PtqError('E_DEBUG_NODE', `${what} '${name}' is not in the calibrated model '${this.source}'${near.length ? ` (did you mean ${near.map((n) => `'${n}'`).join(', ')}?)` : ''}`, {
      subject: name,
      fix: 'give node names as they appear in the calibrated model (ordinary nodes, or calibration nodes named <tensor>_HzCalibration)',
    });
  }

  /** Ordinary nodes whose output can change the value `value` (the node computing it included). */
  ancestorsOf(value: string): Set<string> {
    const have = this.ancestorsCache.get(value);
    if (have) return have;
    const producers = new Map<string, OrdinaryNode | CalibrationNode>();
    for (const n of this.nodes) for (const o of n.node.outputs) if (o) producers.set(o, n);
    for (const c of this.calibration) producers.set(c.output, c);
    const out = new Set<string>();
    const seen = new Set<string>();
    const stack = [value];
    while (stack.length) {
      const v = stack.pop() as string;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = producers.get(v);
      if (!p) continue;
      if ('node' in p) {
        out.add(p.name);
        for (const i of p.node.inputs) if (i) stack.push(i);
      } else {
        // a pair: through to the value it quantizes (an output pair's edge is its producer's)
        stack.push(p.input);
      }
    }
    this.ancestorsCache.set(value, out);
    return out;
  }

  /** The float initializer behind a weight calibration node. */
  weightOf(c: CalibrationNode): Tensor {
    return this.model.graph.initializers.get(c.input) as Tensor;
  }
}

/** Up to `k` names closest to `name` (edit distance, then a shared prefix), for "did you mean". */
function closest(name: string, names: string[], k: number): string[] {
  const lower = name.toLowerCase();
  const scored = names.map((n) => ({ n, d: editDistance(lower, n.toLowerCase()) }));
  const limit = Math.max(2, Math.floor(name.length / 3));
  return scored
    .filter((s) => s.d <= limit)
    .sort((a, b) => a.d - b.d || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))
    .slice(0, k)
    .map((s) => s.n);
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return 99;
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}
