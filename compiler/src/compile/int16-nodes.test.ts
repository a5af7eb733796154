import '../ops';
import { GraphBuilder, Value } from '../onnx/builder';
import { BinEngine } from '../runtime/bin-engine';
import { BinModel, decodeBin, encodeBin } from './bin-format';
import { compileQuantizedModel, CompileOptions } from './compile';
import { int16Net } from '../quantize/int16.test.util';
import { compareWithReference, PipelineModels, quantizeThroughPipeline } from './compile.test.util';

/**
 * node_info int16 nodes (bayes): the check stage places them on the BPU, and so must the
 * `.bin` — the integer patterns the quantizer writes for them (ConvInteger accumulators, the
 * 256·hi + lo split of an int16 input, passive ops on int16 values, requantising ops with int16
 * operands) are BPU work, not CPU ops — while the results stay bit-exact with the
 * ReferenceEngine on `***_quantized_model.onnx`.
 */

jest.setTimeout(120_000);

function compile(m: PipelineModels, opts: CompileOptions): BinModel {
  const { model } = compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, march: 'bayes', ...opts });
  return decodeBin(encodeBin({ formatVersion: 1, packed: false, models: [model] }), 'test.bin').models[0];
}

function expectExact(m: PipelineModels, bin: BinModel, samples: number): void {
  const engine = new BinEngine(bin);
  const r = compareWithReference((f) => engine.runSync(f), bin, m.quantized, samples, 3);
  expect(r.mismatch).toBeUndefined();
  expect(r.samples).toBe(samples);
}

/** Quantized-model node → the kinds of the segments holding the ops that stand for it. */
function segmentKinds(bin: BinModel): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const s of bin.segments) for (const op of s.ops) for (const src of op.sourceNodes) (out.get(src) ?? out.set(src, new Set()).get(src)!).add(s.kind);
  return out;
}

/** Every node check placed on the BPU (by its name in the quantized model) is lowered onto the BPU only. */
function expectCheckPlacement(m: PipelineModels, bin: BinModel): void {
  const kinds = segmentKinds(bin);
  const wrong: string[] = [];
  for (const n of m.placement.nodes) {
    const k = kinds.get(n.name);
    if (!k) continue;
    if (n.on === 'BPU' && k.has('cpu')) wrong.push(`${n.name} (check: BPU, .bin: CPU)`);
    if (n.on === 'CPU' && k.has('bpu')) wrong.push(`${n.name} (check: CPU, .bin: BPU)`);
  }
  expect(wrong).toEqual([]);
}

/** The sources of every op in a CPU segment. */
const cpuSources = (bin: BinModel): string[] =>
  [...new Set(bin.segments.filter((s) => s.kind === 'cpu').flatMap((s) => s.ops.flatMap((op) => op.sourceNodes)))].sort();

const int16 = { OutputType: 'int16' };

