import { PtqError } from '../errors';
import { Dim, Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor } from '../onnx/tensor';
import { findOp, QuantRole, ValueFacts } from '../ops/registry';
import { readPreprocessRecords } from '../preprocess/hz-preprocess';
import { quantizeValue } from '../kernels/requant';
import { cloneModel } from './names';
import { applyChannelScales } from './equalize';
import { raiseOpset } from './opset';
import { activationScale, int16Scale, MIN_OPSET, QuantizeSpec } from './spec';

/**
 * How a node is represented once quantized (both emitters follow the same plan, so the
 * calibrated model fake-quantizes exactly the tensors the quantized model holds in int8):
 * - float: CPU (placement, 'cpu' role, custom domain, non-float data): float in, float out
 * - input-cast: the HzPreprocess Cast of an int8 image input: an identity on int8 (scale 1)
 * - conv: Conv with constant weights → QLinearConv
 * - fc: Gemm / MatMul with a constant 2-D weight → Reshape, 1×1 QLinearConv, Reshape
 * - deconv: ConvTranspose with constant weights → the integer transposed convolution in float
 *   ops on integer values (no QLinearConvTranspose in ONNX)
 * - requant: any other active op → DequantizeLinear → float op → QuantizeLinear(output scale)
 * - concat: Concat → int8 Concat when every input has the output's scale, else requant
 * - passive: the op itself on int8 values, output scale = input scale
 * - lut: a 256-entry int8 table (HzLut) as Cast → Add(128) → Gather
 */
export type NodeKind = 'float' | 'input-cast' | 'conv' | 'fc' | 'deconv' | 'requant' | 'concat' | 'passive' | 'lut';

/** What an input slot of a BPU node carries. */
export type InputRole = 'data' | 'weight' | 'bias' | 'param';

/** A quantized constant weight: int8, symmetric, per channel along `axis` (or per tensor). */
export interface WeightQuant {
  tensor: string;
  /** the quantization axis of the stored tensor, undefined = per tensor */
  axis: number | undefined;
  /** fround(max|w_c| / 127) per channel (an all-zero channel gets 1/127) */
  scales: Float32Array;
  /** the int8 values, same dims as the float tensor */
  q: Tensor;
}

export interface QuantPlan {
  /** The working copy of the float model (opset raised if needed) both emitters start from. */
  model: Model;
  spec: QuantizeSpec;
  facts: Map<string, ValueFacts>;
  kinds: Map<Node, NodeKind>;
  /**
   * Values that are integers in the quantized model: outputs of BPU nodes and image inputs;
   * int8 unless also in `int16`.
   */
  int8: Set<string>;
  /**
   * The subset of `int8` held in int16 (bayes node_info, QuantizeSpec.int16Nodes): outputs of
   * the int16 nodes, scale fround(threshold / 32767), and the outputs of passive ops reading them.
   */
  int16: Set<string>;
  /** int16Nodes that compute in int8 after all (on the CPU, or not in the model) */
  int16Ignored: string[];
  /**
   * The int8 scale of every value in `int8`, of every float value quantized where a BPU node
   * reads it (featuremap inputs, CPU outputs), and of constant data operands (max|c| / 127).
   */
  scales: Map<string, number>;
  /** Quantized weights by `weightKey(tensor, axis)`. */
  weights: Map<string, WeightQuant>;
  /** Image (int8 `*_128`) graph inputs and the layout of their data. */
  imageInputs: Map<string, 'NCHW' | 'NHWC'>;
  /** Active/LUT/Concat node → the Relu/Clip whose clamp it absorbs (output scale from the clamp's output). */
  fusedClamp: Map<Node, Node>;
  /** True for an initializer that is a constant (not an overridable input). */
  isConst(v: string): boolean;
  notes: string[];
}

export function weightKey(tensor: string, axis: number | undefined): string {
  return `${tensor}@${axis ?? 'tensor'}`;
}

