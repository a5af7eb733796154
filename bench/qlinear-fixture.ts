import { Graph, Model, Node } from '../compiler/src/onnx/ir';
import { Tensor, tensorFrom } from '../compiler/src/onnx/tensor';
import { Engine } from '../compiler/src/runtime/engine';

/**
 * Bench-only helpers turning a float fixture CNN into an integer one (QuantizeLinear →
 * QLinearConv / int8 MaxPool → DequantizeLinear, everything else in float between DQ and Q),
 * with activation ranges from a quick min/max run. Not the product's quantizer: just enough
 * to time the integer kernels on a realistic graph.
 */

export interface Range {
  min: number;
  max: number;
}

/** Fold every Conv → BatchNormalization pair (the Conv output read only by the BN) into the Conv. */
export function foldBatchNorm(model: Model): Model {
  const g = model.graph;
  const consumers = g.consumers();
  const producers = g.producers();
  const outputs = new Set(g.outputs.map((o) => o.name));
  const inits = new Map(g.initializers);
  const drop = new Set<Node>();
  const folded = new Map<Node, Node>();
  for (const n of g.nodes) {
    if (n.opType !== 'BatchNormalization') continue;
    const conv = producers.get(n.inputs[0]);
    if (!conv || conv.opType !== 'Conv' || folded.has(conv) || consumers.get(n.inputs[0])?.length !== 1 || outputs.has(n.inputs[0])) continue;
    const [gamma, beta, mean, variance] = n.inputs.slice(1).map((i) => inits.get(i)?.toFloat32());
    const w = inits.get(conv.inputs[1]);
    if (!gamma || !beta || !mean || !variance || !w) continue;
    const eps = n.float('epsilon', 1e-5);
    const M = w.dims[0];
    const per = w.size / M;
    const wf = w.toFloat32();
    const nw = new Float32Array(w.size);
    const oldBias = conv.inputs[2] ? inits.get(conv.inputs[2])?.toFloat32() : undefined;
    const nb = new Float32Array(M);
    for (let c = 0; c < M; c++) {
      const k = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) nw[c * per + i] = wf[c * per + i] * k;
      nb[c] = ((oldBias?.[c] ?? 0) - mean[c]) * k + beta[c];
    }
    inits.set(conv.inputs[1], new Tensor('float32', w.dims, nw));
    const biasName = conv.inputs[2] || `${conv.inputs[1]}.folded_bias`;
    inits.set(biasName, new Tensor('float32', [M], nb));
    // the folded conv writes the BN's output, so readers are unchanged
    folded.set(conv, new Node({ opType: 'Conv', name: conv.name, inputs: [conv.inputs[0], conv.inputs[1], biasName], outputs: n.outputs, attrs: conv.attrs }));
    drop.add(n);
  }
  const nodes = g.nodes.filter((n) => !drop.has(n)).map((n) => folded.get(n) ?? n);
  const graph = new Graph({ name: g.name, inputs: g.inputs, outputs: g.outputs, nodes, initializers: inits });
  graph.pruneUnused();
  return copyHeader(model, graph);
}

/** Min/max of every value (graph inputs and node outputs) over `samples`. */
export async function collectRanges(engine: Engine, model: Model, samples: Record<string, Tensor>[]): Promise<Map<string, Range>> {
  const names = model.graph.nodes.flatMap((n) => n.outputs.filter((o) => o));
  const ranges = new Map<string, Range>();
  const observe = (name: string, t: Tensor): void => {
    const a = t.toFloat32();
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const r = ranges.get(name);
    ranges.set(name, r ? { min: Math.min(r.min, lo), max: Math.max(r.max, hi) } : { min: lo, max: hi });
  };
  for (const feeds of samples) {
    for (const [k, t] of Object.entries(feeds)) observe(k, t);
    const out = await engine.run(feeds, { fetch: names });
    for (const n of names) observe(n, out[n]);
  }
  return ranges;
}

interface QValue {
  name: string;
  scale: number;
  zeroPoint: number;
}

/**
 * The integer version of a (BN-folded) float model: Conv (+ a following Relu or Clip(0, ·),
 * fused through the output range) → QLinearConv with per-channel int8 weights and int32 bias,
 * MaxPool on int8, other ops in float. Ranges that start at 0 use zero point −128 (the
 * clamp of a fused Relu is then the int8 saturation), others are symmetric. `uint8`
 * activations (onnxruntime's fastest QLinearConv on x86: u8 × s8) shift zero points by 128.
 */
