import { Rng } from '../kernels/random';
import { Tensor } from '../onnx/tensor';
import { applyDeletedNode, applyInputRecords, applyOutputRecords } from './deleted-nodes';
import { arr, boundaryModel, interpret } from './fixtures.test.util';
import { modifyModel } from './modifier';

const toArr = (t: Tensor) => arr(t.dims, t.toNumbers());

describe('applying deleted-node records (what the application does)', () => {
  it('modified model + records = original model, for every prefix of the deletions', () => {
    const orig = boundaryModel();
    const all = modifyModel(orig, ['Transpose', 'Quantize', 'Softmax', 'Reshape', 'Dequantize'].map((type) => ({ kind: 'all' as const, type })), 'f.bin');
    const rng = new Rng(7);
    for (let k = 1; k <= all.removed.length; k++) {
      const part = modifyModel(orig, all.removed.slice(0, k).map((d) => ({ kind: 'remove' as const, name: d.name })), 'f.bin').model;
      const x = new Tensor('float32', [1, 3, 4, 4], Float32Array.from({ length: 48 }, () => rng.uniform(-3, 3)));
      const fed = applyInputRecords(part, 'data', x);
      expect(fed.dtype).toBe(part.inputs[0].dtype);
      expect(fed.dims).toEqual(part.inputs[0].shape);
      const got = interpret(part, { data: toArr(fed) });
      const want = interpret(orig, { data: toArr(x) });
      for (const o of ['prob', 'pool']) {
        const io = part.outputs.find((q) => q.name === o)!;
        const t = new Tensor('float32', got[o].dims, Float32Array.from(got[o].data));
        const back = applyOutputRecords(part, o, io.dtype === 'float32' ? t : new Tensor(io.dtype, t.dims, Int8Array.from(got[o].data)));
        expect(back.dims).toEqual(want[o].dims);
        const w = want[o].data;
        back.toNumbers().forEach((v, i) => expect(Math.abs(v - w[i])).toBeLessThanOrEqual(o === 'prob' ? 1e-6 : 0));
      }
    }
  });

  it('quantizes like ONNX QuantizeLinear (half to even, saturating) and refuses a record without a scale', () => {
    const q = applyDeletedNode({ name: 'q', opType: 'Quantize', position: 'input', io: 'x', attrs: [{ name: 'scale', f: 0.5 }, { name: 'zero_point', i: 0 }], info: '' }, new Tensor('float32', [5], Float32Array.from([0.25, 0.75, -0.25, 100, -100])));
    expect(Array.from(q.data as Int8Array)).toEqual([0, 2, 0, 127, -128]);
    expect(() => applyDeletedNode({ name: 'd', opType: 'Dequantize', position: 'output', io: 'y', attrs: [], info: '' }, q)).toThrow("deleted node 'd' (Dequantize): no scale recorded");
    const t = applyDeletedNode({ name: 't', opType: 'Transpose', position: 'output', io: 'y', attrs: [{ name: 'perm', ints: [1, 0] }], info: '' }, new Tensor('float32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])));
    expect(t.dims).toEqual([3, 2]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 4, 2, 5, 3, 6]);
    const c = applyDeletedNode({ name: 'c', opType: 'Cast', position: 'output', io: 'y', attrs: [{ name: 'to', i: 1 }], info: '' }, new Tensor('int8', [2], Int8Array.from([-3, 4])));
    expect(c.dtype).toBe('float32');
  });
});
