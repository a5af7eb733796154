import type { Sample } from '../calibrate/collect';
import { cloneModel } from '../onnx/clone';
import { Graph, Model, Node, ValueInfo } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { Namer } from '../quantize/names';
import { Engine } from '../runtime/engine';
import { OrtEngineOptions } from '../runtime/ort';
import { EngineChoice, pickEngine } from '../runtime/select';
import { CalibrationNode, DebugModel, Edge, OrdinaryNode } from './graph';

/**
 * Variants of a calibrated model: "these edges (ordinary node, calibration node) quantized,
 * everything else float", as plain graphs made by editing a clone (variantModel), and the
 * part of such a graph that differs from the float model (coneModel).
 *
 * How they run (measured on fashion_mbv2, 1×3×32×32, and a MobileNetV2 at 1×3×224×224, one
 * onnxruntime thread; see bench/debugger.ts): a variant is mostly the float model, so its
 * cost is a session (onnxruntime: 5–30 ms on fashion_mbv2 'disabled', 20–120 ms at 224) plus
 * the runs. One gated model (a bool input per edge selecting with Where) needs one session
 * only, but runs 4–9× slower than the calibrated model on fashion_mbv2 (onnxruntime cannot
 * prepack weights that pass through a Where, and each gate is a graph input); the
 * ReferenceEngine runs the calibrated model ~10–20× slower than onnxruntime. So: onnxruntime,
 * one session per variant, and for the many single-node variants of the sensitivity only the
 * cone — the nodes downstream of the quantized pairs — fed with the float model's values at
 * its boundary, computed once per sample (cones.ts).
 */

/**
 * onnxruntime options for variant sessions: graph optimisation 'disabled', so the graph runs
 * exactly as written, like the ReferenceEngine. From 'basic' on, onnxruntime's
 * WeightBiasQuantization rewrites every Conv between DequantizeLinear inputs to take an int32
 * bias on the s_in · s_w grid (seen in its optimized model dump), which the calibrated model
 * does not state (its biases are float): on the outlier fixture (fixtures.test.util.ts), whose
 * huge input scale rounds conv_reader's biases to zero, the calibrated model's output cosine is
 * 0.0625 with the ReferenceEngine and 'disabled' but 0.804 with 'basic'. 'disabled' also opens
 * sessions 2–3× faster and runs these graphs as fast (MobileNetV2 224: 33 vs 32 ms float, 43 vs
 * 42 ms calibrated).
 */
export const VARIANT_ORT: OrtEngineOptions = { threads: 1, optimization: 'disabled' };
/** Cone sessions (one per node and sample chunk): the same options. */
export const CONE_ORT: OrtEngineOptions = VARIANT_ORT;

/** Edge ids as a set. */
export function edgeSet(edges: Iterable<Edge>): Set<number> {
  const s = new Set<number>();
  for (const e of edges) s.add(e.id);
  return s;
}

/**
 * The model of one variant: readers of closed edges read the float value, a closed
 * graph-output pair gives the float value under the output's name (an Identity; readers of
 * the output whose edges are open keep the pair's value), unused pairs are pruned.
 */
export function variantModel(dm: DebugModel, open: ReadonlySet<number>): Model {
  const model = cloneModel(dm.model);
  const g = model.graph;
  const cloneOf = new Map<Node, Node>();
  dm.model.graph.nodes.forEach((n, i) => cloneOf.set(n, g.nodes[i]));
  const nodeNames = new Namer(g, 'nodes');
  const values = new Namer(g);
  const renamed = new Map<string, string>();
  for (const e of dm.edges) {
    if (open.has(e.id) || e.slots.length) continue;
    const c = dm.calibrationNode(e.calibration) as CalibrationNode;
    const dq = cloneOf.get(c.dequantize) as Node;
    const fq = values.fresh(`${c.output}_fake_quant`);
    dq.outputs[0] = fq;
    renamed.set(c.name, fq);
    g.nodes.push(new Node({ opType: 'Identity', name: nodeNames.fresh(`${c.name}_bypass`), inputs: [c.input], outputs: [c.output] }));
  }
  for (const e of dm.edges) {
    if (!e.slots.length) continue;
    const c = dm.calibrationNode(e.calibration) as CalibrationNode;
    const reader = cloneOf.get((dm.node(e.node) as OrdinaryNode).node) as Node;
    for (const k of e.slots) reader.inputs[k] = open.has(e.id) ? (renamed.get(c.name) ?? c.output) : c.input;
  }
  g.sortInPlace();
  g.pruneUnused();
  return model;
}

