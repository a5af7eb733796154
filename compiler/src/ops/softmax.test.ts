import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp } from './registry';

function node(opType: string, attrs: Record<string, Attribute> = {}): Node {
  return new Node({ opType, inputs: ['x'], outputs: ['y'], attrs });
}

function run(opType: string, opset: number, x: Tensor, attrs: Record<string, Attribute> = {}): Tensor {
  const op = findOp('', opType)!;
  return runStep({ node: node(opType, attrs), op, opset }, [x])[0];
}

const axis = (v: number): Record<string, Attribute> => ({ axis: { type: 'int', value: v } });

/** Deterministic values in [-3, 3). */
function ramp(n: number): number[] {
  return Array.from({ length: n }, (_, i) => ((i * 7919) % 61) / 10 - 3);
}

/** Independent softmax of a plain list (small values: no shift needed). */
function softmaxList(v: number[]): number[] {
  const e = v.map(Math.exp);
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('Softmax family', () => {
  it('opset 13: softmax along one axis of [2,3,4]', () => {
    const vals = ramp(24);
    const y = run('Softmax', 13, tensorFrom('float32', [2, 3, 4], vals), axis(1)).toNumbers();
    for (let a = 0; a < 2; a++) {
      for (let c = 0; c < 4; c++) {
        const at = [0, 1, 2].map((b) => a * 12 + b * 4 + c);
        const want = softmaxList(at.map((p) => vals[p]));
        at.forEach((p, k) => expect(y[p]).toBeCloseTo(want[k], 6));
      }
    }
  });

  it('opset 13 default axis is -1', () => {
    const vals = ramp(6);
    const y = run('Softmax', 13, tensorFrom('float32', [2, 3], vals)).toNumbers();
    const want = [...softmaxList(vals.slice(0, 3)), ...softmaxList(vals.slice(3))];
    y.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });

  it('opset < 13: the input is coerced to 2-D at axis (default 1)', () => {
    const vals = ramp(24);
    const x = tensorFrom('float32', [2, 3, 4], vals);
    const y = run('Softmax', 11, x).toNumbers();
    // each of the two rows of 12 elements is one softmax
    const want = [...softmaxList(vals.slice(0, 12)), ...softmaxList(vals.slice(12))];
    y.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    // axis 2 → [6, 4]
    const y2 = run('Softmax', 1, x, axis(2)).toNumbers();
    for (let r = 0; r < 6; r++) {
      const w = softmaxList(vals.slice(r * 4, r * 4 + 4));
      w.forEach((v, k) => expect(y2[r * 4 + k]).toBeCloseTo(v, 6));
    }
    // axis 0 → one softmax over everything
    const y0 = run('LogSoftmax', 11, x, axis(0)).toNumbers();
    softmaxList(vals).forEach((v, i) => expect(y0[i]).toBeCloseTo(Math.log(v), 5));
  });

  it('is stable for large inputs (the maximum is subtracted)', () => {
    // softmax([0,1,2]) = e^k / (1 + e + e^2)
    const den = 1 + Math.E + Math.E * Math.E;
    const y = run('Softmax', 13, tensorFrom('float32', [1, 3], [1000, 1001, 1002])).toNumbers();
    [1 / den, Math.E / den, (Math.E * Math.E) / den].forEach((v, i) => expect(y[i]).toBeCloseTo(v, 6));
    const l = run('LogSoftmax', 13, tensorFrom('float32', [1, 3], [1000, 1001, 1002])).toNumbers();
    [0, 1, 2].forEach((k, i) => expect(l[i]).toBeCloseTo(k - Math.log(den), 5));
    expect(l.every(Number.isFinite)).toBe(true);
  });

  it('float64 stays float64, float16 is widened and narrowed back', () => {
    const y = run('Softmax', 13, tensorFrom('float64', [2], [0, Math.log(3)]));
    expect(y.dtype).toBe('float64');
    y.toNumbers().forEach((v, i) => expect(v).toBeCloseTo([0.25, 0.75][i], 14));
    const h = run('Softmax', 13, tensorFrom('float16', [2], [0, Math.log(3)]));
    expect(h.dtype).toBe('float16');
    expect(h.toNumbers()).toEqual([0.25, 0.75]);
  });

  it('Hardmax marks the first maximum; before opset 13 per coerced row', () => {
    const x = tensorFrom('float32', [2, 2, 2], [1, 5, 5, 0, 2, 1, 3, 3]);
    expect(run('Hardmax', 13, x).toNumbers()).toEqual([0, 1, 1, 0, 1, 0, 1, 0]);
    expect(run('Hardmax', 13, x, axis(1)).toNumbers()).toEqual([0, 1, 1, 0, 0, 0, 1, 1]);
    expect(run('Hardmax', 11, x).toNumbers()).toEqual([0, 1, 0, 0, 0, 0, 1, 0]);
  });

  it('rejects integer inputs and bad axes with PtqErrors', () => {
    expect(() => run('Softmax', 13, tensorFrom('int32', [2], [1, 2]))).toThrow(PtqError);
    expect(() => run('Softmax', 13, tensorFrom('float32', [2], [1, 2]), axis(3))).toThrow(/axis 3 is out of range/);
  });

  it('shape function and quantisation role', () => {
    const op = findOp('', 'LogSoftmax')!;
    expect(op.infer({ node: node('LogSoftmax'), opset: 13 }, [{ dtype: 'float32', shape: ['N', 10] }])).toEqual([{ dtype: 'float32', shape: ['N', 10] }]);
    for (const t of ['Softmax', 'LogSoftmax', 'Hardmax']) expect(findOp('', t)!.quant).toBe('cpu');
  });
});
