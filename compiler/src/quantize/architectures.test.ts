import { mobileNetV2, resNet18 } from '../../../scripts/fixtures/architectures';
import { Model } from '../onnx/ir';
import { optimizeModel } from '../optimize/pipeline';
import { insertPreprocess } from '../preprocess/hz-preprocess';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { emitQuantizationModels, emitQuantizedModel, QuantizeSpec } from './index';
import { compareEngines, cosine, EngineAgreement, maxThresholds, onnxCheck, randomFeeds, toNhwc } from './quantize.test.util';

/**
 * The whole float → optimized → calibrated / quantized path on real architectures (random
 * seeded weights, small inputs): an rgb image input fed as nv12 (HzPreprocess), BN folded,
 * absmax thresholds over a few seeded samples.
 */
function prepare(model: Model): Model {
  const pre = insertPreprocess(model, [
    { name: 'input', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174] },
  ]).model;
  optimizeModel(pre);
  return pre;
}

const CASES: [string, () => Model][] = [
  ['MobileNetV2', () => prepare(mobileNetV2({ width: 0.5, inputSize: 48, numClasses: 16 }).model)],
  ['ResNet18', () => prepare(resNet18({ width: 0.25, inputSize: 48, numClasses: 16 }).model)],
];

describe.each(CASES)('quantize %s', (_name, make) => {
  const model = make();
  const spec: QuantizeSpec = { activations: maxThresholds(model, randomFeeds(model, 4, 1)), cpuNodes: new Set(), march: 'bernoulli2' };
  const { calibrated: cal, quantized: q } = emitQuantizationModels(model, spec);
  // one sample: the int8 kernels of the reference engine are slow under jest (see the report)
  const test = randomFeeds(model, 1, 5);
  const nhwc = test.map((f) => ({ input: toNhwc(f.input) }));
  let agreement: Promise<EngineAgreement> | undefined;
  const compare = (): Promise<EngineAgreement> => (agreement ??= compareEngines(q, nhwc, { output: q.graph.initializers.get('output_scale')?.toFloat32()[0] ?? 0 }));

  it('puts every Conv on QLinearConv and passes onnx.checker', () => {
    const floatConvs = model.graph.nodes.filter((n) => n.opType === 'Conv').length;
    expect(q.graph.nodes.filter((n) => n.opType === 'QLinearConv').length).toBeGreaterThanOrEqual(floatConvs);
    expect(q.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul')).toEqual([]);
    expect(q.graph.inputs[0].type).toEqual({ dtype: 'int8', shape: [1, 48, 48, 3] });
    expect(onnxCheck({ calibrated: cal, quantized: q }) ?? '').toBe('');
    // one plan for both, or one each: the same quantized model
    const again = emitQuantizedModel(model, spec);
    expect(again.graph.nodes.map((n) => n.name)).toEqual(q.graph.nodes.map((n) => n.name));
  });

  it('calibrated model ≈ float model (cosine ≥ 0.99, reference engine and onnxruntime)', async () => {
    const fl = new ReferenceEngine(model);
    const cr = new ReferenceEngine(cal);
    const co = await OrtEngine.create(cal);
    try {
      for (const f of test) {
        const want = fl.runSync(f).output.toFloat32();
        expect(cosine(want, cr.runSync(f).output.toFloat32())).toBeGreaterThanOrEqual(0.99);
        expect(cosine(want, (await co.run(f)).output.toFloat32())).toBeGreaterThanOrEqual(0.99);
      }
    } finally {
      await co.dispose();
    }
  });

  it('quantized model: onnxruntime = reference engine on every int8 value and the output (measured bit-exact)', async () => {
    const r = await compare();
    expect(r.values).toBeGreaterThan(40);
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
    expect(r.worstExact).toBe(1);
  });

  it('quantized model ≈ calibrated model ≈ float model', async () => {
    const fl = new ReferenceEngine(model);
    const cr = new ReferenceEngine(cal);
    const { ref } = await compare();
    test.forEach((f, i) => {
      const got = ref[i].output.toFloat32();
      expect(cosine(cr.runSync(f).output.toFloat32(), got)).toBeGreaterThanOrEqual(0.99);
      expect(cosine(fl.runSync(f).output.toFloat32(), got)).toBeGreaterThanOrEqual(0.99);
    });
  });
});
