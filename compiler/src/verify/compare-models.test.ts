import { BinIo, BinModel } from '../compile/bin-format';
import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { emitQuantizationModels } from '../quantize';
import { maxThresholds, randomFeeds } from '../quantize/quantize.test.util';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { compareModels, outputStep } from './compare-models';
import { buildVerifyJson, formatVerifyTable, verifyError } from './report';

jest.setTimeout(60_000);

/** conv-relu-conv with a softmax head: one output from a DequantizeLinear, one from a float CPU op. */
function net(): Model {
  const b = new GraphBuilder('vnet', { seed: 11 });
  const x = b.input('data', 'float32', [1, 4, 8, 8]);
  const y = b.conv(b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 })), { outChannels: 4, kernel: 1 });
  const feat = b.output(y, 'feat');
  b.output(b.softmax(b.flatten(b.globalAvgPool(feat)), -1), 'prob');
  return b.build();
}

const io = (name: string, dtype: BinIo['dtype'], shape: number[]): BinIo => ({ name, value: name, dtype, shape, layout: '', typeRt: 'featuremap', typeTrain: 'featuremap', spaceAndRange: '', source: 'ddr', scale: 0, zeroPoint: 0 });

/** A stand-in for the .bin runtime: our engine on the quantized model, optionally corrupting one output value. */
class StandIn implements Engine {
  readonly name = 'stand-in';
  readonly inputNames: string[];
  readonly outputNames: string[];
  constructor(private readonly inner: ReferenceEngine, private readonly corrupt?: { output: string; index: number }) {
    this.inputNames = inner.inputNames;
    this.outputNames = inner.outputNames;
  }
  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const out = await this.inner.run(feeds);
    if (!this.corrupt) return out;
    const t = out[this.corrupt.output];
    const data = (t.data as Float32Array).slice();
    data[this.corrupt.index] += 0.25;
    return { ...out, [this.corrupt.output]: new Tensor(t.dtype, t.dims, data) };
  }
  async dispose(): Promise<void> {}
}

describe('comparing the float, quantized and .bin models', () => {
  const model = net();
  const feeds = randomFeeds(model, 6, 3);
  const { quantized } = emitQuantizationModels(model, { activations: maxThresholds(model, feeds), cpuNodes: new Set(['Softmax_0', 'Flatten_0']), march: 'bernoulli2' });
  const binModel = { inputs: [io('data', 'float32', [1, 4, 8, 8])], outputs: [io('feat', 'float32', [1, 4, 8, 8]), io('prob', 'float32', [1, 4])], deletedNodes: [] } as unknown as BinModel;

  it('measures float vs quantized like an independent computation; .bin exact; onnxruntime within a step', async () => {
    const ort = await OrtEngine.create(quantized, { threads: 1 });
    const qe = new ReferenceEngine(quantized);
    try {
      const r = await compareModels({ quantized, quantizedEngine: qe, float: new ReferenceEngine(model), ort, bin: { engine: new StandIn(qe), model: binModel } }, feeds);
      expect(r.count).toBe(6);
      expect(r.outputs.map((o) => o.name)).toEqual(['feat', 'prob']);
      // independent cosine of the first output over all samples
      let ab = 0;
      let aa = 0;
      let bb = 0;
      const fe = new ReferenceEngine(model);
      for (const f of feeds) {
        const a = (await fe.run(f)).feat.toNumbers();
        const b = (await qe.run(f)).feat.toNumbers();
        a.forEach((x, i) => {
          ab += x * b[i];
          aa += x * x;
          bb += b[i] * b[i];
        });
      }
      expect(r.outputs[0].float!.cosine).toBeCloseTo(ab / Math.sqrt(aa * bb), 12);
      expect(r.outputs[0].float!.cosine).toBeGreaterThan(0.99);
      expect(r.outputs[0].bin).toMatchObject({ exact: true, mismatched: 0, elements: 6 * 256 });
      expect(r.outputs[0].ort).toMatchObject({ within_one_step: true, step: outputStep(quantized, 'feat') });
      expect(r.outputs[1].ort!.step).toBeNull(); // a float CPU output: relative tolerance
      const { json, failures } = buildVerifyJson({ model: 'vnet', samples: r.count, sample_source: 'random', cosine_threshold: 0.99, engines: { float: 'reference', quantized: 'reference', onnxruntime: 'ort', bin: 'stand-in' }, notes: [] }, r.outputs);
      expect(failures).toEqual([]);
      expect(json.passed).toBe(true);
      const table = formatVerifyTable(json).split('\n');
      expect(table[1]).toMatch(/^Output\s+Cosine Similarity\s+L1 Distance\s+L2 Distance\s+Chebyshev Distance\s+\.bin vs Quantized\s+ONNXRuntime vs Quantized\s+Result$/);
      expect(table[3]).toMatch(/^feat\s+0\.99\d+\s+.*\s+exact\s+(exact|<=1 step \(\d+\.\d+% exact\))\s+PASSED$/);
    } finally {
      await ort.dispose();
    }
  });

  it('reports a .bin that differs in one value, and a cosine below the threshold, with what to do', async () => {
    const qe = new ReferenceEngine(quantized);
    const r = await compareModels({ quantized, quantizedEngine: qe, float: new ReferenceEngine(model), bin: { engine: new StandIn(qe, { output: 'prob', index: 2 }), model: binModel } }, feeds.slice(0, 2));
    expect(r.outputs[1].bin).toMatchObject({ exact: false, mismatched: 2, elements: 8, first: { sample: 0, index: 2 } });
    expect(r.outputs[1].bin!.max_abs_diff).toBeCloseTo(0.25, 6);
    const { json, failures } = buildVerifyJson({ model: 'vnet', samples: 2, sample_source: 'random', cosine_threshold: 0.99999999, engines: { float: 'reference', quantized: 'reference', onnxruntime: null, bin: 'stand-in' }, notes: [] }, r.outputs);
    expect(json.passed).toBe(false);
    expect(json.outputs.map((o) => o.passed)).toEqual([false, false]);
    expect(failures.map((f) => `${f.output}:${f.kind}`)).toEqual(['feat:cosine', 'prob:cosine', 'prob:bin']);
    expect(failures[2].message).toMatch(/^output 'prob': the \.bin differs from the quantized model in 2 of 8 values \(max \|diff\| 0\.25\d*; first at sample 0, element 2: quantized [\d.e-]+, \.bin [\d.e-]+\)$/);
    const e = verifyError('vnet', failures, 'try, in order: 1) x');
    expect(e.oneLine()).toMatch(/^ERROR verification of 'vnet' failed: output 'feat': cosine similarity 0\.99\d+ \(float vs quantized\) is below the threshold 0\.99999999; .* \(fix: try, in order: 1\) x \(or lower nx-ptq\.verify\.cosine_threshold if this accuracy is acceptable\); also: a \.bin or onnxruntime mismatch is a defect of nx-ptq/);
    expect(formatVerifyTable(json)).toMatch(/prob .* 2\/8 differ .* FAILED/);
  });
});
