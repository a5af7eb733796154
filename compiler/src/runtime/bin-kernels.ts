/**
 * Integer kernels of the `.bin` host runtime (NHWC int8 activations). Every kernel computes
 * exactly what the quantized ONNX model's operators compute in the ReferenceEngine:
 *
 *  - convolutions accumulate Σ x·w exactly. They run on the float32 GEMM / depthwise kernels
 *    (kernels/gemm.ts, kernels/depthwise.ts, WebAssembly SIMD), which is exact while every
 *    partial sum is an integer below 2^24: the depth is cut into chunks whose worst case
 *    (128 · Σ|w| per output channel) stays below it, and chunks are added in int32.
 *  - requantisation: y = clamp(roundHalfEven(fround(fround(acc + bias) · M)), lo, hi), the
 *    contract of shared/DESIGN.md §3 (kernels/requant.ts); rounding via the 1.5·2^52 trick
 *    (exact round-half-even for |v| < 2^51; larger values are clamped first)
 *  - requantising ops computed in float (Add, pools, …) dequantize with fround(q · s) and
 *    quantize with clamp(roundHalfEven(fround(x / s))), in the reference kernels' order.
 *
 * These are the JavaScript forms; bin-wasm.ts has WebAssembly SIMD forms of the hot loops
 * (im2row, requantisation, NHWC depthwise) that the engine uses when it can.
 */
import { depthwise2d } from '../kernels/depthwise';
import { gemmPacked, MR, NR, packOperand, packedPacker, PanelPacker, stridedPacker } from '../kernels/gemm';

const fround = Math.fround;
/** (v + MAGIC) − MAGIC rounds a double |v| < 2^51 to an integer, ties to even. */
const MAGIC = 6755399441055744;
const EXACT = 16777216; // 2^24

/** A 2-D convolution: the window geometry of a pooling op, plus output channels and groups. */
export interface ConvGeometry2d extends PoolGeometry {
  M: number;
  group: number;
}

/** Output size of one spatial dim (explicit pads). */
export function convOutSize(n: number, k: number, s: number, d: number, pb: number, pe: number): number {
  return Math.floor((n + pb + pe - d * (k - 1) - 1) / s) + 1;
}

// ------------------------------------------------------------------------------------------
// requantisation epilogues

/** Fused elementwise add after the conv: dequantize tables and the add's output scale / clamp. */
export interface AddEpilogue {
  /** fround(y · s_conv) for y + 128 */
  self: Float32Array;
  /** fround(q · s_other) for q + 128 */
  other: Float32Array;
  residual: Int8Array;
  outScale: number;
  lo: number;
  hi: number;
}

/**
 * y[p·M + m] = requant(acc[p·M + m] + bias[m]) for P rows of M channels. `acc` holds exact
 * integers (float32 from the GEMM or int32 after chunk sums).
 */
export function requantRows(acc: Float32Array | Int32Array, P: number, M: number, bias: Int32Array | undefined, mult: Float32Array, lo: number, hi: number, y: Int8Array | Int16Array, add?: AddEpilogue): void {
  let i = 0;
  if (!add) {
    for (let p = 0; p < P; p++) {
      for (let m = 0; m < M; m++, i++) {
        const a = bias ? (acc[i] + bias[m]) | 0 : acc[i] | 0;
        const v = fround(fround(a) * mult[m]);
        y[i] = v < lo ? lo : v > hi ? hi : v + MAGIC - MAGIC;
      }
    }
    return;
  }
  const { self, other, residual, outScale, lo: alo, hi: ahi } = add;
  for (let p = 0; p < P; p++) {
    for (let m = 0; m < M; m++, i++) {
      const a = bias ? (acc[i] + bias[m]) | 0 : acc[i] | 0;
      const v = fround(fround(a) * mult[m]);
      const q = v < lo ? lo : v > hi ? hi : v + MAGIC - MAGIC;
      const s = fround(self[q + 128] + other[residual[i] + 128]);
      const t = fround(s / outScale);
      y[i] = t !== t ? alo : t < alo ? alo : t > ahi ? ahi : t + MAGIC - MAGIC;
    }
  }
}

