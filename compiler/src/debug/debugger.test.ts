/**
 * The accuracy debugger end to end on calibrated models written by the real stages
 * (preprocess → check → calibrate): the quantization-hostile net (fixtures.test.util.ts
 * outlierNet) and a benign one with an image input. Results are checked against independent
 * computations: whole variant models run from scratch, the calibrated model's own weight pairs,
 * numpy-style statistics.
 */
import * as fs from 'fs';
import * as path from 'path';
import { isPtqError } from '../errors';
import { loadAndValidate } from '../onnx/load';
import { Tensor } from '../onnx/tensor';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { plotAccErrorData } from './acc-error';
import { channelwiseData } from './channelwise';
import { openDebugData, readSample } from './data';
import { fakeQuantizeWeights, plotDistributionData } from './distribution';
import { benignNet, calibratedProject, convOutputNet, DebugProject, outlierNet, tempRoot } from './fixtures.test.util';
import { DebugModel } from './graph';
import { MetricAccumulator } from '../verify/metrics';
import { runall } from './runall';
import { formatSensitivityTable, getSensitivityOfNodes, sensitivityDict } from './sensitivity';
import { boxStats } from './stats';
import { edgeSet, variantModel, VARIANT_ORT } from './variants';

jest.setTimeout(120_000);

const root = tempRoot('api');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let hostile: Promise<DebugProject> | undefined;
const outlier = (): Promise<DebugProject> => (hostile ??= calibratedProject(root, 'outlier', outlierNet(), { samples: 6 }));
let image: Promise<DebugProject> | undefined;
const rgb = (): Promise<DebugProject> => (image ??= calibratedProject(root, 'rgb', benignNet(3, 16), { samples: 4, input: 'rgb', march: 'bayes' }));

const quiet = { progress: false as const };

