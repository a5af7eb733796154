import { PtqError } from '../errors';
import { Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { cloneModel } from '../quantize/names';
import { dequantizeValue, quantizeValue } from '../kernels/requant';

/**
 * `calibration_type: load`: the thresholds a QAT-exported model states with
 * QuantizeLinear → DequantizeLinear pairs (the reference exports such models with its QAT
 * plugin; we accept any ONNX QDQ model given as `onnx_model`). The check stage keeps the
 * pairs (constant folding leaves them), so they are read from the optimized model:
 *
 * - a pair on an activation `t` (QuantizeLinear reads `t`, its DequantizeLinear gives the value
 *   the readers use) gives `t` the threshold s · max(qmax − zp, zp − qmin − 1): 127·s for int8
 *   with zero point 0 (our scale is then exactly s), 255·s for uint8 with zero point 0, the
 *   larger half-range otherwise; a per-axis scale counts with its largest element;
 * - a pair (or a lone DequantizeLinear) on a constant is folded into the float constant it
 *   stands for (the QAT weights; the quantizer re-quantizes them per channel);
 * - the pairs are then removed, which leaves the float model the quantizer expects.
 */
export interface StrippedModel {
  model: Model;
  /** tensor → threshold, in graph order */
  thresholds: Record<string, number>;
  /** activation pairs read */
  pairs: number;
  /** constants folded */
  folded: number;
}

const isQ = (n: Node | undefined): n is Node => !!n && !n.domain && n.opType === 'QuantizeLinear';
const isDQ = (n: Node | undefined): n is Node => !!n && !n.domain && n.opType === 'DequantizeLinear';

/** Whether the model holds QuantizeLinear/DequantizeLinear nodes. */
export function hasQdq(model: Model): boolean {
  return model.graph.nodes.some((n) => isQ(n) || isDQ(n));
}

export function stripQdq(source: Model): StrippedModel {
  const model = cloneModel(source);
  const g = model.graph;
  const thresholds: Record<string, number> = {};
  let pairs = 0;
  let folded = 0;
  const constant = (v: string | undefined): Tensor | undefined => (v ? g.initializers.get(v) : undefined);
  const param = (node: Node, k: number, what: string): Tensor => {
    const t = constant(node.inputs[k]);
    if (!t) {
      throw new PtqError('E_LOAD_QDQ', `node '${node.label}' (${node.opType}): its ${what} is not a constant`, {
        subject: node.label,
        fix: 'export the QAT model with constant scales and zero points',
      });
    }
    return t;
  };

  for (const d of g.topoSort()) {
    if (!isDQ(d)) continue;
    const producers = g.producers();
    const q = producers.get(d.inputs[0]);
    const qReaders = g.consumers().get(d.inputs[0]) ?? [];
    const scaleT = param(d, 1, 'scale');
    const zpT = d.inputs[2] ? param(d, 2, 'zero point') : undefined;
    const src = isQ(q) ? q.inputs[0] : undefined;
    const value = isQ(q) ? constant(src) : constant(d.inputs[0]);
    if (value) {
      // a constant behind the pair (or a stored integer tensor): fold to the float values it stands for
      const f = foldConstant(value, isQ(q), scaleT, zpT, d.int('axis', 1));
      const name = d.outputs[0];
      g.removeNode(d);
      g.initializers.set(name, f);
      g.valueInfo.delete(name);
      folded++;
      if (isQ(q) && !(g.consumers().get(q.outputs[0]) ?? []).length) g.removeNode(q);
      continue;
    }
    if (!isQ(q) || !src || qReaders.some((r) => !isDQ(r))) {
      throw new PtqError('E_LOAD_QDQ', `node '${d.label}' (DequantizeLinear) does not follow a QuantizeLinear of a float value`, {
        subject: d.label,
        fix: 'calibration_type load reads QuantizeLinear → DequantizeLinear pairs on activations; export the QAT model that way',
      });
    }
    const th = pairThreshold(scaleT, zpT ?? (q.inputs[2] ? param(q, 2, 'zero point') : undefined));
    const out = d.outputs[0];
    const isOutput = g.outputs.some((o) => o.name === out);
    const key = isOutput && producers.has(src) && !g.outputs.some((o) => o.name === src) ? out : src;
    g.removeNode(d, src);
    if (!(g.consumers().get(q.outputs[0]) ?? []).length) g.removeNode(q);
    thresholds[key] = Math.max(thresholds[key] ?? 0, th);
    pairs++;
  }
  g.pruneUnused();
  return { model, thresholds, pairs, folded };
}

/** s · max(qmax − zp, zp − qmin − 1) for the zero point's type (uint8 when absent, as ONNX says). */
export function pairThreshold(scale: Tensor, zp: Tensor | undefined): number {
  const s = Math.max(...Array.from(scale.toFloat32(), Math.abs));
  const type = zp?.dtype ?? 'uint8';
  const [lo, hi] = RANGES[type] ?? [0, 255];
  const z = zp ? Number(zp.toNumbers()[0]) : 0;
  return s * Math.max(hi - z, z - lo - 1);
}

const RANGES: Record<string, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535] };

function foldConstant(value: Tensor, quantize: boolean, scale: Tensor, zp: Tensor | undefined, axis: number): Tensor {
  const s = scale.toFloat32();
  const z = zp ? zp.toNumbers().map(Number) : [0];
  const dims = value.dims;
  const ax = axis < 0 ? axis + dims.length : axis;
  const perAxis = s.length > 1;
  const inner = perAxis ? dims.slice(ax + 1).reduce((a, b) => a * b, 1) : 1;
  const channels = perAxis ? dims[ax] : 1;
  const [lo, hi] = RANGES[zp?.dtype ?? 'uint8'] ?? [0, 255];
  const v = value.toNumbers().map(Number);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = perAxis ? Math.floor(i / inner) % channels : 0;
    const zc = z[perAxis ? c : 0] ?? 0;
    const q = quantize ? quantizeValue(v[i], s[c], zc, lo, hi) : v[i];
    out[i] = dequantizeValue(q, s[c], zc);
  }
  return new Tensor('float32', dims, out);
}