/** Passive ops onnxruntime runs on int8 (probed: opset 13–17, onnxruntime 1.30), with our substitutes for the others. */
export const INT8_PASSIVE = new Set([
  'MaxPool', 'Reshape', 'Flatten', 'Transpose', 'Slice', 'Split', 'Squeeze', 'Unsqueeze', 'Resize', 'DepthToSpace',
  'SpaceToDepth', 'Pad', 'Identity', 'Gather', 'GatherElements', 'Tile', 'Expand', 'ReduceMax', 'Clip',
  // rewritten: Relu → Clip(0, 127) (int8 Relu needs opset 14), GlobalMaxPool → ReduceMax, Dropout → Identity
  'Relu', 'GlobalMaxPool', 'Dropout',
]);

/** Ops with one data input (input 0); their other inputs are parameters kept as they are. */
const SINGLE_DATA = new Set([
  'Clip', 'Pad', 'Resize', 'Upsample', 'BatchNormalization', 'PRelu', 'Reshape', 'Expand', 'Tile', 'Slice', 'Gather',
  'GatherElements', 'Split', 'Squeeze', 'Unsqueeze', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceSum', 'InstanceNormalization',
  'LayerNormalization', 'TopK',
]);

const QUANTIZED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

/** Build the plan: raise the opset, classify nodes, assign scales, quantize weights. */
export function planQuantization(source: Model, spec: QuantizeSpec): QuantPlan {
  if (spec.outputType === 'int16' && spec.march !== 'bayes') {
    throw new PtqError('E_CONFIG', `set_model_output_int16 is supported on bayes only, the march is ${spec.march}`, {
      subject: 'compiler_parameters.optimization',
      fix: 'use set_model_output_int8 (or no output option) on bernoulli2',
    });
  }
  const model = cloneModel(source);
  const { notes, aliases } = raiseOpset(model, MIN_OPSET);
  const g = model.graph;
  if (spec.channelScales && Object.keys(spec.channelScales).length) {
    applyChannelScales(model, spec.channelScales);
    notes.push(`per_channel: ${Object.keys(spec.channelScales).length} activation(s) equalised across channels`);
  }
  if (spec.biasCorrection) correctBiases(model, spec.biasCorrection, notes);
  for (const n of g.nodes) {
    if (!n.domain && QUANTIZED_OPS.has(n.opType)) {
      throw new PtqError('E_QUANT_INPUT', `node '${n.label}' (${n.opType}): the model is already quantized`, {
        subject: n.label,
        fix: 'give the float model (optimized_float_model.onnx) to the quantizer',
      });
    }
  }
  const facts = inferShapes(model, { apply: false });
  const order = g.topoSort();
  const readers = g.consumers();
  const outputs = new Set(g.outputs.map((o) => o.name));
  const isFloat32 = (v: string): boolean => !!v && (facts.get(v)?.dtype ?? g.typeOf(v)?.dtype) === 'float32';
  const isConst = (v: string): boolean => !!v && g.initializers.has(v) && !(model.irVersion >= 4 && g.inputs.some((i) => i.name === v));

  const plan: QuantPlan = {
    model, spec, facts, kinds: new Map(), int8: new Set(), int16: new Set(), int16Ignored: [], scales: new Map(), weights: new Map(),
    imageInputs: new Map(), fusedClamp: new Map(), isConst, notes,
  };
  const wide = spec.int16Nodes ?? new Set<string>();
  const wideDone = new Set<string>();
  const layouts = new Map(readPreprocessRecords(model).map((r) => [r.input, r.layout]));
  for (const v of g.realInputs) {
    if (v.type?.dtype === 'int8') {
      plan.imageInputs.set(v.name, layouts.get(v.name) ?? 'NCHW');
      plan.int8.add(v.name);
      plan.scales.set(v.name, 1);
    }
  }

  const missing: string[] = [];
  const threshold = (t: string): number | undefined => {
    const a = spec.activations[t] ?? spec.activations[aliases.get(t) ?? ''];
    return a && typeof a.threshold === 'number' ? a.threshold : undefined;
  };
  const needScale = (t: string, via?: string, int16 = false): number => {
    const known = plan.scales.get(t);
    if (known !== undefined) return known;
    const th = (via !== undefined ? threshold(via) : undefined) ?? threshold(t);
    if (th === undefined) {
      missing.push(t);
      return 1;
    }
    const s = int16 ? int16Scale(th) : activationScale(th);
    plan.scales.set(t, s);
    return s;
  };
  const constScale = (t: string): void => {
    if (plan.scales.has(t)) return;
    const v = (g.initializers.get(t) as Tensor).toFloat32();
    let m = 0;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
    plan.scales.set(t, activationScale(m));
  };

  for (const node of order) {
    const kind = classify(node);
    plan.kinds.set(node, kind);
    if (kind === 'float') continue;
    if (kind === 'input-cast') {
      plan.int8.add(node.outputs[0]);
      plan.scales.set(node.outputs[0], plan.scales.get(node.inputs[0]) ?? 1);
      continue;
    }
    const roles = inputRoles(node, kind, isConst);
    node.inputs.forEach((v, k) => {
      if (!v) return;
      const role = roles[k];
      if (role === 'data' && isFloat32(v)) {
        if (isConst(v)) constScale(v);
        else needScale(v);
      } else if (role === 'weight') {
        quantizeWeight(plan, v, weightAxis(node, k, facts), spec.perChannelWeights !== false);
      }
    });
    const int16Node = wide.has(node.name) || (node.name === '' && wide.has(node.label));
    if (int16Node) wideDone.add(node.name || node.label);
    if (kind === 'passive') {
      // keeps its input's scale and width (an int16 passive op reads int16, so it writes int16)
      const s = plan.scales.get(node.inputs[0]) ?? 1;
      for (const o of node.outputs) {
        if (!o) continue;
        plan.int8.add(o);
        plan.scales.set(o, s);
        if (plan.int16.has(node.inputs[0])) plan.int16.add(o);
      }
      // a passive op cannot widen an int8 input: it stays int8 (reported as such)
      if (int16Node && !plan.int16.has(node.inputs[0])) wideDone.delete(node.name || node.label);
      continue;
    }
    // active, lut, concat: one float output with its own (or its clamp's) threshold
    const o = node.outputs[0];
    const rs = readers.get(o) ?? [];
    const clamp = rs.length === 1 && !outputs.has(o) && (rs[0].opType === 'Relu' || rs[0].opType === 'Clip') && rs[0].inputs[0] === o ? rs[0] : undefined;
    if (clamp && classify(clamp) === 'passive') plan.fusedClamp.set(node, clamp);
    plan.int8.add(o);
    needScale(o, clamp && classify(clamp) === 'passive' ? clamp.outputs[0] : undefined, int16Node);
    if (int16Node) plan.int16.add(o);
  }
  plan.int16Ignored = [...wide].filter((n) => !wideDone.has(n)).sort();
  if (plan.int16.size) notes.push(`int16: ${plan.int16.size} value(s) held in int16 (node_info)${plan.int16Ignored.length ? `; computed in int8 (CPU or not in the model): ${plan.int16Ignored.join(', ')}` : ''}`);
  if (missing.length) {
    const list = [...new Set(missing)];
    throw new PtqError('E_QUANT_THRESHOLD', `no calibration threshold for ${list.length} tensor${list.length > 1 ? 's' : ''} the BPU quantizes: ${list.slice(0, 8).map((t) => `'${t}'`).join(', ')}${list.length > 8 ? ', …' : ''}`, {
      subject: list[0],
      fix: 'calibrate the optimized model (every tensor a BPU node reads or writes needs a threshold)',
    });
  }
  return plan;

  function classify(node: Node): NodeKind {
    const known = plan.kinds.get(node);
    if (known) return known;
    if (node.opType === 'Cast' && !node.domain && node.int('to', 0) === 1 && plan.imageInputs.has(node.inputs[0])) return 'input-cast';
    if (node.domain && node.domain !== 'ai.onnx') return 'float';
    const op = findOp(node.domain, node.opType);
    if (!op || spec.cpuNodes.has(node.name) || (node.name === '' && spec.cpuNodes.has(node.label))) return 'float';
    const role = refineRole(node, op.quant);
    if (role === 'cpu') return 'float';
    if (!node.outputs[0] || !isFloat32(node.outputs[0])) return 'float';
    const roles = inputRoles(node, role === 'passive' ? 'passive' : 'requant', isConst);
    const data = node.inputs.filter((v, k) => v && roles[k] === 'data');
    if (!data.length || !data.every(isFloat32)) return 'float';
    if (role === 'lut') return node.inputs.filter((v) => v).length === 1 ? 'lut' : 'requant';
    if (role === 'passive') {
      if (isConst(node.inputs[0])) return 'float';
      // parameters that must be constant to be re-expressed in int8
      if (node.opType === 'Clip' && [1, 2].some((k) => node.inputs[k] && !isConst(node.inputs[k]))) return 'requant';
      if (node.opType === 'Pad' && node.inputs[2] && !isConst(node.inputs[2])) return 'requant';
      if (node.opType === 'MaxPool' && node.outputs[1] && (readers.get(node.outputs[1])?.length || outputs.has(node.outputs[1]))) return 'float';
      return 'passive';
    }
    if (node.opType === 'Concat') return 'concat';
    if (node.opType === 'Conv' && isConst(node.inputs[1]) && facts.get(node.inputs[1])?.shape?.length === 4 && (!node.inputs[2] || isConst(node.inputs[2]))) return 'conv';
    if (fcShape(node) !== undefined) return 'fc';
    if (node.opType === 'ConvTranspose' && isConst(node.inputs[1]) && (!node.inputs[2] || isConst(node.inputs[2]))) return 'deconv';
    return 'requant';
  }

  /** For an fc candidate: the static dims of A between the first and the last (or undefined when not an fc). */
  function fcShape(node: Node): Dim[] | undefined {
    const a = facts.get(node.inputs[0])?.shape;
    const b = node.inputs[1];
    if (!a || !isConst(b) || g.initializers.get(b)?.rank !== 2) return undefined;
    if (node.opType === 'Gemm') {
      if (node.int('transA', 0) !== 0 || a.length !== 2) return undefined;
      const c = node.inputs[2];
      if (c) {
        if (!isConst(c)) return undefined;
        const ct = g.initializers.get(c) as Tensor;
        const n = (g.initializers.get(b) as Tensor).dims[node.int('transB', 0) ? 0 : 1];
        // C must not vary along M: a scalar, [N] or [1, N]
        if (!(ct.size === 1 || (ct.rank === 1 && ct.dims[0] === n) || (ct.rank === 2 && ct.dims[0] === 1 && ct.dims[1] === n))) return undefined;
      }
      return [];
    }
    if (node.opType === 'MatMul') {
      if (a.length < 2) return undefined;
      const mid = a.slice(1, -1);
      if (!mid.every((d) => typeof d === 'number') || typeof a[a.length - 1] !== 'number') return undefined;
      return mid;
    }
    return undefined;
  }
}

