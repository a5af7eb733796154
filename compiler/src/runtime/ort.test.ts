import { PtqError } from '../errors';
import { DType } from '../onnx/dtype';
import { Graph, Model, Node, ValueInfo } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { floatToHalf } from '../kernels/float16';
import { OrtEngine } from './ort';

function vi(name: string, dtype?: DType, shape?: (number | string)[]): ValueInfo {
  return dtype ? { name, type: { dtype, shape } } : { name };
}

function model(nodes: Node[], inputs: ValueInfo[], outputs: ValueInfo[], init: Record<string, Tensor> = {}, opset = 13): Model {
  const g = new Graph({ name: 'g', nodes, inputs, outputs, initializers: new Map(Object.entries(init)) });
  return new Model(g, { irVersion: 8, opsetImports: [{ domain: '', version: opset }] });
}

async function expectPtq(p: Promise<unknown>, code: string, text?: RegExp): Promise<PtqError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PtqError);
    const err = e as PtqError;
    expect(err.code).toBe(code);
    if (text) expect(err.message).toMatch(text);
    expect(err.oneLine()).not.toMatch(/\n/);
    return err;
  }
  throw new Error(`expected a PtqError ${code}`);
}

describe('OrtEngine', () => {
  const identity = (dtype: DType): Model =>
    model([new Node({ opType: 'Identity', inputs: ['x'], outputs: ['y'] })], [vi('x', dtype, ['N', 3])], [vi('y', dtype, ['N', 3])]);

  const cases: [DType, Tensor][] = [
    ['float32', tensorFrom('float32', [2, 3], [1.5, -2, 3e-8, 4, Infinity, -0])],
    ['float64', tensorFrom('float64', [2, 3], [1 / 3, -2, 1e300, 4, 5, 6])],
    ['float16', new Tensor('float16', [1, 3], Uint16Array.from([1, 0.5, -65504].map(floatToHalf)))],
    ['int8', tensorFrom('int8', [1, 3], [-128, 0, 127])],
    ['uint8', tensorFrom('uint8', [1, 3], [0, 128, 255])],
    ['int16', tensorFrom('int16', [1, 3], [-32768, 1, 32767])],
    ['uint16', tensorFrom('uint16', [1, 3], [0, 1, 65535])],
    ['int32', tensorFrom('int32', [1, 3], [-2147483648, 0, 2147483647])],
    ['uint32', tensorFrom('uint32', [1, 3], [0, 1, 4294967295])],
    ['int64', new Tensor('int64', [1, 3], BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 63n - 1n]))],
    ['uint64', new Tensor('uint64', [1, 3], BigUint64Array.from([0n, 1n, 2n ** 64n - 1n]))],
    ['bool', tensorFrom('bool', [2, 3], [1, 0, 1, 1, 0, 0])],
    ['string', new Tensor('string', [1, 3], ['a', '', 'ünïcode'])],
  ];

  it.each(cases)('passes %s tensors both ways unchanged', async (dtype, x) => {
    const e = await OrtEngine.create(identity(dtype));
    const { y } = await e.run({ x });
    expect(y.dtype).toBe(dtype);
    expect(y.dims).toEqual(x.dims);
    if (dtype === 'string') expect(y.data).toEqual(x.data);
    else expect(Array.from(y.array as ArrayLike<number | bigint>)).toEqual(Array.from(x.array as ArrayLike<number | bigint>));
    await e.dispose();
  });

  it('returns typed arrays of this realm (instanceof works on results)', async () => {
    const e = await OrtEngine.create(identity('float32'));
    const { y } = await e.run({ x: tensorFrom('float32', [1, 3], [1, 2, 3]) });
    expect(y.data).toBeInstanceOf(Float32Array);
    await e.dispose();
  });

  it('refuses bfloat16 with a PtqError (onnxruntime-node has no such JS type)', async () => {
    await expectPtq(OrtEngine.create(identity('bfloat16')), 'E_ORT_DTYPE', /'x' is bfloat16/);
    const e = await OrtEngine.create(identity('float32'));
    (e as unknown as { inputTypes: Map<string, unknown> }).inputTypes.set('x', undefined); // an untyped input
    await expectPtq(e.run({ x: new Tensor('bfloat16', [1, 3]) }), 'E_ORT_DTYPE', /bfloat16/);
    await e.dispose();
  });

  const chain = (): Model =>
    model(
      [
        new Node({ opType: 'Mul', name: 'scale', inputs: ['x', 'k'], outputs: ['a'] }),
        new Node({ opType: 'Relu', name: 'relu', inputs: ['a'], outputs: ['b'] }),
        new Node({ opType: 'Neg', name: 'neg', inputs: ['b'], outputs: ['y'] }),
      ],
      [vi('x', 'float32', [1, 4])],
      [vi('y', 'float32', [1, 4])],
      { k: tensorFrom('float32', [], [2]) },
    );

  it('computes the outputs, and fetches intermediates, inputs and initializers on demand', async () => {
    const e = await OrtEngine.create(chain());
    const x = tensorFrom('float32', [1, 4], [-1, 0.5, 2, -3]);
    expect(e.inputNames).toEqual(['x']);
    expect(e.outputNames).toEqual(['y']);
    const plain = await e.run({ x });
    expect(Object.keys(plain)).toEqual(['y']);
    expect(plain.y.toNumbers()).toEqual([-0, -1, -4, -0]);
    expect(e.sessionCount).toBe(1);
    const r = await e.run({ x }, { fetch: ['b', 'a', 'x', 'k'] });
    expect(r.a.toNumbers()).toEqual([-2, 1, 4, -6]);
    expect(r.b.toNumbers()).toEqual([0, 1, 4, 0]);
    expect(r.x).toBe(x);
    expect(r.k.toNumbers()).toEqual([2]);
    expect(r.y.toNumbers()).toEqual([-0, -1, -4, -0]);
    expect(e.sessionCount).toBe(2);
    // same set in another order: the cached session is reused
    await e.run({ x }, { fetch: ['a', 'b'] });
    expect(e.sessionCount).toBe(2);
    await e.run({ x }, { fetch: ['a'] });
    expect(e.sessionCount).toBe(3);
    await e.dispose();
    expect(e.sessionCount).toBe(0);
  });

  it('prepares the fetchable session up front (the plain one only when used) and honours options', async () => {
    const e = await OrtEngine.create(chain(), { fetchable: ['a'], threads: 2, optimization: 'disabled' });
    expect(e.sessionCount).toBe(1);
    const x = tensorFrom('float32', [1, 4], [1, 1, 1, 1]);
    const r = await e.run({ x }, { fetch: ['a'] });
    expect(r.a.toNumbers()).toEqual([2, 2, 2, 2]);
    expect(e.sessionCount).toBe(1);
    await e.run({ x });
    expect(e.sessionCount).toBe(2);
    await e.dispose();
  });

  it('rejects unknown fetch names, missing inputs, wrong dtypes and shapes with PtqErrors', async () => {
    const e = await OrtEngine.create(chain());
    const x = tensorFrom('float32', [1, 4], [1, 2, 3, 4]);
    await expectPtq(e.run({ x }, { fetch: ['nope'] }), 'E_VALUE_UNKNOWN', /'nope'/);
    await expectPtq(e.run({}), 'E_INPUT_MISSING', /'x'/);
    await expectPtq(e.run({ x: tensorFrom('int32', [1, 4], [1, 2, 3, 4]) }), 'E_INPUT_TYPE', /float32/);
    await expectPtq(e.run({ x: tensorFrom('float32', [4], [1, 2, 3, 4]) }), 'E_INPUT_SHAPE', /\[1,4\]/);
    await e.dispose();
  });

  it('turns load failures into one-line PtqErrors naming the model and node', async () => {
    const bad = model(
      [new Node({ opType: 'BitShift', name: 'shift1', inputs: ['x', 'x'], outputs: ['y'], attrs: { direction: { type: 'string', value: 'LEFT' } } })],
      [vi('x', 'uint16', [2])],
      [vi('y', 'uint16', [2])],
      {},
      11,
    );
    const err = await expectPtq(OrtEngine.create(bad, { source: 'bad.onnx' }), 'E_ORT_LOAD', /'bad\.onnx'/);
    expect(err.message).toMatch(/node 'shift1'/);
    expect(err.subject).toBe('shift1');

    const dangling = chain();
    dangling.graph.nodes[1].inputs[0] = 'missing';
    await expectPtq(OrtEngine.create(dangling, { source: 'dangling.onnx' }), 'E_ORT_LOAD', /dangling\.onnx.*'missing'/);
  });

  it('turns run failures into PtqErrors naming the node', async () => {
    const m = model(
      [new Node({ opType: 'Reshape', name: 'reshape7', inputs: ['x', 's'], outputs: ['y'] })],
      [vi('x', 'float32', ['N']), vi('s', 'int64', [1])],
      [vi('y', 'float32')],
    );
    const e = await OrtEngine.create(m, { source: 'r.onnx' });
    const err = await expectPtq(
      e.run({ x: tensorFrom('float32', [3], [1, 2, 3]), s: new Tensor('int64', [1], BigInt64Array.from([4n])) }),
      'E_ORT_RUN',
      /r\.onnx/,
    );
    expect(err.subject).toBe('reshape7');
    await e.dispose();
  });
});
