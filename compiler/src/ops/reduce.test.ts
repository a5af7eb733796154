import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp } from './registry';

interface Opts {
  axes?: number[];
  keepdims?: number;
  noop?: number;
  /** give the axes as the second input (opset 13 ReduceSum, opset 18 others) */
  axesInput?: boolean;
}

function node(opType: string, o: Opts): Node {
  const attrs: Record<string, Attribute> = {};
  if (o.axes && !o.axesInput) attrs.axes = { type: 'ints', value: o.axes };
  if (o.keepdims !== undefined) attrs.keepdims = { type: 'int', value: o.keepdims };
  if (o.noop !== undefined) attrs.noop_with_empty_axes = { type: 'int', value: o.noop };
  return new Node({ opType, inputs: o.axesInput ? ['x', 'axes'] : ['x'], outputs: ['y'], attrs });
}

function run(opType: string, opset: number, x: Tensor, o: Opts = {}): Tensor {
  const axes = o.axesInput && o.axes ? tensorFrom('int64', [o.axes.length], o.axes) : undefined;
  return runStep({ node: node(opType, o), op: findOp('', opType)!, opset }, [x, axes])[0];
}

/** Independent reduction: group the values by their coordinates outside `axes`. */
function naive(dims: number[], vals: number[], axes: number[], f: (v: number[]) => number): { dims: number[]; values: number[] } {
  const r = dims.length;
  const ax = axes.map((a) => (a < 0 ? a + r : a));
  const groups = new Map<string, number[]>();
  const order: string[] = [];
  const coord = new Array<number>(r).fill(0);
  for (let i = 0; i < vals.length; i++) {
    let rem = i;
    for (let d = r - 1; d >= 0; d--) {
      coord[d] = rem % dims[d];
      rem = Math.floor(rem / dims[d]);
    }
    const key = coord.filter((_, d) => !ax.includes(d)).join(',');
    if (!groups.has(key)) {
      groups.set(key, []);
      order.push(key);
    }
    groups.get(key)!.push(vals[i]);
  }
  return { dims: dims.filter((_, d) => !ax.includes(d)), values: order.map((k) => f(groups.get(k)!)) };
}

const sum = (v: number[]): number => v.reduce((a, b) => a + b, 0);
const FORMULAS: Record<string, (v: number[]) => number> = {
  ReduceSum: sum,
  ReduceMean: (v) => sum(v) / v.length,
  ReduceMax: (v) => Math.max(...v),
  ReduceMin: (v) => Math.min(...v),
  ReduceProd: (v) => v.reduce((a, b) => a * b, 1),
  ReduceL1: (v) => sum(v.map(Math.abs)),
  ReduceL2: (v) => Math.sqrt(sum(v.map((x) => x * x))),
  ReduceLogSum: (v) => Math.log(sum(v)),
  ReduceLogSumExp: (v) => Math.log(sum(v.map(Math.exp))),
  ReduceSumSquare: (v) => sum(v.map((x) => x * x)),
};