/** quantize(x) = clamp(roundHalfEven(fround(x / s))) with NaN → lo (QuantizeLinear, kernels/requant.ts quantizeValue). */
export function quantizeOne(x: number, scale: number, lo: number, hi: number): number {
  const t = fround(x / scale);
  return t !== t ? lo : t < lo ? lo : t > hi ? hi : t + MAGIC - MAGIC;
}

/** fround(q · s) for q = −128 … 127 (DequantizeLinear of int8). */
export function dequantTable(scale: number): Float32Array {
  const t = new Float32Array(256);
  for (let q = -128; q < 128; q++) t[q + 128] = fround(fround(q) * scale);
  return t;
}

// ------------------------------------------------------------------------------------------
// convolution

/** Split [0, K) into ranges where 128 · Σ|w[m][k]| < 2^24 for every row m (exact float sums). */
export function exactChunks(w: Int8Array, rows: number, K: number, rowOffset = 0): [number, number][] {
  const sums = new Float64Array(rows);
  const out: [number, number][] = [];
  let k0 = 0;
  for (let k = 0; k < K; k++) {
    let fits = true;
    for (let m = 0; m < rows; m++) {
      const v = w[(rowOffset + m) * K + k];
      if ((sums[m] + (v < 0 ? -v : v)) * 128 >= EXACT) {
        fits = false;
        break;
      }
    }
    if (!fits) {
      out.push([k0, k]);
      k0 = k;
      sums.fill(0);
    }
    for (let m = 0; m < rows; m++) {
      const v = w[(rowOffset + m) * K + k];
      sums[m] += v < 0 ? -v : v;
    }
  }
  out.push([k0, K]);
  return out;
}

/** A prepared NHWC convolution (or FC: H = W = kh = kw = 1) by the float GEMM. */
export interface GemmConv {
  geo: ConvGeometry2d;
  K: number;
  /** per group: per chunk [k0, k1) and the packed weights of that chunk */
  groups: { chunks: { k0: number; k1: number; packB: PanelPacker }[] }[];
  /** per output pixel and tap: the element offset of the input pixel (n, iy, ix, 0), or −1 */
  taps?: Int32Array;
  pointwise: boolean;
}

export function prepareGemmConv(geo: ConvGeometry2d, w: Int8Array): GemmConv {
  const { C, M, kh, kw, group } = geo;
  const Cg = C / group;
  const Mg = M / group;
  const K = kh * kw * Cg;
  const wf = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) wf[i] = w[i];
  const groups = [];
  for (let g = 0; g < group; g++) {
    const chunks = exactChunks(w, Mg, K, g * Mg).map(([k0, k1]) => ({
      k0,
      k1,
      packB: packedPacker(packOperand(stridedPacker(NR, wf, g * Mg * K + k0, K, 1), NR, Mg, k1 - k0)),
    }));
    groups.push({ chunks });
  }
  const pointwise = kh === 1 && kw === 1 && geo.sh === 1 && geo.sw === 1 && geo.pt === 0 && geo.pl === 0 && geo.OH === geo.H && geo.OW === geo.W;
  return { geo, K, groups, pointwise, taps: pointwise ? undefined : tapTable(geo) };
}

function tapTable(g: ConvGeometry2d): Int32Array {
  const taps = g.kh * g.kw;
  const P = g.N * g.OH * g.OW;
  const t = new Int32Array(P * taps);
  let i = 0;
  for (let n = 0; n < g.N; n++) {
    for (let oy = 0; oy < g.OH; oy++) {
      for (let ox = 0; ox < g.OW; ox++) {
        for (let ky = 0; ky < g.kh; ky++) {
          const iy = oy * g.sh - g.pt + ky * g.dh;
          for (let kx = 0; kx < g.kw; kx++) {
            const ix = ox * g.sw - g.pl + kx * g.dw;
            t[i++] = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W ? ((n * g.H + iy) * g.W + ix) * g.C : -1;
          }
        }
      }
    }
  }
  return t;
}

