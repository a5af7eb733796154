/**
 * Operator-level tests of the integer path that onnxruntime cannot check (it rejects these
 * inputs): per-row a_scale / a_zero_point in QLinearMatMul, differing per-channel weight zero
 * points in QLinearConv, blocked QuantizeLinear (opset 21), plus shape inference and the
 * errors users see. The exhaustive exact comparison with onnxruntime is in
 * compiler/test/integer/qlinear-ort.test.ts.
 */
import { isPtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp, ValueFacts } from './registry';

function run(opType: string, inputs: (Tensor | undefined)[], attrs: Record<string, Attribute> = {}, opset = 13): Tensor[] {
  const node = new Node({ opType, name: `t_${opType}`, inputs: inputs.map((_, i) => `i${i}`), outputs: ['y'], attrs });
  return findOp('', opType)!.run({ node, opset }, inputs);
}

function infer(opType: string, facts: (ValueFacts | undefined)[], attrs: Record<string, Attribute> = {}, opset = 13): ValueFacts[] {
  const node = new Node({ opType, name: `t_${opType}`, inputs: facts.map((_, i) => `i${i}`), outputs: ['y'], attrs });
  return findOp('', opType)!.infer({ node, opset }, facts);
}

const f32 = (dims: number[], v: number[]) => tensorFrom('float32', dims, v);
const i8 = (dims: number[], v: number[]) => tensorFrom('int8', dims, v);
const u8 = (dims: number[], v: number[]) => tensorFrom('uint8', dims, v);
const rne = (v: number) => {
  const f = Math.floor(v);
  return v - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(v);
};
const fr = Math.fround;

describe('QLinearMatMul beyond onnxruntime', () => {
  it('supports per-row a scales and zero points (ONNX allows them; onnxruntime does not)', () => {
    const A = [10, 12, 14, 200, 100, 50]; // 2 × 3, uint8
    const B = [1, -2, 3, 4, -5, 6]; // 3 × 2, int8
    const sa = [0.5, 0.25];
    const za = [10, 100];
    const sb = [0.125, 0.25];
    const zb = [0, 1];
    const sy = 0.0625;
    const [y] = run('QLinearMatMul', [u8([2, 3], A), f32([2], sa), u8([2], za), i8([3, 2], B), f32([2], sb), i8([2], zb), f32([], [sy]), u8([], [128])]);
    const want: number[] = [];
    for (let m = 0; m < 2; m++) {
      for (let n = 0; n < 2; n++) {
        let acc = 0;
        for (let k = 0; k < 3; k++) acc += (A[m * 3 + k] - za[m]) * (B[k * 2 + n] - zb[n]);
        const M = fr(fr(fr(sa[m]) * fr(sb[n])) / fr(sy));
        want.push(Math.min(255, Math.max(0, rne(fr(fr(acc) * M)) + 128)));
      }
    }
    expect(y.dtype).toBe('uint8');
    expect(Array.from(y.data as Uint8Array)).toEqual(want);
  });

  it('rejects a b scale that is neither per tensor nor per column', () => {
    try {
      run('QLinearMatMul', [u8([2, 3], [0, 0, 0, 0, 0, 0]), f32([], [1]), u8([], [0]), i8([3, 2], [0, 0, 0, 0, 0, 0]), f32([3], [1, 1, 1]), i8([], [0]), f32([], [1]), u8([], [0])]);
      throw new Error('no error');
    } catch (e) {
      expect(isPtqError(e) && e.code).toBe('E_MODEL_QPARAM');
      expect((e as Error).message).toContain("node 't_QLinearMatMul'");
      expect((e as Error).message).toContain('b_scale');
    }
  });
});

