import { PtqError } from '../errors';
import { Dim, Node } from '../onnx/ir';
import { gemmPacked, IntArray, packRows } from './igemm';

/**
 * Integer N-d convolution (1-D, 2-D, 3-D, …) with int32 accumulation, for QLinearConv and
 * ConvInteger: im2row through an indirection table into an Int16 buffer (zero points
 * subtracted, padding = the input zero point = 0 after subtraction), then the packed GEMM.
 */

/** Spatial geometry of a convolution, attributes resolved (auto_pad included). */
export interface ConvGeometry {
  inSpatial: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
  outSpatial: number[];
  group: number;
}

function attrError(node: Node, msg: string, fix: string): PtqError {
  return new PtqError('E_MODEL_ATTR', `node '${node.label}' (${node.opType}): ${msg}`, { subject: node.label, fix });
}

function shapeError(node: Node, msg: string, fix: string): PtqError {
  return new PtqError('E_MODEL_SHAPE', `node '${node.label}' (${node.opType}): ${msg}`, { subject: node.label, fix });
}

interface ConvAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[] | undefined;
  autoPad: string;
  group: number;
}

function readAttrs(node: Node, r: number, wKernel: readonly Dim[]): ConvAttrs {
  const ks = node.ints('kernel_shape');
  let kernel: number[];
  if (ks) {
    if (ks.length !== r) throw attrError(node, `kernel_shape has ${ks.length} values, the input has ${r} spatial dims`, 'give one kernel size per spatial dimension');
    wKernel.forEach((d, i) => {
      if (typeof d === 'number' && d !== ks[i]) throw attrError(node, `kernel_shape [${ks}] does not match the weight shape`, 'make kernel_shape equal to the weight spatial dims');
    });
    kernel = ks.slice();
  } else {
    kernel = wKernel.map((d) => (typeof d === 'number' ? d : NaN));
  }
  const strides = node.ints('strides', new Array<number>(r).fill(1));
  const dilations = node.ints('dilations', new Array<number>(r).fill(1));
  if (strides.length !== r || strides.some((s) => !(s >= 1))) throw attrError(node, `strides [${strides}] must be ${r} values >= 1`, 'fix the strides attribute');
  if (dilations.length !== r || dilations.some((s) => !(s >= 1))) throw attrError(node, `dilations [${dilations}] must be ${r} values >= 1`, 'fix the dilations attribute');
  const pads = node.ints('pads');
  if (pads && (pads.length !== 2 * r || pads.some((p) => p < 0))) throw attrError(node, `pads [${pads}] must be ${2 * r} values >= 0`, 'give begin and end pads for every spatial dimension');
  const group = node.int('group', 1);
  if (!(group >= 1)) throw attrError(node, `group ${group} must be >= 1`, 'fix the group attribute');
  return { kernel, strides, dilations, pads, autoPad: node.str('auto_pad', 'NOTSET'), group };
}

/** Output spatial size and pads of one dimension; NaN when the input size is unknown. */
function dimGeometry(a: ConvAttrs, i: number, inSize: number, node: Node): { out: number; pb: number; pe: number } {
  const ek = (a.kernel[i] - 1) * a.dilations[i] + 1;
  const s = a.strides[i];
  switch (a.autoPad) {
    case 'SAME_UPPER':
    case 'SAME_LOWER': {
      const out = Math.ceil(inSize / s);
      const total = Math.max(0, (out - 1) * s + ek - inSize);
      const small = Math.floor(total / 2);
      return a.autoPad === 'SAME_UPPER' ? { out, pb: small, pe: total - small } : { out, pb: total - small, pe: small };
    }
    case 'VALID':
      return { out: Math.floor((inSize - ek) / s) + 1, pb: 0, pe: 0 };
    case 'NOTSET':
    case '': {
      const r = a.kernel.length;
      const pb = a.pads ? a.pads[i] : 0;
      const pe = a.pads ? a.pads[i + r] : 0;
      return { out: Math.floor((inSize + pb + pe - ek) / s) + 1, pb, pe };
    }
    default:
      throw attrError(node, `auto_pad '${a.autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`, 'fix the auto_pad attribute');
  }
}

/** Resolve the geometry of a convolution of `xDims` [N, C, ...] by `wDims` [M, C/group, ...k]. */
export function convGeometry(node: Node, xDims: readonly number[], wDims: readonly number[]): ConvGeometry {
  if (xDims.length < 3 || wDims.length !== xDims.length) {
    throw shapeError(node, `input [${xDims}] and weight [${wDims}] must both have rank >= 3 and the same rank`, 'check the input shape (N, C, spatial…) and the weights');
  }
  const r = xDims.length - 2;
  const a = readAttrs(node, r, wDims.slice(2));
  const C = xDims[1];
  const M = wDims[0];
  if (C !== wDims[1] * a.group) {
    throw shapeError(node, `input has ${C} channels, weight [${wDims}] with group ${a.group} expects ${wDims[1] * a.group}`, 'check the input channel count and the group attribute');
  }
  if (M % a.group !== 0) throw shapeError(node, `${M} output channels are not divisible by group ${a.group}`, 'fix the group attribute or the weights');
  const g: ConvGeometry = { inSpatial: xDims.slice(2), kernel: a.kernel, strides: a.strides, dilations: a.dilations, padsBegin: [], padsEnd: [], outSpatial: [], group: a.group };
  for (let i = 0; i < r; i++) {
    const d = dimGeometry(a, i, xDims[2 + i], node);
    if (!(d.out >= 1)) {
      throw shapeError(node, `spatial dim ${i} of size ${xDims[2 + i]} is too small for kernel ${a.kernel[i]} (dilation ${a.dilations[i]}, pads ${d.pb}+${d.pe})`, 'use a larger input_shape or check pads');
    }
    g.padsBegin.push(d.pb);
    g.padsEnd.push(d.pe);
    g.outSpatial.push(d.out);
  }
  return g;
}

