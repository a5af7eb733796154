/**
 * The quantize stage: `***_calibrated_model.onnx` (QDQ fake-quant) and
 * `***_quantized_model.onnx` (int8) from the optimized float model, the calibration
 * thresholds and the BPU/CPU placement. Both follow one plan (plan.ts).
 */
export { emitCalibratedModel, calibratedFromPlan } from './calibrated';
export { emitQuantizedModel, quantizedFromPlan } from './quantized';
export { planQuantization, NodeKind, QuantPlan, WeightQuant } from './plan';
export { raiseOpset } from './opset';
export { activationScale, CALIBRATION_SUFFIX, MIN_OPSET, QUANT_INFO_KEY, QuantizedModelInfo, QuantizeSpec } from './spec';