describe('QLinearConv beyond onnxruntime', () => {
  it('uses each output channel its own weight zero point (onnxruntime requires them equal)', () => {
    // 1×1 conv, 2 input channels, 2 output channels with zero points 1 and -1
    const x = [3, 5, 7, 9]; // [1, 2, 1, 2]: channel 0 = 3,5; channel 1 = 7,9
    const w = [2, 4, -3, 1]; // [2, 2, 1, 1]
    const [y] = run('QLinearConv', [u8([1, 2, 1, 2], x), f32([], [1]), u8([], [1]), i8([2, 2, 1, 1], w), f32([2], [1, 1]), i8([2], [1, -1]), f32([], [1]), u8([], [0])]);
    // out[c][p] = Σ_ci (x[ci][p] − 1)(w[c][ci] − zw[c])
    const want = [(3 - 1) * 1 + (7 - 1) * 3, (5 - 1) * 1 + (9 - 1) * 3, (3 - 1) * -2 + (7 - 1) * 2, (5 - 1) * -2 + (9 - 1) * 2];
    expect(Array.from(y.data as Uint8Array)).toEqual(want.map((v) => Math.max(0, Math.min(255, v))));
  });

  it('names the node in shape and parameter errors', () => {
    const x = u8([1, 3, 4, 4], new Array(48).fill(0));
    const w = i8([2, 2, 1, 1], [0, 0, 0, 0]);
    const args = (ws: Tensor) => [x, f32([], [1]), u8([], [0]), w, ws, i8([], [0]), f32([], [1]), u8([], [0])];
    expect(() => run('QLinearConv', args(f32([], [1])))).toThrow(/node 't_QLinearConv'.*3 channels/);
    const x2 = u8([1, 2, 4, 4], new Array(32).fill(0));
    expect(() => run('QLinearConv', [x2, f32([], [1]), u8([], [0]), w, f32([3], [1, 1, 1]), i8([], [0]), f32([], [1]), u8([], [0])])).toThrow(/w_scale has shape \[3\]/);
    expect(() => run('QLinearConv', [x2, f32([], [1]), u8([], [0]), w, f32([], [1]), i8([], [0]), f32([], [1]), u8([], [0]), tensorFrom('int32', [3], [0, 0, 0])])).toThrow(/bias must be int32 of shape \[2\]/);
  });

  it('infers output shapes with symbolic batch, auto_pad and strides', () => {
    const [f] = infer('QLinearConv', [{ dtype: 'uint8', shape: ['N', 3, 17, 9] }, , , { dtype: 'int8', shape: [8, 3, 3, 3] }, , , , { dtype: 'uint8', shape: [] }], {
      auto_pad: { type: 'string', value: 'SAME_UPPER' },
      strides: { type: 'ints', value: [2, 2] },
    });
    expect(f).toEqual({ dtype: 'uint8', shape: ['N', 8, 9, 5] });
    const [g] = infer('ConvInteger', [{ dtype: 'uint8', shape: [1, 4, 'H', 10] }, { dtype: 'uint8', shape: [6, 2, 3, 3] }], {
      group: { type: 'int', value: 2 },
      pads: { type: 'ints', value: [1, 1, 1, 1] },
      dilations: { type: 'ints', value: [2, 2] },
    });
    expect(g).toEqual({ dtype: 'int32', shape: [1, 6, '?', 8] });
    const [m] = infer('QLinearMatMul', [{ dtype: 'int8', shape: [2, 1, 'M', 5] }, , , { dtype: 'int8', shape: [3, 5, 7] }]);
    expect(m).toEqual({ dtype: 'int8', shape: [2, 3, 'M', 7] });
  });
});

describe('QuantizeLinear / DequantizeLinear layouts', () => {
  it('quantizes blocks along an axis (opset 21 block_size)', () => {
    const x = [0.5, 1.5, 2.5, 3.5, 4.5, -0.5, -1.5, -2.5]; // [2, 4]
    const scale = [1, 0.5, 2, 0.25]; // [2, 2]: blocks of 2 along axis 1
    const [y] = run('QuantizeLinear', [f32([2, 4], x), f32([2, 2], scale), i8([2, 2], [0, 1, 2, 3])], { axis: { type: 'int', value: 1 }, block_size: { type: 'int', value: 2 } }, 21);
    const want = x.map((v, i) => {
      const p = Math.floor(i / 4) * 2 + Math.floor((i % 4) / 2);
      return Math.max(-128, Math.min(127, rne(v / scale[p]) + [0, 1, 2, 3][p]));
    });
    expect(Array.from(y.data as Int8Array)).toEqual(want);
  });

  it('dequantizes per axis with a negative axis', () => {
    const [y] = run('DequantizeLinear', [u8([2, 3], [0, 10, 20, 30, 40, 50]), f32([3], [0.5, 0.25, 2]), u8([3], [10, 20, 30])], { axis: { type: 'int', value: -1 } });
    expect(Array.from(y.data as Float32Array)).toEqual([-5, -2.5, -20, 10, 5, 40]);
  });

  it('defaults to uint8 without a zero point, and rejects per-axis scales before opset 13', () => {
    const [y] = run('QuantizeLinear', [f32([3], [-1, 1.5, 300]), f32([], [1])]);
    expect(y.dtype).toBe('uint8');
    expect(Array.from(y.data as Uint8Array)).toEqual([0, 2, 255]);
    expect(() => run('QuantizeLinear', [f32([2], [1, 2]), f32([2], [1, 1])], {}, 10)).toThrow(/scalar before opset 13/);
  });
});
