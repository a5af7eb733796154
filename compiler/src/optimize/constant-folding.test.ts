import { GraphBuilder } from '../onnx/builder';
import { Graph, Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { constantFolding } from './constant-folding';
import { cloneModel, opCounts, opTypes, outputError } from './optimize.test.util';

/** PyTorch's `x.view(x.size(0), -1)` after a Conv: Shape → Gather → Unsqueeze → Concat → Reshape. */
function viewModel(): Model {
  const b = new GraphBuilder('view', { seed: 1 });
  const x = b.input('data', 'float32', ['N', 3, 'H', 'W']);
  const r = b.relu(b.node('Conv', [x, b.initializer(b.randomTensor([4, 3, 3, 3], 0.3), 'w')], { pads: [1, 1, 1, 1] }, 1, { shapes: [['N', 4, 'H', 'W']] })[0]);
  const s = b.node('Shape', [r], {}, 1, { dtype: 'int64', shapes: [[4]] })[0];
  const n = b.node('Gather', [s, b.initializer(tensorFrom('int64', [], [0]))], { axis: 0 }, 1, { shapes: [[]] })[0];
  const n1 = b.node('Unsqueeze', [n, b.initializer(tensorFrom('int64', [1], [0]))], {}, 1, { shapes: [[1]] })[0];
  const target = b.node('Concat', [n1, b.initializer(tensorFrom('int64', [1], [-1]))], { axis: 0 }, 1, { shapes: [[2]] })[0];
  b.output(b.node('Reshape', [r, target], {}, 1, { shapes: [['N', '?']] })[0], 'flat');
  return b.build();
}

describe('constantFolding', () => {
  it('folds a Shape → Gather → Unsqueeze → Concat chain once the input shape is fixed', () => {
    const m = viewModel();
    const opt = cloneModel(m);
    const r = constantFolding(opt, { inputShapes: { data: [2, 3, 5, 5] } });
    expect(r.changed).toBe(4);
    expect(opTypes(opt)).toEqual(['Conv', 'Relu', 'Reshape']);
    expect(opt.graph.initializers.get(opt.graph.nodes[2].inputs[1])!.toNumbers()).toEqual([2, -1]);
    expect(opt.graph.inputs[0].type?.shape).toEqual([2, 3, 5, 5]);
    m.graph.inputs[0].type = { dtype: 'float32', shape: [2, 3, 5, 5] };
    expect(outputError(m, opt)).toBeLessThanOrEqual(1e-6);
  });

  it('leaves the shape chain alone while the input shape is symbolic', () => {
    const opt = cloneModel(viewModel());
    const r = constantFolding(opt);
    expect(r.changed).toBe(0);
    expect(opTypes(opt)).toHaveLength(7);
  });

  it('evaluates chains of constant nodes (Transpose of a weight, arithmetic on initializers) in one pass', () => {
    const b = new GraphBuilder('consts', { seed: 2 });
    const x = b.input('x', 'float32', [3, 4]);
    const w = b.initializer(b.randomTensor([5, 4], 1));
    const wt = b.node('Transpose', [w], { perm: [1, 0] }, 1, { shapes: [[4, 5]] })[0];
    const half = b.initializer(tensorFrom('float32', [], [0.5]));
    const scaled = b.node('Mul', [wt, half], {}, 1, { shapes: [[4, 5]] })[0];
    const y = b.node('MatMul', [x, scaled], {}, 1, { shapes: [[3, 5]] })[0];
    const bias = b.node('Add', [b.initializer(b.randomTensor([5], 1)), b.initializer(b.randomTensor([5], 1))], {}, 1, { shapes: [[5]] })[0];
    b.output(b.node('Add', [y, bias], {}, 1, { shapes: [[3, 5]] })[0], 'y');
    const m = b.build();
    const opt = cloneModel(m);
    const r = constantFolding(opt);
    expect(r.changed).toBe(3);
    expect(opTypes(opt)).toEqual(['MatMul', 'Add']);
    const folded = opt.graph.initializers.get(opt.graph.nodes[0].inputs[1])!;
    expect(folded.dims).toEqual([4, 5]);
    // independent check of the folded Transpose·0.5
    const wv = m.graph.initializers.get(w.name)!.toNumbers();
    expect(folded.toNumbers()[1 * 5 + 3]).toBeCloseTo(wv[3 * 4 + 1] * 0.5, 6);
    expect(outputError(m, opt)).toBeLessThanOrEqual(1e-6);
  });

  it('does not fold Expand / ConstantOfShape results much bigger than their inputs, unless they are only read as shapes', () => {
    const b = new GraphBuilder('grow', { seed: 3 });
    const x = b.input('x', 'float32', [1, 8, 32, 32]);
    const shape = b.initializer(tensorFrom('int64', [4], [1, 8, 32, 32]));
    const zeros = b.node('ConstantOfShape', [shape], { value: tensorFrom('float32', [1], [0.25]) }, 1, { dtype: 'float32', shapes: [[1, 8, 32, 32]] })[0];
    b.output(b.node('Add', [x, zeros], {}, 1, { shapes: [[1, 8, 32, 32]] })[0], 'y');
    const sizes = b.node('Expand', [b.initializer(tensorFrom('int64', [], [1])), b.initializer(tensorFrom('int64', [1], [8192]))], {}, 1, { dtype: 'int64', shapes: [[8192]] })[0];
    const count = b.node('Shape', [sizes], {}, 1, { dtype: 'int64', shapes: [[1]] })[0];
    const flat = b.node('Reshape', [x, b.initializer(tensorFrom('int64', [2], [-1, 2048]))], {}, 1, { shapes: [[4, 2048]] })[0];
    b.output(b.node('Reshape', [flat, count], {}, 1, { shapes: [[8192]] })[0], 'z');
    const m = b.build();
    const opt = cloneModel(m);
    const r = constantFolding(opt);
    expect(opCounts(opt).ConstantOfShape).toBe(1);
    expect(opCounts(opt).Expand).toBeUndefined();
    expect(opCounts(opt).Shape).toBeUndefined();
    expect(r.notes.join('\n')).toMatch(/ConstantOfShape .* bigger than its inputs/);
    expect(outputError(m, opt)).toBe(0);
  });

  it('respects maxBytes', () => {
    const b = new GraphBuilder('big', { seed: 4 });
    const x = b.input('x', 'float32', [64, 64]);
    const w = b.initializer(b.randomTensor([64, 64], 1));
    const wt = b.node('Transpose', [w], {}, 1, { shapes: [[64, 64]] })[0];
    b.output(b.node('MatMul', [x, wt], {}, 1, { shapes: [[64, 64]] })[0], 'y');
    const opt = cloneModel(b.build());
    const r = constantFolding(opt, { maxBytes: 1000 });
    expect(r.changed).toBe(0);
    expect(r.notes.join('\n')).toMatch(/MiB initializer/);
  });

  it('keeps QDQ weights, nodes producing graph outputs, and initializers that are overridable graph inputs (IR ≥ 4)', () => {
    const g = new Graph({ name: 'keep' });
    g.inputs = [{ name: 'x', type: { dtype: 'float32', shape: [2] } }, { name: 'k', type: { dtype: 'float32', shape: [2] } }];
    g.outputs = [{ name: 'y' }, { name: 'c' }];
    g.initializers.set('q', tensorFrom('int8', [2], [10, -20]));
    g.initializers.set('s', tensorFrom('float32', [], [0.1]));
    g.initializers.set('k', tensorFrom('float32', [2], [1, 2]));
    g.initializers.set('one', tensorFrom('float32', [2], [1, 1]));
    g.nodes = [
      new Node({ opType: 'DequantizeLinear', name: 'dq', inputs: ['q', 's'], outputs: ['w'] }),
      new Node({ opType: 'Add', name: 'kk', inputs: ['k', 'one'], outputs: ['k1'] }),
      new Node({ opType: 'Mul', name: 'mul', inputs: ['x', 'w'], outputs: ['xw'] }),
      new Node({ opType: 'Add', name: 'add', inputs: ['xw', 'k1'], outputs: ['y'] }),
      new Node({ opType: 'Mul', name: 'c', inputs: ['one', 's'], outputs: ['c'] }),
    ];
    const m = new Model(g, { irVersion: 8 });
    const r = constantFolding(m);
    expect(r.changed).toBe(0);
    expect(opTypes(m)).toEqual(['DequantizeLinear', 'Add', 'Mul', 'Add', 'Mul']);
    // before IR 4 every initializer is listed as an input and still counts as a constant
    const old = new Model(cloneModel(m).graph, { irVersion: 3 });
    expect(constantFolding(old).changed).toBe(1); // k + one
    expect(old.graph.initializers.get('k1')!.toNumbers()).toEqual([2, 3]);
    expect(old.graph.inputs.some((v) => v.name === 'k1')).toBe(true);
  });

  it('folds float16 constants through the widened kernels', () => {
    const b = new GraphBuilder('half', { seed: 5 });
    const x = b.input('x', 'float16', [3]);
    const a = b.initializer(tensorFrom('float16', [3], [1, 2, 3]));
    const c = b.node('Mul', [a, a], {}, 1, { shapes: [[3]] })[0];
    b.output(b.node('Add', [x, c], {}, 1, { shapes: [[3]] })[0], 'y');
    const m = b.build();
    constantFolding(m);
    const t = m.graph.initializers.get(c.name) as Tensor;
    expect(t.dtype).toBe('float16');
    expect(t.toNumbers()).toEqual([1, 4, 9]);
  });
});
