/**
 * Pixel kernels behind the transformers (transformers.ts): resampling, colour conversion and
 * casts on float32 images in HWC or CHW layout. No knowledge of specs or names lives here.
 *
 * Resampling comes in two flavours, both separable with float64 accumulation:
 *  - `opencv`: cv2.resize semantics for float images. Source coordinate of output pixel o is
 *    (o + 0.5) · scale − 0.5 (scale = in/out, or 1/fx when a factor is given); linear and cubic
 *    taps outside the image are clamped to the edge pixel (BORDER_REPLICATE); nearest takes
 *    floor(o · scale). Cubic is Keys' cubic convolution with a = −0.75. No anti-aliasing.
 *    (cv2 resizes uint8 images with 11-bit fixed-point weights; we always work in float, so
 *    results on 8-bit data can differ from cv2's by a rounding step.)
 *  - `skimage`: skimage.transform.resize (≥ 0.19) with mode 'reflect', order 0 or 1: when an
 *    axis shrinks, a Gaussian pre-filter with σ = (in/out − 1)/2 (truncated at 4σ) is applied
 *    first (anti_aliasing); samples beyond the edge mirror about the edge pixel (numpy
 *    'reflect' = ndimage 'mirror'); the result is clipped to the input's value range.
 */

export type ImageLayout = 'HWC' | 'CHW' | 'NV12';
/** The storage type a value is meant for (the reference's `astype` at the end of a transformer). */
export type SampleDType = 'float32' | 'uint8' | 'int8';

/**
 * An image: float32 values plus geometry. For HWC/CHW, `data` has height·width·channels values.
 * NV12 is the planar 4:2:0 format: a height×width Y plane, then height/2 rows of interleaved
 * U,V pairs (width/2 pairs each); `channels` is 3 (it encodes a 3-channel image) and `data`
 * has height·width·3/2 values.
 */
export interface Image {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
  layout: ImageLayout;
  dtype: SampleDType;
}

export type Interpolation = 'nearest' | 'linear' | 'cubic';
export type ResizeMode = 'opencv' | 'skimage';

export interface ResizeOptions {
  mode?: ResizeMode;
  interpolation?: Interpolation;
  /** opencv: source pixels per output pixel along y/x (cv2's 1/fy, 1/fx); default in/out */
  scaleY?: number;
  scaleX?: number;
}

/** The array dims of an image as stored ([H,W,C], [C,H,W] or [H·3/2, W] for NV12). */
export function imageDims(img: Image): number[] {
  if (img.layout === 'HWC') return [img.height, img.width, img.channels];
  if (img.layout === 'CHW') return [img.channels, img.height, img.width];
  return [(img.height * 3) / 2, img.width];
}

/** Element strides (channel, row, column) of an HWC/CHW image of the given size. */
export function strides(layout: ImageLayout, h: number, w: number, c: number): { sc: number; sy: number; sx: number } {
  if (layout === 'HWC') return { sc: 1, sy: w * c, sx: c };
  if (layout === 'CHW') return { sc: h * w, sy: w, sx: 1 };
  throw new Error('NV12 has no per-channel strides');
}

export function makeImage(height: number, width: number, channels: number, layout: ImageLayout, dtype: SampleDType = 'float32', data?: Float32Array): Image {
  const n = layout === 'NV12' ? (height * width * 3) / 2 : height * width * channels;
  const d = data ?? new Float32Array(n);
  if (d.length !== n) throw new Error(`image data has ${d.length} values, ${layout} ${height}x${width}x${channels} needs ${n}`);
  return { data: d, height, width, channels, layout, dtype };
}

// ---------------------------------------------------------------- resampling

/** Per output position: `taps` source indices and weights. */
interface Taps {
  n: number;
  taps: number;
  idx: Int32Array;
  w: Float64Array;
}

const clampIdx = (i: number, n: number): number => (i < 0 ? 0 : i >= n ? n - 1 : i);

/** ndimage 'mirror' (numpy 'reflect'): … c b | a b c d | c b … */
export function mirrorIdx(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let k = Math.abs(i) % period;
  if (k >= n) k = period - k;
  return k;
}

