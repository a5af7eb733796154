import { floatAttr, GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { tensorFrom } from '../onnx/tensor';
import { gemmToConv } from './gemm-to-conv';
import { cloneModel, opTypes, outputError } from './optimize.test.util';

function check(m: Model): { opt: Model; changed: number; notes: string[] } {
  const opt = cloneModel(m);
  const r = gemmToConv(opt);
  opt.graph.validate();
  expect(outputError(m, opt)).toBeLessThanOrEqual(1e-4);
  return { opt, ...r };
}

describe('gemmToConv', () => {
  it('turns GlobalAveragePool → Flatten → Gemm(transB 1) into a 1×1 Conv + Flatten with the same output name and shape', () => {
    const b = new GraphBuilder('head', { seed: 1 });
    const x = b.input('x', 'float32', [2, 8, 5, 5]);
    b.output(b.gemm(b.flatten(b.globalAvgPool(b.conv(x, { outChannels: 6, kernel: 3 }))), 4), 'logits');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(1);
    expect(opTypes(opt)).toEqual(['Conv', 'GlobalAveragePool', 'Conv', 'Flatten']);
    const conv = opt.graph.nodes[2];
    expect(opt.graph.initializers.get(conv.inputs[1])!.dims).toEqual([4, 6, 1, 1]);
    expect(opt.graph.nodes[3].outputs[0]).toBe('logits');
  });

  it('turns Reshape([0,-1]) of a 3×3 map → Gemm(transB 0, alpha, beta, C [1,M]) into a 3×3 Conv', () => {
    const b = new GraphBuilder('map', { seed: 2 });
    const x = b.input('x', 'float32', [2, 5, 3, 3]);
    const flat = b.reshape(x, [0, -1]);
    const w = b.initializer(b.randomTensor([45, 7], 0.2));
    const c = b.initializer(b.randomTensor([1, 7], 0.2));
    b.output(b.node('Gemm', [flat, w, c], { alpha: floatAttr(0.5), beta: floatAttr(2) }, 1, { shapes: [[2, 7]] })[0], 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(1);
    expect(opTypes(opt)).toEqual(['Conv', 'Flatten']);
    expect(opt.graph.nodes[0].ints('kernel_shape')).toEqual([3, 3]);
  });

  it('turns Flatten → MatMul → Add(bias) into one Conv with bias, and Squeeze(2,3) → Gemm too', () => {
    const b = new GraphBuilder('matmul', { seed: 3 });
    const x = b.input('x', 'float32', [3, 6, 1, 1]);
    const w = b.initializer(b.randomTensor([6, 4], 0.4));
    const mm = b.node('MatMul', [b.flatten(x), w], {}, 1, { shapes: [[3, 4]] })[0];
    b.output(b.node('Add', [mm, b.initializer(b.randomTensor([4], 0.3))], {}, 1, { shapes: [[3, 4]] })[0], 'a');
    const axes = b.initializer(tensorFrom('int64', [2], [3, 2]));
    const sq = b.node('Squeeze', [x, axes], {}, 1, { shapes: [[3, 6]] })[0];
    b.output(b.gemm(sq, 5), 'b');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(2);
    expect(opTypes(opt)).toEqual(['Conv', 'Flatten', 'Conv', 'Flatten']);
    expect(opt.graph.nodes[0].inputs).toHaveLength(3);
  });

  it('keeps a Flatten that has another reader', () => {
    const b = new GraphBuilder('shared', { seed: 4 });
    const x = b.input('x', 'float32', [1, 4, 1, 1]);
    const flat = b.flatten(x);
    b.output(b.gemm(flat, 3), 'y');
    b.output(b.relu(flat), 'z');
    const { opt } = check(b.build());
    expect(opTypes(opt)).toEqual(['Flatten', 'Conv', 'Flatten', 'Relu']);
  });

  it('leaves alone: a plain 2-D input, a per-row C, a map bigger than 7×7, Flatten(axis 2), and Reshape to [-1, k] where k ≠ C·H·W', () => {
    const b = new GraphBuilder('neg', { seed: 5 });
    const v = b.input('v', 'float32', [2, 6]);
    b.output(b.gemm(v, 3), 'plain');
    const x = b.input('x', 'float32', [2, 3, 1, 1]);
    const w = b.initializer(b.randomTensor([3, 4], 0.4));
    const c = b.initializer(b.randomTensor([2, 4], 0.4));
    b.output(b.node('Gemm', [b.flatten(x), w, c], {}, 1, { shapes: [[2, 4]] })[0], 'rowbias');
    const big = b.input('big', 'float32', [1, 2, 8, 8]);
    b.output(b.gemm(b.flatten(big), 3), 'big_out');
    const f2 = b.flatten(b.input('f', 'float32', [2, 3, 2, 2]), 2); // [6, 4]
    b.output(b.gemm(f2, 2), 'axis2');
    const r = b.reshape(b.input('r', 'float32', [2, 4, 1, 2]), [-1, 4]); // [4, 4]: batch not kept
    b.output(b.gemm(r, 2), 'rows');
    const m = b.build();
    const { opt, changed, notes } = check(m);
    expect(changed).toBe(0);
    expect(opTypes(opt)).toEqual(opTypes(m));
    expect(notes.join('\n')).toMatch(/per-column/);
    expect(notes.join('\n')).toMatch(/8×8/);
  });
});
