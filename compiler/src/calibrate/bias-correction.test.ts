import '../ops';
import { GraphBuilder } from '../onnx/builder';
import { Graph, Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { emitCalibratedModel, planQuantization, QuantizeSpec } from '../quantize';
import { maxThresholds, randomFeeds } from '../quantize/quantize.test.util';
import { ReferenceEngine } from '../runtime/reference';
import { computeBiasCorrections } from './bias-correction';

// bound once: global lookups are slow inside jest's vm context
const { abs, floor, fround, max, round } = Math;

/** conv(bias) → relu → conv(no bias) → relu → gap → flatten → gemm, 4 input channels. */
function net(): Model {
  const b = new GraphBuilder('bc', { opset: 13, seed: 5 });
  const x = b.input('x', 'float32', [1, 4, 8, 8]);
  const c1 = b.relu(b.conv(x, { outChannels: 6, kernel: 3, pad: 1, name: 'c1' }));
  const c2 = b.relu(b.conv(c1, { outChannels: 5, kernel: 1, bias: false, name: 'c2' }));
  b.output(b.gemm(b.flatten(b.globalAvgPool(c2)), 3, { name: 'fc' }), 'y');
  return b.build();
}

/** Per-tensor int8 weights written plainly: s = fround(max|w| / 127), q = rne(w / s) in [−127, 127]. */
function dequantizedPerTensor(w: Float32Array): Float32Array {
  let m = 0;
  for (const v of w) m = max(m, abs(v));
  const s = fround(m / 127);
  return w.map((v) => {
    const r = v / s;
    const f = floor(r);
    const q = r - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : round(r);
    return fround(max(-128, Math.min(127, q)) * s);
  });
}

/** One-node model: y = Conv/Gemm(x, weight) with the node's attributes, no bias. */
function single(node: Node, weight: Tensor, inputDims: number[]): Model {
  const g = new Graph({
    nodes: [new Node({ opType: node.opType, name: 'n', inputs: ['x', 'w'], outputs: ['y'], attrs: node.attrs })],
    inputs: [{ name: 'x', type: { dtype: 'float32', shape: inputDims } }],
    outputs: [{ name: 'y' }],
    initializers: new Map([['w', weight]]),
  });
  return new Model(g, { opsetImports: [{ domain: '', version: 13 }] });
}

describe('computeBiasCorrections', () => {
  const model = net();
  const feeds = randomFeeds(model, 12, 3);
  const activations = maxThresholds(model, feeds);
  const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bernoulli2', perChannelWeights: false };

  it('is minus the mean per-channel output shift of the int8 weights on float inputs (checked plainly)', async () => {
    const corrections = await computeBiasCorrections(model, spec, feeds, { engine: 'ort' });
    expect(Object.keys(corrections)).toEqual(['c1', 'c2', 'fc']);
    const g = model.graph;
    const float = new ReferenceEngine(model);
    for (const name of ['c1', 'c2', 'fc']) {
      const node = g.nodes.find((n) => n.name === name)!;
      const w = g.initializers.get(node.inputs[1])!;
      const x0 = float.runSync(feeds[0], { fetch: [node.inputs[0]] })[node.inputs[0]];
      const exact = new ReferenceEngine(single(node, w, x0.dims));
      const rounded = new ReferenceEngine(single(node, new Tensor('float32', w.dims, dequantizedPerTensor(w.toFloat32())), x0.dims));
      const channels = node.opType === 'Gemm' ? w.dims[0] : w.dims[0];
      const shift = new Float64Array(channels);
      for (const f of feeds) {
        const x = float.runSync(f, { fetch: [node.inputs[0]] })[node.inputs[0]];
        const a = exact.runSync({ x }).y;
        const b = rounded.runSync({ x }).y;
        const inner = a.size / channels; // batch 1: [1, C, H, W] or [1, C]
        const av = a.toFloat32();
        const bv = b.toFloat32();
        for (let i = 0; i < av.length; i++) shift[floor(i / inner)] += (bv[i] - av[i]) / inner / feeds.length;
      }
      let scale = 0;
      shift.forEach((s) => (scale = max(scale, abs(s))));
      expect(scale).toBeGreaterThan(0);
      corrections[name].forEach((c, k) => expect(abs(c + shift[k])).toBeLessThanOrEqual(1e-4 * scale + 1e-7));
    }
    // the reference engine gives the same corrections
    const ref = await computeBiasCorrections(model, spec, feeds, { engine: 'reference' });
    for (const name of Object.keys(corrections)) ref[name].forEach((c, k) => expect(abs(c - corrections[name][k])).toBeLessThanOrEqual(1e-5 * (abs(c) + 1e-3)));
  });

  it('takes the systematic error out of the fake-quant model: the mean output shift per channel shrinks', async () => {
    const corrections = await computeBiasCorrections(model, spec, feeds);
    const before = new ReferenceEngine(emitCalibratedModel(model, spec));
    const after = new ReferenceEngine(emitCalibratedModel(model, { ...spec, biasCorrection: corrections }));
    const float = new ReferenceEngine(model);
    const bias = (engine: ReferenceEngine): number => {
      const acc = new Float64Array(3);
      for (const f of feeds) {
        const y = engine.runSync(f).y.toFloat32();
        const r = float.runSync(f).y.toFloat32();
        for (let k = 0; k < 3; k++) acc[k] += (y[k] - r[k]) / feeds.length;
      }
      return acc.reduce((s, v) => s + abs(v), 0);
    };
    expect(bias(after)).toBeLessThan(0.5 * bias(before));
  });

  it('corrected biases: b + δ in both models, a new bias where there was none, others untouched', () => {
    const corrections = { c1: [0.5, -0.5, 0, 0, 0, 1], c2: [1, 2, 3, 4, 5], fc: [0.25, 0, 0], nothere: [1] };
    const plan = planQuantization(model, { ...spec, biasCorrection: corrections });
    const g = plan.model.graph;
    const c1 = g.nodes.find((n) => n.name === 'c1')!;
    const c2 = g.nodes.find((n) => n.name === 'c2')!;
    expect(c1.inputs[2]).toBe('c1_bias_corrected');
    const b1 = model.graph.initializers.get('c1.bias')!.toFloat32();
    expect(Array.from(g.initializers.get('c1_bias_corrected')!.toFloat32())).toEqual(Array.from(b1, (v, k) => fround(v + corrections.c1[k])));
    expect(Array.from(g.initializers.get(c2.inputs[2])!.toFloat32())).toEqual([1, 2, 3, 4, 5]);
    // the source model is not modified
    expect(model.graph.nodes.find((n) => n.name === 'c2')!.inputs.length).toBe(2);
    expect(model.graph.initializers.has('c1_bias_corrected')).toBe(false);
    expect(plan.notes.some((n) => /bias_correction: 3 bias/.test(n))).toBe(true);
    // the calibrated model runs with them: its bias reads b + δ
    const cal = emitCalibratedModel(model, { ...spec, biasCorrection: corrections });
    expect(cal.graph.nodes.find((n) => n.opType === 'Conv' && n.outputs[0].startsWith('c2'))!.inputs[2]).toBeTruthy();
  });
});
