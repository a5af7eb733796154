import { mobileNetV2 } from '../../../scripts/fixtures/architectures';
import { insertPreprocess } from '../preprocess/hz-preprocess';
import { optimizeModel } from '../optimize/pipeline';
import { runStep } from '../runtime/reference';
import { getOp } from '../ops/registry';
import { emitQuantizedModel } from './index';
import { maxThresholds, randomFeeds, toNhwc } from './quantize.test.util';
it('prof', () => {
  const pre = insertPreprocess(mobileNetV2({ width: 0.5, inputSize: 64, numClasses: 16 }).model, [{ name: 'input', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174] }]).model;
  optimizeModel(pre);
  const spec = { activations: maxThresholds(pre, randomFeeds(pre, 1, 1)), cpuNodes: new Set<string>(), march: 'bernoulli2' as const };
  const q = emitQuantizedModel(pre, spec);
  const f = randomFeeds(pre, 1, 5)[0];
  for (let rep = 0; rep < 2; rep++) {
  const times = new Map<string, number>();
  const env = new Map(q.graph.initializers); env.set('input', toNhwc(f.input));
  for (const node of q.graph.topoSort()) { const op = getOp(node, 13); const t = performance.now(); const outs = runStep({ node, op, opset: 13 }, node.inputs.map((i) => env.get(i))); times.set(node.opType, (times.get(node.opType) ?? 0) + performance.now() - t); node.outputs.forEach((o, k) => env.set(o, outs[k])); }
  console.log([...times].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k}:${v.toFixed(0)}`).join(' '));
  }
});
