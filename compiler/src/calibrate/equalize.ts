import { Graph, Model, Node } from '../onnx/ir';
import { ChannelScales } from '../quantize/equalize';

// bound once: global lookups are slow inside vm contexts (jest runs tests in one)
const { abs, floor, log2, max, min, round, sqrt } = Math;

/**
 * `per_channel: True`, what nx-ptq does with per-channel activation ranges. Activations are int8
 * with one scale per tensor in the BPU contract (DESIGN §3), so a channel whose range is a
 * fraction of the tensor's largest gets only that fraction of the 255 levels. Where the BPU can
 * absorb it, the channels are equalised instead — cross-layer equalisation (Nagel et al.,
 * "Data-Free Quantization Through Weight Equalization and Bias Correction", ICCV 2019, §4.1)
 * driven by the activation ranges of the calibration data:
 *
 * - Sites: an activation t computed by a BPU Conv with constant weights (directly, or through a
 *   Relu that is the Conv output's only reader), read only by BPU Convs with constant weights
 *   (any group: depthwise too), not a model output. Channel c of t is multiplied by s[c]: the
 *   producing Conv's output channel c (weights and bias) by s[c], every reader's weights on
 *   input channel c by 1/s[c] (quantize/equalize.ts). The float function is unchanged.
 *   Not through Clip (ReLU6 and friends: Clip(x·s) ≠ Clip(x)·s), nor Add/Concat/pooling joins
 *   (the branches would have to move together); those tensors keep max-over-channels.
 * - Factors, per channel, from r[c] = the channel's absmax over the calibration data (pass 1)
 *   and w[c] = the largest |weight| on input channel c over the readers' weights:
 *     readers all depthwise (one input channel per output channel): s[c] = R / r[c], R = max r
 *       — every channel gets the whole int8 range; the reader's weights are per output
 *       channel, so dividing them by s[c] costs their quantization nothing;
 *     otherwise: s[c] = √((R / r[c]) · (w[c] / W)), W = max w — the DFQ balance of the
 *       activation's range against the reader's weight range: a reader output mixes input
 *       channels under one weight scale, and shrinking a channel's weights far below the
 *       others' would trade activation error for weight error.
 *   Each factor is rounded to a power of two (then the equalised model computes exactly the
 *   same floats) and kept within 2^±10; a dead channel (r = 0) or unread one (w = 0) keeps 1.
 * - The calibrate stage then calibrates the equalised model: statistics (two passes) on it,
 *   so the thresholds are those of the equalised activations; `channel_scales` in the JSON
 *   carries the factors, which both emitted models apply (QuantizeSpec.channelScales).
 */

/** One equalisation site. */
export interface EqualizationSite {
  /** the activation whose channels are scaled */
  tensor: string;
  /** the Conv computing it (through a Relu when `relu`) */
  producer: string;
  relu: boolean;
  /** the Convs reading it */
  readers: string[];
  /** true when every reader has one input channel per group (depthwise) */
  depthwiseReaders: boolean;
}

/** Largest factor either way: 2^10. */
const MAX_LOG2 = 10;