/** A-operand packer: rows = output pixels, depth = (ky, kx, c) of group `gi`, read from int8 NHWC. */
export function im2rowPacker(x: Int8Array, c: GemmConv, gi: number, kBase: number, P: number): PanelPacker {
  const { geo } = c;
  const Cg = geo.C / geo.group;
  const cOff = gi * Cg;
  const C = geo.C;
  const taps = geo.kh * geo.kw;
  const table = c.taps;
  if (c.pointwise || !table) {
    return (dst, off, k0, kc, i0, n) => {
      const kk = k0 + kBase + cOff;
      for (let pnl = 0; pnl < n; pnl += MR) {
        const base = off + (pnl / MR) * kc * MR;
        for (let r = 0; r < MR; r++) {
          const p = i0 + pnl + r;
          let d = base + r;
          if (p >= P) {
            for (let k = 0; k < kc; k++, d += MR) dst[d] = 0;
            continue;
          }
          const s = p * C + kk;
          for (let k = 0; k < kc; k++, d += MR) dst[d] = x[s + k];
        }
      }
    };
  }
  return (dst, off, k0, kc, i0, n) => {
    const ka = k0 + kBase;
    const t0 = (ka / Cg) | 0;
    const c0 = ka - t0 * Cg;
    for (let pnl = 0; pnl < n; pnl += MR) {
      let d = off + (pnl / MR) * kc * MR;
      // four rows (output pixels) at once, k-major: one contiguous group of 4 floats per k
      const p0 = i0 + pnl;
      const r0 = p0 < P ? p0 * taps : -1;
      const r1 = p0 + 1 < P ? r0 + taps : -1;
      const r2 = p0 + 2 < P ? r0 + 2 * taps : -1;
      const r3 = p0 + 3 < P ? r0 + 3 * taps : -1;
      let t = t0;
      let ch = c0;
      let s0 = r0 < 0 ? -1 : table[r0 + t];
      let s1 = r1 < 0 ? -1 : table[r1 + t];
      let s2 = r2 < 0 ? -1 : table[r2 + t];
      let s3 = r3 < 0 ? -1 : table[r3 + t];
      for (let k = 0; k < kc; k++, d += 4) {
        const q = cOff + ch;
        dst[d] = s0 < 0 ? 0 : x[s0 + q];
        dst[d + 1] = s1 < 0 ? 0 : x[s1 + q];
        dst[d + 2] = s2 < 0 ? 0 : x[s2 + q];
        dst[d + 3] = s3 < 0 ? 0 : x[s3 + q];
        if (++ch === Cg) {
          ch = 0;
          t++;
          if (t < taps) {
            s0 = r0 < 0 ? -1 : table[r0 + t];
            s1 = r1 < 0 ? -1 : table[r1 + t];
            s2 = r2 < 0 ? -1 : table[r2 + t];
            s3 = r3 < 0 ? -1 : table[r3 + t];
          }
        }
      }
    }
  };
}

/**
 * Σ x·w of an NHWC convolution into `out` (P × M floats, exact integers) — or, when the depth
 * had to be chunked, into `acc` (P × M int32). Returns the array holding the sums.
 */
export function gemmConv(
  c: GemmConv, x: Int8Array, out: Float32Array, acc: Int32Array | undefined,
  packer: (gi: number, kBase: number) => PanelPacker = (gi, kBase) => im2rowPacker(x, c, gi, kBase, c.geo.N * c.geo.OH * c.geo.OW),
): Float32Array | Int32Array {
  const { geo } = c;
  const P = geo.N * geo.OH * geo.OW;
  const M = geo.M;
  const Mg = M / geo.group;
  const useAcc = needsAcc(c);
  if (useAcc && !acc) throw new Error('chunked convolution needs an int32 accumulator');
  for (let gi = 0; gi < geo.group; gi++) {
    const { chunks } = c.groups[gi];
    for (let k = 0; k < chunks.length; k++) {
      const ch = chunks[k];
      gemmPacked(P, Mg, ch.k1 - ch.k0, packer(gi, ch.k0), ch.packB, out, gi * Mg, M);
      if (!useAcc) continue;
      const a = acc as Int32Array;
      for (let p = 0; p < P; p++) {
        const b = p * M + gi * Mg;
        if (k === 0) for (let m = 0; m < Mg; m++) a[b + m] = out[b + m] | 0;
        else for (let m = 0; m < Mg; m++) a[b + m] = (a[b + m] + out[b + m]) | 0;
      }
    }
  }
  return useAcc ? (acc as Int32Array) : out;
}