describe('node_info int16 nodes in the .bin (bayes)', () => {
  it('int16 convolutions, passive ops and a requantising Add stay on the BPU with the rest: one subgraph, bit-exact', () => {
    const m = quantizeThroughPipeline(int16Net(), { march: 'bayes', nodeInfo: { c1: int16, c2: int16, c5: int16, fc_conv: int16 } });
    // the check stage puts every node on the BPU, with int16 outputs where asked
    expect(m.placement.nodes.filter((n) => n.on === 'CPU')).toEqual([]);
    expect(m.placement.nodes.filter((n) => n.outputType === 'int16').map((n) => n.name).sort()).toEqual(['c1', 'c2', 'c5', 'fc_conv']);
    for (const level of ['O0', 'O3'] as const) {
      const bin = compile(m, { optimizeLevel: level });
      expectExact(m, bin, 3);
      expectCheckPlacement(m, bin);
      expect(bin.segments.filter((s) => s.kind === 'bpu').length).toBe(1);
      // on the CPU: the featuremap's Quantize and the dequantized int16 output only
      expect(cpuSources(bin)).toEqual(['x_QuantizeLinear', 'y_int16_cast', 'y_int16_dequantize']);
      // the int16 values the BPU writes keep their dtype
      const dtype = (v: string): string | undefined => bin.values.find((x) => x.name === v)?.dtype;
      for (const v of ['c1', 'r1', 'c2', 'r2', 'c5']) expect([v, dtype(v)]).toEqual([v, 'int16']);
    }
  });

  it('a ConvTranspose and a Sigmoid reading int16, and a CPU node reading int16 (node_info ON CPU)', () => {
    const b = new GraphBuilder('int16b', { opset: 13, seed: 5 });
    const x = b.input('x', 'float32', [1, 4, 8, 8]);
    const c1 = b.conv(x, { outChannels: 6, kernel: 3, pad: 1, name: 'c1' });
    const wt = b.initializer(b.randomTensor([6, 4, 2, 2], 0.3), 'up.weight');
    const [up] = b.node('ConvTranspose', [c1, wt], { strides: [2, 2], kernel_shape: [2, 2] }, 1, { name: 'up', shapes: [[1, 4, 16, 16]] });
    const c2 = b.conv(b.relu(up, 'up_relu'), { outChannels: 4, kernel: 3, pad: 1, name: 'c2' });
    const s: Value = b.sigmoid(c2, 'sig');
    b.output(b.concat([s, b.conv(up, { outChannels: 4, kernel: 1, name: 'c3' })], 1, 'cat'), 'y');
    const [sm] = b.node('Softmax', [c1], { axis: 1 }, 1, { name: 'sm', shapes: [[1, 6, 8, 8]] });
    b.output(sm, 'p');
    const m = quantizeThroughPipeline(b.build(), { march: 'bayes', nodeInfo: { c1: int16, c2: int16, sig: int16, sm: { ON: 'CPU' } } });
    expect(m.placement.nodes.filter((n) => n.on === 'CPU').map((n) => n.name)).toEqual(['sm']);
    for (const level of ['O0', 'O3'] as const) {
      const bin = compile(m, { optimizeLevel: level });
      expectExact(m, bin, 2);
      expectCheckPlacement(m, bin);
      expect(bin.segments.filter((s) => s.kind === 'bpu').length).toBe(1);
      // the CPU Softmax reads c1 dequantized on the CPU (Cast → Mul), nothing else of the BPU work runs there
      expect(cpuSources(bin).filter((n) => !/^(x_QuantizeLinear|sm|c1_int16_cast|c1_int16_dequantize|.*_DequantizeLinear)$/.test(n))).toEqual([]);
      expect(segmentKinds(bin).get('sm')).toEqual(new Set(['cpu']));
    }
  });

  it('int16 results of requantising ops with int8 operands stay fused ops (Eltwise, Requant) with an int16 output', () => {
    const b = new GraphBuilder('int16c', { opset: 13, seed: 9 });
    const x = b.input('x', 'float32', [1, 4, 8, 8]);
    const a = b.conv(x, { outChannels: 4, kernel: 3, pad: 1, name: 'ca' });
    const c = b.conv(x, { outChannels: 4, kernel: 1, name: 'cb' });
    const s = b.relu(b.add(a, c, 'sum'), 'sum_relu');
    b.output(b.conv(b.sigmoid(b.conv(s, { outChannels: 4, kernel: 1, name: 'cc' }), 'sig'), { outChannels: 2, kernel: 1, name: 'out' }), 'y');
    const m = quantizeThroughPipeline(b.build(), { march: 'bayes', nodeInfo: { sum: int16, sig: int16 } });
    expect(m.placement.nodes.filter((n) => n.outputType === 'int16').map((n) => n.name).sort()).toEqual(['sig', 'sum']);
    const bin = compile(m, { optimizeLevel: 'O3' });
    expectExact(m, bin, 2);
    expectCheckPlacement(m, bin);
    expect(bin.segments.filter((seg) => seg.kind === 'bpu').length).toBe(1);
    const opOf = (src: string) => bin.segments.flatMap((seg) => seg.ops).find((op) => op.sourceNodes.includes(src));
    const outDtype = (src: string) => opOf(src)?.attrs.find((t) => t.name === 'out_dtype')?.s;
    expect([opOf('sum')?.type, outDtype('sum')]).toEqual(['Eltwise', 'int16']);
    expect([opOf('sig')?.type, outDtype('sig')]).toEqual(['Requant', 'int16']);
  });
  it("an int8 ConvTranspose (ConvFloatAcc) records its result's real scale, not the 1 of the QuantizeLinear writing it", () => {
    const b = new GraphBuilder('ct8', { opset: 13, seed: 3 });
    const x = b.input('x', 'float32', [1, 4, 8, 8]);
    const c1 = b.conv(x, { outChannels: 6, kernel: 3, pad: 1, name: 'c1' });
    const wt = b.initializer(b.randomTensor([6, 4, 2, 2], 0.3), 'up.weight');
    const [up] = b.node('ConvTranspose', [c1, wt], { strides: [2, 2], kernel_shape: [2, 2] }, 1, { name: 'up', shapes: [[1, 4, 16, 16]] });
    b.output(b.conv(b.relu(up, 'up_relu'), { outChannels: 4, kernel: 3, pad: 1, name: 'c2' }), 'y');
    const m = quantizeThroughPipeline(b.build(), { march: 'bayes' });
    const bin = compile(m, { optimizeLevel: 'O0' });
    expectExact(m, bin, 2);
    const op = bin.segments.flatMap((sg) => sg.ops).find((o) => o.type === 'ConvFloatAcc' && o.sourceNodes.includes('up'))!;
    expect(op).toBeDefined();
    const value = bin.values.find((v) => v.name === op.outputs[0])!;
    expect(value.dtype).toBe('int8');
    // the scale c2 (QLinearConv) reads it with, through the passive Relu: its x_scale
    const g = m.quantized.graph;
    const c2 = g.nodes.find((n) => n.opType === 'QLinearConv' && n.name.startsWith('c2'))!;
    expect(value.scale).toBe(g.initializers.get(c2.inputs[1])!.toNumbers()[0]);
    expect(value.scale).not.toBe(1);
  });
});
