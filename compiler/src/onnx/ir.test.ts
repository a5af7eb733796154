import { PtqError } from '../errors';
import { Graph, Model, Node } from './ir';
import { Tensor, tensorFrom } from './tensor';
import { decodeModel } from './decode';
import { encodeModel } from './encode';

function chain(): Graph {
  // x -> A(Relu) -> a -> B(Relu) -> b -> C(Add a,b) -> y
  const g = new Graph({ name: 'g' });
  g.inputs = [{ name: 'x', type: { dtype: 'float32', shape: ['N', 3] } }];
  g.outputs = [{ name: 'y', type: { dtype: 'float32', shape: ['N', 3] } }];
  g.nodes = [
    new Node({ opType: 'Add', name: 'C', inputs: ['a', 'b'], outputs: ['y'] }),
    new Node({ opType: 'Relu', name: 'B', inputs: ['a'], outputs: ['b'] }),
    new Node({ opType: 'Relu', name: 'A', inputs: ['x'], outputs: ['a'] }),
  ];
  return g;
}

describe('Graph', () => {
  it('sorts topologically and keeps an already valid order stable', () => {
    const g = chain();
    expect(g.topoSort().map((n) => n.name)).toEqual(['A', 'B', 'C']);
    g.sortInPlace();
    const again = g.topoSort();
    expect(again).toEqual(g.nodes);
  });

  it('reports a missing value naming the node', () => {
    const g = chain();
    g.nodes[1].inputs[0] = 'nope';
    expect(() => g.topoSort()).toThrow(PtqError);
    expect(() => g.topoSort()).toThrow(/node 'B' \(Relu\) reads value 'nope'/);
  });

  it('reports a cycle naming a node on it', () => {
    const g = chain();
    g.nodes[2].inputs[0] = 'b'; // A reads B's output, B reads A's
    expect(() => g.topoSort()).toThrow(/cycle through node '(A|B|C)'/);
  });

  it('reports duplicate producers', () => {
    const g = chain();
    g.nodes[1].outputs[0] = 'a';
    expect(() => g.validate()).toThrow(/produced twice/);
  });

  it('removes a node and rewires its readers', () => {
    const g = chain();
    g.sortInPlace();
    g.removeNode(g.nodes[1], 'a'); // drop B: C now reads a twice
    expect(g.nodes.map((n) => n.name)).toEqual(['A', 'C']);
    expect(g.nodes[1].inputs).toEqual(['a', 'a']);
    g.validate();
  });

  it('removing the producer of a graph output keeps the output name', () => {
    const g = chain();
    g.sortInPlace();
    g.removeNode(g.nodes[2], 'b'); // drop C: y must still exist
    g.validate();
    expect(g.outputs[0].name).toBe('y');
    expect(g.producers().get('y')?.name).toBe('B');
  });

  it('renames values everywhere', () => {
    const g = chain();
    g.valueInfo.set('a', { name: 'a', type: { dtype: 'float32' } });
    g.renameValue('a', 'alpha');
    expect(g.nodes.find((n) => n.name === 'A')?.outputs).toEqual(['alpha']);
    expect(g.nodes.find((n) => n.name === 'C')?.inputs).toEqual(['alpha', 'b']);
    expect(g.valueInfo.has('alpha')).toBe(true);
    g.renameValue('y', 'out');
    expect(g.outputs[0].name).toBe('out');
    g.validate();
  });

  it('inserts and replaces nodes, and prunes what nothing needs', () => {
    const g = chain();
    g.sortInPlace();
    g.initializers.set('unused', tensorFrom('float32', [2], [1, 2]));
    g.insertNode(new Node({ opType: 'Relu', name: 'dead', inputs: ['x'], outputs: ['d'] }), 0);
    const b = g.nodes.find((n) => n.name === 'B') as Node;
    g.replaceNode(b, [new Node({ opType: 'Sigmoid', name: 'B2', inputs: ['a'], outputs: ['b'] })]);
    expect(g.pruneUnused()).toBe(1);
    expect(g.initializers.has('unused')).toBe(false);
    expect(g.nodes.map((n) => n.name)).toEqual(['A', 'B2', 'C']);
    g.validate();
  });

  it('sees values read by subgraphs as used', () => {
    const g = chain();
    const body = new Graph({ name: 'body' });
    body.outputs = [{ name: 'a' }];
    g.nodes.push(new Node({ opType: 'If', name: 'if', inputs: ['cond'], outputs: ['z'], attrs: { then_branch: { type: 'graph', value: body } } }));
    g.inputs.push({ name: 'cond', type: { dtype: 'bool', shape: [] } });
    g.outputs.push({ name: 'z' });
    g.sortInPlace();
    expect(g.nodes.findIndex((n) => n.name === 'if')).toBeGreaterThan(g.nodes.findIndex((n) => n.name === 'A'));
  });
});

