/**
 * The quantize stage: `***_calibrated_model.onnx` (QDQ fake-quant) and
 * `***_quantized_model.onnx` (int8) from the optimized float model, the calibration
 * thresholds and the BPU/CPU placement. Both follow one plan (plan.ts), so the calibrated
 * model fake-quantizes exactly the tensors the quantized model holds in int8, with the same
 * scales and the same integer weights.
 */
import { Model } from '../onnx/ir';
import { calibratedFromPlan } from './calibrated';
import { planQuantization, QuantPlan } from './plan';
import { quantizedFromPlan } from './quantized';
import { QuantizeSpec } from './spec';

export { emitCalibratedModel, calibratedFromPlan } from './calibrated';
export { emitQuantizedModel, quantizedFromPlan } from './quantized';
export { planQuantization, NodeKind, QuantPlan, WeightQuant } from './plan';
export { raiseOpset, RaiseResult } from './opset';
export { activationScale, CALIBRATION_SUFFIX, MIN_OPSET, QUANT_INFO_KEY, QuantizedModelInfo, QuantizeSpec } from './spec';

/** Both models from one plan (the plan's notes say what the opset conversion did). */
export function emitQuantizationModels(model: Model, spec: QuantizeSpec): { calibrated: Model; quantized: Model; plan: QuantPlan } {
  const plan = planQuantization(model, spec);
  return { calibrated: calibratedFromPlan(plan), quantized: quantizedFromPlan(plan), plan };
}
