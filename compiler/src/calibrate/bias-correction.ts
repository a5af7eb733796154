import { cloneModel } from '../onnx/clone';
import { Attribute, Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { planQuantization, QuantizeSpec } from '../quantize';
import { Namer } from '../quantize/names';
import { QuantPlan, weightFor } from '../quantize/plan';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { chooseEngine } from '../runtime/select';
import type { SampleSource } from './collect';

// bound once: global lookups are slow inside vm contexts (jest runs tests in one)
const { floor, fround } = Math;

/**
 * `bias_correction` (an nx-ptq extension of calibration_parameters; off unless set): "fast"
 * empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization
 * and Bias Correction", ICCV 2019, §4.2, with calibration data instead of BN statistics).
 *
 * Rounding a layer's weights to int8 shifts the mean of its outputs: E[W_q·x] − E[W·x] =
 * E[(W_q − W)·x], per output channel. The shift is systematic (the same on every input) and
 * the next layers amplify it, so the bias absorbs it: b'[c] = b[c] − E[(W_q − W)·x][c], where
 * W_q are the dequantized int8 weights of the plan (per output channel, as the quantized model
 * holds them) and x the float input of the layer. Only the weights' error is corrected (the
 * "quantized weights, float activations" model): activation rounding is unbiased on average.
 *
 * How: a copy of the float model computes, next to every corrected layer, the same layer with
 * weight W_q − W and no bias on the same float input, and the mean of that over every axis but
 * the channel one (ReduceMean). One streaming pass over the calibration samples; the means are
 * averaged over the samples. Corrected: Conv (output channels on axis 1) and Gemm (columns of
 * the [N, M] output) that run on the BPU with constant weights (the plan's 'conv' and 'fc'
 * kinds); a MatMul has no bias to absorb the shift, a ConvTranspose is left as it is.
 *
 * The result (node name → per-channel correction) is what QuantizeSpec.biasCorrection takes:
 * both emitted models then carry b + correction (plan.ts).
 */

export interface BiasCorrectionOptions {
  /** engine for the pass (default: onnxruntime, the reference engine for custom operators) */
  engine?: 'ort' | 'reference';
  onProgress?: (samples: number) => void;
}

/** Per corrected node (by name): the value added to each output channel's bias. */
export type BiasCorrections = Record<string, number[]>;

interface Target {
  node: string;
  /** output of the ReduceMean giving the per-channel mean shift */
  mean: string;
}

/** The corrections of every BPU Conv/Gemm of `model` under `spec` (see the file comment). */
export async function computeBiasCorrections(model: Model, spec: QuantizeSpec, samples: SampleSource, opts: BiasCorrectionOptions = {}): Promise<BiasCorrections> {
  const plan = planQuantization(model, { ...spec, biasCorrection: undefined });
  const { model: shift, targets } = shiftModel(plan);
  if (!targets.length) return {};
  const choice = opts.engine ?? chooseEngine(plan.model).engine;
  const engine: Engine = choice === 'reference' ? new ReferenceEngine(shift) : await OrtEngine.create(shift, { threads: 1 });
  const sums = new Map<string, Float64Array>();
  let count = 0;
  try {
    for await (const feeds of typeof samples === 'function' ? samples() : samples) {
      const out = await engine.run(feeds);
      for (const t of targets) {
        const m = out[t.mean].toFloat32();
        let acc = sums.get(t.node);
        if (!acc) sums.set(t.node, (acc = new Float64Array(m.length)));
        for (let c = 0; c < m.length; c++) acc[c] += m[c];
      }
      count++;
      opts.onProgress?.(count);
    }
  } finally {
    await engine.dispose();
  }
  const out: BiasCorrections = {};
  if (!count) return out;
  for (const t of targets) {
    const acc = sums.get(t.node) as Float64Array;
    out[t.node] = Array.from(acc, (s) => fround(-s / count));
  }
  return out;
}

/**
 * The float model plus, per corrected layer, the layer with weight W_q − W and no bias, and its
 * per-channel mean; the means are the only outputs.
 */
export function shiftModel(plan: QuantPlan): { model: Model; targets: Target[] } {
  const m = cloneModel(plan.model);
  const g = m.graph;
  const namer = new Namer(g);
  const fresh = (base: string): string => namer.fresh(base);
  const opset = m.opset('') ?? 13;
  const targets: Target[] = [];
  for (const node of plan.model.graph.nodes) {
    const kind = plan.kinds.get(node);
    const isConv = kind === 'conv' && node.opType === 'Conv';
    const isGemm = kind === 'fc' && node.opType === 'Gemm';
    if (!isConv && !isGemm) continue;
    if (isGemm && node.inputs[2] && node.float('beta', 1) === 0) continue; // no bias term to correct
    const name = node.name || node.label;
    const delta = fresh(`${name}_weight_error`);
    g.initializers.set(delta, weightError(plan, node));
    const attrs = new Map<string, Attribute>([...node.attrs].filter(([k]) => k !== 'beta'));
    const y = fresh(`${name}_weight_error_out`);
    g.nodes.push(new Node({ opType: node.opType, name: y, inputs: [node.inputs[0], delta], outputs: [y], attrs }));
    const rank = isConv ? (plan.facts.get(node.inputs[0])?.shape?.length ?? 4) : 2;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
    const mean = fresh(`${name}_weight_error_mean`);
    const inputs = [y];
    const rattrs: Record<string, Attribute> = { keepdims: { type: 'int', value: 0 } };
    if (opset >= 18) {
      const a = fresh(`${name}_weight_error_axes`);
      g.initializers.set(a, new Tensor('int64', [axes.length], BigInt64Array.from(axes, BigInt)));
      inputs.push(a);
    } else rattrs.axes = { type: 'ints', value: axes };
    g.nodes.push(new Node({ opType: 'ReduceMean', name: mean, inputs, outputs: [mean], attrs: rattrs }));
    targets.push({ node: name, mean });
  }
  g.outputs = targets.map((t) => ({ name: t.mean }));
  return { model: m, targets };
}

/** W_q − W of the node's weight (input 1), float32, in the weight's own layout. */
function weightError(plan: QuantPlan, node: Node): Tensor {
  const wq = weightFor(plan, node, 1);
  const w = (plan.model.graph.initializers.get(node.inputs[1]) as Tensor).toFloat32();
  const q = wq.q.data as Int8Array;
  const dims = wq.q.dims;
  const out = new Float32Array(w.length);
  const ax = wq.axis;
  const channels = ax === undefined ? 1 : dims[ax];
  const inner = ax === undefined ? w.length : dims.slice(ax + 1).reduce((p, r) => p * r, 1);
  for (let i = 0; i < w.length; i++) {
    const c = ax === undefined ? 0 : floor(i / inner) % channels;
    out[i] = fround(q[i] * wq.scales[c]) - w[i];
  }
  return new Tensor('float32', dims.slice(), out);
}
