import { cachedPacker, gemmPacked, MR, NR, stridedPacker } from '../kernels/gemm';
import { Im2col } from '../kernels/im2col';
import { attrError, inferWindowDims, product, resolveWindow, shapeError, windowAttrs } from '../kernels/window';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * Conv: Y[n, m, o…] = B[m] + Σ_{c, t…} X[n, g·C/G + c, o·s + t·d − pad] · W[m, c, t…]
 * for any number of spatial dims, with groups, strides, dilations, pads and auto_pad.
 *
 * float32 runs as one GEMM per image and group (kernels/gemm.ts): the weights (M/G × C/G·k)
 * packed once and cached on the weight tensor, the image packed through an im2col view
 * (kernels/im2col.ts) — or read directly for 1×1 stride-1 unpadded kernels. Depthwise
 * 1-D/2-D convolutions (one input channel per group) use a direct loop instead.
 * float64 uses a direct loop in double precision.
 */
export const ops: OpDef[] = [
  {
    type: 'Conv',
    quant: 'active',
    infer: ({ node }, [x, w]) => [{ dtype: x?.dtype, shape: convDims(node, x, w) }],
    run: ({ node }, [x, w, b]) => [conv(node, x!, w!, b)],
  },
];

function convDims(node: Node, x: ValueFacts | undefined, w: ValueFacts | undefined): Dim[] | undefined {
  const xs = x?.shape;
  const ws = w?.shape;
  if (!xs) return undefined;
  const m: Dim = ws ? ws[0] : '?';
  const nd = xs.length - 2;
  const wk = ws?.slice(2);
  const kernel = wk && wk.every((d) => typeof d === 'number') ? (wk as number[]) : undefined;
  if (!kernel && !node.has('kernel_shape')) return [xs[0], m, ...new Array<Dim>(nd).fill('?')];
  return [xs[0], m, ...inferWindowDims(node, windowAttrs(node, nd, kernel), xs.slice(2))];
}

export interface ConvParams {
  N: number;
  C: number;
  M: number;
  group: number;
  inSp: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  outSp: number[];
}

/** Checked shapes and resolved window of a Conv node. */
export function convParams(node: Node, x: Tensor, w: Tensor, b?: Tensor): ConvParams {
  if (x.rank < 3) throw shapeError(node, `input X has rank ${x.rank}, Conv needs [N, C, spatial…]`);
  if (w.rank !== x.rank) throw shapeError(node, `weight W has rank ${w.rank}, the input has rank ${x.rank}`);
  const [N, C, ...inSp] = x.dims;
  const [M, Cg, ...kSp] = w.dims;
  const group = node.int('group', 1);
  if (group < 1 || C % group !== 0 || M % group !== 0) {
    throw attrError(node, `group ${group} does not divide the ${C} input and ${M} output channels`, 'fix the group attribute');
  }
  if (Cg * group !== C) throw shapeError(node, `weight W [${w.dims}] expects ${Cg * group} input channels (group ${group}), X has ${C}`);
  if (b && b.size !== M) throw shapeError(node, `bias B has ${b.size} elements, expected ${M}`);
  const win = windowAttrs(node, inSp.length, kSp);
  const r = resolveWindow(node, win, inSp);
  return { N, C, M, group, inSp, kernel: win.kernel, strides: win.strides, dilations: win.dilations, padsBegin: r.padsBegin, outSp: r.out };
}

function conv(node: Node, x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const p = convParams(node, x, w, b);
  const outDims = [p.N, p.M, ...p.outSp];
  if (x.dtype === 'float64') return new Tensor('float64', outDims, convDirect64(p, x.array as Float64Array, w.toNumbers(), b?.toNumbers()));
  if (x.dtype !== 'float32') throw shapeError(node, `input type ${x.dtype} is not supported (float32, float64, float16)`, 'convert the model to float32');
  const xd = x.array as Float32Array;
  const wd = w.toFloat32();
  const bd = b?.toFloat32();
  const y = new Float32Array(product(outDims));
  const Cg = p.C / p.group;
  if (Cg === 1 && p.inSp.length <= 2) {
    depthwise(p, xd, wd, bd, y);
    return new Tensor('float32', outDims, y);
  }
  const Mg = p.M / p.group;
  const inVol = product(p.inSp);
  const outVol = product(p.outSp);
  const K = Cg * product(p.kernel);
  const pointwise = p.kernel.every((k) => k === 1) && p.strides.every((s) => s === 1) && p.padsBegin.every((q, i) => q === 0 && p.outSp[i] === p.inSp[i]);
  const im2col = pointwise ? undefined : new Im2col({ channels: Cg, inShape: p.inSp, kernel: p.kernel, strides: p.strides, dilations: p.dilations, padsBegin: p.padsBegin, outShape: p.outSp });
  for (let g = 0; g < p.group; g++) {
    const packA = cachedPacker(w, `conv/${p.group}/${g}`, wd, stridedPacker(MR, wd, g * Mg * K, K, 1), MR, Mg, K);
    for (let n = 0; n < p.N; n++) {
      const xOff = (n * p.C + g * Cg) * inVol;
      const packB = im2col ? im2col.packer(xd, xOff) : stridedPacker(NR, xd, xOff, 1, inVol);
      gemmPacked(Mg, outVol, K, packA, packB, y, (n * p.M + g * Mg) * outVol, outVol, { rowBias: bd, rowBiasOffset: g * Mg });
    }
  }
  return new Tensor('float32', outDims, y);
}