function cubicWeights(t: number, out: Float64Array, at: number): void {
  const a = -0.75;
  const x0 = t + 1;
  const x1 = t;
  const x2 = 1 - t;
  out[at] = ((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a;
  out[at + 1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1;
  out[at + 2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
  out[at + 3] = 1 - out[at] - out[at + 1] - out[at + 2];
}

function axisTaps(inN: number, outN: number, mode: ResizeMode, interp: Interpolation, scale?: number): Taps {
  const s = scale ?? inN / outN;
  const taps = interp === 'nearest' ? 1 : interp === 'linear' ? 2 : 4;
  const idx = new Int32Array(outN * taps);
  const w = new Float64Array(outN * taps);
  for (let o = 0; o < outN; o++) {
    const k = o * taps;
    if (interp === 'nearest') {
      idx[k] = mode === 'opencv' ? Math.min(Math.floor(o * s), inN - 1) : mirrorIdx(Math.floor((o + 0.5) * s - 0.5 + 0.5), inN);
      w[k] = 1;
      continue;
    }
    const src = (o + 0.5) * s - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    if (interp === 'linear') {
      if (mode === 'opencv') {
        if (src <= 0) {
          idx[k] = idx[k + 1] = 0;
          w[k] = 1;
          w[k + 1] = 0;
        } else if (i0 >= inN - 1) {
          idx[k] = idx[k + 1] = inN - 1;
          w[k] = 1;
          w[k + 1] = 0;
        } else {
          idx[k] = i0;
          idx[k + 1] = i0 + 1;
          w[k] = 1 - t;
          w[k + 1] = t;
        }
      } else {
        idx[k] = mirrorIdx(i0, inN);
        idx[k + 1] = mirrorIdx(i0 + 1, inN);
        w[k] = 1 - t;
        w[k + 1] = t;
      }
      continue;
    }
    cubicWeights(t, w, k);
    for (let j = 0; j < 4; j++) idx[k + j] = mode === 'opencv' ? clampIdx(i0 - 1 + j, inN) : mirrorIdx(i0 - 1 + j, inN);
  }
  return { n: outN, taps, idx, w };
}

/** Gaussian taps of ndimage.gaussian_filter1d (truncate 4.0, mode 'mirror'). */
function gaussianTaps(n: number, sigma: number): Taps {
  const radius = Math.floor(4 * sigma + 0.5);
  const taps = 2 * radius + 1;
  const kernel = new Float64Array(taps);
  let sum = 0;
  for (let j = -radius; j <= radius; j++) {
    const v = Math.exp((-0.5 * j * j) / (sigma * sigma));
    kernel[j + radius] = v;
    sum += v;
  }
  for (let j = 0; j < taps; j++) kernel[j] /= sum;
  const idx = new Int32Array(n * taps);
  const w = new Float64Array(n * taps);
  for (let o = 0; o < n; o++) {
    for (let j = 0; j < taps; j++) {
      idx[o * taps + j] = mirrorIdx(o - radius + j, n);
      w[o * taps + j] = kernel[j];
    }
  }
  return { n, taps, idx, w };
}

/** Sampling taps `outer` applied to the result of `inner` (same axis), as one set of taps on the source. */
function thenTaps(outer: Taps, inner: Taps): Taps {
  const taps = outer.taps * inner.taps;
  const idx = new Int32Array(outer.n * taps);
  const w = new Float64Array(outer.n * taps);
  for (let o = 0; o < outer.n; o++) {
    let t = o * taps;
    for (let k = 0; k < outer.taps; k++) {
      const j = outer.idx[o * outer.taps + k];
      const wk = outer.w[o * outer.taps + k];
      for (let m = 0; m < inner.taps; m++, t++) {
        idx[t] = inner.idx[j * inner.taps + m];
        w[t] = wk * inner.w[j * inner.taps + m];
      }
    }
  }
  return { n: outer.n, taps, idx, w };
}

/**
 * Apply separable taps: along x (ty = undefined keeps rows) then y. Works on HWC and CHW;
 * the result has the input's layout. Accumulates in float64.
 */
function applyTaps(img: Image, ty: Taps | undefined, tx: Taps | undefined): Image {
  const { height: h, width: w, channels: c, layout } = img;
  const oh = ty ? ty.n : h;
  const ow = tx ? tx.n : w;
  const si = strides(layout, h, w, c);
  const src = img.data;
  // pass 1: along x into tmp laid out [h][ow][c]
  const tmp = new Float64Array(h * ow * c);
  const xTaps = tx ? tx.taps : 1;
  const xIdx = tx ? tx.idx : Int32Array.from({ length: w }, (_, i) => i);
  const xW = tx ? tx.w : new Float64Array(w).fill(1);
  const xOff = new Int32Array(xIdx.length);
  for (let i = 0; i < xIdx.length; i++) xOff[i] = xIdx[i] * si.sx;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const rowOff = ch * si.sc + y * si.sy;
      let t = y * ow * c + ch;
      for (let x = 0; x < ow; x++, t += c) {
        const k0 = x * xTaps;
        let acc = 0;
        for (let k = 0; k < xTaps; k++) acc += xW[k0 + k] * src[rowOff + xOff[k0 + k]];
        tmp[t] = acc;
      }
    }
  }
  // pass 2: along y, one output row at a time, then into the output layout
  const so = strides(layout, oh, ow, c);
  const out = new Float32Array(oh * ow * c);
  const rowLen = ow * c;
  const row = new Float64Array(rowLen);
  for (let y = 0; y < oh; y++) {
    if (ty) {
      row.fill(0);
      const k0 = y * ty.taps;
      for (let k = 0; k < ty.taps; k++) {
        const wk = ty.w[k0 + k];
        const base = ty.idx[k0 + k] * rowLen;
        for (let i = 0; i < rowLen; i++) row[i] += wk * tmp[base + i];
      }
    } else {
      row.set(tmp.subarray(y * rowLen, (y + 1) * rowLen));
    }
    if (layout === 'HWC') out.set(row, y * rowLen);
    else {
      for (let x = 0; x < ow; x++) for (let ch = 0; ch < c; ch++) out[ch * so.sc + y * so.sy + x] = row[x * c + ch];
    }
  }
  return makeImage(oh, ow, c, layout, 'float32', out);
}

/** Resize an HWC/CHW image to outH × outW (see the file comment for the two modes). */
export function resize(img: Image, outH: number, outW: number, opts: ResizeOptions = {}): Image {
  const mode = opts.mode ?? 'opencv';
  const interp = opts.interpolation ?? 'linear';
  if (img.layout === 'NV12') throw new Error('resize needs an HWC or CHW image');
  if (!(outH >= 1 && outW >= 1 && Number.isInteger(outH) && Number.isInteger(outW))) throw new Error(`resize to ${outH}x${outW}: sizes must be positive integers`);
  if (mode === 'opencv') {
    return applyTaps(img, axisTaps(img.height, outH, mode, interp, opts.scaleY), axisTaps(img.width, outW, mode, interp, opts.scaleX));
  }
  if (interp === 'cubic') throw new Error('skimage-mode resize supports nearest (order 0) and linear (order 1) only');
  // anti-aliasing (any axis shrinks): the Gaussian is folded into the sampling taps, so only
  // output positions are filtered
  const shrink = outH < img.height || outW < img.width;
  const sy = shrink ? Math.max(0, (img.height / outH - 1) / 2) : 0;
  const sx = shrink ? Math.max(0, (img.width / outW - 1) / 2) : 0;
  let ty = axisTaps(img.height, outH, mode, interp);
  let tx = axisTaps(img.width, outW, mode, interp);
  if (sy > 0) ty = thenTaps(ty, gaussianTaps(img.height, sy));
  if (sx > 0) tx = thenTaps(tx, gaussianTaps(img.width, sx));
  const out = applyTaps(img, ty, tx);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of img.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const d = out.data;
  for (let i = 0; i < d.length; i++) d[i] = d[i] < lo ? lo : d[i] > hi ? hi : d[i];
  return out;
}

// ---------------------------------------------------------------- geometry

/** Rows top..top+h, columns left..left+w (must lie inside the image). */
export function crop(img: Image, top: number, left: number, h: number, w: number): Image {
  if (img.layout === 'NV12') throw new Error('crop needs an HWC or CHW image');
  const c = img.channels;
  const si = strides(img.layout, img.height, img.width, c);
  const so = strides(img.layout, h, w, c);
  const out = new Float32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[ch * so.sc + y * so.sy + x * so.sx] = img.data[ch * si.sc + (y + top) * si.sy + (x + left) * si.sx];
    }
  }
  return makeImage(h, w, c, img.layout, img.dtype, out);
}

