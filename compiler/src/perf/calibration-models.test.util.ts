import { ARCHITECTURES, ArchName, ArchOptions } from '../../../scripts/fixtures/architectures';
import { BuildStats } from '../onnx/builder';
import { March } from '../check/table';
import { Model, Node } from '../onnx/ir';
import { InputSpec } from '../preprocess/hz-preprocess';
import { checkModel, CheckResult } from '../stages/check';
import { MarchCosts } from './costs';
import { estimatePerf, PerfEstimate, PerfOptions } from './estimate';

/**
 * The calibration models of the cost model: the fixture architectures (random weights, real
 * layer shapes) converted the way the published board numbers were measured — 224×224, nv12
 * at runtime (HzPreprocess: nv12 → rgb, ImageNet mean/scale), through the check stage.
 * Shared by calibration.test.ts and scripts/perf/fit-bernoulli2.ts.
 */

/** The reference's classification models: rgb trained, nv12 at runtime, ImageNet mean and scale. */
export function nv12Input(name = 'input'): InputSpec {
  return { name, typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [123.675, 116.28, 103.53], scale: [0.0171, 0.0175, 0.0174] };
}

export interface CalibrationModel {
  arch: ArchName;
  /** the builder's independent count of Conv/Gemm MACs and parameters */
  stats: BuildStats;
  checked: CheckResult;
}

/**
 * `arch` at `inputSize`, with a Softmax appended when `softmax` (the reference's Caffe
 * MobileNetV1 ends in `Softmax_prob`, which its board profile lists as a CPU op), checked for
 * `march` with the nv12 HzPreprocess.
 */
export function calibrationModel(arch: ArchName, opts: ArchOptions & { softmax?: boolean; march?: March } = {}): CalibrationModel {
  const { model, stats } = ARCHITECTURES[arch](opts);
  if (opts.softmax) appendSoftmax(model);
  const size = opts.inputSize ?? 224;
  const checked = checkModel(model, {
    march: opts.march ?? 'bernoulli2',
    inputShapes: { input: [opts.batch ?? 1, 3, size, size] },
    preprocess: [nv12Input()],
  });
  return { arch, stats, checked };
}

function appendSoftmax(model: Model): void {
  const g = model.graph;
  const out = g.outputs[0];
  g.nodes.push(new Node({ opType: 'Softmax', name: 'prob', inputs: [out.name], outputs: ['prob'], attrs: { axis: { type: 'int', value: 1 } } }));
  g.outputs = [{ name: 'prob', type: out.type ? { ...out.type } : undefined }];
  g.validate();
}

export function estimateFor(m: CalibrationModel, opts: Partial<PerfOptions> = {}, costs?: MarchCosts): PerfEstimate {
  return estimatePerf(m.checked.optimized, m.checked.placement, { march: m.checked.placement.march, ...opts, ...(costs ? { costs } : {}) });
}