/** Output dims for shape inference (symbolic '?' where a size is unknown); undefined when the ranks are unknown. */
export function convOutputDims(node: Node, x: Dim[] | undefined, w: Dim[] | undefined): Dim[] | undefined {
  if (!x && !w) return undefined;
  const rank = x?.length ?? w?.length ?? 0;
  if (rank < 3) return undefined;
  const r = rank - 2;
  const wk = w ? w.slice(2) : new Array<Dim>(r).fill('?');
  const a = readAttrs(node, r, wk);
  const out: Dim[] = [x ? x[0] : '?', w ? w[0] : '?'];
  for (let i = 0; i < r; i++) {
    const inSize = x ? x[2 + i] : '?';
    if (typeof inSize !== 'number' || Number.isNaN(a.kernel[i])) {
      out.push('?');
      continue;
    }
    out.push(dimGeometry(a, i, inSize, node).out);
  }
  return out;
}

/**
 * For every output position p and kernel position k: the offset of the input element inside
 * one channel image, or -1 where the window reads padding. Shared by every channel and image.
 */
export function convIndirection(g: ConvGeometry): { table: Int32Array; P: number; ks: number } {
  const r = g.inSpatial.length;
  const P = g.outSpatial.reduce((p, q) => p * q, 1);
  const ks = g.kernel.reduce((p, q) => p * q, 1);
  const inStride = new Array<number>(r);
  let acc = 1;
  for (let d = r - 1; d >= 0; d--) {
    inStride[d] = acc;
    acc *= g.inSpatial[d];
  }
  // coord[d][o * k_d + k] = input index along d, or -1
  const coord: Int32Array[] = [];
  for (let d = 0; d < r; d++) {
    const o = g.outSpatial[d];
    const k = g.kernel[d];
    const c = new Int32Array(o * k);
    for (let i = 0; i < o; i++) {
      for (let j = 0; j < k; j++) {
        const x = i * g.strides[d] - g.padsBegin[d] + j * g.dilations[d];
        c[i * k + j] = x >= 0 && x < g.inSpatial[d] ? x : -1;
      }
    }
    coord.push(c);
  }
  const table = new Int32Array(P * ks);
  const op = new Array<number>(r).fill(0);
  const kp = new Array<number>(r).fill(0);
  let t = 0;
  for (let p = 0; p < P; p++) {
    kp.fill(0);
    for (let q = 0; q < ks; q++) {
      let off = 0;
      for (let d = 0; d < r; d++) {
        const x = coord[d][op[d] * g.kernel[d] + kp[d]];
        if (x < 0) {
          off = -1;
          break;
        }
        off += x * inStride[d];
      }
      table[t++] = off;
      for (let d = r - 1; d >= 0; d--) {
        if (++kp[d] < g.kernel[d]) break;
        kp[d] = 0;
      }
    }
    for (let d = r - 1; d >= 0; d--) {
      if (++op[d] < g.outSpatial[d]) break;
      op[d] = 0;
    }
  }
  return { table, P, ks };
}

/**
 * int32 accumulators [N, M, P] of the convolution of x [N, C, ...] (zero point xZp, per tensor)
 * by w [M, C/group, ...k] (zero point per tensor or per output channel), no bias.
 */
export function iconv(
  x: IntArray,
  xDims: readonly number[],
  xZp: number,
  w: IntArray,
  wDims: readonly number[],
  wZp: IntArray | undefined,
  g: ConvGeometry,
): Int32Array {
  const N = xDims[0];
  const C = xDims[1];
  const M = wDims[0];
  const Cg = C / g.group;
  const Mg = M / g.group;
  const { table, P, ks } = convIndirection(g);
  const Kd = Cg * ks;
  const inImg = g.inSpatial.reduce((p, q) => p * q, 1);
  const wp = packRows(w, 0, M, Kd, Kd, 1, wZp, new Int16Array(M * Kd));
  const col = new Int16Array(P * Kd);
  const out = new Int32Array(N * M * P);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < g.group; gi++) {
      const base = (n * C + gi * Cg) * inImg;
      // im2row: col[p][c][k] = x[n][gi*Cg + c][window(p, k)] - xZp (0 in padding)
      let o = 0;
      for (let p = 0; p < P; p++) {
        const tRow = p * ks;
        for (let c = 0; c < Cg; c++) {
          const cb = base + c * inImg;
          for (let q = 0; q < ks; q++) {
            const off = table[tRow + q];
            col[o++] = off < 0 ? 0 : x[cb + off] - xZp;
          }
        }
      }
      gemmPacked(Mg, P, Kd, wp, gi * Mg * Kd, col, 0, out, (n * M + gi * Mg) * P, P);
    }
  }
  return out;
}