/** An h × w canvas filled with `fill`, with `img` placed at (top, left). */
export function place(img: Image, h: number, w: number, top: number, left: number, fill: number): Image {
  if (img.layout === 'NV12') throw new Error('pad needs an HWC or CHW image');
  const c = img.channels;
  const out = new Float32Array(h * w * c).fill(fill);
  const si = strides(img.layout, img.height, img.width, c);
  const so = strides(img.layout, h, w, c);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) out[ch * so.sc + (y + top) * so.sy + (x + left) * so.sx] = img.data[ch * si.sc + y * si.sy + x * si.sx];
    }
  }
  return makeImage(h, w, c, img.layout, 'float32', out);
}

/** HWC ↔ CHW (same pixels, other memory order). */
export function toLayout(img: Image, layout: 'HWC' | 'CHW'): Image {
  if (img.layout === 'NV12') throw new Error('NV12 data cannot be transposed');
  if (img.layout === layout) return img;
  const { height: h, width: w, channels: c } = img;
  const si = strides(img.layout, h, w, c);
  const so = strides(layout, h, w, c);
  const out = new Float32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[ch * so.sc + y * so.sy + x * so.sx] = img.data[ch * si.sc + y * si.sy + x * si.sx];
    }
  }
  return makeImage(h, w, c, layout, img.dtype, out);
}