describe('Tensor', () => {
  it('keeps raw bytes as a view when aligned and copies only when not', () => {
    const buf = new Uint8Array(4 * 5);
    new Float32Array(buf.buffer).set([1, 2, 3, 4, 5]);
    const aligned = Tensor.fromRaw('float32', [4], buf.subarray(4, 20));
    expect((aligned.data as Float32Array).buffer).toBe(buf.buffer);
    expect(Array.from(aligned.data as Float32Array)).toEqual([2, 3, 4, 5]);
    const odd = new Uint8Array(17);
    odd.set(buf.subarray(4, 20), 1);
    const mis = Tensor.fromRaw('float32', [4], odd.subarray(1));
    expect(Array.from(mis.data as Float32Array)).toEqual([2, 3, 4, 5]);
  });

  it('saturates int64 conversions instead of wrapping', () => {
    const t = tensorFrom('int64', [3], [2 ** 63, -(2 ** 63), 5]);
    expect(Array.from(t.data as BigInt64Array)).toEqual([9223372036854775807n, -9223372036854775808n, 5n]);
  });
});

describe('ModelProto round trip', () => {
  it('is lossless for what the IR models', () => {
    const g = chain();
    g.sortInPlace();
    g.initializers.set('w', tensorFrom('int64', [2], [-1n as unknown as number, 9223372036854775807n as unknown as number]));
    g.nodes[0].setAttr('alpha', { type: 'float', value: 0.5 });
    g.nodes[0].setAttr('mode', { type: 'string', value: 'ça' });
    g.nodes[0].setAttr('pads', { type: 'ints', value: [0, -1, 2] });
    g.nodes[0].setAttr('t', { type: 'tensor', value: tensorFrom('float16', [2], [1.5, -2]) });
    const m = new Model(g, { irVersion: 7, opsetImports: [{ domain: '', version: 11 }, { domain: 'com.example', version: 1 }], producerName: 'test', metadataProps: { k: 'v' } });
    const back = decodeModel(encodeModel(m));
    expect(back.irVersion).toBe(7);
    expect(back.opsetImports).toEqual(m.opsetImports);
    expect(back.metadataProps).toEqual({ k: 'v' });
    expect(back.graph.inputs).toEqual(g.inputs);
    expect(back.graph.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs])).toEqual(g.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs]));
    const a = back.graph.nodes[0];
    expect(a.float('alpha')).toBe(0.5);
    expect(a.str('mode')).toBe('ça');
    expect(a.ints('pads')).toEqual([0, -1, 2]);
    expect(a.tensor('t')?.toNumbers()).toEqual([1.5, -2]);
    expect(Array.from(back.graph.initializers.get('w')?.data as BigInt64Array)).toEqual([-1n, 9223372036854775807n]);
    expect(Buffer.from(encodeModel(back))).toEqual(Buffer.from(encodeModel(m)));
  });

  it('turns garbage into a one-line PtqError', () => {
    const bytes = encodeModel(new Model(chain()));
    expect(() => decodeModel(bytes.subarray(0, bytes.length - 7), 'cut.onnx')).toThrow(PtqError);
    expect(() => decodeModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'junk.onnx')).toThrow(/junk.onnx.*not a valid ONNX model/);
  });
});
