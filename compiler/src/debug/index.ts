/**
 * The accuracy debugger (the reference's `horizon_nn.debug` / `hmct-debugger`) on a
 * `***_calibrated_model.onnx` and its calibration data (`calibration_data/<input>/<i>.npy`):
 *
 *  - getSensitivityOfNodes: quantize one node at a time, rank nodes by the error it causes;
 *  - plotAccError: cumulative error curves of partial models across the nodes;
 *  - plotDistribution: value distributions of weights, activations and node outputs;
 *  - getChannelwiseDataDistribution: per-channel box plots of calibration nodes' data;
 *  - runall: the four steps in one call with an index.html.
 *
 * Metrics: metrics.ts; how nodes and calibration nodes are found: graph.ts; how the variants
 * run (one gated model, one engine): variants.ts.
 */
export { accErrorCsv, accErrorJson, accErrorSvg, AccErrorCurve, AccErrorOptions, AccErrorResult, NodeSpec, partialModels, plotAccError, plotAccErrorData } from './acc-error';
export { channelwiseData, ChannelwiseOptions, ChannelwiseResult, getChannelwiseDataDistribution, NodeChannels } from './channelwise';
export { DebugData, openDebugData } from './data';
export { DistributionOptions, DistributionResult, fakeQuantizeWeights, NodeDistribution, plotDistribution, plotDistributionData } from './distribution';
export { CalibrationKind, CalibrationNode, DebugModel, Edge, OrdinaryNode } from './graph';
export { averageCurve, HIGHER_IS_BETTER, MetricAccumulator, MetricName, METRICS, parseMetric, pyFloat } from '../verify/metrics';
export { runall, RunallOptions, RunallResult, RUNALL_TOP } from './runall';
export {
  formatSensitivityTable,
  getSensitivityOfNodes,
  NODE_TYPES,
  NodeSensitivity,
  NodeType,
  sensitivityCsv,
  sensitivityDict,
  SensitivityOptions,
  SensitivityResult,
} from './sensitivity';
export { CommonOptions, DataOrDir, ModelOrFile } from './session';
export { measureVariants } from './cones';
export { Cone, coneModel, edgeSet, VariantRunner, variantModel } from './variants';
