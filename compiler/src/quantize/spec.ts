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
   * Nodes computing in int16 (bayes node_info). Not implemented yet: accepted and ignored (the
   * nodes compute in int8); `emitQuantizedModel` notes them in the model's metadata.
   */
  int16Nodes?: Set<string>;
  march: 'bernoulli2' | 'bayes';
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
  /** int16Nodes that were asked for and computed in int8 (int16 nodes are a TODO) */
  int16NodesIgnored?: string[];
}

/** Activation scale of a threshold: fround(threshold / 127); a threshold of 0 (dead tensor) counts as 1. */
export function activationScale(threshold: number): number {
  return Math.fround((threshold > 0 && Number.isFinite(threshold) ? threshold : 1) / 127);
}

/** int16 scale of a threshold: fround(threshold / 32767). */
export function int16Scale(threshold: number): number {
  return Math.fround((threshold > 0 && Number.isFinite(threshold) ? threshold : 1) / 32767);
}
