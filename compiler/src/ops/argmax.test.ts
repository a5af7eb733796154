import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp } from './registry';

type Attrs = Record<string, number>;

function node(opType: string, attrs: Attrs): Node {
  const a: Record<string, Attribute> = {};
  for (const [k, v] of Object.entries(attrs)) a[k] = { type: 'int', value: v };
  return new Node({ opType, inputs: ['x'], outputs: ['y'], attrs: a });
}

function run(opType: string, x: Tensor, attrs: Attrs = {}, opset = 13): Tensor {
  return runStep({ node: node(opType, attrs), op: findOp('', opType)!, opset }, [x])[0];
}

describe('ArgMax / ArgMin', () => {
  const vals = Array.from({ length: 24 }, (_, i) => (i * 37) % 11);
  const x = tensorFrom('float32', [2, 3, 4], vals);

  it('index of the extreme along an axis, compared with a direct search', () => {
    for (const [op, better] of [['ArgMax', (a: number, b: number) => a > b], ['ArgMin', (a: number, b: number) => a < b]] as const) {
      const y = run(op, x, { axis: 1 });
      expect(y.dtype).toBe('int64');
      expect(y.dims).toEqual([2, 1, 4]);
      const got = y.toNumbers();
      for (let a = 0; a < 2; a++) {
        for (let c = 0; c < 4; c++) {
          let best = 0;
          for (let b = 1; b < 3; b++) if (better(vals[a * 12 + b * 4 + c], vals[a * 12 + best * 4 + c])) best = b;
          expect(got[a * 4 + c]).toBe(best);
        }
      }
    }
  });

  it('axis defaults to 0, keepdims=0 drops the axis, negative axes count from the end', () => {
    expect(run('ArgMax', x).dims).toEqual([1, 3, 4]);
    expect(run('ArgMax', x, { axis: -1, keepdims: 0 }).dims).toEqual([2, 3]);
    expect(run('ArgMax', x, { axis: -1, keepdims: 0 }).toNumbers()).toEqual(run('ArgMax', x, { axis: 2, keepdims: 1 }).toNumbers());
  });

  it('ties: first index, or the last with select_last_index', () => {
    const t = tensorFrom('float32', [2, 3], [2, 7, 7, 1, 1, 0]);
    expect(run('ArgMax', t, { axis: 1 }).toNumbers()).toEqual([1, 0]);
    expect(run('ArgMax', t, { axis: 1, select_last_index: 1 }).toNumbers()).toEqual([2, 1]);
    expect(run('ArgMin', t, { axis: 1 }).toNumbers()).toEqual([0, 2]);
    expect(run('ArgMin', tensorFrom('float32', [4], [3, 1, 1, 5]), { select_last_index: 1 }).toNumbers()).toEqual([2]);
  });

  it('int64 inputs compare exactly; NaN counts as the extreme (first one)', () => {
    const big = tensorFrom('int64', [3], [9007199254740993n, 9007199254740992n, -5n]);
    expect(run('ArgMax', big).toNumbers()).toEqual([0]);
    expect(run('ArgMin', big).toNumbers()).toEqual([2]);
    const nan = tensorFrom('float32', [4], [1, NaN, 9, NaN]);
    expect(run('ArgMax', nan).toNumbers()).toEqual([1]);
    expect(run('ArgMin', nan).toNumbers()).toEqual([1]);
    expect(run('ArgMax', nan, { select_last_index: 1 }).toNumbers()).toEqual([3]);
  });

  it('errors: axis out of range, empty axis', () => {
    expect(() => run('ArgMax', x, { axis: 3 })).toThrow(PtqError);
    expect(() => run('ArgMax', new Tensor('float32', [2, 0]), { axis: 1 })).toThrow(/size 0/);
  });

  it('shape function keeps symbolic dims; role cpu', () => {
    const op = findOp('', 'ArgMin')!;
    expect(op.infer({ node: node('ArgMin', { axis: 1, keepdims: 0 }), opset: 13 }, [{ dtype: 'float32', shape: ['N', 10, 'W'] }])).toEqual([{ dtype: 'int64', shape: ['N', 'W'] }]);
    expect(op.infer({ node: node('ArgMin', {}), opset: 13 }, [{ dtype: 'float32', shape: ['N', 10] }])).toEqual([{ dtype: 'int64', shape: [1, 10] }]);
    expect(op.quant).toBe('cpu');
    expect(findOp('', 'ArgMax')!.quant).toBe('cpu');
  });
});
