import { broadcastDims } from '../kernels/shape';
import { GraphBuilder, Value } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { foldScaleIntoConv } from './fold-scale-into-conv';
import { cloneModel, opCounts, opTypes, outputError } from './optimize.test.util';

function check(m: Model): { opt: Model; changed: number; notes: string[] } {
  const opt = cloneModel(m);
  const r = foldScaleIntoConv(opt);
  opt.graph.validate();
  expect(outputError(m, opt)).toBeLessThanOrEqual(1e-4);
  return { opt, ...r };
}

/** A constant of `dims` with values in [lo, hi) (away from 0 so scales matter). */
function k(b: GraphBuilder, dims: number[], lo = 0.5, hi = 2): Value {
  const n = dims.reduce((p, q) => p * q, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (b.rng.next() < 0.5 ? -1 : 1) * b.rng.uniform(lo, hi);
  return b.initializer(new Tensor('float32', dims, v));
}

function op(b: GraphBuilder, type: string, x: Value, y: Value): Value {
  return b.node(type, [x, y], {}, 1, { shapes: [broadcastDims([x.shape, y.shape])] })[0];
}

describe('foldScaleIntoConv', () => {
  it('folds Mul [1,M,1,1] and Add [M,1,1] after a Conv into its weights and bias', () => {
    const b = new GraphBuilder('after', { seed: 1 });
    const x = b.input('x', 'float32', [2, 3, 7, 7]);
    const c = b.conv(x, { outChannels: 4, kernel: 3, pad: 1, bias: false });
    b.output(b.relu(op(b, 'Add', k(b, [4, 1, 1]), op(b, 'Mul', c, k(b, [1, 4, 1, 1])))), 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(2);
    expect(opTypes(opt)).toEqual(['Conv', 'Relu']);
  });

  it('folds Div by a scalar and Sub of a per-channel constant after a grouped Conv', () => {
    const b = new GraphBuilder('divsub', { seed: 2 });
    const x = b.input('x', 'float32', [1, 4, 6, 6]);
    const c = b.conv(x, { outChannels: 6, kernel: 3, group: 2 });
    b.output(op(b, 'Sub', op(b, 'Div', c, k(b, [])), k(b, [1, 6, 1, 1])), 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(2);
    expect(opTypes(opt)).toEqual(['Conv']);
    expect(opt.graph.outputs[0].name).toBe('y');
  });

  it('folds Mul [M] and Add [1,M] after a Gemm', () => {
    const b = new GraphBuilder('gemm', { seed: 3 });
    const x = b.input('x', 'float32', [3, 5]);
    b.output(op(b, 'Add', op(b, 'Mul', b.gemm(x, 4), k(b, [4])), k(b, [1, 4])), 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(2);
    expect(opTypes(opt)).toEqual(['Gemm']);
  });

  it('folds a per-input-channel Mul before a padded Conv (zero padding stays zero) into every reading Conv', () => {
    const b = new GraphBuilder('before', { seed: 4 });
    const x = b.input('x', 'float32', [1, 4, 6, 6]);
    const s = op(b, 'Mul', x, k(b, [1, 4, 1, 1]));
    b.output(b.conv(s, { outChannels: 3, kernel: 3, pad: 1 }), 'a');
    b.output(b.conv(s, { outChannels: 4, kernel: 3, pad: [0, 1, 2, 1], group: 2 }), 'b');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(1);
    expect(opTypes(opt)).toEqual(['Conv', 'Conv']);
    expect(opt.graph.nodes.every((n) => n.inputs[0] === 'x')).toBe(true);
  });

  it('folds Add and Sub before an unpadded Conv into its bias', () => {
    const b = new GraphBuilder('shift', { seed: 5 });
    const x = b.input('x', 'float32', [1, 4, 6, 6]);
    const a = b.conv(op(b, 'Add', k(b, [4, 1, 1]), x), { outChannels: 3, kernel: 3, bias: false });
    const s = b.conv(op(b, 'Sub', x, k(b, [])), { outChannels: 4, kernel: 2, stride: 2, group: 4 });
    b.output(a, 'a');
    b.output(s, 'b');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(2);
    expect(opCounts(opt)).toEqual({ Conv: 2 });
  });

  it('refuses an Add before a padded Conv', () => {
    const b = new GraphBuilder('padded', { seed: 6 });
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    b.output(b.conv(op(b, 'Add', x, k(b, [1, 2, 1, 1])), { outChannels: 3, kernel: 3, pad: 1 }), 'y');
    const { opt, changed, notes } = check(b.build());
    expect(changed).toBe(0);
    expect(opTypes(opt)).toEqual(['Add', 'Conv']);
    expect(notes.join('\n')).toMatch(/pads its input/);
  });

  it('refuses constants that are not per channel: [1,M,H,W], [M] aligned to W, and a broadcasting [1,C,1,1] on a 1-channel input', () => {
    const b = new GraphBuilder('shapes', { seed: 7 });
    const x = b.input('x', 'float32', [1, 3, 4, 5]);
    const c1 = b.conv(x, { outChannels: 5, kernel: 1 });
    b.output(op(b, 'Mul', c1, k(b, [1, 5, 4, 5])), 'a');
    const c2 = b.conv(x, { outChannels: 5, kernel: 1 });
    b.output(op(b, 'Mul', c2, k(b, [5])), 'b'); // [5] multiplies along W (size 5), not channels
    const one = b.input('one', 'float32', [1, 1, 4, 5]);
    const wide = b.node('Mul', [one, k(b, [1, 3, 1, 1])], {}, 1, { shapes: [[1, 3, 4, 5]] })[0];
    b.output(b.conv(wide, { outChannels: 2, kernel: 1 }), 'c');
    const { opt, changed, notes } = check(b.build());
    expect(changed).toBe(0);
    expect(opCounts(opt)).toEqual({ Conv: 3, Mul: 3 });
    expect(notes.filter((n) => /not per output channel/.test(n))).toHaveLength(2);
    expect(notes.join('\n')).toMatch(/broadcast by the constant/);
  });

  it('refuses k − y, k / y and a Conv output read elsewhere', () => {
    const b = new GraphBuilder('order', { seed: 8 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    b.output(op(b, 'Sub', k(b, [1, 3, 1, 1]), b.conv(x, { outChannels: 3, kernel: 1 })), 'a');
    b.output(op(b, 'Div', k(b, []), b.conv(x, { outChannels: 3, kernel: 1 })), 'b');
    const c = b.conv(x, { outChannels: 3, kernel: 1 });
    b.output(op(b, 'Mul', c, k(b, [3, 1, 1])), 'c');
    b.output(b.relu(c), 'd');
    const m = b.build();
    const { opt, changed } = check(m);
    expect(changed).toBe(0);
    expect(opCounts(opt)).toEqual(opCounts(m));
  });

  it('refuses division by zero', () => {
    const b = new GraphBuilder('zero', { seed: 9 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const z = b.initializer(tensorFrom('float32', [2, 1, 1], [1, 0]));
    b.output(b.conv(op(b, 'Div', x, z), { outChannels: 2, kernel: 1 }), 'y');
    const opt = cloneModel(b.build());
    const r = foldScaleIntoConv(opt);
    expect(r.changed).toBe(0);
    expect(r.notes.join('\n')).toMatch(/divides by zero/);
  });
});
