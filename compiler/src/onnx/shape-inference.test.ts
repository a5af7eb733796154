import { PtqError } from '../errors';
import { Graph, Model, Node } from './ir';
import { inferShapes } from './shape-inference';
import { tensorFrom } from './tensor';

/**
 * data[?,3,H,W] → Conv(8, 3x3, s2, p1) → Relu → r
 * Shape(r) → Gather(0) → Unsqueeze → Concat([n, -1]) → Reshape(r) → flat
 * (the shape subgraph PyTorch exports for `x.view(x.size(0), -1)`)
 */
function dynamicModel(): Model {
  const g = new Graph({ name: 'dyn' });
  g.inputs = [{ name: 'data', type: { dtype: 'float32', shape: ['?', 3, 'H', 'W'] } }];
  g.outputs = [{ name: 'flat', type: { dtype: 'float32' } }];
  g.initializers.set('w', tensorFrom('float32', [8, 3, 3, 3], new Array(8 * 27).fill(0.1)));
  g.initializers.set('zero', tensorFrom('int64', [], [0]));
  g.initializers.set('minus1', tensorFrom('int64', [1], [-1]));
  g.initializers.set('ax0', tensorFrom('int64', [1], [0]));
  g.nodes = [
    new Node({ opType: 'Conv', name: 'conv', inputs: ['data', 'w'], outputs: ['c'], attrs: { strides: { type: 'ints', value: [2, 2] }, pads: { type: 'ints', value: [1, 1, 1, 1] }, kernel_shape: { type: 'ints', value: [3, 3] } } }),
    new Node({ opType: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'] }),
    new Node({ opType: 'Shape', name: 'shape', inputs: ['r'], outputs: ['s'] }),
    new Node({ opType: 'Gather', name: 'gather', inputs: ['s', 'zero'], outputs: ['n'], attrs: { axis: { type: 'int', value: 0 } } }),
    new Node({ opType: 'Unsqueeze', name: 'unsq', inputs: ['n', 'ax0'], outputs: ['n1'] }),
    new Node({ opType: 'Concat', name: 'cat', inputs: ['n1', 'minus1'], outputs: ['target'], attrs: { axis: { type: 'int', value: 0 } } }),
    new Node({ opType: 'Reshape', name: 'reshape', inputs: ['r', 'target'], outputs: ['flat'] }),
  ];
  return new Model(g, { opsetImports: [{ domain: '', version: 13 }] });
}

describe('shape inference', () => {
  it('fixing a dynamic input shape propagates through the graph and folds the shape subgraph', () => {
    const m = dynamicModel();
    const facts = inferShapes(m, { inputShapes: { data: [1, 3, 320, 320] } });
    expect(facts.get('c')?.shape).toEqual([1, 8, 160, 160]);
    expect(facts.get('s')?.value?.toNumbers()).toEqual([1, 8, 160, 160]);
    expect(facts.get('target')?.value?.toNumbers()).toEqual([1, -1]);
    expect(facts.get('flat')?.shape).toEqual([1, 8 * 160 * 160]);
    // written back into the model
    expect(m.graph.inputs[0].type?.shape).toEqual([1, 3, 320, 320]);
    expect(m.graph.outputs[0].type?.shape).toEqual([1, 204800]);
    expect(m.graph.valueInfo.get('r')?.type?.shape).toEqual([1, 8, 160, 160]);
  });

  it('keeps symbolic dims when nothing fixes them', () => {
    const m = dynamicModel();
    const facts = inferShapes(m, { apply: false });
    const c = facts.get('c')?.shape;
    expect(c?.length).toBe(4);
    expect(c?.[1]).toBe(8);
    expect(c?.[0]).toBe('?');
    expect(typeof c?.[2]).toBe('string');
  });

  it('refuses overrides that contradict fixed dims or name no input', () => {
    expect(() => inferShapes(dynamicModel(), { inputShapes: { data: [1, 4, 8, 8] } })).toThrow(PtqError);
    expect(() => inferShapes(dynamicModel(), { inputShapes: { data: [1, 3, 8] } })).toThrow(/rank 3/);
    expect(() => inferShapes(dynamicModel(), { inputShapes: { image: [1, 3, 8, 8] } })).toThrow(/'image'/);
  });
});
