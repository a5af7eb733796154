import type { Sample, TensorStatistics } from '../calibrate/collect';
import { computeThresholds, ThresholdMethod } from '../calibrate/thresholds';
import { Rng } from '../kernels/random';
import { quantizeValue } from '../kernels/requant';
import { isFloat } from '../onnx/dtype';
import { Graph, Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { readPreprocessRecords } from '../preprocess/hz-preprocess';
import { activationScale, emitCalibratedModel, planQuantization, QuantizeSpec } from '../quantize';
import { cloneNode, cloneValueInfo } from '../quantize/names';
import { Engine } from '../runtime/engine';
import { ReferenceEngine } from '../runtime/reference';
import { pickEngine } from '../runtime/select';
import { Similarity } from '../verify/similarity';

/**
 * The threshold searches of the calibrate stage (what `calibration_type` selects), on top of
 * the statistics (calibrate/collect.ts) and single-method thresholds (calibrate/thresholds.ts):
 *
 * - candidates: `max` (absmax), `percentile` 0.99995 and `kl`, each per tensor. Per-channel
 *   candidates are not searched: activations are per tensor in the int8 contract.
 * - `default`: every candidate becomes a fake-quant model (emitCalibratedModel) scored by the
 *   cosine similarity of the model outputs against the float model on the first ≤ 20
 *   calibration samples (mean over the float outputs); the best wins, the first on a tie.
 * - `mix`: starts from the default winner. A tensor's sensitivity is the cosine of its float
 *   values against the same values fake-quantized with its threshold, over the scoring
 *   samples: the error the threshold choice itself adds (that node's output quantization
 *   alone). Tensors below 0.999 take the candidate with the best such cosine. The mixed
 *   thresholds are then scored like a default candidate and kept only when they score at
 *   least as well as the default winner.
 * - `skip`: no data. Seeded thresholds from Rng('skip'), log-uniform in [0.5, 8] per tensor in
 *   graph order (a plausible range for normalised CNN activations); the HzPreprocess values
 *   get their exact range (preprocessThresholds). For performance checks only: the outputs
 *   of such a model mean nothing.
 */

export interface Candidate {
  method: ThresholdMethod;
  maxPercentile?: number;
}

export const DEFAULT_CANDIDATES: readonly Candidate[] = [{ method: 'max' }, { method: 'percentile', maxPercentile: 0.99995 }, { method: 'kl' }];

/** Samples that score a calibration (the reference scores on the first sample; we take up to 20). */
export const SCORING_SAMPLES = 20;

/** The mix search revisits tensors whose own fake-quant cosine is below this. */
export const MIX_SENSITIVITY = 0.999;

export const candidateLabel = (c: Candidate): string => (c.method === 'percentile' ? `max-percentile ${c.maxPercentile}` : c.method);

export interface CandidateThreshold {
  threshold: number;
  method: string;
  maxPercentile?: number;
  perChannel?: number[];
}

/** Per-tensor thresholds from statistics by one candidate (per channel when asked: see calibrate.ts). */
export function candidateThresholds(
  stats: Record<string, TensorStatistics>,
  c: Candidate,
  perChannel = false,
  /**
   * tensors whose range is known exactly (the HzPreprocess values): they keep it, whatever the
   * method, and need no statistics
   */
  exact: Record<string, number> = {},
  /** the tensors to give thresholds, in this order (default: those of `stats`) */
  tensors: string[] = Object.keys(stats),
): Record<string, CandidateThreshold> {
  const th = computeThresholds(stats, c.method === 'percentile' ? 'max' : c.method, { maxPercentile: c.maxPercentile, perChannel });
  const out: Record<string, CandidateThreshold> = {};
  for (const k of tensors) {
    const t = th[k];
    if (exact[k] !== undefined) {
      // clipping a preprocessed pixel loses information no later layer recovers (a uniform
      // background is one spike in the histogram that KL would otherwise cut at)
      out[k] = { threshold: exact[k], method: 'preprocess-range' };
      continue;
    }
    if (!t) throw new Error(`candidateThresholds: no statistics for '${k}'`);
    // per channel: the int8 contract is per tensor; the tensor keeps the largest channel threshold
    const threshold = t.perChannel?.length ? Math.max(...t.perChannel) : t.threshold;
    out[k] = { threshold, method: t.method, ...(t.maxPercentile !== undefined ? { maxPercentile: t.maxPercentile } : {}), ...(t.perChannel ? { perChannel: t.perChannel } : {}) };
  }
  return out;
}

/**
 * The tensors calibration gives thresholds: exactly those the quantizer reads a threshold for
 * (planQuantization asked with a recording stand-in for the thresholds), in graph order —
 * float values a BPU node reads or writes, the output of the Relu/Clip a Conv is fused with
 * instead of the Conv's own output, none for passive outputs (they keep their input's scale)
 * or CPU-only values. Fewer tensors make the statistics and the searches cheaper.
 */
export function calibrationTensors(model: Model, base: Omit<QuantizeSpec, 'activations'>): string[] {
  const g = model.graph;
  const known = new Set<string>(g.realInputs.map((v) => v.name));
  for (const n of g.nodes) for (const o of n.outputs) if (o) known.add(o);
  const asked = new Set<string>();
  // values the quantizer made itself (opset conversion) are not answered: it then asks for their alias
  const recorder = new Proxy({} as QuantizeSpec['activations'], {
    get: (_t, key) => {
      if (typeof key !== 'string' || !known.has(key)) return undefined;
      asked.add(key);
      return { threshold: 1 };
    },
  });
  planQuantization(model, { ...base, activations: recorder });
  const out: string[] = [];
  for (const v of g.realInputs) if (asked.has(v.name)) out.push(v.name);
  for (const n of g.topoSort()) for (const o of n.outputs) if (o && asked.has(o) && !out.includes(o)) out.push(o);
  return out;
}

/** `skip`: seeded, plausible thresholds (see the file comment). */
export function skipThresholds(tensors: string[]): Record<string, number> {
  const rng = new Rng('skip');
  const out: Record<string, number> = {};
  for (const t of tensors) out[t] = 2 ** rng.uniform(-1, 3);
  return out;
}

/**
 * Exact ranges of the HzPreprocess values (colour conversion, normalisation): the stage is
 * affine per pixel between clamps, so the extremes are reached at the corners of the int8 input
 * cube, which an input made of all corners (2^C patterns repeated) covers. Every calibration
 * type uses them for these values.
 */
export function preprocessThresholds(model: Model): Record<string, number> {
  const g = model.graph;
  const out: Record<string, number> = {};
  const order = g.topoSort();
  for (const rec of readPreprocessRecords(model)) {
    const names = new Set(rec.nodes);
    const nodes = order.filter((n) => names.has(n.name));
    const vi = g.realInputs.find((v) => v.name === rec.input);
    const dims = vi?.type?.shape;
    if (!nodes.length || !vi || !dims || dims.some((d) => typeof d !== 'number')) continue;
    const shape = dims as number[];
    const available = new Set<string>([rec.input, ...g.initializers.keys()]);
    const kept = nodes.filter((n) => {
      const ok = n.inputs.every((i) => !i || available.has(i));
      if (ok) n.outputs.forEach((o) => o && available.add(o));
      return ok;
    });
    const outputs = kept.flatMap((n) => n.outputs.filter((o) => o));
    const inits = new Map([...g.initializers].filter(([k]) => kept.some((n) => n.inputs.includes(k))));
    const sub = new Graph({
      name: 'hz_preprocess',
      nodes: kept.map(cloneNode),
      inputs: [cloneValueInfo(vi)],
      outputs: outputs.map((o) => ({ name: o, type: g.typeOf(o) })),
      initializers: inits,
    });
    const engine = new ReferenceEngine(new Model(sub, { irVersion: model.irVersion, opsetImports: model.opsetImports.map((o) => ({ ...o })) }));
    const r = engine.runSync({ [rec.input]: cornerInput(shape, rec.layout) });
    for (const o of outputs) {
      const t = r[o];
      if (!t || !isFloat(t.dtype)) continue;
      const a = t.toFloat32();
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
      out[o] = m;
    }
  }
  return out;
}

/** int8 image of `dims` whose pixels run through the 2^C corners of [−128, 127]^C. */
function cornerInput(dims: number[], layout: 'NCHW' | 'NHWC'): Tensor {
  const [n, c, h, w] = layout === 'NCHW' ? dims : [dims[0], dims[3], dims[1], dims[2]];
  const a = new Int8Array(n * c * h * w);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < c; k++) {
        const v = (p >> k) & 1 ? 127 : -128;
        const idx = layout === 'NCHW' ? ((b * c + k) * h * w + p) : ((b * h * w + p) * c + k);
        a[idx] = v;
      }
    }
  }
  return new Tensor('int8', dims, a);
}