/** The role of the op, refined per node where it depends on attributes. */
function refineRole(node: Node, role: QuantRole): QuantRole {
  if ((node.opType === 'Resize' || node.opType === 'Upsample') && node.str('mode', 'nearest') !== 'nearest') return 'active';
  if (node.opType === 'Dropout') return 'passive';
  return role;
}

/** What each input of a BPU node carries (a weight is a constant; a computed one is data). */
export function inputRoles(node: Node, kind: NodeKind, isConst: (v: string) => boolean): InputRole[] {
  const n = node.inputs.length;
  const roles: InputRole[] = new Array<InputRole>(n).fill('data');
  if (kind === 'lut' || kind === 'concat') return roles;
  if (kind === 'passive' || SINGLE_DATA.has(node.opType)) {
    roles.fill('param');
    roles[0] = 'data';
    return roles;
  }
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose':
      roles.fill('param');
      roles[0] = 'data';
      if (n > 1) roles[1] = isConst(node.inputs[1]) ? 'weight' : 'data';
      if (n > 2) roles[2] = 'bias';
      return roles;
    case 'Gemm':
    case 'MatMul':
      if (n > 1 && isConst(node.inputs[1])) roles[1] = 'weight';
      if (node.opType === 'Gemm' && n > 2) roles[2] = 'bias';
      return roles;
    default:
      return roles;
  }
}

