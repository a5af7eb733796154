import { GraphBuilder } from '../onnx/builder';
import { tensorFrom } from '../onnx/tensor';
import { cloneModel, opTypes, outputError } from './optimize.test.util';
import { prune } from './prune';

describe('prune', () => {
  it('removes dead branches and initializers nothing reads, and nothing else', () => {
    const b = new GraphBuilder('dead', { seed: 1 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const live = b.relu(b.conv(x, { outChannels: 2, kernel: 1 }));
    b.sigmoid(b.conv(live, { outChannels: 3, kernel: 1 })); // dead: 2 nodes, 2 initializers
    b.initializer(tensorFrom('float32', [2], [1, 2]), 'orphan');
    b.output(live, 'y');
    const m = b.build();
    const opt = cloneModel(m);
    const r = prune(opt);
    expect(r.changed).toBe(2 + 3);
    expect(opTypes(opt)).toEqual(['Conv', 'Relu']);
    expect([...opt.graph.initializers.keys()].sort()).toEqual(['Conv_0.bias', 'Conv_0.weight']);
    expect(outputError(m, opt)).toBe(0);
    expect(prune(opt).changed).toBe(0);
  });
});