/**
 * onnxruntime options for fake-quant (QDQ) models: graph optimisation 'basic'. From 'extended'
 * on, onnxruntime fuses the QuantizeLinear/DequantizeLinear pairs around Conv into its own
 * integer kernels; on x86 without VNNI those use the u8s8 multiply-add that saturates 16-bit
 * pair sums (onnxruntime's documented reduce_range caveat), and the model no longer computes
 * the fake quantization it states (measured: output cosine 0.915 instead of 0.9999 on a small
 * net). 'basic' runs the pairs as written, like the ReferenceEngine.
 */
export const FAKE_QUANT_ORT = { threads: 1, optimization: 'basic' } as const;

/** Scores thresholds by the output cosine of the fake-quant model against the float model. */
export class OutputScorer {
  private constructor(
    private readonly model: Model,
    private readonly base: Omit<QuantizeSpec, 'activations'>,
    private readonly samples: Sample[],
    private readonly reference: Record<string, Float32Array>[],
    readonly outputs: string[],
  ) {}

  /** Float outputs of `samples` from `floatEngine` (the optimized model). */
  static async create(model: Model, base: Omit<QuantizeSpec, 'activations'>, samples: Sample[], floatEngine: Engine): Promise<OutputScorer> {
    const reference: Record<string, Float32Array>[] = [];
    let outputs: string[] | undefined;
    for (const s of samples) {
      const r = await floatEngine.run(s);
      outputs ??= model.graph.outputs.map((o) => o.name).filter((o) => r[o] && isFloat(r[o].dtype));
      reference.push(Object.fromEntries(outputs.map((o) => [o, r[o].toFloat32()])));
    }
    return new OutputScorer(model, base, samples, reference, outputs ?? []);
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  /** Mean over the float outputs of the cosine (all scoring samples together). */
  async score(thresholds: Record<string, number>): Promise<number> {
    const activations = Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, { threshold: v }]));
    const cal = emitCalibratedModel(this.model, { ...this.base, activations });
    const engine = await pickEngine(cal, 'auto', FAKE_QUANT_ORT);
    const sims = this.outputs.map(() => new Similarity());
    try {
      for (let i = 0; i < this.samples.length; i++) {
        const r = await engine.run(this.samples[i]);
        this.outputs.forEach((o, k) => sims[k].add(this.reference[i][o], r[o].toFloat32()));
      }
    } finally {
      await engine.dispose();
    }
    return sims.length ? sims.reduce((s, x) => s + x.cosine, 0) / sims.length : 1;
  }
}