/** The per-channel axis of the weight in input k (output channels), or undefined for per tensor. */
function weightAxis(node: Node, k: number, facts: Map<string, ValueFacts>): number | undefined {
  if (k !== 1) return undefined;
  switch (node.opType) {
    case 'Conv':
      return 0;
    case 'ConvTranspose':
      // [C_in, C_out/group, k…]: channels along axis 1 only identify output channels when group = 1
      return node.int('group', 1) === 1 ? 1 : undefined;
    case 'Gemm':
      return node.int('transB', 0) ? 0 : 1;
    case 'MatMul':
      return (facts.get(node.inputs[1])?.shape?.length ?? 0) === 2 ? 1 : undefined;
    default:
      return undefined;
  }
}

/** The quantized weight read by input k of `node` (a 'weight' role input). */
export function weightFor(plan: QuantPlan, node: Node, k: number): WeightQuant {
  return quantizeWeight(plan, node.inputs[k], weightAxis(node, k, plan.facts), plan.spec.perChannelWeights !== false);
}

/** Quantize a constant weight once per (tensor, axis): scales fround(max|w_c| / 127), values rne(w / s). */
export function quantizeWeight(plan: QuantPlan, tensor: string, axis: number | undefined, perChannel: boolean): WeightQuant {
  const ax = perChannel ? axis : undefined;
  const key = weightKey(tensor, ax);
  const have = plan.weights.get(key);
  if (have) return have;
  const t = plan.model.graph.initializers.get(tensor) as Tensor;
  const w = t.toFloat32();
  const dims = t.dims;
  const channels = ax === undefined ? 1 : dims[ax];
  const inner = ax === undefined ? w.length : dims.slice(ax + 1).reduce((p, q) => p * q, 1);
  const outer = ax === undefined ? 1 : dims.slice(0, ax).reduce((p, q) => p * q, 1);
  const max = new Float64Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let m = max[c];
      for (let i = 0; i < inner; i++) {
        const a = w[base + i] < 0 ? -w[base + i] : w[base + i];
        if (a > m) m = a;
      }
      max[c] = m;
    }
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = activationScale(max[c]);
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const s = scales[c];
      for (let i = 0; i < inner; i++) q[base + i] = quantizeValue(w[base + i], s, 0, -128, 127);
    }
  }
  const wq: WeightQuant = { tensor, axis: ax, scales, q: new Tensor('int8', dims, q) };
  plan.weights.set(key, wq);
  return wq;
}

