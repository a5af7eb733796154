import { PtqError } from '../errors';
import { Graph, Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { cloneModel } from '../onnx/clone';

// bound once: global lookups are slow inside vm contexts (jest runs tests in one)
const { floor, fround } = Math;

/**
 * Per-channel activation equalisation, the graph side (calibrate/equalize.ts chooses the
 * factors): activation `t` becomes t'[c] = t[c] · s[c] by scaling output channel c of the Conv
 * that computes it (its weights and bias, through a Relu if one follows: Relu(x·s) = Relu(x)·s
 * for s > 0) and dividing the input-channel-c weights of every Conv that reads it by s[c]. The
 * float model computes the same function; with powers of two for s it computes the very same
 * floats (a product by 2^k is exact, so every partial sum is too).
 *
 * Scaled weights and biases become new initializers (`<name>_equalized`), so a tensor shared
 * with another node keeps its values there.
 */
export type ChannelScales = Record<string, number[]>;

/** Apply `scales` (tensor → factor per channel) to `model` in place; throws when a tensor is not an equalisation site. */
export function applyChannelScales(model: Model, scales: ChannelScales): void {
  const g = model.graph;
  const producers = g.producers();
  const consumers = g.consumers();
  const taken = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) for (const o of n.outputs) taken.add(o);
  const fresh = (base: string): string => {
    let name = `${base}_equalized`;
    for (let k = 1; taken.has(name); k++) name = `${base}_equalized_${k}`;
    taken.add(name);
    return name;
  };
  const replace = (node: Node, k: number, t: Tensor): void => {
    const name = fresh(node.inputs[k]);
    g.initializers.set(name, t);
    if (model.irVersion < 4) g.inputs.push({ name, type: { dtype: 'float32', shape: t.dims.slice() } });
    node.inputs[k] = name;
  };
  for (const tensor of Object.keys(scales).sort()) {
    const s = scales[tensor];
    const bad = (why: string): PtqError =>
      new PtqError('E_EQUALIZE', `per_channel equalisation of '${tensor}': ${why}`, { subject: tensor, fix: 'run the calibrate stage again on this model' });
    if (s.some((v) => !(v > 0) || !Number.isFinite(v))) throw bad('the channel factors must be finite and > 0');
    let producer = producers.get(tensor);
    if (producer?.opType === 'Relu') producer = producers.get(producer.inputs[0]);
    if (!producer || producer.opType !== 'Conv') throw bad('it is not computed by a Conv (or a Relu after one)');
    const w = constant(g, producer.inputs[1]);
    if (!w || w.dims[0] !== s.length) throw bad(`the Conv '${producer.label}' has no constant weight of ${s.length} output channels`);
    replace(producer, 1, scaleAxis0(w, s, false));
    if (producer.inputs[2]) {
      const b = constant(g, producer.inputs[2]);
      if (!b || b.size !== s.length) throw bad(`the Conv '${producer.label}' has no constant bias of ${s.length} channels`);
      replace(producer, 2, scaleAxis0(b, s, false));
    }
    for (const q of consumers.get(tensor) ?? []) {
      const qw = q.opType === 'Conv' && q.inputs[0] === tensor && !q.inputs.slice(1).includes(tensor) ? constant(g, q.inputs[1]) : undefined;
      const group = q.int('group', 1);
      if (!qw || qw.dims[1] * group !== s.length) throw bad(`'${q.label}' reads it and is not a Conv with a constant weight over its ${s.length} channels`);
      replace(q, 1, divideInputChannels(qw, s, group));
    }
  }
}

/** A copy of `model` with `scales` applied (the model calibration runs on). */
export function equalizedModel(model: Model, scales: ChannelScales): Model {
  const m = cloneModel(model);
  applyChannelScales(m, scales);
  return m;
}

function constant(g: Graph, name: string | undefined): Tensor | undefined {
  const t = name ? g.initializers.get(name) : undefined;
  return t && (t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16') ? t : undefined;
}

/** t[c, …] · s[c] (or / s[c]). */
function scaleAxis0(t: Tensor, s: number[], divide: boolean): Tensor {
  const v = t.toFloat32();
  const out = new Float32Array(v.length);
  const inner = v.length / s.length;
  for (let i = 0; i < v.length; i++) {
    const f = s[floor(i / inner)];
    out[i] = fround(divide ? v[i] / f : v[i] * f);
  }
  return new Tensor('float32', t.dims.slice(), out);
}

/** Conv weight [M, C/g, k…]: the weights of input channel c (group ⌊o/(M/g)⌋, slot j: c = group·C/g + j) / s[c]. */
function divideInputChannels(w: Tensor, s: number[], group: number): Tensor {
  const v = w.toFloat32();
  const out = new Float32Array(v.length);
  const [m, cg] = w.dims;
  const inner = v.length / (m * cg);
  const mg = m / group;
  for (let o = 0; o < m; o++) {
    const first = floor(o / mg) * cg;
    for (let j = 0; j < cg; j++) {
      const f = s[first + j];
      const base = (o * cg + j) * inner;
      for (let i = 0; i < inner; i++) out[base + i] = fround(v[base + i] / f);
    }
  }
  return new Tensor('float32', w.dims.slice(), out);
}
