import { Graph, Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { f32, inferOp, iota, runOp, values } from './tensor-shape.test.util';

describe('Shape and Size', () => {
  const x = f32([2, 3, 4, 5], iota(120));

  it('Shape returns the dims, windowed by start/end from opset 15', () => {
    expect(values(runOp('Shape', 13, [x])[0])).toEqual([2, 3, 4, 5]);
    expect(values(runOp('Shape', 15, [x], { start: 1, end: -1 })[0])).toEqual([3, 4]);
    expect(values(runOp('Shape', 15, [x], { start: -10 })[0])).toEqual([2, 3, 4, 5]);
    expect(values(runOp('Shape', 15, [x], { start: 3, end: 1 })[0])).toEqual([]);
    expect(runOp('Shape', 15, [x])[0].dtype).toBe('int64');
    expect(runOp('Shape', 13, [new Tensor('string', [3], ['a', 'b', 'c'])])[0].toNumbers()).toEqual([3]);
  });

  it('Size counts the elements', () => {
    const [s] = runOp('Size', 13, [x]);
    expect(s.dims).toEqual([]);
    expect(s.toNumbers()).toEqual([120]);
  });

  it('their shape functions give values when the dims they read are fixed', () => {
    const sym = { dtype: 'float32' as const, shape: ['N', 3, 4, 5] };
    expect(inferOp('Shape', 15, [sym])[0].value).toBeUndefined();
    expect(inferOp('Shape', 15, [sym], { start: 1 })[0].value?.toNumbers()).toEqual([3, 4, 5]);
    expect(inferOp('Size', 13, [sym])[0].value).toBeUndefined();
    expect(inferOp('Size', 13, [{ dtype: 'float32', shape: [2, 3] }])[0].value?.toNumbers()).toEqual([6]);
  });
});

describe('shape inference through Shape → Gather → Unsqueeze → Concat → Reshape', () => {
  function model(): Model {
    const g = new Graph({
      nodes: [
        new Node({ opType: 'Shape', inputs: ['x'], outputs: ['s'] }),
        new Node({ opType: 'Gather', inputs: ['s', 'zero'], outputs: ['n'], attrs: { axis: { type: 'int', value: 0 } } }),
        new Node({ opType: 'Unsqueeze', inputs: ['n', 'axes0'], outputs: ['n1'] }),
        new Node({ opType: 'Concat', inputs: ['n1', 'minus1'], outputs: ['target'], attrs: { axis: { type: 'int', value: 0 } } }),
        new Node({ opType: 'Reshape', inputs: ['x', 'target'], outputs: ['flat'] }),
        // the channel/height/width part is fixed even while N is not
        new Node({ opType: 'Shape', inputs: ['x'], outputs: ['chw'], attrs: { start: { type: 'int', value: 1 } } }),
        new Node({ opType: 'Reshape', inputs: ['y', 'chw'], outputs: ['y3'] }),
      ],
      inputs: [
        { name: 'x', type: { dtype: 'float32', shape: ['N', 3, 8, 8] } },
        { name: 'y', type: { dtype: 'float32', shape: [192] } },
      ],
      outputs: [
        { name: 'flat', type: { dtype: 'float32' } },
        { name: 'y3', type: { dtype: 'float32' } },
      ],
      initializers: new Map([
        ['zero', tensorFrom('int64', [], [0])],
        ['axes0', tensorFrom('int64', [1], [0])],
        ['minus1', tensorFrom('int64', [1], [-1])],
      ]),
    });
    return new Model(g, { opsetImports: [{ domain: '', version: 15 }] });
  }

  it('folds the chain to fixed shapes once the batch size is fixed', () => {
    const facts = inferShapes(model(), { inputShapes: { x: [2, 3, 8, 8] } });
    expect(facts.get('target')?.value?.toNumbers()).toEqual([2, -1]);
    expect(facts.get('flat')?.shape).toEqual([2, 192]);
    expect(facts.get('y3')?.shape).toEqual([3, 8, 8]);
  });

  it('keeps what it can while the batch size is symbolic', () => {
    const facts = inferShapes(model(), { apply: false });
    expect(facts.get('s')?.shape).toEqual([4]);
    expect(facts.get('target')?.shape).toEqual([2]);
    expect(facts.get('flat')?.shape).toEqual(['?', '?']);
    expect(facts.get('y3')?.shape).toEqual([3, 8, 8]);
  });
});