export function toQLinear(model: Model, ranges: Map<string, Range>, activations: 'int8' | 'uint8' = 'int8'): Model {
  const offset = activations === 'uint8' ? 128 : 0;
  const g = model.graph;
  const out = new Graph({ name: `${g.name}_int8`, inputs: g.inputs.map((v) => ({ ...v })), outputs: g.outputs.map((v) => ({ ...v })) });
  const consumers = g.consumers();
  const floatOf = new Map<string, string>();
  const quantOf = new Map<string, QValue>();
  for (const v of g.realInputs) floatOf.set(v.name, v.name);
  const skip = new Set<Node>();
  const emit = (opType: string, inputs: string[], outputs: string[], name: string, attrs?: Node['attrs']): void => {
    out.nodes.push(new Node({ opType, name, inputs, outputs, attrs }));
  };
  const constant = (name: string, t: Tensor): string => {
    out.initializers.set(name, t);
    return name;
  };
  const qparams = (v: string): { scale: number; zeroPoint: number } => {
    const r = ranges.get(v);
    if (!r) throw new Error(`no range observed for '${v}'`);
    if (r.min >= 0) return { scale: Math.max(r.max, 1e-6) / 255, zeroPoint: -128 + offset };
    return { scale: Math.max(Math.abs(r.min), Math.abs(r.max), 1e-6) / 127, zeroPoint: offset };
  };
  const scaleZp = (v: string, q: { scale: number; zeroPoint: number }): [string, string] => [
    constant(`${v}.q_scale`, tensorFrom('float32', [], [q.scale])),
    constant(`${v}.q_zero_point`, tensorFrom(activations, [], [q.zeroPoint])),
  ];
  const getF = (v: string): string => {
    const f = floatOf.get(v);
    if (f) return f;
    if (g.initializers.has(v)) {
      if (!out.initializers.has(v)) out.initializers.set(v, g.initializers.get(v) as Tensor);
      return v;
    }
    const q = quantOf.get(v);
    if (!q) throw new Error(`value '${v}' is not available`);
    const name = `${v}_dq`;
    const [s, z] = scaleZp(v, q);
    emit('DequantizeLinear', [q.name, s, z], [name], `${v}_dequantize`);
    floatOf.set(v, name);
    return name;
  };
  const getQ = (v: string): QValue => {
    const have = quantOf.get(v);
    if (have) return have;
    const f = getF(v);
    const q = { name: `${v}_q`, ...qparams(v) };
    const [s, z] = scaleZp(v, q);
    emit('QuantizeLinear', [f, s, z], [q.name], `${v}_quantize`);
    quantOf.set(v, q);
    return q;
  };

  for (const n of g.topoSort()) {
    if (skip.has(n)) continue;
    if (n.opType === 'Conv') {
      const next = consumers.get(n.outputs[0]) ?? [];
      const act = next.length === 1 && isRectifier(next[0], g) ? next[0] : undefined;
      if (act) skip.add(act);
      const y = act ? act.outputs[0] : n.outputs[0];
      const x = getQ(n.inputs[0]);
      const wq = quantizeWeights(g.initializers.get(n.inputs[1]) as Tensor);
      const [xs, xz] = scaleZp(n.inputs[0], x);
      const ins = [x.name, xs, xz];
      ins.push(constant(`${n.inputs[1]}_q`, wq.q), constant(`${n.inputs[1]}.q_scale`, wq.scale), constant(`${n.inputs[1]}.q_zero_point`, wq.zeroPoint));
      const yq = { name: `${y}_q`, ...qparams(y) };
      const [ys, yz] = scaleZp(y, yq);
      ins.push(ys, yz);
      const bias = n.inputs[2] ? g.initializers.get(n.inputs[2]) : undefined;
      if (bias) ins.push(constant(`${n.inputs[2]}_q`, quantizeBias(bias, x.scale, wq.scale.array as Float32Array)));
      emit('QLinearConv', ins, [yq.name], n.name ? `${n.name}_quant` : `${y}_conv`, n.attrs);
      quantOf.set(y, yq);
    } else if (n.opType === 'MaxPool' && n.outputs.length === 1 && quantOf.has(n.inputs[0])) {
      const x = quantOf.get(n.inputs[0]) as QValue;
      const yq = { ...x, name: `${n.outputs[0]}_q` };
      emit('MaxPool', [x.name], [yq.name], n.name, n.attrs);
      quantOf.set(n.outputs[0], yq);
    } else {
      emit(n.opType, n.inputs.map((i) => (i ? getF(i) : '')), n.outputs, n.name, n.attrs);
      for (const o of n.outputs) if (o) floatOf.set(o, o);
    }
  }
  for (const o of g.outputs) {
    if (floatOf.get(o.name) === o.name) continue;
    const q = quantOf.get(o.name) as QValue;
    const [s, z] = scaleZp(o.name, q);
    emit('DequantizeLinear', [q.name, s, z], [o.name], `${o.name}_dequantize`);
  }
  return copyHeader(model, out);
}

/** Relu, or Clip with a lower bound of 0 (Relu6), both fusable into the output range. */
function isRectifier(n: Node, g: Graph): boolean {
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  const lo = n.inputs[1] ? g.initializers.get(n.inputs[1])?.toNumbers()[0] : n.float('min');
  return lo === 0;
}

/** Symmetric per-output-channel int8 weights. */
function quantizeWeights(w: Tensor): { q: Tensor; scale: Tensor; zeroPoint: Tensor } {
  const M = w.dims[0];
  const per = w.size / M;
  const f = w.toFloat32();
  const q = new Int8Array(w.size);
  const scale = new Float32Array(M);
  for (let c = 0; c < M; c++) {
    let m = 0;
    for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(f[c * per + i]));
    const s = Math.fround(Math.max(m, 1e-8) / 127);
    scale[c] = s;
    for (let i = 0; i < per; i++) q[c * per + i] = Math.max(-127, Math.min(127, Math.round(f[c * per + i] / s)));
  }
  return { q: new Tensor('int8', w.dims, q), scale: new Tensor('float32', [M], scale), zeroPoint: new Tensor('int8', [M], new Int8Array(M)) };
}

/** int32 bias with scale s_x · s_w[c]. */
function quantizeBias(b: Tensor, sx: number, sw: Float32Array): Tensor {
  const f = b.toFloat32();
  const q = new Int32Array(f.length);
  for (let c = 0; c < f.length; c++) q[c] = Math.round(f[c] / (Math.fround(sx) * sw[c]));
  return new Tensor('int32', [f.length], q);
}

function copyHeader(model: Model, graph: Graph): Model {
  return new Model(graph, { irVersion: model.irVersion, opsetImports: model.opsetImports.map((o) => ({ ...o })), producerName: model.producerName });
}
