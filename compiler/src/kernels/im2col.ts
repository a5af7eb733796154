/**
 * Convolution as GEMM, without materialising the im2col matrix: `Im2col.packer` writes the
 * NR-column panels of the (channels · kernel) × (output positions) matrix straight into the
 * GEMM's packed-B scratch, for any number of spatial dims. `col2im` is the transpose
 * (scatter-add of a column matrix into an image) used by ConvTranspose. For 1-D and 2-D
 * images on the WebAssembly backend, `Im2col2d.source` unfolds blocks row-major in scratch
 * memory with the wasm kernel instead (contiguous rows become memory copies).
 */
import { BlockSource, NR, PanelPacker } from './gemm';
import { wasmKernels } from './wasm-simd';
import { product } from './window';
import { stridesOf } from './shape';

export interface ConvGeometry {
  /** input channels of one group */
  channels: number;
  /** input spatial sizes */
  inShape: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  /** output spatial sizes */
  outShape: number[];
}


/** Index tables of one convolution geometry, reused for every image and group. */
export class Im2col {
  /** rows: channels · kernel volume */
  readonly K: number;
  /** columns: output positions */
  readonly N: number;
  private readonly nd: number;
  private readonly inShape: number[];
  /** per column: Σ (o·s − pad)·inStride, and the window origin per dim */
  private readonly colBase: Int32Array;
  private readonly colCoord: Int32Array;
  /** per column: 1 when every kernel tap falls inside the input */
  private readonly colInside: Uint8Array;
  /** per row: channel offset + Σ tap·dilation·inStride, and tap·dilation per dim */
  private readonly rowOff: Int32Array;
  private readonly rowTap: Int32Array;

  constructor(g: ConvGeometry) {
    const nd = (this.nd = g.inShape.length);
    this.inShape = g.inShape.slice();
    const inStr = stridesOf(g.inShape);
    const inVol = product(g.inShape);
    const kvol = product(g.kernel);
    this.K = g.channels * kvol;
    this.N = product(g.outShape);
    this.colBase = new Int32Array(this.N);
    this.colCoord = new Int32Array(this.N * nd);
    this.colInside = new Uint8Array(this.N);
    const o = new Array<number>(nd).fill(0);
    for (let j = 0; j < this.N; j++) {
      let base = 0;
      let inside = 1;
      for (let d = 0; d < nd; d++) {
        const c = o[d] * g.strides[d] - g.padsBegin[d];
        this.colCoord[j * nd + d] = c;
        base += c * inStr[d];
        if (c < 0 || c + (g.kernel[d] - 1) * g.dilations[d] >= g.inShape[d]) inside = 0;
      }
      this.colBase[j] = base;
      this.colInside[j] = inside;
      for (let d = nd - 1; d >= 0; d--) {
        if (++o[d] < g.outShape[d]) break;
        o[d] = 0;
      }
    }
    this.rowOff = new Int32Array(this.K);
    this.rowTap = new Int32Array(this.K * nd);
    const t = new Array<number>(nd).fill(0);
    for (let r = 0; r < kvol; r++) {
      let off = 0;
      for (let d = 0; d < nd; d++) off += t[d] * g.dilations[d] * inStr[d];
      for (let c = 0; c < g.channels; c++) {
        const row = c * kvol + r;
        this.rowOff[row] = c * inVol + off;
        for (let d = 0; d < nd; d++) this.rowTap[row * nd + d] = t[d] * g.dilations[d];
      }
      for (let d = nd - 1; d >= 0; d--) {
        if (++t[d] < g.kernel[d]) break;
        t[d] = 0;
      }
    }
  }

  /** Packer of the B operand (K × N) for the image of one group starting at x[xOff]. */
  packer(x: Float32Array, xOff: number): PanelPacker {
    const { colBase, colInside, colCoord, rowOff, rowTap, nd, inShape } = this;
    const N = this.N;
    return (dst, off, k0, kc, j0, n) => {
      let dd = off;
      const kEnd = k0 + kc;
      for (let p = 0; p < n; p += NR) {
        const j = j0 + p;
        const cnt = Math.min(NR, n - p);
        let inside = cnt === NR;
        for (let c = 0; c < cnt && inside; c++) inside = colInside[j + c] === 1;
        if (inside) {
          const b0 = xOff + colBase[j], b1 = xOff + colBase[j + 1], b2 = xOff + colBase[j + 2], b3 = xOff + colBase[j + 3];
          const b4 = xOff + colBase[j + 4], b5 = xOff + colBase[j + 5], b6 = xOff + colBase[j + 6], b7 = xOff + colBase[j + 7];
          for (let k = k0; k < kEnd; k++, dd += 8) {
            const r = rowOff[k];
            dst[dd] = x[r + b0]; dst[dd + 1] = x[r + b1]; dst[dd + 2] = x[r + b2]; dst[dd + 3] = x[r + b3];
            dst[dd + 4] = x[r + b4]; dst[dd + 5] = x[r + b5]; dst[dd + 6] = x[r + b6]; dst[dd + 7] = x[r + b7];
          }
          continue;
        }
        for (let k = k0; k < kEnd; k++, dd += NR) {
          const r = rowOff[k] + xOff;
          for (let c = 0; c < NR; c++) {
            const col = j + c;
            if (c >= cnt || col >= N) {
              dst[dd + c] = 0;
            } else if (colInside[col]) {
              dst[dd + c] = x[r + colBase[col]];
            } else {
              let ok = true;
              for (let d = 0; d < nd && ok; d++) {
                const v = colCoord[col * nd + d] + rowTap[k * nd + d];
                ok = v >= 0 && v < inShape[d];
              }
              dst[dd + c] = ok ? x[r + colBase[col]] : 0;
            }
          }
        }
      }
    };
  }
}

