import { Depthwise2d, depthwise2d } from '../kernels/depthwise';
import { BOperand, cachedPacker, gemmBackend, gemmPacked, MR, rowMajorSource, stridedPacker } from '../kernels/gemm';
import { Im2col, Im2col2d } from '../kernels/im2col';
import { attrError, inferWindowDims, product, resolveWindow, shapeError, windowAttrs } from '../kernels/window';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef, ValueFacts } from './registry';

/**
 * Conv: Y[n, m, o…] = B[m] + Σ_{c, t…} X[n, g·C/G + c, o·s + t·d − pad] · W[m, c, t…]
 * for any number of spatial dims, with groups, strides, dilations, pads and auto_pad.
 *
 * float32 runs as one GEMM per image and group (kernels/gemm.ts): the weights (M/G × C/G·k)
 * packed once and cached on the weight tensor, the image unfolded block by block through an
 * im2col view (kernels/im2col.ts) — or read as it is for 1×1 stride-1 unpadded kernels.
 * Depthwise 1-D/2-D convolutions (one input channel per group) are a direct stencil
 * (kernels/depthwise.ts).
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
  padsEnd: number[];
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
  return { N, C, M, group, inSp, kernel: win.kernel, strides: win.strides, dilations: win.dilations, padsBegin: r.padsBegin, padsEnd: r.padsEnd, outSp: r.out };
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
    depthwise2d(depthwiseParams(p), xd, wd, bd, y);
    return new Tensor('float32', outDims, y);
  }
  const Mg = p.M / p.group;
  const inVol = product(p.inSp);
  const outVol = product(p.outSp);
  const K = Cg * product(p.kernel);
  const pointwise = p.kernel.every((k) => k === 1) && p.strides.every((s) => s === 1) && p.padsBegin.every((q, i) => q === 0 && p.outSp[i] === p.inSp[i]);
  const geo = { channels: Cg, inShape: p.inSp, kernel: p.kernel, strides: p.strides, dilations: p.dilations, padsBegin: p.padsBegin, outShape: p.outSp };
  const unfold2d = pointwise || gemmBackend() !== 'wasm-simd' ? undefined : Im2col2d.create(geo);
  const unfold = pointwise || unfold2d ? undefined : new Im2col(geo);
  for (let g = 0; g < p.group; g++) {
    const packA = cachedPacker(w, `conv/${p.group}/${g}`, wd, stridedPacker(MR, wd, g * Mg * K, K, 1), MR, Mg, K);
    for (let n = 0; n < p.N; n++) {
      const xOff = (n * p.C + g * Cg) * inVol;
      const b: BOperand = unfold2d ? unfold2d.source(xd, xOff) : unfold ? unfold.packer(xd, xOff) : rowMajorSource(xd, xOff, inVol, K, inVol);
      gemmPacked(Mg, outVol, K, packA, b, y, (n * p.M + g * Mg) * outVol, outVol, { rowBias: bd, rowBiasOffset: g * Mg });
    }
  }
  return new Tensor('float32', outDims, y);
}

/** The 2-D stencil parameters (1-D as H = 1). */
function depthwiseParams(p: ConvParams): Depthwise2d {
  const two = p.inSp.length === 2;
  const pick = (v: number[], i: number, def: number): number => (two ? v[i] : i === 0 ? def : v[0]);
  const ends = p.padsEnd;
  return {
    N: p.N, C: p.C, M: p.M,
    H: pick(p.inSp, 0, 1), W: pick(p.inSp, 1, 1), OH: pick(p.outSp, 0, 1), OW: pick(p.outSp, 1, 1),
    kh: pick(p.kernel, 0, 1), kw: pick(p.kernel, 1, 1), sh: pick(p.strides, 0, 1), sw: pick(p.strides, 1, 1),
    dh: pick(p.dilations, 0, 1), dw: pick(p.dilations, 1, 1),
    pt: pick(p.padsBegin, 0, 0), pl: pick(p.padsBegin, 1, 0), pb: pick(ends, 0, 0), pr: pick(ends, 1, 0),
  };
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
