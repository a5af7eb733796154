import { floatAttr, GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { tensorFrom } from '../onnx/tensor';
import { cloneModel, opTypes, outputError } from './optimize.test.util';
import { removeIdentity } from './remove-identity';

function check(m: Model): { opt: Model; changed: number; notes: string[] } {
  const opt = cloneModel(m);
  const r = removeIdentity(opt);
  opt.graph.validate();
  expect(outputError(m, opt)).toBe(0);
  return { opt, ...r };
}

describe('removeIdentity', () => {
  it('removes Identity chains and inference Dropouts, keeping graph output names', () => {
    const b = new GraphBuilder('ids', { seed: 1, opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const c = b.conv(x, { outChannels: 3, kernel: 1 });
    const i1 = b.node('Identity', [c], {}, 1, { shapes: [c.shape] })[0];
    const d = b.node('Dropout', [i1, b.initializer(tensorFrom('float32', [], [0.3]))], {}, 1, { shapes: [c.shape] })[0];
    const r = b.relu(d);
    b.output(b.node('Identity', [r], {}, 1, { shapes: [c.shape] })[0], 'out');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(3);
    expect(opTypes(opt)).toEqual(['Conv', 'Relu']);
    expect(opt.graph.nodes[1].outputs[0]).toBe('out');
    expect(opt.graph.outputs.map((o) => o.name)).toEqual(['out']);
  });

  it('removes an opset-7 Dropout (ratio attribute) and one whose unused mask output is named', () => {
    const b = new GraphBuilder('old', { seed: 2, opset: 11 });
    const x = b.input('x', 'float32', [2, 3]);
    const [d] = b.node('Dropout', [x], { ratio: floatAttr(0.5) }, 2, { shapes: [[2, 3], [2, 3]] });
    b.output(b.relu(d), 'y');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(1);
    expect(opTypes(opt)).toEqual(['Relu']);
  });

  it('keeps a Dropout whose mask is read, one in training mode, and an Identity naming a graph output after an input', () => {
    const b = new GraphBuilder('keep', { seed: 3, opset: 13 });
    const x = b.input('x', 'float32', [2, 3]);
    const [d, mask] = b.node('Dropout', [x], {}, 2, { shapes: [[2, 3], [2, 3]] });
    b.output(d, 'a');
    b.output(b.node('Cast', [mask], { to: 1 }, 1, { dtype: 'float32', shapes: [[2, 3]] })[0], 'm');
    const ratio = b.initializer(tensorFrom('float32', [], [0]));
    const train = b.initializer(tensorFrom('bool', [], [1]));
    b.output(b.node('Dropout', [x, ratio, train], {}, 1, { shapes: [[2, 3]] })[0], 't');
    b.output(b.node('Identity', [x], {}, 1, { shapes: [[2, 3]] })[0], 'copy');
    const m = b.build();
    const { opt, changed, notes } = check(m);
    expect(changed).toBe(0);
    expect(opTypes(opt)).toEqual(opTypes(m));
    expect(notes.join('\n')).toMatch(/mask output is used/);
    expect(notes.join('\n')).toMatch(/training_mode is true/);
  });

  it('rewires readers of an Identity output that is also a graph output', () => {
    const b = new GraphBuilder('both', { seed: 4 });
    const x = b.input('x', 'float32', [3]);
    const r = b.relu(x);
    const id = b.output(b.node('Identity', [r], {}, 1, { shapes: [[3]] })[0], 'mid');
    b.output(b.sigmoid(id), 'end');
    const { opt, changed } = check(b.build());
    expect(changed).toBe(1);
    expect(opTypes(opt)).toEqual(['Relu', 'Sigmoid']);
    expect(opt.graph.nodes[0].outputs[0]).toBe('mid');
  });
});
