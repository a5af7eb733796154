import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import '../ops';
import { loadModel } from '../onnx/decode';
import { runStage } from '../stages';
import { ReferenceEngine } from '../runtime/reference';
import { emitCalibratedModel, emitQuantizedModel, planQuantization, QUANT_INFO_KEY, QuantizedModelInfo, QuantizeSpec } from './index';
import { int16Net } from './int16.test.util';
import { compareEngines, cosine, maxThresholds, onnxCheck, randomFeeds } from './quantize.test.util';

// bound once: global lookups are slow inside jest's vm context
const { abs, max } = Math;

describe('int16 nodes (bayes node_info)', () => {
  const model = int16Net();
  const feeds = randomFeeds(model, 6, 21);
  const activations = maxThresholds(model, feeds);
  const int16Nodes = new Set(['c1', 'c2', 'c5', 'fc', 'ghost']);
  const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bayes', int16Nodes };
  const mpOut = model.graph.nodes.find((n) => n.opType === 'MaxPool')!.outputs[0];

  it('holds the int16 nodes’ outputs (and what passive ops make of them) in int16, scale threshold / 32767', () => {
    const plan = planQuantization(model, spec);
    expect([...plan.int16].sort()).toEqual(['c1', 'c2', 'c5', 'r1', 'r2', mpOut, 'y'].sort());
    expect(plan.int16Ignored).toEqual(['ghost']);
    // c2 is fused with r2: its scale comes from r2's threshold, at 16 bits
    expect(plan.scales.get('c2')).toBe(Math.fround(activations.r2.threshold / 32767));
    expect(plan.scales.get(mpOut)).toBe(plan.scales.get('r2'));
    expect(plan.scales.get('r3')).toBe(Math.fround(activations.r3.threshold / 127));
    const q = emitQuantizedModel(model, spec);
    const info = JSON.parse(q.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
    expect(info.int16NodesIgnored).toEqual(['ghost']);
    expect(info.int16Values).toEqual([...plan.int16].sort());
    const r = new ReferenceEngine(q).runSync(feeds[0], { fetch: ['c1', 'r1', 'c2', 'r2', mpOut, 'c5', 'r3', 'add'] });
    for (const t of ['c1', 'r1', 'c2', 'r2', mpOut, 'c5']) expect([t, r[t].dtype]).toEqual([t, 'int16']);
    for (const t of ['r3', 'add']) expect([t, r[t].dtype]).toEqual([t, 'int8']);
    expect(r.y.dtype).toBe('float32');
    expect(onnxCheck({ q }) ?? '').toBe('');
  });

  it('onnxruntime and the reference engine agree: every int8 and int16 value exactly', async () => {
    const q = emitQuantizedModel(model, spec);
    const plan = planQuantization(model, spec);
    const r = await compareEngines(q, feeds, { y: plan.scales.get('y') as number });
    expect(r.values).toBeGreaterThan(10);
    expect(r.worstWithin).toBe(1);
    // the integer values are the same integers in both (ConvInteger, no float sums)
    expect(r.worstExact).toBe(1);
  });

  it('follows the calibrated (fake-quant) model within a few int16 steps, and the float model better than all-int8', async () => {
    const q16 = new ReferenceEngine(emitQuantizedModel(model, spec));
    const cal = new ReferenceEngine(emitCalibratedModel(model, spec));
    const q8 = new ReferenceEngine(emitQuantizedModel(model, { ...spec, int16Nodes: undefined }));
    const float = new ReferenceEngine(model);
    const plan = planQuantization(model, spec);
    let worst = 0;
    let err16 = 0;
    let err8 = 0;
    for (const f of feeds) {
      const a = q16.runSync(f, { fetch: ['c2', 'c5'] });
      const c = cal.runSync(f, { fetch: ['c2_HzCalibration', 'c5_HzCalibration'] });
      for (const t of ['c2', 'c5']) {
        const s = plan.scales.get(t) as number;
        const v = a[t].data as Int16Array;
        const w = c[`${t}_HzCalibration`].toFloat32();
        v.forEach((q, i) => (worst = max(worst, abs(q * s - w[i]) / s)));
      }
      const want = float.runSync(f).y.toFloat32();
      err16 += 1 - cosine(want, a.y.toFloat32());
      err8 += 1 - cosine(want, q8.runSync(f).y.toFloat32());
    }
    expect(worst).toBeLessThanOrEqual(4);
    expect(err16).toBeLessThan(err8);
  });

  it('int16 values leave as int16 or int8 outputs too', async () => {
    const plan = planQuantization(model, spec);
    for (const outputType of ['int16', 'int8'] as const) {
      const q = emitQuantizedModel(model, { ...spec, outputType });
      const info = JSON.parse(q.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
      expect(q.graph.outputs.map((o) => [o.name, o.type?.dtype])).toEqual([['y', outputType]]);
      const y = new ReferenceEngine(q).runSync(feeds[0]).y;
      expect(y.dtype).toBe(outputType);
      const s = info.outputs[0].scale as number;
      expect(s).toBe(outputType === 'int16' ? plan.scales.get('y') : Math.fround(activations.y.threshold / 127));
      const want = new ReferenceEngine(model).runSync(feeds[0]).y.toFloat32();
      expect(cosine(want, Float32Array.from(y.data as Int16Array | Int8Array, (v) => v * s))).toBeGreaterThan(0.99);
      const r = await compareEngines(q, feeds.slice(0, 2));
      expect(r.worstWithin).toBe(1);
    }
  });
});

describe('int16 through the stages (models/seg_bayes_int16)', () => {
  it('check → calibrate → quantize: the node_info nodes compute in int16, onnxruntime = reference engine', async () => {
    const root = path.resolve(__dirname, '../../..');
    const src = path.join(root, 'models', 'seg_bayes_int16');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'int16-stages-'));
    try {
      let yaml = fs.readFileSync(path.join(src, 'model.yaml'), 'utf8');
      yaml = yaml.replace(/onnx_model: '\.\/(.*)'/, (_, f: string) => `onnx_model: '${path.join(src, f)}'`);
      yaml = yaml.replace(/cal_data_dir: '(.*)'/, (_, f: string) => `cal_data_dir: '${path.resolve(src, f)}'`);
      yaml = yaml.replace(/working_dir: '.*'/, `working_dir: '${path.join(dir, 'out')}'`);
      const configFile = path.join(dir, 'model.yaml');
      fs.writeFileSync(configFile, yaml);
      const lines: string[] = [];
      for (const stage of ['preprocess', 'check', 'calibrate', 'quantize'] as const) await runStage(stage, { configFile, log: (l) => lines.push(l) });
      const q = loadModel(path.join(dir, 'out', 'seg_bayes_int16_quantized_model.onnx'));
      const info = JSON.parse(q.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
      expect(info.int16NodesIgnored).toBeUndefined();
      // dec1.conv and head write int16 (and the passive ops after dec1.conv)
      const producers = new Map(loadModel(path.join(src, 'seg_bayes_int16.onnx')).graph.nodes.map((n) => [n.name, n.outputs[0]]));
      for (const n of ['dec1.conv', 'head']) expect(info.int16Values).toContain(producers.get(n));
      expect(info.outputs.map((o) => o.dtype)).toEqual(['int16']);
      expect(lines.some((l) => /int16: \d+ value\(s\) held in int16/.test(l))).toBe(true);
      const r = await compareEngines(q, randomFeeds(q, 2, 5));
      expect(r.worstWithin).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
