/**
 * What the quantize stage is told: activation thresholds (from calibrate/), the BPU/CPU
 * placement (from check/) and the output options of the YAML. Plain data, so the stage does
 * not depend on how those were computed.
 */
export interface QuantizeSpec {
  /** activation thresholds by tensor name: scale = fround(threshold / 127), zero point 0, int8 */
  activations: Record<string, { threshold: number }>;
  /** names of the nodes that run on the CPU in float (everything else on the BPU) */
  cpuNodes: Set<string>;
  /** weights per output channel (default true) or per tensor */
  perChannelWeights?: boolean;
  /** model outputs: 'float32' (dequantized, default), 'int8', 'int16' (set_model_output_int16, bayes only) */
  outputType?: 'float32' | 'int8' | 'int16';
  /**
   * Nodes whose output is int16 (bayes node_info OutputType int16; plan.ts): the output's scale
   * is fround(threshold / 32767); readers take the int16 value (quantized.ts says how).
   */
  int16Nodes?: Set<string>;
  march: 'bernoulli2' | 'bayes';
  /**
   * `bias_correction` (calibrate/bias-correction.ts): per Conv/Gemm node name, a value per output
   * channel added to its bias (a bias is added where the node has none). Both emitted models
   * carry the corrected bias; the ONNX patterns are the same.
   */
  biasCorrection?: Record<string, number[]>;
  /**
   * `per_channel` equalisation (calibrate/equalize.ts): per activation, a factor per channel
   * folded into the Conv computing it and the Convs reading it (quantize/equalize.ts), applied
   * before everything else; the thresholds are those of the equalised activations.
   */
  channelScales?: Record<string, number[]>;
}

/** The default-domain opset both emitted models use at least (per-axis Quantize/DequantizeLinear). */
export const MIN_OPSET = 13;

/**
 * Suffix of the fake-quant pair on a tensor `t` in `***_calibrated_model.onnx` (the reference
 * toolchain's HzCalibration nodes, as standard ops):
 *   t → QuantizeLinear `t_HzCalibration_quantize` → DequantizeLinear `t_HzCalibration` → readers
 * (the pair's output values carry the node names). A graph output keeps its name on the
 * DequantizeLinear output; the float value before it is renamed `t_float`.
 */
export const CALIBRATION_SUFFIX = '_HzCalibration';

/** Metadata key of the quantized model: JSON `QuantizedModelInfo`. */
export const QUANT_INFO_KEY = 'nx_ptq_quantization';

/** What `metadata_props['nx_ptq_quantization']` of `***_quantized_model.onnx` holds. */
export interface QuantizedModelInfo {
  march: 'bernoulli2' | 'bayes';
  inputs: { name: string; dtype: string; layout?: 'NCHW' | 'NHWC'; scale?: number; note: string }[];
  outputs: { name: string; dtype: string; scale?: number }[];
  /** int16Nodes that compute in int8 all the same (on the CPU, not in the model, a passive op on int8) */
  int16NodesIgnored?: string[];
  /** the values held in int16 (node_info), scale fround(threshold / 32767) */
  int16Values?: string[];
  /** the nodes whose bias was corrected (QuantizeSpec.biasCorrection), when asked */
  biasCorrected?: string[];
  /** the activations equalised across channels (QuantizeSpec.channelScales), when asked */
  equalized?: string[];
}

/** Activation scale of a threshold: fround(threshold / 127); a threshold of 0 (dead tensor) counts as 1. */
export function activationScale(threshold: number): number {
  return Math.fround((threshold > 0 && Number.isFinite(threshold) ? threshold : 1) / 127);
}

/** int16 scale of a threshold: fround(threshold / 32767). */
export function int16Scale(threshold: number): number {
  return Math.fround((threshold > 0 && Number.isFinite(threshold) ? threshold : 1) / 32767);
}
