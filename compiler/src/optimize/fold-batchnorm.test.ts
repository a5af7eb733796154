import { floatAttr, GraphBuilder, Value } from '../onnx/builder';
import { Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { bnAffine, foldBatchNorm } from './fold-batchnorm';
import { cloneModel, opCounts, opTypes, outputError } from './optimize.test.util';

/** Conv/ConvTranspose/Gemm → BN models; the optimized copy must compute the same outputs. */
function check(m: Model): { opt: Model; changed: number; notes: string[] } {
  const opt = cloneModel(m);
  const r = foldBatchNorm(opt);
  opt.graph.validate();
  expect(outputError(m, opt)).toBeLessThanOrEqual(1e-4);
  return { opt, ...r };
}

function convTranspose(b: GraphBuilder, x: Value, cin: number, m: number, group: number, name: string): Value {
  const w = b.initializer(b.randomTensor([cin, m / group, 3, 3], 0.3), `${name}.weight`);
  const bias = b.initializer(b.randomTensor([m], 0.1), `${name}.bias`);
  const s = x.shape as number[];
  return b.node('ConvTranspose', [x, w, bias], { group, kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, 1, {
    name, shapes: [[s[0], m, s[2] * 2, s[3] * 2]],
  })[0];
}

describe('foldBatchNorm', () => {
  it('folds BN into a bias-free Conv, a depthwise Conv with bias, and keeps the graph output name', () => {
    const b = new GraphBuilder('convbn', { seed: 3 });
    const x = b.input('x', 'float32', [2, 3, 9, 9]);
    let y = b.relu(b.batchNorm(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, bias: false })));
    y = b.batchNorm(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, group: 8, stride: 2 }), { epsilon: 1e-3 });
    b.output(y, 'out');
    const m = b.build();
    const { opt, changed } = check(m);
    expect(changed).toBe(2);
    expect(opTypes(opt)).toEqual(['Conv', 'Relu', 'Conv']);
    expect(opt.graph.nodes[2].outputs[0]).toBe('out');
    expect(opt.graph.nodes[0].inputs).toHaveLength(3); // a bias was added
    // the folded weights differ from the originals (the test would pass trivially otherwise)
    expect(opt.graph.initializers.get(opt.graph.nodes[0].inputs[1])!.toNumbers()).not.toEqual(m.graph.initializers.get('Conv_0.weight')!.toNumbers());
  });

  it('folds BN into a grouped ConvTranspose (weights laid out [C, M/G, k, k])', () => {
    const b = new GraphBuilder('deconvbn', { seed: 4 });
    const x = b.input('x', 'float32', [1, 4, 5, 5]);
    b.output(b.batchNorm(convTranspose(b, x, 4, 6, 2, 'up')), 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(1);
    expect(opTypes(opt)).toEqual(['ConvTranspose']);
  });

  it('folds BN into Gemm with transB 0 and 1 and with a scalar C and alpha/beta', () => {
    for (const transB of [0, 1]) {
      const b = new GraphBuilder('gemmbn', { seed: 5 + transB });
      const x = b.input('x', 'float32', [3, 6]);
      const w = b.initializer(b.randomTensor(transB ? [5, 6] : [6, 5], 0.5));
      const c = b.initializer(tensorFrom('float32', [], [0.3]));
      const g = b.node('Gemm', [x, w, c], { transB, alpha: floatAttr(0.7), beta: floatAttr(1.5) }, 1, { shapes: [[3, 5]] })[0];
      b.output(b.batchNorm(g), 'y');
      const { opt, changed } = check(b.build());
      expect(changed).toBe(1);
      expect(opTypes(opt)).toEqual(['Gemm']);
    }
  });

  it('does not fold into a Conv whose output is also read elsewhere: the BN becomes Mul + Add', () => {
    const b = new GraphBuilder('shared', { seed: 6 });
    const x = b.input('x', 'float32', [1, 3, 6, 6]);
    const c = b.conv(x, { outChannels: 4, kernel: 3, pad: 1 });
    b.output(b.batchNorm(c), 'bn');
    b.output(b.relu(c), 'side');
    const m = b.build();
    const { opt, notes } = check(m);
    expect(opCounts(opt)).toEqual({ Conv: 1, Mul: 1, Add: 1, Relu: 1 });
    expect(opt.graph.initializers.get('Conv_0.weight')).toBe(opt.graph.initializers.get(opt.graph.nodes[0].inputs[1]));
    expect(opt.graph.initializers.get('Conv_0.weight')!.toNumbers()).toEqual(m.graph.initializers.get('Conv_0.weight')!.toNumbers());
    expect(notes.join('\n')).toMatch(/also read elsewhere/);
  });

  it('turns a BN on a graph input or after Relu into Mul + Add with [C,1,1] constants', () => {
    const b = new GraphBuilder('standalone', { seed: 7 });
    const x = b.input('x', 'float32', [2, 5, 4, 3]);
    b.output(b.batchNorm(b.relu(b.batchNorm(x))), 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(2);
    expect(opTypes(opt)).toEqual(['Mul', 'Add', 'Relu', 'Mul', 'Add']);
    expect(opt.graph.initializers.get(opt.graph.nodes[0].inputs[1])!.dims).toEqual([5, 1, 1]);
  });

  it('keeps a Gemm whose C varies per row, converting the BN instead', () => {
    const b = new GraphBuilder('rowbias', { seed: 8 });
    const x = b.input('x', 'float32', [2, 4]);
    const w = b.initializer(b.randomTensor([4, 3], 0.5));
    const c = b.initializer(b.randomTensor([2, 3], 0.5));
    const g = b.node('Gemm', [x, w, c], {}, 1, { shapes: [[2, 3]] })[0];
    b.output(b.batchNorm(g), 'y');
    const { opt, notes } = check(b.build());
    expect(opTypes(opt)).toEqual(['Gemm', 'Mul', 'Add']);
    expect(notes.join('\n')).toMatch(/per-column/);
  });

  it('does not touch the other reader of a shared weight', () => {
    const b = new GraphBuilder('sharedweight', { seed: 9 });
    const x = b.input('x', 'float32', [1, 3, 5, 5]);
    const w = b.initializer(b.randomTensor([3, 3, 1, 1], 0.5), 'w');
    const c1 = b.node('Conv', [x, w], {}, 1, { shapes: [[1, 3, 5, 5]] })[0];
    const c2 = b.node('Conv', [x, w], {}, 1, { shapes: [[1, 3, 5, 5]] })[0];
    b.output(b.batchNorm(c1), 'a');
    b.output(c2, 'b');
    const m = b.build();
    const { opt } = check(m);
    expect(opTypes(opt)).toEqual(['Conv', 'Conv']);
    const conv2 = opt.graph.nodes.find((n) => n.outputs[0] === 'b')!;
    expect(conv2.inputs[1]).toBe('w');
    expect(opt.graph.nodes.find((n) => n.outputs[0] === 'a')!.inputs[1]).not.toBe('w');
  });

  it('keeps a BN whose statistics are not constants', () => {
    const b = new GraphBuilder('dynbn', { seed: 10 });
    const x = b.input('x', 'float32', [1, 2, 3, 3]);
    const mean = b.input('mean', 'float32', [2]);
    const ones = b.initializer(tensorFrom('float32', [2], [1, 1]));
    const zeros = b.initializer(tensorFrom('float32', [2], [0, 0]));
    b.output(b.node('BatchNormalization', [b.conv(x, { outChannels: 2, kernel: 1 }), ones, zeros, mean, ones], {}, 1, { shapes: [[1, 2, 3, 3]] })[0], 'y');
    const opt = cloneModel(b.build());
    const r = foldBatchNorm(opt);
    expect(r.changed).toBe(0);
    expect(opCounts(opt).BatchNormalization).toBe(1);
    expect(r.notes.join('\n')).toMatch(/not a constant/);
  });

  it('refuses training-mode BN and BN whose running statistics are read', () => {
    const b = new GraphBuilder('train', { seed: 11, opset: 15 });
    const x = b.input('x', 'float32', [1, 2, 3, 3]);
    const bn = b.batchNorm(x);
    b.output(bn, 'y');
    const m = b.build();
    const node = m.graph.nodes[0];
    expect(typeof bnAffine(m, node)).toBe('object');
    node.setAttr('training_mode', { type: 'int', value: 1 });
    expect(bnAffine(m, node)).toMatch(/training mode/);
    node.attrs.delete('training_mode');
    node.outputs.push('rm');
    m.graph.outputs.push({ name: 'rm' });
    expect(bnAffine(m, node)).toMatch(/running statistics/);
  });

  it('computes a = γ/√(var+ε), b = β − mean·a', () => {
    const g = new Node({ opType: 'BatchNormalization', inputs: ['x', 's', 'b', 'm', 'v'], outputs: ['y'], attrs: { epsilon: floatAttr(0.5) } });
    const b = new GraphBuilder('p');
    const model = b.build();
    model.graph.nodes.push(g);
    for (const [k, v] of [['s', [2, 3]], ['b', [1, -1]], ['m', [0.5, 2]], ['v', [1.5, 3.5]]] as const) {
      model.graph.initializers.set(k, new Tensor('float32', [2], Float32Array.from(v)));
    }
    const p = bnAffine(model, g);
    if (typeof p === 'string') throw new Error(p);
    expect(Array.from(p.scale)).toEqual([2 / Math.sqrt(2), 3 / Math.sqrt(4)]);
    expect(p.shift[0]).toBeCloseTo(1 - 0.5 * Math.SQRT2, 6);
    expect(p.shift[1]).toBeCloseTo(-1 - 2 * 1.5, 6);
  });
});