function catchError(f: () => unknown): Promise<unknown> {
  return Promise.resolve()
    .then(f)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

describe('calibrated model structure', () => {
  it('finds the calibration nodes, their kinds, readers and the output pair’s owner', async () => {
    const p = await outlier();
    const dm = DebugModel.of(loadAndValidate(p.calibrated));
    const act = dm.calibrationNode('conv_outlier_HzCalibration');
    expect(act).toMatchObject({ kind: 'activation', input: 'conv_outlier', readers: ['conv_reader'], graphOutput: false, axis: undefined });
    const w = dm.calibrationNode('conv_reader.weight_HzCalibration');
    expect(w).toMatchObject({ kind: 'weight', input: 'conv_reader.weight', axis: 0, readers: ['conv_reader'] });
    expect(w?.thresholds.length).toBe(8);
    // threshold = 127 · scale, the scale stored in the model
    const scale = loadAndValidate(p.calibrated).graph.initializers.get(act!.dequantize.inputs[1]) as Tensor;
    expect(act!.thresholds[0]).toBeCloseTo(127 * scale.toFloat32()[0], 4);
    expect(dm.node('conv_reader')?.calibration).toEqual(['conv_outlier_HzCalibration', 'conv_reader.weight_HzCalibration']);
  });

  it('gives the pair on a model output computed by a BPU node to that node', async () => {
    const p = await calibratedProject(root, 'convout', convOutputNet(), { samples: 3 });
    const dm = DebugModel.of(loadAndValidate(p.calibrated));
    const outPair = dm.calibration.find((c) => c.graphOutput);
    expect(outPair).toMatchObject({ kind: 'activation', output: 'output', readers: [] });
    const owner = dm.node('conv_out');
    expect(owner?.node.outputs).toEqual([outPair!.input]);
    expect(owner?.value).toBe('output');
    expect(dm.edgesOf('conv_out').map((e) => [e.calibration, e.slots])).toEqual([
      ['relu1_HzCalibration', [0]],
      ['conv_out.weight_HzCalibration', [1]],
      [outPair!.name, []],
    ]);
    // quantizing conv_out alone includes its output pair; all variants agree with whole models
    const cal = loadAndValidate(p.calibrated);
    const data = openDebugData(p.data, cal);
    // the ReferenceEngine for both sides: same kernels, so the cones must match bit for bit
    const r = await getSensitivityOfNodes(cal, p.data, { ...quiet, metrics: ['mse'], engine: 'reference' });
    const s = readSample(data, 0);
    const f = new ReferenceEngine(variantModel(dm, new Set())).runSync(s).output.toFloat32();
    for (const n of r.nodes) {
      const acc = new MetricAccumulator();
      for (let i = 0; i < data.count; i++) {
        const si = readSample(data, i);
        acc.add(new ReferenceEngine(variantModel(dm, new Set())).runSync(si).output.toFloat32(), new ReferenceEngine(variantModel(dm, edgeSet(dm.edgesOf(n.name)))).runSync(si).output.toFloat32());
      }
      expect(n.values.mse).toBe(acc.value('mse'));
    }
    const onlyOut = new ReferenceEngine(variantModel(dm, edgeSet(dm.edgesOf(outPair!.name)))).runSync(s).output.toFloat32();
    const step = outPair!.scales[0];
    // the output alone quantized: within half a step of the float output, on the grid
    onlyOut.forEach((v, i) => {
      expect(Math.abs(v - f[i])).toBeLessThanOrEqual(step / 2 + 1e-6);
      expect(Math.abs(v / step - Math.round(v / step))).toBeLessThan(1e-3);
    });
  });

  it('variant models: none open = the optimized float model, all open = the calibrated model', async () => {
    const p = await outlier();
    const cal = loadAndValidate(p.calibrated);
    const dm = DebugModel.of(cal);
    const float = loadAndValidate(path.join(p.work, 'outlier_optimized_float_model.onnx'));
    const data = openDebugData(p.data, cal);
    const engines = [new ReferenceEngine(float), new ReferenceEngine(variantModel(dm, new Set())), new ReferenceEngine(cal), new ReferenceEngine(variantModel(dm, edgeSet(dm.edges)))];
    expect(variantModel(dm, new Set()).graph.nodes.some((n) => n.opType === 'QuantizeLinear')).toBe(false);
    for (let i = 0; i < 2; i++) {
      const s = readSample(data, i);
      const [f, v0, c, v1] = engines.map((e) => e.runSync(s).output.toFloat32());
      expect(Array.from(v0)).toEqual(Array.from(f));
      expect(Array.from(v1)).toEqual(Array.from(c));
    }
  });
});

describe('get_sensitivity_of_nodes', () => {
  it('ranks the node reading the outlier tensor first, and that tensor’s activation calibration node first', async () => {
    const p = await outlier();
    const nodes = await getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, metrics: ['cosine-similarity', 'mse', 'sqnr'] });
    expect(nodes.nodes[0].name).toBe('conv_reader');
    expect(nodes.nodes[0].values['cosine-similarity']).toBeLessThan(0.9);
    expect(nodes.nodes[1].values['cosine-similarity']).toBeGreaterThan(0.999);
    // sorted by the first metric, worst first
    const cos = nodes.nodes.map((n) => n.values['cosine-similarity']);
    expect(cos).toEqual([...cos].sort((a, b) => a - b));
    const acts = await getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, nodeType: 'activation' });
    expect(acts.nodes[0].name).toBe('conv_outlier_HzCalibration');
    const weights = await getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, nodeType: 'weight' });
    expect(weights.nodes.every((n) => n.type === 'weight')).toBe(true);
    expect(weights.nodes.length).toBe(5);
  });

  it('equals running each whole variant model from scratch (cones fed from the float run)', async () => {
    const p = await outlier();
    const cal = loadAndValidate(p.calibrated);
    const dm = DebugModel.of(cal);
    const r = await getSensitivityOfNodes(cal, p.data, { ...quiet, metrics: ['cosine-similarity', 'mse', 'chebyshev'], dataNum: 3 });
    const data = openDebugData(p.data, cal, 3);
    const float = await OrtEngine.create(variantModel(dm, new Set()), VARIANT_ORT);
    const samples = [0, 1, 2].map((i) => readSample(data, i));
    const refs = [];
    for (const s of samples) refs.push((await float.run(s)).output.toFloat32());
    await float.dispose();
    for (const n of r.nodes) {
      const e = await OrtEngine.create(variantModel(dm, edgeSet(dm.edgesOf(n.name))), VARIANT_ORT);
      const acc = new MetricAccumulator();
      for (let i = 0; i < 3; i++) acc.add(refs[i], (await e.run(samples[i])).output.toFloat32());
      await e.dispose();
      expect(n.values['cosine-similarity']).toBeCloseTo(acc.value('cosine-similarity'), 9);
      expect(n.values.mse).toBeCloseTo(acc.value('mse'), 9);
      expect(n.values.chebyshev).toBeCloseTo(acc.value('chebyshev'), 6);
    }
    // the float values cached in chunks of one sample (cone sessions reopened per chunk): the same sums
    const lines: string[] = [];
    const chunked = await getSensitivityOfNodes(cal, p.data, { ...quiet, metrics: ['cosine-similarity', 'mse', 'chebyshev'], dataNum: 3, cacheMb: 0.001, log: (l) => lines.push(l) });
    expect(chunked.nodes).toEqual(r.nodes);
    expect(lines).toContainEqual(expect.stringMatching(/^INFO float values cached: [\d.]+ MB per sample, 3 chunk\(s\) of 1 sample\(s\)$/));
    // the ReferenceEngine agrees (its kernels, not onnxruntime's)
    const ref = await getSensitivityOfNodes(cal, p.data, { ...quiet, dataNum: 3, engine: 'reference', interestedNodes: ['conv_reader', 'conv1'] });
    expect(ref.engine).toBe('reference');
    for (const n of ref.nodes) expect(n.values['cosine-similarity']).toBeCloseTo(r.nodes.find((x) => x.name === n.name)!.values['cosine-similarity'], 4);
  });

  it('output_node, interested_nodes, the table and the dict', async () => {
    const p = await outlier();
    const at = await getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, outputNode: 'conv_outlier' });
    // only nodes that feed conv_outlier's output are measured
    expect(at.nodes.map((n) => n.name).sort()).toEqual(['conv1', 'conv_outlier', 'relu1']);
    expect(at.compared).toEqual(['conv_outlier']);
    const lines: string[] = [];
    const some = await getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, interestedNodes: ['conv1', 'conv_outlier_HzCalibration'], metrics: ['cosine-similarity', 'mse'], verbose: true, log: (l) => lines.push(l) });
    expect(some.nodeType).toBe('interested');
    expect(some.nodes.map((n) => n.type).sort()).toEqual(['activation', 'node']);
    const table = formatSensitivityTable(some).split('\n');
    expect(lines.join('\n')).toContain(table.join('\n'));
    expect(table[0]).toMatch(/^=+interested=+$/);
    expect(table[1]).toMatch(/^Node {2,}cosine-similarity {3}mse$/);
    expect(table[2]).toMatch(/^-+$/);
    expect(table[0].length).toBe(table[2].length);
    expect(table[3].startsWith('conv_outlier_HzCalibration  0.')).toBe(true);
    const dict = sensitivityDict(some);
    expect(Object.keys(dict)).toEqual(some.nodes.map((n) => n.name));
    expect(Object.keys(dict.conv1)).toEqual(['cosine-similarity', 'mse']);
    expect(Number(dict.conv1.mse)).toBe(some.nodes.find((n) => n.name === 'conv1')!.values.mse);
  });

  it('runs on an image input (HzPreprocess, int8 feeds) on bayes', async () => {
    const p = await rgb();
    const r = await getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, metrics: ['sqnr', 'mre'] });
    expect(r.nodes.length).toBeGreaterThanOrEqual(8);
    for (const n of r.nodes) expect(n.values.sqnr).toBeGreaterThan(10);
    const sq = r.nodes.map((n) => n.values.sqnr);
    expect(sq).toEqual([...sq].sort((a, b) => a - b));
  });

  it('user errors are one-line PtqErrors naming the node or value', async () => {
    const p = await outlier();
    const bad = await catchError(() => getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, interestedNodes: ['conv_readr'] }));
    expect(isPtqError(bad) && bad.oneLine()).toMatch(/^ERROR node 'conv_readr' is not in the calibrated model 'outlier_calibrated_model.onnx' \(did you mean 'conv_reader'/);
    const num = await catchError(() => getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, dataNum: 99 }));
    expect(isPtqError(num) && num.message).toMatch(/data_num 99 is out of range: .* holds 6 sample/);
    const out = await catchError(() => getSensitivityOfNodes(p.calibrated, p.data, { ...quiet, outputNode: 'conv1_HzCalibration' }));
    expect(isPtqError(out) && out.message).toMatch(/output_node 'conv1_HzCalibration' is a calibration node/);
    const plain = await catchError(() => getSensitivityOfNodes(path.join(p.work, 'outlier_optimized_float_model.onnx'), p.data, quiet));
    expect(isPtqError(plain) && plain.message).toMatch(/has no calibration nodes/);
    const noData = await catchError(() => getSensitivityOfNodes(p.calibrated, path.join(p.work, 'nope'), quiet));
    expect(isPtqError(noData) && noData.message).toMatch(/calibration data folder '.*nope' does not exist/);
  });
});