/** Output channel k = input channel order[k]. */
export function permuteChannels(img: Image, order: readonly number[]): Image {
  if (img.layout === 'NV12') throw new Error('NV12 data has no channel axis');
  const { height: h, width: w, channels: c } = img;
  const s = strides(img.layout, h, w, c);
  const out = new Float32Array(h * w * order.length);
  const so = strides(img.layout, h, w, order.length);
  for (let k = 0; k < order.length; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[k * so.sc + y * so.sy + x * so.sx] = img.data[order[k] * s.sc + y * s.sy + x * s.sx];
    }
  }
  return makeImage(h, w, order.length, img.layout, img.dtype, out);
}

// ---------------------------------------------------------------- colour

/**
 * One output channel as numpy computes `c0·a + c1·b + c2·c + k` on float32 arrays: every
 * product and sum rounded to float32, left to right (subtractions are additions of negated
 * coefficients, which IEEE makes identical).
 */
export interface ColourRow {
  coef: readonly [number, number, number];
  bias: number;
}

const f = Math.fround;

/** Apply rows to the three channels (in `inputOrder`, e.g. [0,1,2] = R,G,B) of each pixel; then add `offset`. */
export function colourMatrix(img: Image, inputOrder: readonly [number, number, number], rows: readonly ColourRow[], offset: number): Image {
  if (img.layout === 'NV12') throw new Error('colour conversion needs an HWC or CHW image');
  const { height: h, width: w } = img;
  const si = strides(img.layout, h, w, img.channels);
  const so = strides(img.layout, h, w, rows.length);
  const out = new Float32Array(h * w * rows.length);
  const cs = rows.map((r) => [f(r.coef[0]), f(r.coef[1]), f(r.coef[2]), f(r.bias)]);
  const off = f(offset);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * si.sy + x * si.sx;
      const a = img.data[p + inputOrder[0] * si.sc];
      const b = img.data[p + inputOrder[1] * si.sc];
      const c = img.data[p + inputOrder[2] * si.sc];
      const q = y * so.sy + x * so.sx;
      for (let k = 0; k < cs.length; k++) {
        const r = cs[k];
        let v = f(f(f(f(r[0] * a) + f(r[1] * b)) + f(r[2] * c)) + r[3]);
        if (off !== 0) v = f(v + off);
        out[q + k * so.sc] = v;
      }
    }
  }
  return makeImage(h, w, rows.length, img.layout, 'float32', out);
}

