/**
 * "Training" the classifier heads of the random zoo networks just enough that they behave like
 * classifiers: with He-initialised layers and BatchNorm statistics that only match the expected
 * activation scale, the pooled features of a random CNN are dominated by a per-channel constant,
 * so every image gets about the same logits (the same top-1). Here each chosen fully connected
 * layer gets standardised inputs — as a BatchNorm1d before it, folded in: the features' mean and
 * standard deviation over a fixed set of inputs (not the calibration samples) are folded into
 * its weights and bias, so its outputs vary O(1) from image to image (with a floor on the
 * standard deviation, see foldStandardisation).
 *
 * The statistics come from the reference engine (our own kernels: plain float32 arithmetic in a
 * fixed order, the same on every machine), so regenerating the zoo gives the same bytes.
 */
import { Model } from '../../compiler/src/onnx/ir';
import { Tensor } from '../../compiler/src/onnx/tensor';
import { ReferenceEngine } from '../../compiler/src/runtime/reference';
import { BlobSpec } from '../../compiler/src/caffe/writer';

export interface FeatureStats {
  mean: Float64Array;
  std: Float64Array;
}

/** Per-feature mean and standard deviation of value `name` (all dims after the first flattened) over `feeds`. */
export function featureStats(model: Model, name: string, feeds: Record<string, Tensor>[]): FeatureStats {
  const engine = new ReferenceEngine(model);
  let sum: Float64Array | undefined;
  let sum2: Float64Array | undefined;
  for (const f of feeds) {
    const v = engine.runSync(f, { fetch: [name] })[name].toFloat32();
    sum ??= new Float64Array(v.length);
    sum2 ??= new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      sum[i] += v[i];
      sum2[i] += v[i] * v[i];
    }
  }
  if (!sum || !sum2) throw new Error('featureStats: no inputs');
  const n = feeds.length;
  const mean = sum.map((s) => s / n);
  const std = sum2.map((s, i) => Math.sqrt(Math.max(s / n - mean[i] * mean[i], 0)));
  return { mean, std };
}

/**
 * y = W·x + b with W [out, in] becomes y = W·((x − μ) / σ') + b: W[o][i] / σ'[i], b[o] − Σ W[o][i]·μ[i] / σ'[i],
 * with σ'[i] = sqrt(σ[i]² + (alpha · r)²), r the largest feature RMS. The floor bounds the gain
 * of features that barely vary (dead Relus, near-constant channels): it is relative to the
 * tensor's range, i.e. to its int8 step, so the head cannot amplify quantization noise beyond
 * 1 / alpha (alpha 0.1: quantized cosine ≥ 0.99 on the zoo, see README.md).
 */
export function foldStandardisation(weight: Float32Array, bias: Float32Array, out: number, stats: FeatureStats, alpha: number): void {
  const inF = stats.mean.length;
  if (weight.length !== out * inF || bias.length !== out) throw new Error(`foldStandardisation: weight ${weight.length} / bias ${bias.length} do not fit ${out}x${inF}`);
  let top = 0;
  for (let i = 0; i < inF; i++) top = Math.max(top, Math.sqrt(stats.mean[i] ** 2 + stats.std[i] ** 2));
  const floor = alpha * top;
  const inv = stats.std.map((s) => 1 / Math.sqrt(s * s + floor * floor));
  for (let o = 0; o < out; o++) {
    let shift = 0;
    for (let i = 0; i < inF; i++) {
      const w = weight[o * inF + i] * inv[i];
      shift += w * stats.mean[i];
      weight[o * inF + i] = w;
    }
    bias[o] = bias[o] - shift;
  }
}

/** Standardise the inputs of the Gemm nodes `gemms` (in order; each sees the already changed ones before it). */
export function standardiseGemms(model: Model, gemms: readonly string[], feeds: Record<string, Tensor>[], alpha: number): void {
  const g = model.graph;
  for (const name of gemms) {
    const node = g.nodes.find((n) => n.name === name && n.opType === 'Gemm');
    if (!node) throw new Error(`standardiseGemms: no Gemm named '${name}'`);
    if (node.int('transB', 0) !== 1) throw new Error(`standardiseGemms: '${name}' must have transB = 1`);
    const w = g.initializers.get(node.inputs[1]);
    const b = g.initializers.get(node.inputs[2]);
    if (!w || !b) throw new Error(`standardiseGemms: '${name}' needs initializer weight and bias`);
    const weight = w.toFloat32().slice();
    const bias = b.toFloat32().slice();
    foldStandardisation(weight, bias, w.dims[0], featureStats(model, node.inputs[0], feeds), alpha);
    g.initializers.set(node.inputs[1], new Tensor('float32', w.dims.slice(), weight));
    g.initializers.set(node.inputs[2], new Tensor('float32', b.dims.slice(), bias));
  }
}

/** The same for a Caffe InnerProduct / 1x1 Convolution given its blobs (weights [out, in, …], bias [out]). */
export function standardiseBlobs(blobs: BlobSpec[], stats: FeatureStats, alpha: number): void {
  const [w, b] = blobs;
  const weight = Float32Array.from(w.data);
  const bias = Float32Array.from(b.data);
  foldStandardisation(weight, bias, w.shape[0], stats, alpha);
  blobs[0] = { shape: w.shape.slice(), data: weight };
  blobs[1] = { shape: b.shape.slice(), data: bias };
}

