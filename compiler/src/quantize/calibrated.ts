import { Attribute, Graph, Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { cloneNode, cloneValueInfo, Namer } from './names';
import { withGraph } from '../onnx/clone';
import { inputRoles, planQuantization, QuantPlan, weightFor } from './plan';
import { CALIBRATION_SUFFIX, QuantizeSpec } from './spec';

/**
 * `***_calibrated_model.onnx`: the optimized float model with a QuantizeLinear →
 * DequantizeLinear pair (float32 scale, int8 zero point 0) on
 * - every activation a BPU node reads (once per tensor, shared by its readers), with the
 *   scale the quantized model gives it: threshold / 127, a passive op's input scale, a
 *   Conv's scale taken from the Relu/Clip it is fused with, 1.0 for the int8 image input;
 * - every activation a CPU node reads that the quantized model holds in int8 (the CPU sees
 *   what the Dequantize gives it);
 * - every constant weight: per output channel, axis 0 (Conv, Gemm transB = 1), axis 1
 *   (ConvTranspose group 1, Gemm transB = 0, MatMul), or per tensor; biases stay float;
 * - constant data operands of BPU ops (Add with a constant, …): per tensor, max|c| / 127.
 * The pair on tensor `t` is named `t_HzCalibration_quantize` / `t_HzCalibration` (the
 * reference's HzCalibration nodes as standard ops). A value the plan holds in int16 (node_info)
 * is fake-quantized in float ops instead, Div(s) → Round → Clip(−32768, 32767) → Mul(s), the last
 * named `t_HzCalibration` (QuantizeLinear takes int16 only from opset 21). Model outputs computed on the BPU leave
 * fake-quantized under their own name; the float value before the pair is `t_float`.
 */
export function emitCalibratedModel(model: Model, spec: QuantizeSpec): Model {
  return calibratedFromPlan(planQuantization(model, spec));
}

export function calibratedFromPlan(plan: QuantPlan): Model {
  const src = plan.model.graph;
  const names = new Namer(src);
  const nodeNames = new Namer(src, 'nodes');
  const g = new Graph({
    name: src.name,
    docString: src.docString,
    inputs: src.inputs.map(cloneValueInfo),
    outputs: src.outputs.map(cloneValueInfo),
    initializers: new Map(src.initializers),
    valueInfo: new Map([...src.valueInfo].map(([k, v]) => [k, cloneValueInfo(v)])),
  });
  g.extra = src.extra;
  const outputs = new Set(src.outputs.map((o) => o.name));
  const produced = new Set<string>();
  for (const n of src.nodes) for (const o of n.outputs) if (o) produced.add(o);
  /** int8-domain graph outputs computed by a node: their float value is renamed `t_float` */
  const renamed = new Map<string, string>();
  for (const o of outputs) if (plan.int8.has(o) && produced.has(o)) renamed.set(o, names.fresh(`${o}_float`));
  const fq = new Map<string, string>();
  const doc = 'HzCalibration';

  const addInit = (base: string, t: Tensor): string => {
    const name = names.fresh(base);
    g.initializers.set(name, t);
    return name;
  };
  const pair = (input: string, base: string, scale: Tensor, zp: Tensor, axis: number | undefined, output?: string): string => {
    const s = addInit(`${base}_scale`, scale);
    const z = addInit(`${base}_zero_point`, zp);
    const qOut = names.fresh(`${base}_quantize`);
    const axisAttr: Record<string, Attribute> = axis === undefined ? {} : { axis: { type: 'int', value: axis } };
    g.nodes.push(new Node({ opType: 'QuantizeLinear', name: nodeNames.fresh(`${base}_quantize`), inputs: [input, s, z], outputs: [qOut], attrs: axisAttr, docString: doc }));
    const dqOut = output ?? names.fresh(base);
    g.nodes.push(new Node({ opType: 'DequantizeLinear', name: nodeNames.fresh(base), inputs: [qOut, s, z], outputs: [dqOut], attrs: axisAttr, docString: doc }));
    return dqOut;
  };
  const fakeQuant = (t: string): string => {
    const have = fq.get(t);
    if (have) return have;
    const scale = plan.scales.get(t);
    if (scale === undefined) throw new Error(`quantize plan has no scale for '${t}'`);
    const raw = renamed.get(t);
    const out = plan.int16.has(t)
      ? fakeQuant16(raw ?? t, `${t}${CALIBRATION_SUFFIX}`, scale, raw ? t : undefined)
      : pair(raw ?? t, `${t}${CALIBRATION_SUFFIX}`, tensorFrom('float32', [], [scale]), tensorFrom('int8', [], [0]), undefined, raw ? t : undefined);
    fq.set(t, out);
    return out;
  };
  /** int16 fake quantization in float ops (QuantizeLinear takes int16 only from opset 21): Div → Round → Clip → Mul. */
  const fakeQuant16 = (input: string, base: string, scale: number, output?: string): string => {
    const s = addInit(`${base}_scale`, tensorFrom('float32', [], [scale]));
    const lo = addInit(`${base}_min`, tensorFrom('float32', [], [-32768]));
    const hi = addInit(`${base}_max`, tensorFrom('float32', [], [32767]));
    const div = names.fresh(`${base}_quantize`);
    const rnd = names.fresh(`${base}_rounded`);
    const clp = names.fresh(`${base}_clamped`);
    const out = output ?? names.fresh(base);
    const doc16 = 'HzCalibration int16';
    g.nodes.push(new Node({ opType: 'Div', name: nodeNames.fresh(`${base}_quantize`), inputs: [input, s], outputs: [div], docString: doc16 }));
    g.nodes.push(new Node({ opType: 'Round', name: nodeNames.fresh(`${base}_round`), inputs: [div], outputs: [rnd], docString: doc16 }));
    g.nodes.push(new Node({ opType: 'Clip', name: nodeNames.fresh(`${base}_clamp`), inputs: [rnd, lo, hi], outputs: [clp], docString: doc16 }));
    g.nodes.push(new Node({ opType: 'Mul', name: nodeNames.fresh(base), inputs: [clp, s], outputs: [out], docString: doc16 }));
    return out;
  };
  const wfq = new Map<string, string>();
  const weightFakeQuant = (t: string, node: Node, k: number): string => {
    const w = weightFor(plan, node, k);
    const key = `${t}@${w.axis}`;
    const have = wfq.get(key);
    if (have) return have;
    const n = w.scales.length;
    const perTensor = w.axis === undefined;
    const out = pair(t, `${t}${CALIBRATION_SUFFIX}`, new Tensor('float32', perTensor ? [] : [n], w.scales.slice()), new Tensor('int8', perTensor ? [] : [n]), w.axis);
    wfq.set(key, out);
    return out;
  };

  for (const node of src.topoSort()) {
    const kind = plan.kinds.get(node) ?? 'float';
    const c = cloneNode(node);
    if (kind === 'float') {
      c.inputs = c.inputs.map((v) => (v && plan.int8.has(v) && !plan.imageInputs.has(v) ? fakeQuant(v) : v));
    } else if (kind !== 'input-cast') {
      const roles = inputRoles(node, kind, plan.isConst);
      c.inputs = c.inputs.map((v, k) => {
        if (!v) return v;
        if (roles[k] === 'weight') return weightFakeQuant(v, node, k);
        if (roles[k] === 'data' && plan.scales.has(v) && !plan.imageInputs.has(v)) return fakeQuant(v);
        return v;
      });
    }
    c.outputs = c.outputs.map((o) => renamed.get(o) ?? o);
    g.nodes.push(c);
    for (const o of node.outputs) if (renamed.has(o)) fakeQuant(o);
  }
  g.pruneUnused();
  return withGraph(plan.model, g, { producerName: 'nx-ptq' });
}
