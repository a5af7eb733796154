import { isPtqError } from '../errors';
import { Rng } from '../kernels/random';
import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { BinEngine } from '../runtime/bin-engine';
import { ReferenceEngine } from '../runtime/reference';
import { BinModel } from './bin-format';
import { compileQuantizedModel, CompileOptions } from './compile';
import { compareWithReference, pairedFeeds, PipelineModels, quantizeThroughPipeline } from './compile.test.util';

/**
 * The model's boundary: remove_node_type / remove_node_name (boundary nodes only, in order,
 * recorded as deleted nodes), layer_out_dump (a dequantized output per convolution, equal to
 * the reference's int8 value × scale), output_nodes.
 */

jest.setTimeout(60_000);

function net(): Model {
  const b = new GraphBuilder('edge', { seed: 21 });
  const x = b.input('x', 'float32', [1, 3, 8, 8]);
  const y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'c1' }));
  const z = b.relu(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, name: 'c2' }));
  b.output(b.conv(z, { outChannels: 4, kernel: 1, name: 'c3' }), 'out');
  return b.build();
}

let models: PipelineModels;
beforeAll(() => {
  models = quantizeThroughPipeline(net());
});

const compile = (opts: CompileOptions): BinModel => compileQuantizedModel(models.quantized, { cpuNodes: models.cpuNodes, ...opts }).model;

/** Quantized-model value of output `out` (its int8 value before the DequantizeLinear). */
function int8Of(q: Model, out: string): string {
  return q.graph.nodes.find((n) => n.outputs[0] === out && n.opType === 'DequantizeLinear')!.inputs[0];
}

describe('remove_node_type / remove_node_name', () => {
  it('Quantize then Dequantize: int8 input and output, recorded with their scales', () => {
    const m = compile({ removeNodeType: ['Quantize', 'Dequantize'] });
    expect(m.deletedNodes.map((d) => [d.opType, d.position, d.io])).toEqual([
      ['Quantize', 'input', 'x'],
      ['Dequantize', 'output', 'out'],
    ]);
    const [qDel, dqDel] = m.deletedNodes;
    const inScale = qDel.attrs.find((a) => a.name === 'scale')!.f as number;
    const outScale = dqDel.attrs.find((a) => a.name === 'scale')!.f as number;
    expect(m.inputs[0]).toMatchObject({ name: 'x', dtype: 'int8', scale: inScale });
    expect(m.outputs[0]).toMatchObject({ name: 'out', dtype: 'int8', scale: outScale });
    expect(m.deletedNodes[0].info).toMatch(/^x_HzQuantize Quantize input=x scale=/);
    // the application quantizes and dequantizes itself: same numbers as the reference's int8 values
    const engine = new BinEngine(m);
    const ref = new ReferenceEngine(models.quantized);
    const rng = new Rng(3);
    const qIn = models.quantized.graph.nodes.find((n) => n.opType === 'QuantizeLinear' && n.inputs[0] === 'x')!.outputs[0];
    const qOut = int8Of(models.quantized, 'out');
    for (let s = 0; s < 3; s++) {
      const x = new Tensor('float32', [1, 3, 8, 8], rng.fillNormal(new Float32Array(192), 0, 1));
      const r = ref.runSync({ x }, { fetch: [qIn, qOut] });
      // the .bin's input is the int8 value of x, in its (plain) layout
      const got = engine.runSync({ x: r[qIn] });
      expect(Array.from(got.out.data as Int8Array)).toEqual(Array.from(r[qOut].data as Int8Array));
    }
  });

  it('Transpose at the output after Dequantize: NHWC int8 output', () => {
    const m = compile({ removeNodeType: ['Dequantize', 'Transpose'] });
    expect(m.deletedNodes.map((d) => d.opType)).toEqual(['Dequantize', 'Transpose']);
    expect(m.outputs[0]).toMatchObject({ dtype: 'int8', layout: 'NHWC', shape: [1, 8, 8, 4] });
  });

  it('the order matters: a Transpose is only at the boundary once the node before it is gone', () => {
    const m = compile({ removeNodeType: ['Transpose', 'Dequantize'] });
    expect(m.deletedNodes.map((d) => [d.opType, d.position])).toEqual([['Dequantize', 'output']]);
    expect(m.outputs[0].layout).toBe('NCHW');
    const n = compile({ removeNodeType: ['Quantize', 'Transpose'] });
    expect(n.deletedNodes.map((d) => [d.opType, d.position])).toEqual([
      ['Quantize', 'input'],
      ['Transpose', 'input'],
    ]);
    expect(n.inputs[0]).toMatchObject({ dtype: 'int8', layout: 'NHWC', shape: [1, 8, 8, 3] });
  });

  it('by name, in order; a node inside the model or an unknown name is a one-line config error', () => {
    const m = compile({ removeNodeName: ['out_HzDequantize'] });
    expect(m.deletedNodes.map((d) => d.name)).toEqual(['out_HzDequantize']);
    const err = (names: string[]): string => {
      try {
        compile({ removeNodeName: names });
      } catch (e) {
        if (!isPtqError(e)) throw e;
        expect(e.code).toBe('E_CONFIG');
        return e.message + ' | ' + e.fix;
      }
      throw new Error('no error');
    };
    expect(err(['c2'])).toMatch(/node 'c2' \(Conv\) is not a Quantize, Dequantize, Transpose, Cast or Reshape node next to a model input or output.*out_HzDequantize/);
    expect(err(['nope'])).toMatch(/remove_node_name names 'nope'/);
  });
});

describe('layer_out_dump', () => {
  it('adds a dequantized output per convolution, equal to the reference\'s int8 value × scale', () => {
    const m = compile({ layerOutDump: true, optimizeLevel: 'O3' });
    expect(m.outputs.map((o) => o.name)).toEqual(['out', 'c1', 'c2']);
    expect(m.outputs.every((o) => o.dtype === 'float32')).toBe(true);
    const engine = new BinEngine(m);
    const r = compareWithReference((f) => engine.runSync(f), m, models.quantized, 3, 5, (name, ref) => {
      if (name === 'out') return ref.out;
      // dequantize the reference's int8 conv output exactly as the runtime does
      const t = ref[name];
      const s = m.outputs.find((o) => o.name === name)!;
      const v = m.values.find((x) => x.name === name)!;
      void s;
      return new Tensor('float32', t.dims, Float32Array.from(t.data as Int8Array, (q) => Math.fround(q * v.scale)));
    });
    expect(r.mismatch).toBeUndefined();
    // the dumped convolutions keep their own output: their Relu is not fused away
    expect(m.segments.flatMap((s) => s.ops).filter((o) => o.type === 'Clip').length).toBe(2);
  });
});

describe('output_nodes', () => {
  it('exposes a named node\'s output (dequantized) and ignores names the check stage already cut', () => {
    const m = compile({ outputNodes: ['c1', 'no_longer_there'] });
    expect(m.outputs.map((o) => o.name)).toEqual(['out', 'c1']);
    const engine = new BinEngine(m);
    const feeds = pairedFeeds(m, models.quantized, new Rng(1));
    const got = engine.runSync(feeds.bin);
    const ref = new ReferenceEngine(models.quantized).runSync(feeds.ref, { fetch: ['c1'] });
    const scale = m.values.find((v) => v.name === 'c1')!.scale;
    expect(Array.from(got.c1.data as Float32Array)).toEqual(Array.from(ref.c1.data as Int8Array, (q) => Math.fround(q * scale)));
  });
});
