import { PtqError } from '../errors';
import { unaryOp } from '../kernels/elementwise';
import { isBigInt } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- number or bigint bounds */

/** A bound given as an input (opset >= 11): a one-element tensor of X's type, or absent. */
function bound(node: Node, t: Tensor | undefined, x: Tensor, which: string): number | bigint | undefined {
  if (!t) return undefined;
  if (t.size !== 1 || t.dtype !== x.dtype) {
    throw new PtqError('E_MODEL_ATTR', `node '${node.label}' (Clip): '${which}' must be a scalar of the input's type ${x.dtype}, got ${t.dtype}[${t.dims}]`, {
      subject: node.label,
      fix: `give '${which}' as a one-element ${x.dtype} tensor`,
    });
  }
  return (t.data as any)[0];
}

/**
 * Clip: y = min(max(x, min), max), so min > max gives max everywhere (as the spec says); NaN
 * stays NaN. Before opset 11 the bounds are float attributes, from 11 optional inputs, from 12
 * every numeric type. 'passive' in the integer contract: the bounds become the requantisation clamp.
 */
export const ops: OpDef[] = [
  {
    type: 'Clip',
    quant: 'passive',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: ({ node, opset }, [x, mn, mx]) => {
      const X = x as Tensor;
      let lo: any;
      let hi: any;
      if (opset < 11) {
        lo = node.float('min', -Infinity);
        hi = node.float('max', Infinity);
      } else {
        lo = bound(node, mn, X, 'min');
        hi = bound(node, mx, X, 'max');
      }
      if (isBigInt(X.dtype)) {
        return [
          unaryOp(X, (v: bigint) => {
            const t = lo !== undefined && v < lo ? lo : v;
            return hi !== undefined && t > hi ? hi : t;
          }),
        ];
      }
      const l = lo ?? -Infinity;
      const h = hi ?? Infinity;
      if (X.dtype === 'float32') {
        // hot on MobileNets (Relu6): a direct loop, no call per element
        const a = X.array as Float32Array;
        const y = new Float32Array(a.length);
        for (let i = 0; i < a.length; i++) {
          const v = a[i];
          const t = v < l ? l : v;
          y[i] = t > h ? h : t;
        }
        return [new Tensor('float32', X.dims, y)];
      }
      return [
        unaryOp(X, (v: number) => {
          const t = v < l ? l : v;
          return t > h ? h : t;
        }),
      ];
    },
  },
];