/** Every site of `model` (see the file comment), in graph order. */
export function equalizationSites(model: Model, cpuNodes: ReadonlySet<string>): EqualizationSite[] {
  const g = model.graph;
  const producers = g.producers();
  const consumers = g.consumers();
  const outputs = new Set(g.outputs.map((o) => o.name));
  const onBpu = (n: Node): boolean => !n.domain && !cpuNodes.has(n.name) && !(n.name === '' && cpuNodes.has(n.label));
  const sites: EqualizationSite[] = [];
  for (const n of g.topoSort()) {
    if (n.opType !== 'Conv' || !onBpu(n) || !constWeight(model, n)) continue;
    const out = n.outputs[0];
    if (!out || outputs.has(out)) continue;
    const channels = g.initializers.get(n.inputs[1])!.dims[0];
    if (n.inputs[2] && g.initializers.get(n.inputs[2])?.size !== channels) continue;
    let tensor = out;
    let relu = false;
    const direct = consumers.get(out) ?? [];
    if (direct.length === 1 && direct[0].opType === 'Relu' && onBpu(direct[0]) && direct[0].inputs[0] === out) {
      tensor = direct[0].outputs[0];
      relu = true;
      if (!tensor || outputs.has(tensor)) continue;
    }
    const readers = consumers.get(tensor) ?? [];
    if (!readers.length) continue;
    const ok = readers.every((q) => q.opType === 'Conv' && onBpu(q) && q.inputs[0] === tensor && !q.inputs.slice(1).includes(tensor) && constWeight(model, q) && g.initializers.get(q.inputs[1])!.dims[1] * q.int('group', 1) === channels);
    if (!ok) continue;
    const depthwiseReaders = readers.every((q) => g.initializers.get(q.inputs[1])!.dims[1] === 1);
    sites.push({ tensor, producer: n.name || n.label, relu, readers: readers.map((q) => q.name || q.label), depthwiseReaders });
  }
  return sites;
}

/**
 * The factors of each site from the per-channel absmax of its tensor (calibration pass 1 on
 * the model the sites were found in). Sites whose factors are all 1 are left out.
 */
export function equalizationScales(model: Model, sites: EqualizationSite[], channelAbsmax: Record<string, ArrayLike<number>>): ChannelScales {
  const g = model.graph;
  const byName = new Map(g.nodes.map((n) => [n.name || n.label, n]));
  const out: ChannelScales = {};
  for (const site of sites) {
    const r = channelAbsmax[site.tensor];
    if (!r) continue;
    const channels = r.length;
    let R = 0;
    for (let c = 0; c < channels; c++) R = max(R, r[c]);
    if (!(R > 0)) continue;
    const w = site.depthwiseReaders ? undefined : inputChannelRange(g, site.readers.map((q) => byName.get(q)!), channels);
    let W = 0;
    if (w) for (let c = 0; c < channels; c++) W = max(W, w[c]);
    const s = new Array<number>(channels).fill(1);
    for (let c = 0; c < channels; c++) {
      if (!(r[c] > 0)) continue;
      let raw = R / r[c];
      if (w) {
        if (!(w[c] > 0) || !(W > 0)) continue;
        raw = sqrt(raw * (w[c] / W));
      }
      const k = max(-MAX_LOG2, min(MAX_LOG2, round(log2(raw))));
      s[c] = 2 ** k;
    }
    if (s.some((v) => v !== 1)) out[site.tensor] = s;
  }
  return out;
}

function constWeight(model: Model, n: Node): boolean {
  const g = model.graph;
  const isConst = (v: string): boolean => g.initializers.has(v) && !(model.irVersion >= 4 && g.inputs.some((i) => i.name === v));
  const w = n.inputs[1] && isConst(n.inputs[1]) ? g.initializers.get(n.inputs[1]) : undefined;
  if (!w || w.rank < 3 || !(w.dtype === 'float32' || w.dtype === 'float16' || w.dtype === 'float64')) return false;
  return !n.inputs[2] || isConst(n.inputs[2]);
}

/** max |W[o, j, …]| per input channel c over the readers' weights. */
function inputChannelRange(g: Graph, readers: Node[], channels: number): Float64Array {
  const out = new Float64Array(channels);
  for (const q of readers) {
    const t = g.initializers.get(q.inputs[1])!;
    const v = t.toFloat32();
    const [m, cg] = t.dims;
    const inner = v.length / (m * cg);
    const mg = m / q.int('group', 1);
    for (let o = 0; o < m; o++) {
      const first = floor(o / mg) * cg;
      for (let j = 0; j < cg; j++) {
        const base = (o * cg + j) * inner;
        let a = out[first + j];
        for (let i = 0; i < inner; i++) a = max(a, abs(v[base + i]));
        out[first + j] = a;
      }
    }
  }
  return out;
}