describe('plot_acc_error', () => {
  it('-nq: leaving the hostile node float recovers the output; partial models and average_mode', async () => {
    const p = await outlier();
    const r = await plotAccErrorData(p.calibrated, p.data, { ...quiet, nonQuantizeNode: [['conv1'], ['conv_reader']] });
    expect(r.nodes).toEqual(['conv1', 'relu1', 'conv_outlier', 'conv_reader', 'relu2', 'conv_tail', 'relu3', 'gap', 'fc_conv', 'fc_flatten']);
    const last = r.nodes.length - 1;
    const [other, reader] = r.curves;
    expect(reader.nodes).toEqual(['conv_reader']);
    expect(reader.values[last]).toBeGreaterThan(0.99);
    expect(other.values[last]).toBeLessThan(0.3);
    // with conv_reader float, everything before it is quantized as before: the same error there
    expect(reader.values[2]).toBeCloseTo(other.values[2], 2);
    // its output is where the damage is
    expect(other.values[3]).toBeLessThan(0.5);
    const avg = await plotAccErrorData(p.calibrated, p.data, { ...quiet, nonQuantizeNode: [['conv1'], ['conv_reader']], averageMode: true });
    avg.curves.forEach((c, k) => c.values.forEach((v, j) => expect(v).toBeCloseTo(r.curves[k].values.slice(0, j + 1).reduce((a, b) => a + b, 0) / (j + 1), 12)));
  });

  it("-q: single lists quantize each node alone; 'weight' and 'activation' quantize those kinds", async () => {
    const p = await outlier();
    const single = await plotAccErrorData(p.calibrated, p.data, { ...quiet, quantizeNode: ['conv1', 'conv_reader'], metric: 'mse' });
    expect(single.curves.map((c) => c.nodes)).toEqual([['conv1'], ['conv_reader']]);
    // quantizing conv_reader alone: nothing before it changes
    expect(single.curves[1].values.slice(0, 3)).toEqual([0, 0, 0]);
    expect(single.curves[1].values[3]).toBeGreaterThan(0);
    const kinds = await plotAccErrorData(p.calibrated, p.data, { ...quiet, quantizeNode: ['weight', 'activation'] });
    const [w, a] = kinds.curves;
    // the activation pair in front of conv_reader is the damage; weights alone are mild
    expect(a.values[3]).toBeLessThan(0.6);
    expect(w.values[3]).toBeGreaterThan(0.9);
    expect(w.values[kinds.nodes.length - 1]).toBeGreaterThan(a.values[kinds.nodes.length - 1]);
    // onnxruntime runs the pairs as written: the ReferenceEngine gives the same curves
    const ref = await plotAccErrorData(p.calibrated, p.data, { ...quiet, quantizeNode: ['weight', 'activation'], engine: 'reference' });
    ref.curves.forEach((c, k) => c.values.forEach((v, j) => expect(v).toBeCloseTo(kinds.curves[k].values[j], 5)));
    const both = await catchError(() => plotAccErrorData(p.calibrated, p.data, { ...quiet, quantizeNode: ['conv1'], nonQuantizeNode: ['conv1'] }));
    expect(isPtqError(both) && both.message).toMatch(/not both/);
    const none = await catchError(() => plotAccErrorData(p.calibrated, p.data, quiet));
    expect(isPtqError(none) && none.message).toMatch(/needs quantize_node or non_quantize_node/);
    const unknown = await catchError(() => plotAccErrorData(p.calibrated, p.data, { ...quiet, quantizeNode: [['conv1', 'Conv_9']] }));
    expect(isPtqError(unknown) && unknown.message).toMatch(/node 'Conv_9' is not in the calibrated model/);
  });
});