describe('Reduce*', () => {
  const dims = [3, 4, 5];
  const vals = Array.from({ length: 60 }, (_, i) => (((i * 7919) % 97) / 97) * 2 + 0.1);
  const x = tensorFrom('float32', dims, vals);
  const f32 = Array.from(x.toNumbers());

  for (const [type, f] of Object.entries(FORMULAS)) {
    it(`${type}: matches a direct computation (opset 13), keepdims 0 and 1`, () => {
      const viaInput = type === 'ReduceSum';
      for (const axes of [[2, 0], [-2], [0, 1, 2]]) {
        const want = naive(dims, f32, axes, f);
        const y0 = run(type, 13, x, { axes, keepdims: 0, axesInput: viaInput });
        expect(y0.dims).toEqual(want.dims);
        y0.toNumbers().forEach((v, i) => expect(v).toBeCloseTo(want.values[i], 4));
        const y1 = run(type, 13, x, { axes, axesInput: viaInput });
        expect(y1.dims).toEqual(dims.map((d, i) => (axes.some((a) => (a + 3) % 3 === i) ? 1 : d)));
        expect(y1.toNumbers()).toEqual(y0.toNumbers());
      }
      // no axes: everything
      const all = run(type, 13, x, { axesInput: viaInput });
      expect(all.dims).toEqual([1, 1, 1]);
      expect(all.toNumbers()[0]).toBeCloseTo(f(f32), 3);
    });
  }

  it('axes: attribute before opset 13 (ReduceSum) / 18 (others), input afterwards', () => {
    const want = naive(dims, f32, [1], FORMULAS.ReduceSum).values;
    const close = (t: Tensor): void => t.toNumbers().forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
    close(run('ReduceSum', 11, x, { axes: [1], keepdims: 0 }));
    close(run('ReduceSum', 13, x, { axes: [1], keepdims: 0, axesInput: true }));
    const mean = naive(dims, f32, [1, 2], FORMULAS.ReduceMean).values;
    const m17 = run('ReduceMean', 17, x, { axes: [1, 2], keepdims: 0 });
    const m18 = run('ReduceMean', 18, x, { axes: [1, 2], keepdims: 0, axesInput: true });
    expect(m18.toNumbers()).toEqual(m17.toNumbers());
    m18.toNumbers().forEach((v, i) => expect(v).toBeCloseTo(mean[i], 5));
  });

  it('noop_with_empty_axes: empty axes reduce each element alone; without it everything is reduced', () => {
    expect(run('ReduceSum', 13, x, { axes: [], axesInput: true, noop: 1 }).toNumbers()).toEqual(f32);
    expect(run('ReduceMax', 18, x, { noop: 1 }).toNumbers()).toEqual(f32);
    const signed = tensorFrom('float32', [2, 2], [-3, 2, -0.5, 4]);
    expect(run('ReduceL1', 18, signed, { noop: 1 }).toNumbers()).toEqual([3, 2, 0.5, 4]);
    expect(run('ReduceL2', 18, signed, { noop: 1 }).toNumbers()).toEqual([3, 2, 0.5, 4]);
    expect(run('ReduceSumSquare', 18, signed, { axes: [], axesInput: true, noop: 1 }).toNumbers()).toEqual([9, 4, 0.25, 16]);
    const lse = run('ReduceLogSumExp', 18, signed, { noop: 1 });
    expect(lse.dims).toEqual([2, 2]);
    lse.toNumbers().forEach((v, i) => expect(v).toBeCloseTo([-3, 2, -0.5, 4][i], 6));
    run('ReduceLogSum', 18, tensorFrom('float32', [2], [1, Math.E]), { noop: 1 }).toNumbers().forEach((v, i) => expect(v).toBeCloseTo(i, 6));
    const all = run('ReduceMax', 18, x, { axes: [], axesInput: true, noop: 0, keepdims: 0 });
    expect(all.dims).toEqual([]);
    expect(all.toNumbers()[0]).toBe(Math.max(...f32));
    // before opset 18 the attribute does not exist: no axes is everything
    expect(run('ReduceMax', 13, x, { noop: 1, keepdims: 0 }).dims).toEqual([]);
  });

  it('a reduction over an empty set gives the identity of the operation', () => {
    const e = new Tensor('float32', [2, 0, 3]);
    const expectAll = (type: string, v: number): void => {
      const y = run(type, 13, e, { axes: [1], keepdims: 0, axesInput: type === 'ReduceSum' });
      expect(y.dims).toEqual([2, 3]);
      for (const got of y.toNumbers()) expect(got).toBe(v);
    };
    expectAll('ReduceSum', 0);
    expectAll('ReduceSumSquare', 0);
    expectAll('ReduceL1', 0);
    expectAll('ReduceL2', 0);
    expectAll('ReduceProd', 1);
    expectAll('ReduceMax', -Infinity);
    expectAll('ReduceMin', Infinity);
    expectAll('ReduceLogSum', -Infinity);
    expectAll('ReduceLogSumExp', -Infinity);
    expectAll('ReduceMean', NaN);
    const ei = new Tensor('int32', [2, 0]);
    expect(run('ReduceMax', 13, ei, { axes: [1] }).toNumbers()).toEqual([-2147483648, -2147483648]);
    expect(run('ReduceMin', 13, new Tensor('uint8', [2, 0]), { axes: [1] }).toNumbers()).toEqual([255, 255]);
  });

  it('log-sum-exp is stable and handles infinities', () => {
    const y = run('ReduceLogSumExp', 13, tensorFrom('float64', [4, 2], [1000, 1000, -1000, -1001, -Infinity, -Infinity, Infinity, 1]), { axes: [1], keepdims: 0 });
    const got = y.toNumbers();
    expect(got[0]).toBeCloseTo(1000 + Math.LN2, 10);
    expect(got[1]).toBeCloseTo(-1000 + Math.log(1 + Math.exp(-1)), 10);
    expect(got[2]).toBe(-Infinity);
    expect(got[3]).toBe(Infinity);
  });

  it('NaN propagates through max and min', () => {
    const t = tensorFrom('float32', [2, 3], [1, NaN, 3, 4, 5, 6]);
    expect(run('ReduceMax', 13, t, { axes: [1], keepdims: 0 }).toNumbers()).toEqual([NaN, 6]);
    expect(run('ReduceMin', 13, t, { axes: [1], keepdims: 0 }).toNumbers()).toEqual([NaN, 4]);
  });

  it('integer types: int64 exactly, int32 through double', () => {
    const big = tensorFrom('int64', [3], [9007199254740992n, 1n, 2n]);
    expect((run('ReduceSum', 13, big, { keepdims: 0 }).data as BigInt64Array)[0]).toBe(9007199254740995n);
    expect((run('ReduceMax', 13, big, { keepdims: 0 }).data as BigInt64Array)[0]).toBe(9007199254740992n);
    expect((run('ReduceProd', 13, tensorFrom('int64', [2], [-3n, 4n]), { keepdims: 0 }).data as BigInt64Array)[0]).toBe(-12n);
    expect((run('ReduceL1', 13, tensorFrom('int64', [2], [-3n, 4n]), { keepdims: 0 }).data as BigInt64Array)[0]).toBe(7n);
    const l2 = run('ReduceL2', 13, tensorFrom('int64', [2], [3n, 4n]), { keepdims: 0 });
    expect(l2.dtype).toBe('int64');
    expect(l2.toNumbers()).toEqual([5]);
    const i32 = run('ReduceSum', 13, tensorFrom('int32', [2, 2], [1, 2, 3, 4]), { axes: [0], axesInput: true });
    expect(i32.dtype).toBe('int32');
    expect(i32.toNumbers()).toEqual([4, 6]);
  });

  it('float16 is widened for the kernel and narrowed back', () => {
    const y = run('ReduceMean', 13, tensorFrom('float16', [4], [1, 2, 3, 4]), { keepdims: 0 });
    expect(y.dtype).toBe('float16');
    expect(y.toNumbers()).toEqual([2.5]);
  });

  it('scalar input: all-axes reduction of one element', () => {
    expect(run('ReduceL1', 13, tensorFrom('float32', [], [-2])).toNumbers()).toEqual([2]);
  });

  it('errors: repeated or out-of-range axes', () => {
    expect(() => run('ReduceMean', 13, x, { axes: [1, -2] })).toThrow(/listed twice/);
    expect(() => run('ReduceMean', 13, x, { axes: [3] })).toThrow(PtqError);
    expect(() => run('ReduceMean', 13, tensorFrom('bool', [2], [1, 0]))).toThrow(PtqError);
  });

  it('shape function: constant axes, run-time axes, symbolic dims', () => {
    const mean = findOp('', 'ReduceMean')!;
    const inf = (opset: number, o: Opts, facts: Parameters<typeof mean.infer>[1]): unknown => mean.infer({ node: node('ReduceMean', o), opset }, facts)[0].shape;
    expect(inf(13, { axes: [2, 3] }, [{ dtype: 'float32', shape: ['N', 64, 'H', 'W'] }])).toEqual(['N', 64, 1, 1]);
    expect(inf(13, { axes: [-1], keepdims: 0 }, [{ dtype: 'float32', shape: ['N', 64, 7] }])).toEqual(['N', 64]);
    expect(inf(13, {}, [{ dtype: 'float32', shape: ['N', 64] }])).toEqual([1, 1]);
    const axesConst = { dtype: 'int64' as const, shape: [1], value: tensorFrom('int64', [1], [1]) };
    expect(inf(18, { axesInput: true, keepdims: 0 }, [{ dtype: 'float32', shape: ['N', 64, 7] }, axesConst])).toEqual(['N', 7]);
    const axesRuntime = { dtype: 'int64' as const, shape: [2] };
    expect(inf(18, { axesInput: true, keepdims: 0 }, [{ dtype: 'float32', shape: ['N', 64, 7] }, axesRuntime])).toEqual(['?']);
    expect(inf(18, { axesInput: true }, [{ dtype: 'float32', shape: ['N', 64, 7] }, axesRuntime])).toEqual(['?', '?', '?']);
    expect(inf(18, { noop: 1 }, [{ dtype: 'float32', shape: ['N', 64] }])).toEqual(['N', 64]);
    expect(inf(13, {}, [{ dtype: 'float32' }])).toBeUndefined();
  });

  it('quantisation roles', () => {
    expect(findOp('', 'ReduceMean')!.quant).toBe('active');
    expect(findOp('', 'ReduceMax')!.quant).toBe('passive');
    for (const t of ['ReduceMin', 'ReduceSum', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare', 'MeanVarianceNormalization']) {
      expect(findOp('', t)!.quant).toBe('cpu');
    }
  });
});

describe('MeanVarianceNormalization', () => {
  it('normalises over N, H, W by default, per channel', () => {
    const dims = [2, 3, 2, 2];
    const vals = Array.from({ length: 24 }, (_, i) => ((i * 13) % 17) - 6);
    const y = runStep({ node: new Node({ opType: 'MeanVarianceNormalization', inputs: ['x'], outputs: ['y'] }), op: findOp('', 'MeanVarianceNormalization')!, opset: 13 }, [tensorFrom('float32', dims, vals)])[0].toNumbers();
    for (let c = 0; c < 3; c++) {
      const at: number[] = [];
      for (let n = 0; n < 2; n++) for (let k = 0; k < 4; k++) at.push(n * 12 + c * 4 + k);
      const m = at.reduce((a, p) => a + vals[p], 0) / at.length;
      const sd = Math.sqrt(at.reduce((a, p) => a + (vals[p] - m) ** 2, 0) / at.length);
      for (const p of at) expect(y[p]).toBeCloseTo((vals[p] - m) / (sd + 1e-9), 5);
    }
  });

  it('takes other axes', () => {
    const n = new Node({ opType: 'MeanVarianceNormalization', inputs: ['x'], outputs: ['y'], attrs: { axes: { type: 'ints', value: [-1] } } });
    const y = runStep({ node: n, op: findOp('', 'MeanVarianceNormalization')!, opset: 9 }, [tensorFrom('float32', [2, 2], [1, 3, 10, 30])])[0].toNumbers();
    y.forEach((v, i) => expect(v).toBeCloseTo([-1, 1, -1, 1][i], 6));
  });
});