/**
 * `mix`, the choice: for every tensor whose cosine with the base candidate `base` is below
 * MIX_SENSITIVITY, the candidate with the best cosine (the base on a tie). Returns the tensors
 * that switched (tensor → candidate index) and how many were below the bar.
 */
export function mixChoice(tensors: string[], sensitivity: Map<string, number[]>, base: number): { switched: Map<string, number>; weak: number } {
  const switched = new Map<string, number>();
  let weak = 0;
  for (const t of tensors) {
    const cos = sensitivity.get(t);
    if (!cos || !(cos[base] < MIX_SENSITIVITY)) continue;
    weak++;
    let k = base;
    for (let j = 0; j < cos.length; j++) if (cos[j] > cos[k]) k = j;
    if (k !== base) switched.set(t, k);
  }
  return { switched, weak };
}

/**
 * `mix`, per tensor: cosine of the float values against their fake-quantization by each
 * candidate's threshold, over `samples` (one streaming pass; `floatEngine` must be able to fetch
 * every tensor). Returns, per tensor, the cosine of each candidate in `candidates` order.
 */
export async function tensorSensitivity(
  floatEngine: Engine,
  samples: Iterable<Sample>,
  thresholds: Record<string, number>[],
  tensors: string[],
): Promise<Map<string, number[]>> {
  const acc = new Map(tensors.map((t) => [t, thresholds.map(() => new Float64Array(3))]));
  const inputs = new Set(floatEngine.inputNames);
  const fetch = tensors.filter((t) => !inputs.has(t));
  for (const s of samples) {
    const r = await floatEngine.run(s, { fetch });
    for (const t of tensors) {
      const v = r[t] ?? s[t];
      if (!v || !isFloat(v.dtype)) continue;
      const x = v.toFloat32();
      thresholds.forEach((th, k) => {
        const a = (acc.get(t) as Float64Array[])[k];
        const scale = activationScale(th[t] ?? 0);
        let xy = 0;
        let xx = 0;
        let yy = 0;
        for (let i = 0; i < x.length; i++) {
          const y = quantizeValue(x[i], scale, 0, -128, 127) * scale;
          xy += x[i] * y;
          xx += x[i] * x[i];
          yy += y * y;
        }
        a[0] += xy;
        a[1] += xx;
        a[2] += yy;
      });
    }
  }
  const out = new Map<string, number[]>();
  for (const [t, per] of acc) out.set(t, per.map((a) => (a[1] === 0 && a[2] === 0 ? 1 : a[1] === 0 || a[2] === 0 ? 0 : a[0] / Math.sqrt(a[1] * a[2]))));
  return out;
}