describe('plot_distribution and channel-wise data', () => {
  it('weights: original vs the calibrated model’s own fake-quantized weights', async () => {
    const p = await outlier();
    const cal = loadAndValidate(p.calibrated);
    const dm = DebugModel.of(cal);
    const c = dm.calibrationNode('conv_reader.weight_HzCalibration')!;
    // the DequantizeLinear output of the pair, computed by the model itself
    const e = new ReferenceEngine(cal);
    const s = readSample(openDebugData(p.data, cal), 0);
    const fq = e.runSync(s, { fetch: [c.output] })[c.output].toFloat32();
    expect(Array.from(fakeQuantizeWeights(dm.weightOf(c), c))).toEqual(Array.from(fq));
    const r = await plotDistributionData(cal, p.data, ['conv_reader.weight_HzCalibration', 'conv_outlier_HzCalibration', 'conv_reader'], quiet);
    const [wd, ad, nd] = r.nodes;
    const wh = wd.json.histogram as { original: number[]; calibrated: number[] };
    expect(wh.original.reduce((a, b) => a + b, 0)).toBe(8 * 8 * 9);
    expect(wh.calibrated.reduce((a, b) => a + b, 0)).toBe(8 * 8 * 9);
    expect(wd.json.threshold_min).toBe(Math.min(...c.thresholds));
    // activation: every element of every sample, its threshold the outlier's range
    const ah = ad.json.histogram as { data: number[] };
    expect(ah.data.reduce((a, b) => a + b, 0)).toBe(6 * 8 * 12 * 12);
    const adata = ad.json.data as { max_abs: number };
    expect(ad.json.threshold as number).toBeGreaterThanOrEqual(Math.abs(adata.max_abs) * 0.999);
    // ordinary node: float vs calibrated outputs and their error
    expect(nd.type).toBe('node');
    const err = nd.json.error as { max_abs: number };
    expect(Math.abs(err.max_abs)).toBeGreaterThan(0.1);
    expect(nd.svg).toContain('error distribution');
    expect(Object.keys(nd.csv)).toEqual(['', '_error']);
    for (const n of r.nodes) expect(n.svg).toMatch(/stroke-dasharray="6,4"/); // threshold lines
  });

  it('channel-wise: default axes (weights: the node’s axis, activations: 1), numpy quantiles', async () => {
    const p = await outlier();
    const cal = loadAndValidate(p.calibrated);
    const dm = DebugModel.of(cal);
    const r = await channelwiseData(cal, p.data, ['conv_outlier_HzCalibration', 'conv_reader.weight_HzCalibration'], quiet);
    const [act, w] = r.nodes;
    expect([act.axis, act.channels.length, act.dims]).toEqual([1, 8, [1, 8, 12, 12]]);
    expect([w.axis, w.channels.length]).toEqual([0, 8]);
    // channel 0 of the activation holds the outlier
    expect(act.channels[0].max).toBeGreaterThan(50 * Math.max(...act.channels.slice(1).map((c) => Math.abs(c.max))));
    // weight channel 3 against an independent computation
    const wt = dm.weightOf(dm.calibrationNode('conv_reader.weight_HzCalibration')!).toFloat32();
    const ch = Float64Array.from(wt.slice(3 * 72, 4 * 72));
    expect(w.channels[3]).toEqual(boxStats(ch));
    const axis0 = await channelwiseData(cal, p.data, ['conv_outlier_HzCalibration'], { ...quiet, axis: -1 });
    expect([axis0.nodes[0].axis, axis0.nodes[0].channels.length]).toEqual([3, 12]);
    const ord = await catchError(() => channelwiseData(cal, p.data, ['conv_reader'], quiet));
    expect(isPtqError(ord) && ord.oneLine()).toMatch(/'conv_reader' is an ordinary node; .* \(fix: give its calibration nodes: conv_outlier_HzCalibration, conv_reader.weight_HzCalibration\)/);
    const ax = await catchError(() => channelwiseData(cal, p.data, ['conv_outlier_HzCalibration'], { ...quiet, axis: 4 }));
    expect(isPtqError(ax) && ax.message).toMatch(/axis 4 is out of range/);
  });
});

