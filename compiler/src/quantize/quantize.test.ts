import { PtqError } from '../errors';
import { GraphBuilder } from '../onnx/builder';
import { Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { insertPreprocess } from '../preprocess/hz-preprocess';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { emitCalibratedModel, emitQuantizedModel, QUANT_INFO_KEY, QuantizedModelInfo, QuantizeSpec } from './index';
import { compareEngines, cosine, maxThresholds, onnxCheck, randomFeeds, toNhwc, withinStep } from './quantize.test.util';

// ------------------------------------------------------------------ an independent int8 arithmetic (DESIGN §3), written out here

const f32 = Math.fround;
function rne(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const scaleOf = (threshold: number): number => f32((threshold > 0 ? threshold : 1) / 127);
const quant = (x: number, s: number): number => clamp(rne(f32(x / s)), -128, 127);

/** int8 Conv (NCHW, stride 1, symmetric pad, group 1) by the contract: per-channel weights, int32 bias, float multiplier, clamp. */
function contractConv(x: Int8Array, xd: number[], sx: number, w: Float32Array, wd: number[], b: Float32Array, sy: number, pad: number, lo: number, hi: number): Int8Array {
  const [, C, H, W] = xd;
  const [M, , KH, KW] = wd;
  const out = new Int8Array(M * H * W);
  const per = C * KH * KW;
  for (let m = 0; m < M; m++) {
    let mx = 0;
    for (let i = 0; i < per; i++) mx = Math.max(mx, Math.abs(w[m * per + i]));
    const sw = scaleOf(mx);
    const wq = Array.from({ length: per }, (_, i) => quant(w[m * per + i], sw));
    const bq = rne(b[m] / f32(sx * sw));
    const M32 = f32(f32(sx * sw) / sy);
    for (let y = 0; y < H; y++) {
      for (let xx = 0; xx < W; xx++) {
        let acc = bq;
        for (let c = 0; c < C; c++) {
          for (let ky = 0; ky < KH; ky++) {
            for (let kx = 0; kx < KW; kx++) {
              const iy = y + ky - pad;
              const ix = xx + kx - pad;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              acc += x[(c * H + iy) * W + ix] * wq[(c * KH + ky) * KW + kx];
            }
          }
        }
        out[(m * H + y) * W + xx] = clamp(rne(f32(f32(acc) * M32)), lo, hi);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ fixtures

/** Relu/Relu6 after convs, MaxPool, residual Add, Concat, AvgPool, Sigmoid, channel Softmax and a Conv on the CPU mid-graph, GAP, Gemm, Softmax. */
function mixedModel(channelSoftmax = true): Model {
  const b = new GraphBuilder('mixed', { opset: 13, seed: 3 });
  const x = b.input('x', 'float32', [1, 3, 16, 16]);
  const c1 = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  const c2 = b.clip(b.conv(c1, { outChannels: 8, kernel: 3, pad: 1, name: 'conv2' }), 0, 6, 'relu6');
  const p = b.maxPool(c2, { kernel: 2, stride: 2, name: 'pool' });
  const r = b.relu(b.add(p, b.conv(p, { outChannels: 8, kernel: 1, name: 'conv3' }), 'add'), 'relu2');
  const cat = b.concat([r, b.conv(r, { outChannels: 4, kernel: 3, pad: 1, name: 'conv4' })], 1, 'cat');
  const a = b.avgPool(cat, { kernel: 2, stride: 2, name: 'avg' });
  const m = b.node('Mul', [b.sigmoid(a, 'sig'), channelSoftmax ? b.softmax(a, 1, 'channel_softmax') : a], {}, 1, { name: 'mul', shapes: [a.shape] })[0];
  const fc = b.gemm(b.flatten(b.globalAvgPool(m, 'gap'), 1, 'flat'), 10, { name: 'fc' });
  b.output(b.softmax(fc, -1, 'softmax'), 'prob');
  return b.build();
}

const CPU = new Set(['softmax', 'channel_softmax', 'conv3']);

function nodeByName(m: Model, name: string): Node {
  const n = m.graph.nodes.find((k) => k.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

function producerOf(m: Model, value: string): Node | undefined {
  return m.graph.nodes.find((n) => n.outputs.includes(value));
}

function scalarInit(m: Model, name: string): number {
  const t = m.graph.initializers.get(name);
  if (!t) throw new Error(`no initializer ${name}`);
  return t.toNumbers()[0];
}

function ptqError(fn: () => unknown): PtqError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PtqError);
    return e as PtqError;
  }
  throw new Error('expected a PtqError');
}

// ------------------------------------------------------------------ tests

describe('quantize: mixed model (fusion, residual, concat, pools, LUT, Gemm head, CPU nodes)', () => {
  const model = mixedModel();
  const calib = randomFeeds(model, 4, 7);
  const spec: QuantizeSpec = { activations: maxThresholds(model, calib), cpuNodes: CPU, march: 'bernoulli2' };
  const cal = emitCalibratedModel(model, spec);
  const q = emitQuantizedModel(model, spec);
  const test = randomFeeds(model, 3, 99);

  it('represents each op class as documented', () => {
    const types = (names: string[]): string[] => names.map((n) => nodeByName(q, n).opType);
    expect(types(['conv1', 'conv2', 'conv4', 'fc'])).toEqual(['QLinearConv', 'QLinearConv', 'QLinearConv', 'QLinearConv']);
    // fused Relu / Relu6: the conv's output scale is the clamp's, the clamp runs on int8
    const th = spec.activations;
    expect(scalarInit(q, nodeByName(q, 'conv1').inputs[6])).toBe(scaleOf(th.relu1.threshold));
    expect(scalarInit(q, nodeByName(q, 'conv2').inputs[6])).toBe(scaleOf(th.relu6.threshold));
    const relu1 = nodeByName(q, 'relu1');
    expect(relu1.opType).toBe('Clip');
    expect([scalarInit(q, relu1.inputs[1]), scalarInit(q, relu1.inputs[2])]).toEqual([0, 127]);
    const relu6 = nodeByName(q, 'relu6');
    expect(scalarInit(q, relu6.inputs[2])).toBe(Math.min(127, rne(6 / scaleOf(th.relu6.threshold))));
    expect(q.graph.initializers.get(relu6.inputs[1])?.dtype).toBe('int8');
    // passive MaxPool on int8, LUT as Cast → Add → Gather on a 256-entry int8 table
    expect(nodeByName(q, 'pool').inputs[0]).toBe('relu6');
    const sig = nodeByName(q, 'sig');
    expect(sig.opType).toBe('Gather');
    expect(q.graph.initializers.get(sig.inputs[0])?.dims).toEqual([256]);
    expect(producerOf(q, sig.inputs[1])?.opType).toBe('Add');
    // requantising ops: DQ → float op → Q
    for (const n of ['add', 'cat', 'avg', 'gap', 'mul']) {
      const node = nodeByName(q, n);
      expect(node.inputs.map((i) => producerOf(q, i)?.opType)).toEqual(node.inputs.map(() => 'DequantizeLinear'));
      expect(q.graph.nodes.filter((k) => k.inputs[0] === node.outputs[0]).map((k) => k.opType)).toEqual(['QuantizeLinear']);
    }
    // Gemm head: Reshape → 1×1 QLinearConv → Reshape; output through DequantizeLinear into the CPU Softmax
    const fc = nodeByName(q, 'fc');
    expect(q.graph.initializers.get(fc.inputs[3])?.dims).toEqual([10, 12, 1, 1]);
    expect(producerOf(q, fc.inputs[0])?.opType).toBe('Reshape');
    expect(q.graph.initializers.get(fc.inputs[8])?.dtype).toBe('int32');
  });

  it('puts DequantizeLinear / QuantizeLinear around CPU nodes mid-graph', () => {
    for (const n of ['conv3', 'channel_softmax']) {
      const node = nodeByName(q, n);
      expect(producerOf(q, node.inputs[0])?.opType).toBe('DequantizeLinear');
      expect(q.graph.nodes.filter((k) => k.inputs[0] === node.outputs[0]).map((k) => k.opType)).toEqual(['QuantizeLinear']);
    }
    // the CPU Conv keeps its float weights and reads a per-axis DequantizeLinear (onnxruntime leaves it float)
    const conv3 = nodeByName(q, 'conv3');
    expect(conv3.opType).toBe('Conv');
    expect(q.graph.initializers.get(conv3.inputs[1])?.dtype).toBe('float32');
    expect(producerOf(q, conv3.inputs[0])?.int('axis')).toBe(1);
    // the model output leaves the CPU Softmax as float
    expect(q.graph.outputs.map((o) => [o.name, o.type?.dtype])).toEqual([['prob', 'float32']]);
    expect(nodeByName(q, 'softmax').inputs[0]).toBe(q.graph.nodes.find((k) => k.opType === 'DequantizeLinear' && k.inputs[0] === 'fc')?.outputs[0]);
  });

  it('computes conv1 + Relu exactly as the contract says (independent integer arithmetic)', () => {
    const f = test[0];
    const sx = scaleOf(spec.activations.x.threshold);
    const xq = Int8Array.from(f.x.data as Float32Array, (v) => quant(v, sx));
    const g = model.graph;
    const want = contractConv(xq, f.x.dims, sx, g.initializers.get('conv1.weight')!.data as Float32Array, [8, 3, 3, 3], g.initializers.get('conv1.bias')!.data as Float32Array, scaleOf(spec.activations.relu1.threshold), 1, 0, 127);
    const got = new ReferenceEngine(q).runSync(f, { fetch: ['relu1'] }).relu1;
    expect(got.dtype).toBe('int8');
    expect(Array.from(got.data as Int8Array)).toEqual(Array.from(want));
  });

  it('builds the Sigmoid table as quantize(sigmoid(dequantize(q)))', () => {
    const sIn = scaleOf(spec.activations.avg.threshold);
    const sOut = scaleOf(spec.activations.sig.threshold);
    const table = q.graph.initializers.get(nodeByName(q, 'sig').inputs[0])!.data as Int8Array;
    let same = 0;
    for (let i = 0; i < 256; i++) {
      const x = f32((i - 128) * sIn);
      const want = quant(1 / (1 + Math.exp(-x)), sOut);
      expect(Math.abs(table[i] - want)).toBeLessThanOrEqual(1);
      if (table[i] === want) same++;
    }
    expect(same).toBeGreaterThanOrEqual(250);
  });

  it('fake-quantizes the calibrated model with HzCalibration pairs (activations, per-channel weights)', () => {
    const dq = nodeByName(cal, 'conv1_HzCalibration');
    expect(dq.opType).toBe('DequantizeLinear');
    expect(producerOf(cal, dq.inputs[0])?.opType).toBe('QuantizeLinear');
    expect(nodeByName(cal, 'conv1').inputs[0]).toBe('x_HzCalibration');
    // the Conv output feeding Relu is fake-quantized with the Relu's scale (the fused clamp)
    expect(scalarInit(cal, dq.inputs[1])).toBe(scaleOf(spec.activations.relu1.threshold));
    const w = nodeByName(cal, 'conv1.weight_HzCalibration');
    expect(w.int('axis')).toBe(0);
    expect(cal.graph.initializers.get(w.inputs[1])?.dims).toEqual([8]);
    expect(nodeByName(cal, 'fc').inputs[1]).toBe('fc.weight_HzCalibration');
    expect(nodeByName(cal, 'fc.weight_HzCalibration').int('axis')).toBe(0); // Gemm transB = 1
    // biases stay float; CPU nodes read the fake-quantized tensor; the CPU output quantized where the BPU reads it
    expect(nodeByName(cal, 'conv1').inputs[2]).toBe('conv1.bias');
    expect(nodeByName(cal, 'conv3').inputs).toEqual(['pool_HzCalibration', 'conv3.weight', 'conv3.bias']);
    expect(nodeByName(cal, 'add').inputs).toEqual(['pool_HzCalibration', 'conv3_HzCalibration']);
    expect(nodeByName(cal, 'softmax').inputs).toEqual(['fc_HzCalibration']);
    expect(cal.graph.outputs.map((o) => o.name)).toEqual(['prob']);
  });

  it('passes onnx.checker (full check, strict shape inference)', () => {
    const err = onnxCheck({ calibrated: cal, quantized: q });
    if (err === undefined) return;
    expect(err).toBe('');
  });

  it('calibrated model stays close to the float model (reference engine and onnxruntime)', async () => {
    const fl = new ReferenceEngine(model);
    const cr = new ReferenceEngine(cal);
    const co = await OrtEngine.create(cal);
    try {
      for (const f of test) {
        const want = fl.runSync(f).prob.toFloat32();
        expect(cosine(want, cr.runSync(f).prob.toFloat32())).toBeGreaterThanOrEqual(0.99);
        expect(cosine(want, (await co.run(f)).prob.toFloat32())).toBeGreaterThanOrEqual(0.99);
      }
    } finally {
      await co.dispose();
    }
  });

  it('quantized model: onnxruntime matches the reference engine within one step on every int8 value', async () => {
    const r = await compareEngines(q, test, { prob: 1e-6 });
    expect(r.values).toBeGreaterThanOrEqual(20 * test.length);
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
    // the CPU Softmax mid-graph differs in the last bits between the engines (onnxruntime's exp),
    // which moves a few requantised values by one step; the rest of the graph adds no difference
    expect(r.worstExact).toBeGreaterThanOrEqual(0.5);
  });

  it('quantized model: bit-exact in onnxruntime when the CPU nodes are exact float ops (a CPU Conv mid-graph)', async () => {
    const m2 = mixedModel(false);
    const q2 = emitQuantizedModel(m2, { activations: maxThresholds(m2, calib), cpuNodes: new Set(['softmax', 'conv3']), march: 'bernoulli2' });
    const r = await compareEngines(q2, test, { prob: 1e-6 });
    expect(r.values).toBeGreaterThanOrEqual(20 * test.length);
    expect(r.worstExact).toBe(1);
  });

  it('quantized model stays close to the calibrated model', () => {
    const cr = new ReferenceEngine(cal);
    const qr = new ReferenceEngine(q);
    for (const f of test) {
      const a = cr.runSync(f, { fetch: ['fc'] });
      const b = qr.runSync(f, { fetch: ['fc'] });
      expect(cosine(a.prob.toFloat32(), b.prob.toFloat32())).toBeGreaterThanOrEqual(0.99);
      // the logits: int8 in the quantized model, fake-quantized float (fc) in the calibrated one
      const s = scaleOf(spec.activations.fc.threshold);
      const deq = Float32Array.from(b.fc.data as Int8Array, (v) => v * s);
      expect(cosine(a.fc.toFloat32(), deq)).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('is deterministic', () => {
    const again = emitQuantizedModel(mixedModel(), spec);
    expect(again.graph.nodes.map((n) => `${n.name}:${n.inputs}`)).toEqual(q.graph.nodes.map((n) => `${n.name}:${n.inputs}`));
    const info = JSON.parse(q.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
    expect(info.inputs).toEqual([{ name: 'x', dtype: 'float32', note: expect.stringMatching(/featuremap/) }]);
  });
});

describe('quantize: image input (HzPreprocess)', () => {
  function imageModel(): Model {
    const b = new GraphBuilder('img', { opset: 13, seed: 11 });
    const x = b.input('data', 'float32', [1, 3, 12, 12]);
    const y = b.relu(b.conv(x, { outChannels: 6, kernel: 3, pad: 1, name: 'conv' }), 'relu');
    b.output(b.conv(y, { outChannels: 4, kernel: 1, name: 'head' }), 'out');
    return insertPreprocess(b.build(), [
      { name: 'data', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174] },
    ]).model;
  }
  const model = imageModel();
  const calib = randomFeeds(model, 3, 2);
  const activations = maxThresholds(model, calib);
  const test = randomFeeds(model, 2, 3);

  it('bernoulli2: int8 NHWC input, Transpose on int8, the preprocessing conv reads it with scale 1', async () => {
    const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bernoulli2' };
    const q = emitQuantizedModel(model, spec);
    expect(q.graph.inputs.map((v) => [v.name, v.type?.dtype, v.type?.shape])).toEqual([['data', 'int8', [1, 12, 12, 3]]]);
    expect(q.graph.nodes[0].opType).toBe('Transpose');
    expect(q.graph.nodes[0].ints('perm')).toEqual([0, 3, 1, 2]);
    expect(q.graph.nodes.some((n) => n.opType === 'Cast')).toBe(false);
    const first = q.graph.nodes[1];
    expect(first.opType).toBe('QLinearConv'); // the colour conversion (YUV → RGB) conv
    expect(scalarInit(q, first.inputs[1])).toBe(1);
    // the calibrated model keeps the NCHW int8 input of the float model
    const cal = emitCalibratedModel(model, spec);
    expect(cal.graph.inputs.map((v) => [v.name, v.type?.dtype, v.type?.shape])).toEqual([['data', 'int8', [1, 3, 12, 12]]]);
    expect(onnxCheck({ cal, q }) ?? '').toBe('');
    const nhwc = test.map((f) => ({ data: toNhwc(f.data) }));
    const r = await compareEngines(q, nhwc, { out: scalarInit(q, 'out_scale') });
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
    expect(r.worstExact).toBeGreaterThanOrEqual(0.99);
    const fl = new ReferenceEngine(model);
    const cr = new ReferenceEngine(cal);
    const qr = new ReferenceEngine(q);
    test.forEach((f, i) => {
      const want = fl.runSync(f).out.toFloat32();
      expect(cosine(want, cr.runSync(f).out.toFloat32())).toBeGreaterThanOrEqual(0.99);
      expect(cosine(want, qr.runSync(nhwc[i]).out.toFloat32())).toBeGreaterThanOrEqual(0.99);
    });
  });

  it('bayes: the int8 input keeps the training layout', async () => {
    const q = emitQuantizedModel(model, { activations, cpuNodes: new Set(), march: 'bayes' });
    expect(q.graph.inputs.map((v) => [v.name, v.type?.dtype, v.type?.shape])).toEqual([['data', 'int8', [1, 3, 12, 12]]]);
    expect(q.graph.nodes[0].opType).toBe('QLinearConv');
    const r = await compareEngines(q, test, { out: scalarInit(q, 'out_scale') });
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
  });
});

describe('quantize: outputs, ConvTranspose, MatMul, per-tensor weights', () => {
  function headModel(): Model {
    const b = new GraphBuilder('heads', { opset: 13, seed: 5 });
    const x = b.input('x', 'float32', [1, 4, 6, 6]);
    const y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv' }), 'relu');
    const wt = b.initializer(b.randomTensor([8, 4, 2, 2], 0.3), 'up.weight');
    const bt = b.initializer(b.randomTensor([4], 0.05), 'up.bias');
    const up = b.node('ConvTranspose', [y, wt, bt], { kernel_shape: [2, 2], strides: [2, 2] }, 1, { name: 'up', shapes: [[1, 4, 12, 12]] })[0];
    b.output(up, 'seg');
    const seq = b.reshape(b.globalAvgPool(y, 'gap'), [1, 2, 4], 'seq');
    const w = b.initializer(b.randomTensor([4, 5], 0.5), 'proj.weight');
    b.output(b.node('MatMul', [seq, w], {}, 1, { name: 'proj', shapes: [[1, 2, 5]] })[0], 'emb');
    return b.build();
  }
  const model = headModel();
  const activations = maxThresholds(model, randomFeeds(model, 3, 4));
  const test = randomFeeds(model, 2, 6);

  it('ConvTranspose: exact integer form; MatMul: 1×1 QLinearConv with the leading dims restored', async () => {
    const q = emitQuantizedModel(model, { activations, cpuNodes: new Set(), march: 'bernoulli2' });
    const up = nodeByName(q, 'up');
    expect(up.opType).toBe('ConvTranspose');
    expect(producerOf(q, up.inputs[0])?.opType).toBe('Cast');
    expect(nodeByName(q, 'proj').opType).toBe('QLinearConv');
    const shapeOut = q.graph.nodes.find((n) => n.name === 'proj_reshape_out') as Node;
    expect(q.graph.initializers.get(shapeOut.inputs[1])?.toNumbers()).toEqual([-1, 2, 5]);
    const cal = emitCalibratedModel(model, { activations, cpuNodes: new Set(), march: 'bernoulli2' });
    expect(nodeByName(cal, 'up.weight_HzCalibration').int('axis')).toBe(1);
    expect(nodeByName(cal, 'proj.weight_HzCalibration').int('axis')).toBe(1);
    expect(onnxCheck({ cal, q }) ?? '').toBe('');
    const r = await compareEngines(q, test, { seg: scalarInit(q, 'seg_scale'), emb: scalarInit(q, 'emb_scale') });
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
    expect(r.worstExact).toBeGreaterThanOrEqual(0.99);
    const fl = new ReferenceEngine(model);
    const qr = new ReferenceEngine(q);
    for (const f of test) {
      const a = fl.runSync(f);
      const b = qr.runSync(f);
      expect(cosine(a.seg.toFloat32(), b.seg.toFloat32())).toBeGreaterThanOrEqual(0.99);
      expect(cosine(a.emb.toFloat32(), b.emb.toFloat32())).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('int8 outputs keep their names and carry the int8 values', async () => {
    const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bernoulli2' };
    const qf = emitQuantizedModel(model, spec);
    const q8 = emitQuantizedModel(model, { ...spec, outputType: 'int8' });
    expect(q8.graph.outputs.map((o) => [o.name, o.type?.dtype])).toEqual([['seg', 'int8'], ['emb', 'int8']]);
    const info = JSON.parse(q8.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
    expect(info.outputs.map((o) => o.scale)).toEqual([scaleOf(activations.seg.threshold), scaleOf(activations.emb.threshold)]);
    const a = new ReferenceEngine(qf).runSync(test[0], { fetch: ['seg_quantized'] });
    const b = new ReferenceEngine(q8).runSync(test[0]);
    expect(Array.from(b.seg.data as Int8Array)).toEqual(Array.from(a.seg_quantized.data as Int8Array));
    const r = await compareEngines(q8, test);
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
  });

  it('int16 outputs (bayes): requantised straight to int16, finer than int8', async () => {
    const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bayes', outputType: 'int16' };
    const q16 = emitQuantizedModel(model, spec);
    expect(q16.graph.outputs.map((o) => [o.name, o.type?.dtype])).toEqual([['seg', 'int16'], ['emb', 'int16']]);
    expect(onnxCheck({ q16 }) ?? '').toBe('');
    const r = await compareEngines(q16, test);
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
    const info = JSON.parse(q16.metadataProps[QUANT_INFO_KEY]) as QuantizedModelInfo;
    const qf = emitQuantizedModel(model, { ...spec, outputType: 'float32', march: 'bernoulli2' });
    const f = test[0];
    const want = new ReferenceEngine(model).runSync(f);
    const got16 = new ReferenceEngine(q16).runSync(f);
    const got8 = new ReferenceEngine(qf).runSync(f);
    for (const [k, name] of ['seg', 'emb'].entries()) {
      const s16 = info.outputs[k].scale as number;
      const s8 = scaleOf(activations[name].threshold);
      expect(s16).toBeCloseTo(activations[name].threshold / 32767, 9);
      const deq = Float32Array.from(got16[name].data as Int16Array, (v) => v * s16);
      expect(cosine(want[name].toFloat32(), deq)).toBeGreaterThanOrEqual(0.99);
      // the same accumulator rounded to a 256× finer grid: within half a step of each grid of the int8 result
      const d8 = got8[name].toFloat32();
      const q16v = got16[name].data as Int16Array;
      let finer = 0;
      deq.forEach((v, i) => {
        if (q16v[i] === -32768 || q16v[i] === 32767) return; // saturated in both (the int8 clamp is asymmetric by a step)
        expect(Math.abs(v - d8[i])).toBeLessThanOrEqual(0.5 * s8 + 0.5 * s16 + 1e-6);
        if (Math.abs(v - d8[i]) > s16) finer++;
      });
      expect(finer).toBeGreaterThan(deq.length / 4);
    }
    expect(ptqError(() => emitQuantizedModel(model, { ...spec, march: 'bernoulli2' })).code).toBe('E_CONFIG');
  });

  it('per-tensor weights: one scale per weight in both models', async () => {
    const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bernoulli2', perChannelWeights: false };
    const q = emitQuantizedModel(model, spec);
    const cal = emitCalibratedModel(model, spec);
    expect(q.graph.initializers.get(nodeByName(q, 'conv').inputs[4])?.dims).toEqual([]);
    expect(cal.graph.initializers.get(nodeByName(cal, 'conv.weight_HzCalibration').inputs[1])?.dims).toEqual([]);
    expect(nodeByName(cal, 'conv.weight_HzCalibration').has('axis')).toBe(false);
    const r = await compareEngines(q, test, { seg: scalarInit(q, 'seg_scale'), emb: scalarInit(q, 'emb_scale') });
    expect(r.worstWithin).toBeGreaterThanOrEqual(0.999);
  });
});

describe('quantize: Concat of equal scales', () => {
  it('runs directly on int8 when every input has the output scale', async () => {
    const b = new GraphBuilder('cat', { opset: 13, seed: 12 });
    const x = b.input('x', 'float32', [1, 3, 8, 8]);
    const r = b.relu(b.conv(x, { outChannels: 4, kernel: 3, pad: 1, name: 'conv' }), 'relu');
    const p = b.maxPool(r, { kernel: 2, stride: 2, name: 'pool' });
    const q1 = b.maxPool(r, { kernel: 2, stride: 2, name: 'pool_b' });
    b.output(b.concat([p, q1], 1, 'cat'), 'out');
    const model = b.build();
    const feeds = randomFeeds(model, 2, 13);
    const spec: QuantizeSpec = { activations: maxThresholds(model, feeds), cpuNodes: new Set(), march: 'bernoulli2' };
    // the concat of two copies has the range of one: give it exactly the inputs' threshold
    spec.activations.out = { threshold: spec.activations.relu.threshold };
    const q = emitQuantizedModel(model, spec);
    const cat = nodeByName(q, 'cat');
    expect(cat.opType).toBe('Concat');
    expect(cat.inputs).toEqual(['pool', 'pool_b']);
    const r2 = await compareEngines(q, feeds, { out: scalarInit(q, 'out_scale') });
    expect(r2.worstExact).toBe(1);
  });
});

describe('quantize: opset and errors', () => {
  it('converts opset 9 Upsample, Clip, Pad and a coerced Softmax exactly', () => {
    const b = new GraphBuilder('old', { opset: 9, seed: 8 });
    const x = b.input('x', 'float32', [1, 3, 8, 8]);
    const y = b.clip(b.conv(x, { outChannels: 4, kernel: 3, name: 'conv' }), 0, 6, 'relu6');
    const p = b.node('Pad', [y], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant' }, 1, { name: 'pad', shapes: [[1, 4, 8, 8]] })[0];
    const up = b.node('Upsample', [p, b.initializer(tensorFrom('float32', [4], [1, 1, 2, 2]), 'up.scales')], { mode: 'nearest' }, 1, { name: 'up', shapes: [[1, 4, 16, 16]] })[0];
    b.output(b.node('Softmax', [up], { axis: 1 }, 1, { name: 'sm', shapes: [[1, 4, 16, 16]] })[0], 'out');
    const model = b.build();
    const feeds = randomFeeds(model, 2, 9);
    const activations = maxThresholds(model, feeds);
    const spec: QuantizeSpec = { activations, cpuNodes: new Set(), march: 'bernoulli2' };
    const q = emitQuantizedModel(model, spec);
    const cal = emitCalibratedModel(model, spec);
    for (const m of [q, cal]) expect(m.opset('')).toBe(13);
    expect(nodeByName(q, 'up').opType).toBe('Resize');
    expect(nodeByName(q, 'up').str('nearest_mode')).toBe('floor');
    expect(nodeByName(q, 'sm').opType).toBe('Softmax');
    expect(nodeByName(q, 'sm_reshape_in').opType).toBe('Reshape');
    expect(nodeByName(q, 'sm_reshape_out').opType).toBe('Reshape');
    expect(onnxCheck({ cal, q }) ?? '').toBe('');
    // the upgraded (and fake-quantized) model still computes what the opset 9 model computed
    const calRef = new ReferenceEngine(cal).runSync(feeds[0]).out.toFloat32();
    const want = new ReferenceEngine(model).runSync(feeds[0]).out.toFloat32();
    expect(cosine(want, calRef)).toBeGreaterThanOrEqual(0.99);
  });

  it('names the tensors without a threshold', () => {
    const model = mixedModel();
    const activations = maxThresholds(model, randomFeeds(model, 1, 1));
    delete activations.avg;
    delete activations.conv4;
    const e = ptqError(() => emitQuantizedModel(model, { activations, cpuNodes: new Set(), march: 'bernoulli2' }));
    expect(e.code).toBe('E_QUANT_THRESHOLD');
    expect(e.message).toMatch(/'conv4'.*'avg'/);
  });

  it('refuses an already quantized model', () => {
    const model = mixedModel();
    const activations = maxThresholds(model, randomFeeds(model, 1, 1));
    const q = emitQuantizedModel(model, { activations, cpuNodes: new Set(), march: 'bernoulli2' });
    expect(ptqError(() => emitQuantizedModel(q, { activations, cpuNodes: new Set(), march: 'bernoulli2' })).code).toBe('E_QUANT_INPUT');
  });

  it('float results of withinStep helper are measured per element', () => {
    const a = new Tensor('int8', [4], Int8Array.from([1, 2, 3, 4]));
    const b = new Tensor('int8', [4], Int8Array.from([1, 3, 5, 4]));
    expect(withinStep(a, b, 1)).toEqual({ within: 0.75, exact: 0.5, n: 4 });
  });
});