/**
 * Unfolding of 1-D/2-D images by the WebAssembly im2col kernel, one GEMM block at a time:
 * a table row per im2col row (channel and tap offset, vertical tap, valid output columns).
 */
export class Im2col2d {
  readonly K: number;
  readonly N: number;
  private readonly H: number;
  private readonly W: number;
  private readonly table: Int32Array;

  /** undefined when the geometry has more than two spatial dims or wasm is unavailable */
  static create(g: ConvGeometry): Im2col2d | undefined {
    if (g.inShape.length > 2 || !wasmKernels()) return undefined;
    return new Im2col2d(g);
  }

  private constructor(private readonly g: ConvGeometry) {
    const two = g.inShape.length === 2;
    const at = (v: number[], def: number): [number, number] => (two ? [v[0], v[1]] : [def, v[0]]);
    const [H, W] = at(g.inShape, 1);
    const [, OW] = at(g.outShape, 1);
    const [kh, kw] = at(g.kernel, 1);
    const [dh, dw] = at(g.dilations, 1);
    const [, sw] = at(g.strides, 1);
    const [, pw] = at(g.padsBegin, 0);
    this.H = H;
    this.W = W;
    this.K = g.channels * kh * kw;
    this.N = product(g.outShape);
    this.table = new Int32Array(4 * this.K);
    for (let c = 0, k = 0; c < g.channels; c++) {
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++, k++) {
          const ty = ky * dh, tx = kx * dw;
          const lo = Math.max(0, Math.ceil((pw - tx) / sw));
          const hi = Math.min(OW, Math.floor((W - 1 + pw - tx) / sw) + 1);
          this.table.set([c * H * W + ty * W + tx, ty, lo, Math.max(lo, hi)], 4 * k);
        }
      }
    }
  }

  /** The B operand (K × N) for the image of one group starting at x[xOff]. */
  source(x: Float32Array, xOff: number): BlockSource {
    const { H, W, table, g } = this;
    const two = g.inShape.length === 2;
    const image = g.channels * H * W;
    const OW = g.outShape[two ? 1 : 0];
    const sh = two ? g.strides[0] : 1, sw = g.strides[two ? 1 : 0];
    const ph = two ? g.padsBegin[0] : 0, pw = g.padsBegin[two ? 1 : 0];
    const tab = Math.ceil(image / 4) * 4;
    let at = 0;
    return {
      extra: tab + table.length,
      init(view, offset) {
        at = offset;
        view.set(x.subarray(xOff, xOff + image), at);
        new Int32Array(view.buffer).set(table, at + tab);
      },
      block(_view, k0, kc, j0, nc, buf, bufLd) {
        wasmKernels()!.im2col(at * 4, H, W, sh, sw, ph, pw, OW, (at + tab) * 4, k0, kc, j0, nc, buf * 4, bufLd * 4);
        return { ptr: buf * 4, ld: bufLd * 4 };
      },
    };
  }
}

/**
 * ConvTranspose's scatter: cols is (outChannels · kernel) × (input positions), row-major from
 * colsOff; each element is added to y at output position i·stride + tap·dilation − padBegin
 * (when inside the output). `g.inShape` is the ConvTranspose input, `g.outShape` its output,
 * `g.channels` the output channels of the group; y's group block starts at yOff.
 */
export function col2im(g: ConvGeometry, cols: Float32Array, colsOff: number, y: Float32Array, yOff: number): void {
  const nd = g.inShape.length;
  const kvol = product(g.kernel);
  const inVol = product(g.inShape);
  const outVol = product(g.outShape);
  const outStr = stridesOf(g.outShape);
  const last = nd - 1;
  const inLast = g.inShape[last];
  const sLast = g.strides[last];
  const outLast = g.outShape[last];
  const lines = inVol / inLast;
  const lead = g.inShape.slice(0, last);
  const tap = new Array<number>(nd).fill(0);
  const idx = new Array<number>(Math.max(0, last)).fill(0);
  for (let r = 0; r < kvol; r++) {
    // the last dim's valid input range for this tap: 0 ≤ i·s + shift < outLast
    const shift = tap[last] * g.dilations[last] - g.padsBegin[last];
    const lo = shift >= 0 ? 0 : Math.ceil(-shift / sLast);
    const hi = Math.min(inLast, Math.floor((outLast - 1 - shift) / sLast) + 1);
    if (hi > lo) {
      for (let c = 0; c < g.channels; c++) {
        const row = colsOff + (c * kvol + r) * inVol;
        const plane = yOff + c * outVol;
        idx.fill(0);
        for (let l = 0; l < lines; l++) {
          let base = plane;
          let ok = true;
          for (let d = 0; d < last; d++) {
            const o = idx[d] * g.strides[d] + tap[d] * g.dilations[d] - g.padsBegin[d];
            if (o < 0 || o >= g.outShape[d]) {
              ok = false;
              break;
            }
            base += o * outStr[d];
          }
          if (ok) {
            const src = row + l * inLast;
            const dst = base + shift;
            if (sLast === 1) for (let i = lo; i < hi; i++) y[dst + i] += cols[src + i];
            else for (let i = lo; i < hi; i++) y[dst + i * sLast] += cols[src + i];
          }
          for (let d = last - 1; d >= 0; d--) {
            if (++idx[d] < lead[d]) break;
            idx[d] = 0;
          }
        }
      }
    }
    for (let d = nd - 1; d >= 0; d--) {
      if (++tap[d] < g.kernel[d]) break;
      tap[d] = 0;
    }
  }
}