describe('runall', () => {
  it('writes the four steps and an index.html, byte-identical on a second run', async () => {
    const p = await outlier();
    const a = await runall(p.calibrated, p.data, path.join(root, 'ra'), quiet);
    expect(a.sensitivity.map((s) => s.nodeType)).toEqual(['weight', 'activation']);
    // step 2: the top 5 of each table (5 weights, 5 activations)
    expect(a.distribution.nodes.length).toBe(10);
    expect(a.distribution.nodes[5].name).toBe('conv_outlier_HzCalibration');
    expect(a.channelwise.nodes.length).toBe(10);
    expect(a.accError.curves.map((c) => c.nodes)).toEqual([['weight'], ['activation']]);
    const files = (dir: string): Record<string, string> => {
      const out: Record<string, string> = {};
      const walk = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : 1))) {
          const f = path.join(d, e.name);
          if (e.isDirectory()) walk(f);
          else out[path.relative(dir, f)] = fs.readFileSync(f, 'utf8');
        }
      };
      walk(dir);
      return out;
    };
    const first = files(a.dir);
    expect(Object.keys(first)).toEqual(expect.arrayContaining(['index.html', 'sensitivity_of_nodes_weight.json', 'accumulate_error/accumulate_error.svg', 'distribution/conv_outlier_HzCalibration.svg', 'channelwise_distribution/conv_outlier_HzCalibration.csv']));
    const html = first['index.html'];
    expect(html.replace(/xmlns="http:\/\/www.w3.org\/2000\/svg"/g, "")).not.toMatch(/<script|src=|https?:/);
    expect((html.match(/<svg /g) ?? []).length).toBe(21);
    const b = await runall(p.calibrated, p.data, path.join(root, 'ra'), quiet);
    expect(files(b.dir)).toEqual(first);
    expect(fs.readdirSync(path.join(root, 'ra'))).toEqual(['runall']); // no temporary folders left
  });

  it("node_type 'node' on bayes with an image input: the top nodes and their calibration nodes", async () => {
    const p = await rgb();
    const dm = DebugModel.of(loadAndValidate(p.calibrated));
    const r = await runall(p.calibrated, p.data, path.join(root, 'ra-rgb'), { ...quiet, nodeType: 'node', aeMetric: 'sqnr', averageMode: true });
    expect(r.sensitivity.map((s) => s.nodeType)).toEqual(['node']);
    const top = r.sensitivity[0].nodes.slice(0, 5).map((n) => n.name);
    const want: string[] = [];
    for (const n of top) for (const x of [n, ...(dm.node(n)?.calibration ?? [])]) if (!want.includes(x)) want.push(x);
    expect(r.distribution.nodes.map((n) => n.name)).toEqual(want);
    expect(r.channelwise.nodes.map((n) => n.name)).toEqual(want.filter((n) => dm.calibrationNode(n)));
    expect(r.accError.metric).toBe('sqnr');
    expect(r.accError.averageMode).toBe(true);
    expect(fs.existsSync(path.join(r.dir, 'index.html'))).toBe(true);
  });
});