/** BT.601 full range (the reference's rgb2bt601_full_range): Y, U, V rows from R, G, B. */
export const BT601_FULL: readonly ColourRow[] = [
  { coef: [0.299, 0.587, 0.114], bias: 0 },
  { coef: [-0.169, -0.331, 0.5], bias: 128 },
  { coef: [0.5, -0.419, -0.081], bias: 128 },
];

/** BT.601 video (studio) range: Y in [16, 235], U/V in [16, 240]. */
export const BT601_VIDEO: readonly ColourRow[] = [
  { coef: [0.257, 0.504, 0.098], bias: 16 },
  { coef: [-0.148, -0.291, 0.439], bias: 128 },
  { coef: [0.439, -0.368, -0.071], bias: 128 },
];

/**
 * RGB (channels in `inputOrder` = R,G,B) → NV12 the way the reference's `rgb_calc` mode does:
 * full-range BT.601 per pixel, U and V taken from the top-left pixel of each 2×2 block (no
 * averaging), values truncated to uint8 (saturating). Height and width must be even.
 */
export function toNv12(img: Image, inputOrder: readonly [number, number, number]): Image {
  const { height: h, width: w } = img;
  const yuv = colourMatrix(img, inputOrder, BT601_FULL, 0);
  const s = strides(yuv.layout, h, w, 3);
  const out = new Float32Array((h * w * 3) / 2);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = truncU8(yuv.data[y * s.sy + x * s.sx]);
  let o = h * w;
  for (let y = 0; y < h; y += 2) {
    for (let x = 0; x < w; x += 2) {
      const p = y * s.sy + x * s.sx;
      out[o++] = truncU8(yuv.data[p + s.sc]);
      out[o++] = truncU8(yuv.data[p + 2 * s.sc]);
    }
  }
  return makeImage(h, w, 3, 'NV12', 'uint8', out);
}

/** NV12 → YUV444 by repeating each chroma sample over its 2×2 block (nearest). */
export function nv12ToYuv444(img: Image, layout: 'HWC' | 'CHW'): Image {
  const { height: h, width: w } = img;
  const out = makeImage(h, w, 3, layout, 'uint8');
  const s = strides(layout, h, w, 3);
  const uv = h * w;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * s.sy + x * s.sx;
      const c = uv + (y >> 1) * w + (x >> 1) * 2;
      out.data[p] = img.data[y * w + x];
      out.data[p + s.sc] = img.data[c];
      out.data[p + 2 * s.sc] = img.data[c + 1];
    }
  }
  return out;
}

// ---------------------------------------------------------------- casts

/** numpy `astype(uint8)` on in-range floats: truncation toward zero; out of range saturates (numpy leaves it undefined), NaN → 0. */
export function truncU8(v: number): number {
  if (!(v > 0)) return 0;
  return v >= 255 ? 255 : Math.trunc(v);
}

/** `astype(int8)` likewise: truncation, saturating to [−128, 127]. */
export function truncI8(v: number): number {
  if (Number.isNaN(v)) return 0;
  return v <= -128 ? -128 : v >= 127 ? 127 : Math.trunc(v);
}

/** Round half to even and saturate to [lo, hi] (cv2 saturate_cast; Python's round). */
export function roundSat(v: number, lo: number, hi: number): number {
  if (Number.isNaN(v)) return 0;
  let r = Math.round(v);
  if (r - v === 0.5 && r % 2 !== 0) r -= 1;
  return r < lo ? lo : r > hi ? hi : r + 0; // + 0 turns −0 into 0
}

/** Python's round(x) for the size computations of the reference (half to even). */
export function pyRound(v: number): number {
  return roundSat(v, -Infinity, Infinity);
}

export function castImage(img: Image, dtype: SampleDType): Image {
  if (dtype === 'float32') return img.dtype === 'float32' ? img : { ...img, dtype };
  const fn = dtype === 'uint8' ? truncU8 : truncI8;
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = fn(img.data[i]);
  return { ...img, data: out, dtype };
}
