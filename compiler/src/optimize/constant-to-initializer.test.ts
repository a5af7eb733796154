import { Attribute, Graph, Model, Node } from '../onnx/ir';
import { tensorFrom } from '../onnx/tensor';
import { constantToInitializer } from './constant-to-initializer';
import { cloneModel, opTypes, outputError } from './optimize.test.util';

function constant(out: string, attr: string, a: Attribute): Node {
  return new Node({ opType: 'Constant', name: out, outputs: [out], attrs: { [attr]: a } });
}

/** y = ((x + value) · value_float + value_floats) reshaped by value_ints, plus two string/int constants nothing reads. */
function model(irVersion: number): Model {
  const g = new Graph({ name: 'consts' });
  g.inputs = [{ name: 'x', type: { dtype: 'float32', shape: [2, 3] } }];
  g.outputs = [{ name: 'y', type: { dtype: 'float32', shape: [3, 2] } }, { name: 'k', type: { dtype: 'int64', shape: [] } }];
  g.nodes = [
    constant('a', 'value', { type: 'tensor', value: tensorFrom('float32', [2, 3], [1, 2, 3, 4, 5, 6]) }),
    constant('f', 'value_float', { type: 'float', value: 0.5 }),
    constant('fs', 'value_floats', { type: 'floats', value: [1, -1, 2] }),
    constant('shape', 'value_ints', { type: 'ints', value: [3, 2] }),
    constant('k', 'value_int', { type: 'int', value: 7 }),
    constant('s', 'value_string', { type: 'string', value: 'hello' }),
    constant('ss', 'value_strings', { type: 'strings', value: ['a', 'b'] }),
    new Node({ opType: 'Add', name: 'add', inputs: ['x', 'a'], outputs: ['t0'] }),
    new Node({ opType: 'Mul', name: 'mul', inputs: ['t0', 'f'], outputs: ['t1'] }),
    new Node({ opType: 'Add', name: 'add2', inputs: ['t1', 'fs'], outputs: ['t2'] }),
    new Node({ opType: 'Reshape', name: 'reshape', inputs: ['t2', 'shape'], outputs: ['y'] }),
  ];
  return new Model(g, { irVersion, opsetImports: [{ domain: '', version: 13 }] });
}

describe('constantToInitializer', () => {
  it('turns every value_* form into an initializer of the same name and type, keeping a constant that is a graph output', () => {
    const m = model(8);
    const opt = cloneModel(m);
    const r = constantToInitializer(opt);
    expect(r.changed).toBe(6);
    expect(opTypes(opt)).toEqual(['Constant', 'Add', 'Mul', 'Add', 'Reshape']);
    const init = opt.graph.initializers;
    expect(init.get('a')!.toNumbers()).toEqual([1, 2, 3, 4, 5, 6]);
    expect([init.get('f')!.dtype, init.get('f')!.dims, init.get('f')!.toNumbers()]).toEqual(['float32', [], [0.5]]);
    expect(init.get('fs')!.dims).toEqual([3]);
    expect([init.get('shape')!.dtype, init.get('shape')!.toNumbers()]).toEqual(['int64', [3, 2]]);
    expect(init.get('s')!.data).toEqual(['hello']);
    expect(init.get('ss')!.data).toEqual(['a', 'b']);
    expect(opt.graph.inputs.map((v) => v.name)).toEqual(['x']);
    expect(r.notes.join('\n')).toMatch(/kept Constant 'k': its value is a graph output/);
    expect(outputError(m, opt)).toBe(0);
  });

  it('lists the new initializers as graph inputs before IR 4', () => {
    const m = model(3);
    constantToInitializer(m);
    expect(m.graph.inputs.map((v) => v.name)).toEqual(['x', 'a', 'f', 'fs', 'shape', 's', 'ss']);
    expect(m.graph.realInputs.map((v) => v.name)).toEqual(['x']);
  });

  it('keeps a sparse constant with a note', () => {
    const g = new Graph({ name: 'sparse' });
    g.outputs = [{ name: 'z' }];
    g.nodes = [
      new Node({ opType: 'Constant', name: 'sp', outputs: ['v'], attrs: { sparse_value: { type: 'other', value: {} } } }),
      new Node({ opType: 'Identity', name: 'id', inputs: ['v'], outputs: ['z'] }),
    ];
    const r = constantToInitializer(new Model(g));
    expect(r.changed).toBe(0);
    expect(r.notes[0]).toMatch(/sparse_value/);
  });
});
