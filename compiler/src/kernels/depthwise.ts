/**
 * Depthwise 2-D convolution (one input channel per group, `mult` output channels each) as a
 * direct stencil, no im2col: WebAssembly SIMD over a zero-padded copy of each plane for
 * horizontal strides 1 and 2, else a scalar loop. 1-D convolutions come as H = 1.
 */
import { gemmBackend, scratch } from './gemm';
import { wasmKernels } from './wasm-simd';

export interface Depthwise2d {
  N: number;
  /** input channels (= groups) */
  C: number;
  /** output channels (C · multiplier) */
  M: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** begin and end pads */
  pt: number;
  pl: number;
  pb: number;
  pr: number;
}

/** y[n, m] = bias[m] + stencil of w[m] over x[n, m / mult]. */
export function depthwise2d(p: Depthwise2d, x: Float32Array, w: Float32Array, bias: Float32Array | undefined, y: Float32Array): void {
  if (gemmBackend() === 'wasm-simd' && (p.sw === 1 || p.sw === 2)) depthwiseWasm(p, x, w, bias, y);
  else depthwiseJs(p, x, w, bias, y);
}

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

function depthwiseWasm(p: Depthwise2d, x: Float32Array, w: Float32Array, bias: Float32Array | undefined, y: Float32Array): void {
  const k = wasmKernels()!;
  const { H, W, OH, OW, kh, kw } = p;
  const nVec = Math.ceil(OW / 8);
  const Hp = H + p.pt + p.pb;
  const Wp = Math.max(W + p.pl + p.pr, nVec * 8 * p.sw + (kw - 1) * p.dw + 8);
  const planeIn = H * W, planeOut = OH * OW, taps = kh * kw;
  const mult = p.M / p.C;
  // regions (floats): image, padded plane, output, weights, tap offsets
  const xReg = 0;
  const padReg = roundUp(xReg + p.C * planeIn, 4);
  const yReg = roundUp(padReg + Hp * Wp, 4);
  const wReg = roundUp(yReg + p.M * planeOut + 16, 4);
  const tReg = roundUp(wReg + p.M * taps, 4);
  const view = scratch(tReg + taps);
  const ints = new Int32Array(view.buffer);
  view.set(w.subarray(0, p.M * taps), wReg);
  for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) ints[tReg + ky * kw + kx] = (ky * p.dh * Wp + kx * p.dw) * 4;
  const kernel = p.sw === 1 ? k.dw1 : k.dw2;
  for (let n = 0; n < p.N; n++) {
    view.set(x.subarray(n * p.C * planeIn, (n + 1) * p.C * planeIn), xReg);
    view.fill(0, padReg, padReg + Hp * Wp);
    for (let c = 0; c < p.C; c++) {
      k.padcopy((xReg + c * planeIn) * 4, H, W * 4, (padReg + p.pt * Wp + p.pl) * 4, Wp * 4);
      for (let m = c * mult; m < (c + 1) * mult; m++) {
        kernel(padReg * 4, p.sh * Wp * 4, (yReg + m * planeOut) * 4, OW * 4, OH, nVec, (wReg + m * taps) * 4, tReg * 4, taps, bias ? bias[m] : 0);
      }
    }
    y.set(view.subarray(yReg, yReg + p.M * planeOut), n * p.M * planeOut);
  }
}

function depthwiseJs(p: Depthwise2d, x: Float32Array, w: Float32Array, bias: Float32Array | undefined, y: Float32Array): void {
  const { H, W, OH, OW, kh, kw, sh, sw, dh, dw } = p;
  const mult = p.M / p.C;
  const acc = new Float64Array(OW);
  // valid output column range per kernel column: 0 ≤ ox·sw + kx·dw − pl < W
  const lo = new Int32Array(kw), hi = new Int32Array(kw);
  for (let kx = 0; kx < kw; kx++) {
    const off = kx * dw - p.pl;
    lo[kx] = off >= 0 ? 0 : Math.ceil(-off / sw);
    hi[kx] = Math.max(lo[kx], Math.min(OW, Math.floor((W - 1 - off) / sw) + 1));
  }
  for (let n = 0; n < p.N; n++) {
    for (let m = 0; m < p.M; m++) {
      const xPlane = (n * p.C + Math.floor(m / mult)) * H * W;
      const yPlane = (n * p.M + m) * OH * OW;
      const wOff = m * kh * kw;
      const b0 = bias ? bias[m] : 0;
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) acc[ox] = b0;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - p.pt + ky * dh;
          if (iy < 0 || iy >= H) continue;
          const row = xPlane + iy * W;
          for (let kx = 0; kx < kw; kx++) {
            const wv = w[wOff + ky * kw + kx];
            const start = row + kx * dw - p.pl;
            const l = lo[kx], h = hi[kx];
            for (let ox = l; ox < h; ox++) acc[ox] += wv * x[start + ox * sw];
          }
        }
        const yr = yPlane + oy * OW;
        for (let ox = 0; ox < OW; ox++) y[yr + ox] = acc[ox];
      }
    }
  }
}
