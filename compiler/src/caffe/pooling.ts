import { Tensor } from '../onnx/tensor';
import { AttrInit, LayerContext } from './emit';
import { PoolingParameter } from './schema';

/** Pooling window geometry per spatial axis (H, W), as Caffe computes it. */
export interface CaffePoolGeometry {
  global: boolean;
  kernel: [number, number];
  stride: [number, number];
  pad: [number, number];
  out: [number, number];
}

/**
 * Caffe's pooling output size along one axis: `ceil((in + 2·pad − kernel) / stride) + 1` (or
 * floor with `round_mode: FLOOR`); then, when the layer has any padding (`padded`, on either
 * axis), one window less if the last one would start at or beyond `in + pad` — it must start
 * inside the input or its leading padding.
 */
export function caffePoolOutput(inSize: number, kernel: number, stride: number, pad: number, ceil: boolean, padded = pad > 0): number {
  const span = (inSize + 2 * pad - kernel) / stride;
  let out = (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
  if (padded && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

/** Read the pooling parameters the way Caffe's PoolingLayer::LayerSetUp does (with its checks). */
export function caffePoolGeometry(c: LayerContext, p: PoolingParameter, inH: number, inW: number): CaffePoolGeometry {
  const global = p.global_pooling ?? false;
  const hasSize = p.kernel_size !== undefined;
  const hasHW = p.kernel_h !== undefined || p.kernel_w !== undefined;
  let kernel: [number, number];
  if (global) {
    if (hasSize || hasHW) throw c.error('global_pooling takes no kernel size', 'remove kernel_size / kernel_h / kernel_w');
    kernel = [inH, inW];
  } else {
    if (hasSize === hasHW) throw c.error('needs kernel_size, or kernel_h and kernel_w (not both)');
    if (hasHW && (p.kernel_h === undefined || p.kernel_w === undefined)) throw c.error('needs both kernel_h and kernel_w');
    kernel = hasSize ? [p.kernel_size as number, p.kernel_size as number] : [p.kernel_h as number, p.kernel_w as number];
  }
  if (kernel[0] <= 0 || kernel[1] <= 0) throw c.error('the kernel size must be positive');
  const padHW = p.pad_h !== undefined || p.pad_w !== undefined;
  if (p.pad !== undefined && padHW) throw c.error('give pad, or pad_h and pad_w (not both)');
  const pad: [number, number] = padHW ? [p.pad_h ?? 0, p.pad_w ?? 0] : [p.pad ?? 0, p.pad ?? 0];
  const strideHW = p.stride_h !== undefined || p.stride_w !== undefined;
  if (p.stride !== undefined && strideHW) throw c.error('give stride, or stride_h and stride_w (not both)');
  const stride: [number, number] = strideHW ? [p.stride_h ?? 1, p.stride_w ?? 1] : [p.stride ?? 1, p.stride ?? 1];
  if (stride[0] <= 0 || stride[1] <= 0) throw c.error('the stride must be positive');
  if (global && (pad[0] || pad[1] || stride[0] !== 1 || stride[1] !== 1)) throw c.error('global_pooling allows only pad 0 and stride 1');
  if ((pad[0] || pad[1]) && (pad[0] >= kernel[0] || pad[1] >= kernel[1])) throw c.error('the padding must be smaller than the kernel');
  const ceil = (p.round_mode ?? 'CEIL') === 'CEIL';
  const padded = pad[0] > 0 || pad[1] > 0;
  const out: [number, number] = [0, 1].map((a) => caffePoolOutput([inH, inW][a], kernel[a], stride[a], pad[a], ceil, padded)) as [number, number];
  if (out[0] <= 0 || out[1] <= 0) throw c.error(`the input ${inH}x${inW} is smaller than the ${kernel[0]}x${kernel[1]} window`, 'check the input shape');
  for (let a = 0; a < 2; a++) {
    // Only possible without padding and with stride > kernel: Caffe then pools an empty
    // window (-FLT_MAX for MAX, 0 for AVE), which no ONNX pooling reproduces.
    if ((out[a] - 1) * stride[a] - pad[a] >= [inH, inW][a]) {
      throw c.error(`its last ${a ? 'column' : 'row'} of windows lies entirely outside the input (stride > kernel with ceil rounding)`, 'use round_mode: FLOOR or a kernel at least as large as the stride');
    }
  }
  return { global, kernel, stride, pad, out };
}

/**
 * Pooling as ONNX ops with exactly Caffe's results. ceil_mode is never used (runtimes differ
 * on its last-window rule); instead the end padding is chosen so that floor rounding gives
 * Caffe's output size: `end = (out−1)·stride + kernel − in − pad` (clamped at 0).
 *
 * MAX: Caffe clips every window to the real input, as ONNX MaxPool does with its padding.
 * AVE: Caffe divides by the window clipped to the *padded* input [−pad, in+pad), counting
 * padding cells as zeros. When no window reaches past in+pad that divisor is the full
 * kernel: AveragePool with count_include_pad=1. Otherwise (ceil rounding overflows the
 * padded input) the padding is made explicit with a zero Pad node and AveragePool runs with
 * count_include_pad=0 and only the overflow as (uncounted) end padding. Without padding,
 * count_include_pad=0 alone divides by the clipped window.
 */
export function lowerPooling(c: LayerContext, x: string, p: PoolingParameter): string {
  const s = c.inShape(0);
  if (s.length !== 4) throw c.error(`needs a 4-D input (N,C,H,W), got [${s.join(',')}]`);
  const method = p.pool ?? 'MAX';
  if (method === 'STOCHASTIC') throw c.error('STOCHASTIC pooling is not supported', 'use MAX or AVE pooling');
  const g = caffePoolGeometry(c, p, s[2], s[3]);
  const outShape = [s[0], s[1], g.out[0], g.out[1]];
  if (g.global) return c.main(method === 'MAX' ? 'GlobalMaxPool' : 'GlobalAveragePool', [x], {}, [outShape])[0];
  const end = [0, 1].map((a) => (g.out[a] - 1) * g.stride[a] + g.kernel[a] - s[2 + a] - g.pad[a]);
  const base: Record<string, AttrInit> = { kernel_shape: g.kernel, strides: g.stride };
  if (method === 'MAX') {
    return c.main('MaxPool', [x], { ...base, pads: [g.pad[0], g.pad[1], Math.max(end[0], 0), Math.max(end[1], 0)] }, [outShape])[0];
  }
  const padded = g.pad[0] > 0 || g.pad[1] > 0;
  const overflow = end[0] > g.pad[0] || end[1] > g.pad[1];
  if (!padded || !overflow) {
    return c.main('AveragePool', [x], { ...base, pads: [g.pad[0], g.pad[1], Math.max(end[0], 0), Math.max(end[1], 0)], count_include_pad: padded ? 1 : 0 }, [outShape])[0];
  }
  const pads = c.constant('pads', new Tensor('int64', [8], BigInt64Array.from([0, 0, g.pad[0], g.pad[1], 0, 0, g.pad[0], g.pad[1]].map(BigInt))));
  const xp = c.helper('pad', 'Pad', [x, pads], { mode: 'constant' }, [s[0], s[1], s[2] + 2 * g.pad[0], s[3] + 2 * g.pad[1]]);
  const over = [0, 1].map((a) => Math.max(end[a] - g.pad[a], 0));
  return c.main('AveragePool', [xp], { ...base, pads: [0, 0, over[0], over[1]], count_include_pad: 0 }, [outShape])[0];
}
