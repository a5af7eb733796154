import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from './registry';

function run(type: string, x: Tensor, attrs: Record<string, Attribute> = {}, opset = 20): Tensor {
  const node = new Node({ opType: type, name: 'n', inputs: ['x'], outputs: ['y'], attrs });
  return findOp('', type)!.run({ node, opset }, [x])[0];
}
const f64 = (v: number[]): Tensor => tensorFrom('float64', [v.length], v);
const flt = (v: number): Attribute => ({ type: 'float', value: v });

/** |got - want| <= 1e-12 · max(1, |want|) elementwise */
function close(got: number[], want: number[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want[i]))));
}

// Reference values computed with numpy / Python math (see the op formulas in ONNX Operators.md).
const X = [-1000, -20, -1.5, -0.25, 0, 0.25, 1.5, 20, 1000];

describe('activations', () => {
  it('Sigmoid is stable at both ends', () => {
    close(run('Sigmoid', f64(X)).toNumbers(), [0, 2.0611536181902037e-9, 0.18242552380635635, 0.43782349911420193, 0.5, 0.5621765008857981, 0.8175744761936437, 0.9999999979388463, 1]);
  });

  it('Softplus = log(1 + e^x) without overflow', () => {
    close(run('Softplus', f64(X)).toNumbers(), [0, 2.061153620314381e-9, 0.2014132779827524, 0.5759394198788436, 0.6931471805599453, 0.8259394198788436, 1.7014132779827524, 20.000000002061153, 1000]);
  });

  it('Selu uses the spec defaults (float32 alpha, gamma), Elu and Celu their alpha', () => {
    close(run('Selu', f64([-2, -0.5, 0, 0.5, 2])).toNumbers(), [-1.5201664733475926, -0.6917581899652426, 0, 0.5253505110740662, 2.1014020442962646]);
    close(run('Elu', f64([-1, 2]), { alpha: flt(2) }).toNumbers(), [2 * (Math.exp(-1) - 1), 2]);
    // Celu(x) = max(0,x) + min(0, alpha·(exp(x/alpha) - 1))
    close(run('Celu', f64([-3, 3]), { alpha: flt(2) }).toNumbers(), [2 * (Math.exp(-1.5) - 1), 3]);
  });

  it('HardSigmoid and HardSwish clamp the line alpha·x + beta', () => {
    close(run('HardSigmoid', f64([-10, -1, 0, 1, 10])).toNumbers(), [0, 0.3, 0.5, 0.7, 1]);
    close(run('HardSigmoid', f64([-1, 0, 1]), { alpha: flt(0.5), beta: flt(0.25) }).toNumbers(), [0, 0.25, 0.75]);
    close(run('HardSwish', f64([-4, -1, 0, 1, 4])).toNumbers(), [0, -1 / 3, 0, 2 / 3, 4]);
  });

  it('LeakyRelu, ThresholdedRelu, Shrink, Softsign', () => {
    close(run('LeakyRelu', f64([-10, 3])).toNumbers(), [-0.1, 3]);
    close(run('LeakyRelu', f64([-10, 3]), { alpha: flt(0.2) }).toNumbers(), [-2, 3]);
    close(run('ThresholdedRelu', f64([0.5, 1, 1.5])).toNumbers(), [0, 0, 1.5]);
    close(run('Shrink', f64([-2, -1, 0, 1, 2]), { lambd: flt(1.5), bias: flt(1.5) }).toNumbers(), [-0.5, 0, 0, 0, 0.5]);
    close(run('Softsign', f64([-3, 0, 1])).toNumbers(), [-0.75, 0, 0.5]);
  });

  it('Gelu exact (erf) and tanh approximation', () => {
    close(run('Gelu', f64([-6, -3, -1, 0, 0.5, 2])).toNumbers(), [-5.919525869479969e-9, -0.00404969409489031, -0.15865525393145707, 0, 0.34573123063700656, 1.9544997361036416]);
    close(
      run('Gelu', f64([-3, -1, 0, 0.5, 2]), { approximate: { type: 'string', value: 'tanh' } }).toNumbers(),
      [-0.0036373920817729943, -0.15880800939172324, 0, 0.34571400982514394, 1.954597694087775],
    );
    expect(() => run('Gelu', f64([1]), { approximate: { type: 'string', value: 'fast' } })).toThrow(PtqError);
  });

  it('integer inputs compute in float and truncate back (Shrink allows every numeric type)', () => {
    const y = run('Shrink', tensorFrom('int8', [3], [-5, 1, 5]), { lambd: flt(1.5), bias: flt(1.5) });
    expect(y.dtype).toBe('int8');
    expect(y.toNumbers()).toEqual([-3, 0, 3]); // -3.5 and 3.5 truncate toward zero
  });

  it('keeps float32 tensors float32 (rounded once)', () => {
    const y = run('Tanh', tensorFrom('float32', [2], [0.5, -2]));
    expect(y.dtype).toBe('float32');
    expect(y.toNumbers()).toEqual([Math.fround(Math.tanh(0.5)), Math.fround(Math.tanh(-2))]);
  });

  it('Gelu exists only from opset 20 of the default domain', () => {
    expect(findOp('', 'Gelu')!.sinceOpset).toBe(20);
  });
});

describe('trigonometric', () => {
  it('Sin/Cos/Tan/Asin/Acos/Atan and hyperbolic functions match Math', () => {
    const x = [-0.75, 0, 0.5];
    for (const [op, f] of [['Sin', Math.sin], ['Cos', Math.cos], ['Tan', Math.tan], ['Asin', Math.asin], ['Acos', Math.acos], ['Atan', Math.atan], ['Sinh', Math.sinh], ['Cosh', Math.cosh], ['Asinh', Math.asinh], ['Atanh', Math.atanh]] as const) {
      expect(run(op, f64(x)).toNumbers()).toEqual(x.map(f));
    }
    expect(run('Acosh', f64([1, 2])).toNumbers()).toEqual([0, Math.acosh(2)]);
    expect(run('Asin', f64([2])).toNumbers()[0]).toBeNaN();
  });
});