/** A variant restricted to what differs from the float model. */
export interface Cone {
  model: Model;
  /** values the cone reads from outside (float model values, or model inputs) */
  inputs: string[];
  /** the asked-for values the cone computes (the others equal the float model's) */
  outputs: string[];
}

/**
 * The cone of a variant: the quantizing pairs of its open edges and every node downstream of
 * them (in the variant's graph), as a model whose inputs are the values the cone reads from
 * outside — identical to the float model's, since nothing upstream of the pairs changed — and
 * whose outputs are those of `wanted` it computes. Input types are left to `typeOf` (the
 * caller knows them from a float run).
 */
export function coneModel(dm: DebugModel, open: ReadonlySet<number>, wanted: string[], typeOf: (v: string) => ValueInfo['type']): Cone {
  const vm = variantModel(dm, open);
  const g = vm.graph;
  const producers = g.producers();
  const consumers = g.consumers();
  const pairs = new Set(dm.edges.filter((e) => open.has(e.id)).map((e) => e.calibration));
  const inCone = new Set<Node>();
  const stack: Node[] = [];
  for (const name of pairs) {
    const q = producers.get((dm.calibrationNode(name) as CalibrationNode).quantize.outputs[0]);
    if (q) stack.push(q);
  }
  while (stack.length) {
    const n = stack.pop() as Node;
    if (inCone.has(n)) continue;
    inCone.add(n);
    for (const o of n.outputs) for (const r of (o && consumers.get(o)) || []) stack.push(r);
  }
  const nodes = g.nodes.filter((n) => inCone.has(n));
  const produced = new Set<string>();
  for (const n of nodes) for (const o of n.outputs) if (o) produced.add(o);
  const inputs: string[] = [];
  const inits = new Map<string, Tensor>();
  for (const n of nodes) {
    for (const v of n.inputs) {
      if (!v || produced.has(v)) continue;
      const t = g.initializers.get(v);
      if (t) inits.set(v, t);
      else if (!inputs.includes(v)) inputs.push(v);
    }
  }
  const outputs = wanted.filter((v) => produced.has(v));
  const graph = new Graph({
    name: `${g.name}_cone`,
    nodes,
    inputs: inputs.map((name) => ({ name, type: typeOf(name) })),
    outputs: outputs.map((name) => ({ name })),
    initializers: inits,
  });
  return { model: new Model(graph, { irVersion: vm.irVersion, opsetImports: vm.opsetImports, producerName: vm.producerName, metadataProps: {} }), inputs, outputs };
}

/**
 * Runs a few variants (float, fully quantized, partial models) on the same samples: one engine
 * per set of open edges, opened on first use and kept until dispose, each able to fetch
 * `fetchable` without another session.
 */
export class VariantRunner {
  private readonly engines = new Map<string, Promise<Engine>>();
  private lastEngine = '';

  constructor(
    readonly dm: DebugModel,
    private readonly opts: { fetchable?: string[]; engine?: EngineChoice } = {},
  ) {}

  /** The engine of the last run ('ort' or 'reference'). */
  get engineName(): string {
    return this.lastEngine;
  }

  /** Run `sample` with the edges in `open` quantized (everything else float). */
  async run(sample: Sample, open: ReadonlySet<number>, fetch: string[] = []): Promise<Record<string, Tensor>> {
    const key = [...open].sort((a, b) => a - b).join(',');
    let e = this.engines.get(key);
    if (!e) {
      const model = variantModel(this.dm, open);
      const produced = new Set<string>();
      for (const n of model.graph.nodes) for (const o of n.outputs) if (o) produced.add(o);
      const fetchable = [...new Set(this.opts.fetchable ?? [])].filter((v) => produced.has(v) && !model.graph.outputs.some((o) => o.name === v));
      e = pickEngine(model, this.opts.engine ?? 'auto', { ...VARIANT_ORT, fetchable, source: this.dm.source });
      this.engines.set(key, e);
    }
    const engine = await e;
    this.lastEngine = engine.name;
    return engine.run(sample, { fetch });
  }

  async dispose(): Promise<void> {
    const all = [...this.engines.values()];
    this.engines.clear();
    for (const e of all) {
      try {
        await (await e).dispose();
      } catch {
        /* an engine that failed to open has nothing to release */
      }
    }
  }
}
