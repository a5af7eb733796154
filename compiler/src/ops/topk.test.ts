import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp } from './registry';

function node(attrs: Record<string, number>, withK: boolean): Node {
  const a: Record<string, Attribute> = {};
  for (const [k, v] of Object.entries(attrs)) a[k] = { type: 'int', value: v };
  return new Node({ opType: 'TopK', inputs: withK ? ['x', 'k'] : ['x'], outputs: ['values', 'indices'], attrs: a });
}

function topk(x: Tensor, k: number, attrs: Record<string, number> = {}, opset = 11): [number[], number[], Tensor, Tensor] {
  const withK = opset >= 10;
  const n = node(withK ? attrs : { ...attrs, k }, withK);
  const [v, i] = runStep({ node: n, op: findOp('', 'TopK')!, opset }, withK ? [x, tensorFrom('int64', [1], [k])] : [x]);
  return [v.toNumbers(), i.toNumbers(), v, i];
}

/** Independent top-k of a list: stable sort of (value, index) pairs. */
function ref(v: number[], k: number, largest: boolean): [number[], number[]] {
  const idx = v.map((_, i) => i);
  idx.sort((a, b) => (largest ? v[b] - v[a] : v[a] - v[b]) || a - b);
  const top = idx.slice(0, k);
  return [top.map((i) => v[i]), top];
}

describe('TopK', () => {
  const vals = Array.from({ length: 30 }, (_, i) => ((i * 17) % 23) - 11);
  const x = tensorFrom('float32', [2, 3, 5], vals);

  it('largest and smallest along the last axis, compared with a sort', () => {
    for (const largest of [1, 0]) {
      const [v, i, vt, it2] = topk(x, 3, { largest });
      expect(vt.dims).toEqual([2, 3, 3]);
      expect(vt.dtype).toBe('float32');
      expect(it2.dtype).toBe('int64');
      for (let r = 0; r < 6; r++) {
        const [wv, wi] = ref(vals.slice(r * 5, r * 5 + 5), 3, largest === 1);
        expect(v.slice(r * 3, r * 3 + 3)).toEqual(wv);
        expect(i.slice(r * 3, r * 3 + 3)).toEqual(wi);
      }
    }
  });

  it('along a middle axis', () => {
    const [v, i, vt] = topk(x, 2, { axis: 1 });
    expect(vt.dims).toEqual([2, 2, 5]);
    for (let a = 0; a < 2; a++) {
      for (let c = 0; c < 5; c++) {
        const col = [0, 1, 2].map((b) => vals[a * 15 + b * 5 + c]);
        const [wv, wi] = ref(col, 2, true);
        expect([v[a * 10 + c], v[a * 10 + 5 + c]]).toEqual(wv);
        expect([i[a * 10 + c], i[a * 10 + 5 + c]]).toEqual(wi);
      }
    }
  });

  it('ties keep the lower index first', () => {
    const t = tensorFrom('float32', [6], [5, 1, 5, 3, 1, 5]);
    expect(topk(t, 4).slice(0, 2)).toEqual([[5, 5, 5, 3], [0, 2, 5, 3]]);
    expect(topk(t, 3, { largest: 0 }).slice(0, 2)).toEqual([[1, 1, 3], [1, 4, 3]]);
  });

  it('k is an attribute before opset 10; largest does not exist before 11', () => {
    const t = tensorFrom('float32', [4], [2, 8, 4, 6]);
    expect(topk(t, 2, {}, 1).slice(0, 2)).toEqual([[8, 6], [1, 3]]);
    expect(topk(t, 2, { largest: 0 }, 10).slice(0, 2)).toEqual([[8, 6], [1, 3]]);
    expect(topk(t, 2, { largest: 0 }, 11).slice(0, 2)).toEqual([[2, 4], [0, 2]]);
  });

  it('k = 0 and k = n; int64 values stay exact; NaN ranks first', () => {
    const t = tensorFrom('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(topk(t, 0)[2].dims).toEqual([2, 0]);
    expect(topk(t, 3)[0]).toEqual([3, 2, 1, 6, 5, 4]);
    const big = tensorFrom('int64', [3], [9007199254740993n, 1n, 9007199254740992n]);
    const [, bi, bv] = topk(big, 2);
    expect(Array.from(bv.data as BigInt64Array)).toEqual([9007199254740993n, 9007199254740992n]);
    expect(bi).toEqual([0, 2]);
    expect(topk(tensorFrom('float32', [3], [1, NaN, 2]), 2)[1]).toEqual([1, 2]);
  });

  it('errors: k out of range, axis out of range', () => {
    const t = tensorFrom('float32', [3], [1, 2, 3]);
    expect(() => topk(t, 4)).toThrow(PtqError);
    expect(() => topk(t, -1)).toThrow(/k = -1/);
    expect(() => topk(t, 1, { axis: 1 })).toThrow(PtqError);
  });

  it('shape function: k from a constant, a symbol otherwise; role cpu', () => {
    const op = findOp('', 'TopK')!;
    const facts = [{ dtype: 'float32' as const, shape: ['N', 80, 100] }, { dtype: 'int64' as const, shape: [1], value: tensorFrom('int64', [1], [10]) }];
    expect(op.infer({ node: node({}, true), opset: 11 }, facts)).toEqual([
      { dtype: 'float32', shape: ['N', 80, 10] },
      { dtype: 'int64', shape: ['N', 80, 10] },
    ]);
    expect(op.infer({ node: node({ axis: 1 }, true), opset: 11 }, [facts[0], { dtype: 'int64', shape: [1] }])[0].shape).toEqual(['N', '?', 100]);
    expect(op.infer({ node: node({ k: 5 }, false), opset: 1 }, [facts[0]])[1].shape).toEqual(['N', 80, 5]);
    expect(op.quant).toBe('cpu');
  });
});