/**
 * Add `corrections` (QuantizeSpec.biasCorrection) to the biases of the working copy: each
 * corrected node reads a new initializer `<node>_bias_corrected` (b + δ, or δ where it had no
 * bias; a Gemm's C takes δ / beta), so a bias shared with another node stays as it was.
 */
function correctBiases(model: Model, corrections: Record<string, number[]>, notes: string[]): void {
  const g = model.graph;
  const taken = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) for (const o of n.outputs) taken.add(o);
  let done = 0;
  const skipped: string[] = [];
  for (const node of g.nodes) {
    const delta = corrections[node.name || node.label];
    if (!delta) continue;
    const channels = delta.length;
    const biasName = node.inputs[2];
    const old = biasName ? g.initializers.get(biasName) : undefined;
    const gemm = node.opType === 'Gemm';
    const beta = gemm && old ? node.float('beta', 1) : 1;
    const oldValues = old?.toFloat32();
    if ((node.opType !== 'Conv' && !gemm) || (biasName && !old) || beta === 0 || (oldValues && oldValues.length !== 1 && oldValues.length !== channels)) {
      skipped.push(node.label);
      continue;
    }
    const b = new Float32Array(channels);
    for (let c = 0; c < channels; c++) b[c] = Math.fround((oldValues ? oldValues[oldValues.length === 1 ? 0 : c] : 0) + delta[c] / beta);
    let name = `${node.name || node.opType}_bias_corrected`;
    for (let k = 1; taken.has(name); k++) name = `${node.name || node.opType}_bias_corrected_${k}`;
    taken.add(name);
    g.initializers.set(name, new Tensor('float32', [channels], b));
    if (model.irVersion < 4) g.inputs.push({ name, type: { dtype: 'float32', shape: [channels] } });
    while (node.inputs.length < 2) node.inputs.push('');
    node.inputs[2] = name;
    if (gemm && !old) node.attrs.set('beta', { type: 'float', value: 1 });
    done++;
  }
  notes.push(`bias_correction: ${done} bias(es) corrected${skipped.length ? `; not corrected (no constant bias of the channel count): ${skipped.join(', ')}` : ''}`);
}