/** Whether a conv needs the int32 accumulator (some group's depth is chunked). */
export function needsAcc(c: GemmConv): boolean {
  return c.groups.some((g) => g.chunks.length > 1);
}

// ------------------------------------------------------------------------------------------
// depthwise

export interface DepthwiseConv {
  geo: ConvGeometry2d;
  /** float weights [M, kh·kw] */
  w: Float32Array;
}

/** Depthwise (group = C) is exact on the float stencil while kh·kw · 128 · 127 < 2^24. */
export function depthwiseExact(geo: ConvGeometry2d): boolean {
  return geo.group === geo.C && geo.kh * geo.kw * 128 * 128 < EXACT;
}

export function prepareDepthwise(geo: ConvGeometry2d, w: Int8Array): DepthwiseConv {
  const wf = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) wf[i] = w[i];
  return { geo, w: wf };
}

/**
 * Depthwise NHWC: x → float planes (NCHW), the float stencil, then requantised back to NHWC.
 * `xf` (N·C·H·W) and `yf` (N·M·OH·OW) are scratch.
 */
export function depthwiseConv(d: DepthwiseConv, x: Int8Array, xf: Float32Array, yf: Float32Array, bias: Int32Array | undefined, mult: Float32Array, lo: number, hi: number, y: Int8Array, add?: AddEpilogue): void {
  const g = d.geo;
  const { N, H, W, C, M, OH, OW } = g;
  const plane = H * W;
  for (let n = 0; n < N; n++) {
    const xb = n * plane * C;
    const fb = n * C * plane;
    for (let p = 0; p < plane; p++) {
      const s = xb + p * C;
      for (let c = 0; c < C; c++) xf[fb + c * plane + p] = x[s + c];
    }
  }
  depthwise2d(
    { N, C, M, H, W, OH, OW, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, dh: g.dh, dw: g.dw, pt: g.pt, pl: g.pl, pb: g.pb, pr: g.pr },
    xf, d.w, undefined, yf,
  );
  const oplane = OH * OW;
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const src = (n * M + m) * oplane;
      const b = bias ? bias[m] : 0;
      const mm = mult[m];
      let o = n * oplane * M + m;
      if (!add) {
        for (let p = 0; p < oplane; p++, o += M) {
          const v = fround(fround((yf[src + p] + b) | 0) * mm);
          y[o] = v < lo ? lo : v > hi ? hi : v + MAGIC - MAGIC;
        }
      } else {
        const { self, other, residual, outScale, lo: alo, hi: ahi } = add;
        for (let p = 0; p < oplane; p++, o += M) {
          const v = fround(fround((yf[src + p] + b) | 0) * mm);
          const q = v < lo ? lo : v > hi ? hi : v + MAGIC - MAGIC;
          const t = fround(fround(self[q + 128] + other[residual[o] + 128]) / outScale);
          y[o] = t !== t ? alo : t < alo ? alo : t > ahi ? ahi : t + MAGIC - MAGIC;
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// pools (NHWC)

export interface PoolGeometry {
  N: number;
  H: number;
  W: number;
  C: number;
  OH: number;
  OW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  pb: number;
  pr: number;
}

interface Taps {
  start: Int32Array;
  lo: Int32Array;
  hi: Int32Array;
  padded: Int32Array;
}

/** Per output index: window start, first/end valid tap, taps counted with the explicit pads (ops/pool.ts tapTables). */
export function poolTaps(outN: number, s: number, d: number, k: number, size: number, pb: number, pe: number): Taps {
  const start = new Int32Array(outN), lo = new Int32Array(outN), hi = new Int32Array(outN), padded = new Int32Array(outN);
  for (let o = 0; o < outN; o++) {
    const st = o * s - pb;
    start[o] = st;
    lo[o] = st >= 0 ? 0 : Math.ceil(-st / d);
    hi[o] = Math.max(lo[o], Math.min(k, Math.floor((size - 1 - st) / d) + 1));
    padded[o] = Math.max(0, Math.min(k, Math.floor((size + pe - 1 - st) / d) + 1));
  }
  return { start, lo, hi, padded };
}

export function maxPoolNhwc(g: PoolGeometry, th: Taps, tw: Taps, x: Int8Array, y: Int8Array, best: Float64Array): void {
  const { H, W, C, OH, OW } = g;
  let o = 0;
  for (let n = 0; n < g.N; n++) {
    const xb = n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const hLo = th.lo[oh], hHi = th.hi[oh], sh = th.start[oh];
      for (let ow = 0; ow < OW; ow++, o += C) {
        const wLo = tw.lo[ow], wHi = tw.hi[ow], sw = tw.start[ow];
        best.fill(-Infinity, 0, C);
        for (let a = hLo; a < hHi; a++) {
          const row = xb + (sh + a * g.dh) * W * C;
          for (let b = wLo; b < wHi; b++) {
            const px = row + (sw + b * g.dw) * C;
            for (let c = 0; c < C; c++) {
              const v = x[px + c];
              if (v > best[c]) best[c] = v;
            }
          }
        }
        for (let c = 0; c < C; c++) y[o + c] = best[c] === -Infinity ? 0 : best[c];
      }
    }
  }
}

/** AveragePool on the dequantized values (double sums in window order, ÷ count, fround), requantised. */
export function avgPoolNhwc(g: PoolGeometry, th: Taps, tw: Taps, includePad: boolean, x: Int8Array, deq: Float32Array, outScale: number, lo: number, hi: number, y: Int8Array, sum: Float64Array): void {
  const { H, W, C, OH, OW } = g;
  let o = 0;
  for (let n = 0; n < g.N; n++) {
    const xb = n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const hLo = th.lo[oh], hHi = th.hi[oh], sh = th.start[oh];
      const outer = includePad ? th.padded[oh] : hHi - hLo;
      for (let ow = 0; ow < OW; ow++, o += C) {
        const wLo = tw.lo[ow], wHi = tw.hi[ow], sw = tw.start[ow];
        sum.fill(0, 0, C);
        for (let a = hLo; a < hHi; a++) {
          const row = xb + (sh + a * g.dh) * W * C;
          for (let b = wLo; b < wHi; b++) {
            const px = row + (sw + b * g.dw) * C;
            for (let c = 0; c < C; c++) sum[c] += deq[x[px + c] + 128];
          }
        }
        const count = outer * (includePad ? tw.padded[ow] : wHi - wLo);
        for (let c = 0; c < C; c++) y[o + c] = quantizeOne(fround(sum[c] / count), outScale, lo, hi);
      }
    }
  }
}

/** GlobalAveragePool on the dequantized values (double sum over the plane in raster order, ÷ H·W), requantised. */
export function globalAvgPoolNhwc(N: number, plane: number, C: number, x: Int8Array, deq: Float32Array, outScale: number, lo: number, hi: number, y: Int8Array, sum: Float64Array): void {
  for (let n = 0; n < N; n++) {
    sum.fill(0, 0, C);
    const xb = n * plane * C;
    for (let p = 0; p < plane; p++) {
      const s = xb + p * C;
      for (let c = 0; c < C; c++) sum[c] += deq[x[s + c] + 128];
    }
    for (let c = 0; c < C; c++) y[n * C + c] = quantizeOne(fround(sum[c] / plane), outScale, lo, hi);
  }
}

export function globalMaxPoolNhwc(N: number, plane: number, C: number, x: Int8Array, y: Int8Array): void {
  for (let n = 0; n < N; n++) {
    const xb = n * plane * C;
    for (let c = 0; c < C; c++) y[n * C + c] = plane > 0 ? x[xb + c] : 0;
    for (let p = 1; p < plane; p++) {
      const s = xb + p * C;
      for (let c = 0; c < C; c++) {
        const v = x[s + c];
        if (v > y[n * C + c]) y[n * C + c] = v;
      }
    }
  }
}