/** One input channel per group, 1-D or 2-D: each output channel is a small stencil over one plane. */
function depthwise(p: ConvParams, x: Float32Array, w: Float32Array, bias: Float32Array | undefined, y: Float32Array): void {
  const two = p.inSp.length === 2;
  const H = two ? p.inSp[0] : 1, W = p.inSp[two ? 1 : 0];
  const OH = two ? p.outSp[0] : 1, OW = p.outSp[two ? 1 : 0];
  const kh = two ? p.kernel[0] : 1, kw = p.kernel[two ? 1 : 0];
  const sh = two ? p.strides[0] : 1, sw = p.strides[two ? 1 : 0];
  const dh = two ? p.dilations[0] : 1, dw = p.dilations[two ? 1 : 0];
  const ph = two ? p.padsBegin[0] : 0, pw = p.padsBegin[two ? 1 : 0];
  const mult = p.M / p.group;
  const acc = new Float64Array(OW);
  // valid output column range per kernel column: 0 ≤ ox·sw + kx·dw − pw < W
  const lo = new Int32Array(kw), hi = new Int32Array(kw);
  for (let kx = 0; kx < kw; kx++) {
    const off = kx * dw - pw;
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
        acc.fill(b0);
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= H) continue;
          const row = xPlane + iy * W;
          for (let kx = 0; kx < kw; kx++) {
            const wv = w[wOff + ky * kw + kx];
            const start = row + kx * dw - pw;
            const l = lo[kx], h = hi[kx];
            if (sw === 1) for (let ox = l; ox < h; ox++) acc[ox] += wv * x[start + ox];
            else if (sw === 2) for (let ox = l; ox < h; ox++) acc[ox] += wv * x[start + 2 * ox];
            else for (let ox = l; ox < h; ox++) acc[ox] += wv * x[start + ox * sw];
          }
        }
        const yr = yPlane + oy * OW;
        for (let ox = 0; ox < OW; ox++) y[yr + ox] = acc[ox];
      }
    }
  }
}

/** Direct convolution in double precision (float64 models). */
function convDirect64(p: ConvParams, x: Float64Array, w: number[], bias: number[] | undefined): Float64Array {
  const nd = p.inSp.length;
  const inVol = product(p.inSp);
  const outVol = product(p.outSp);
  const kvol = product(p.kernel);
  const Cg = p.C / p.group, Mg = p.M / p.group;
  const y = new Float64Array(p.N * p.M * outVol);
  const o = new Array<number>(nd).fill(0);
  const t = new Array<number>(nd).fill(0);
  for (let q = 0; q < outVol; q++) {
    // taps of this output position: input offset per tap, -1 when in the padding
    const tapOff = new Int32Array(kvol);
    t.fill(0);
    for (let r = 0; r < kvol; r++) {
      let off = 0;
      for (let d = 0; d < nd; d++) {
        const i = o[d] * p.strides[d] + t[d] * p.dilations[d] - p.padsBegin[d];
        if (off < 0 || i < 0 || i >= p.inSp[d]) off = -1;
        else off = off * p.inSp[d] + i;
      }
      tapOff[r] = off;
      for (let d = nd - 1; d >= 0; d--) {
        if (++t[d] < p.kernel[d]) break;
        t[d] = 0;
      }
    }
    for (let n = 0; n < p.N; n++) {
      for (let m = 0; m < p.M; m++) {
        const g = Math.floor(m / Mg);
        let s = bias ? bias[m] : 0;
        for (let c = 0; c < Cg; c++) {
          const xb = (n * p.C + g * Cg + c) * inVol;
          const wb = (m * Cg + c) * kvol;
          for (let r = 0; r < kvol; r++) if (tapOff[r] >= 0) s += x[xb + tapOff[r]] * w[wb + r];
        }
        y[(n * p.M + m) * outVol + q] = s;
      }
    }
    for (let d = nd - 1; d >= 0; d--) {
      if (++o[d] < p.outSp[d]) break;
      o[d] = 0;
    }
  }
  return y;
}
