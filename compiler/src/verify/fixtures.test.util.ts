import { BinModel } from '../compile/bin-format';
import { compileQuantizedModel } from '../compile/compile';
import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { insertPreprocess, RtType } from '../preprocess/hz-preprocess';
import { emitQuantizationModels } from '../quantize';
import { maxThresholds, randomFeeds } from '../quantize/quantize.test.util';

/**
 * Compiled fixtures for the verify and tools tests (not a test file): a small CNN — two
 * convolutions with a Relu, a feature-map output `feat` and a Softmax head `prob` on the CPU —
 * quantized (absmax thresholds on seeded random feeds) and compiled into a `.bin` model.
 * Inputs: a float featuremap, or an rgb image fed as nv12 / rgb (HzPreprocess in the model).
 */

export type FixtureInput = 'featuremap' | 'nv12' | 'rgb' | 'gray';

export interface CompiledFixture {
  float: Model;
  quantized: Model;
  bin: BinModel;
}

/** The float CNN on a [1, channels, 8, 8] input (no HzPreprocess). */
export function plainCnn(channels: number, name: string, seed = 11): Model {
  const b = new GraphBuilder(name, { seed });
  const x = b.input('data', 'float32', [1, channels, 8, 8]);
  const y = b.conv(b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 })), { outChannels: 4, kernel: 1 });
  const feat = b.output(y, 'feat');
  b.output(b.softmax(b.flatten(b.globalAvgPool(feat)), -1), 'prob');
  return b.build();
}

export function cnn(input: FixtureInput, name = `cnn_${input}`, seed = 11): Model {
  const m = plainCnn(input === 'featuremap' ? 4 : input === 'gray' ? 1 : 3, name, seed);
  if (input === 'featuremap') return m;
  const rt: RtType = input;
  const gray = input === 'gray';
  return insertPreprocess(m, [
    {
      name: 'data', typeTrain: gray ? 'gray' : 'rgb', typeRt: rt, layoutTrain: 'NCHW', normType: 'data_mean_and_scale',
      mean: gray ? [120] : [123.7, 116.3, 103.5], scale: gray ? [0.017] : [0.0171, 0.0175, 0.0174],
    },
  ]).model;
}

export function compiledFixture(input: FixtureInput, opts: { name?: string; march?: 'bernoulli2' | 'bayes'; layoutRt?: 'NCHW' | 'NHWC'; layerOutDump?: boolean } = {}): CompiledFixture {
  const float = cnn(input, opts.name);
  const { quantized } = emitQuantizationModels(float, { activations: maxThresholds(float, randomFeeds(float, 4, 5)), cpuNodes: new Set(), march: opts.march ?? 'bernoulli2' });
  const { model: bin } = compileQuantizedModel(quantized, {
    name: opts.name ?? float.graph.name,
    march: opts.march ?? 'bernoulli2',
    layerOutDump: opts.layerOutDump,
    ...(opts.layoutRt ? { inputs: { data: { layoutRt: opts.layoutRt } } } : {}),
  });
  return { float, quantized, bin };
}
