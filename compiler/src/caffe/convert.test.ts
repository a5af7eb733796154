import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CAFFE_FIXTURES } from '../../../scripts/fixtures/caffe';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { saveModel } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { caffePoolOutput, convertCaffe, loadCaffeModel, readCaffeInputs } from './index';
import { encodeCaffemodel, LayerSpec, NetSpec, writeCaffeFiles, writePrototxt } from './writer';

/*
 * Acceptance: every fixture converted to ONNX must compute what Caffe computes. The oracle
 * is a deliberately naive evaluator of Caffe's layer semantics written here, independently
 * of the converter (plain loops in float64 over the JS description the fixture files were
 * written from), including Caffe's pooling rules and BatchNorm's moving-average factor.
 */

// ============================================================ naive Caffe evaluator

interface Arr {
  shape: number[];
  data: Float64Array;
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const arr = (shape: number[]): Arr => ({ shape, data: new Float64Array(size(shape)) });
const canon = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

type P = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function blobValues(l: LayerSpec, i: number): Float64Array {
  const b = (l.blobs ?? [])[i];
  if (!b) throw new Error(`fixture layer ${l.name} lacks blob ${i}`);
  return Float64Array.from(b.data);
}

function conv2d(l: LayerSpec, x: Arr, deconv: boolean): Arr {
  const p = l.convolution_param as P;
  const two = (v: number[] | undefined, d: number): [number, number] => (!v || !v.length ? [d, d] : [v[0], v[1] ?? v[0]]);
  const [kh, kw] = p.kernel_h !== undefined ? [p.kernel_h, p.kernel_w] : two(p.kernel_size, 0);
  const [sh, sw] = p.stride_h !== undefined ? [p.stride_h, p.stride_w] : two(p.stride, 1);
  const [ph, pw] = p.pad_h !== undefined || p.pad_w !== undefined ? [p.pad_h ?? 0, p.pad_w ?? 0] : two(p.pad, 0);
  const [dh, dw] = two(p.dilation, 1);
  const G = p.group ?? 1;
  const O = p.num_output;
  const [N, C, H, W] = x.shape;
  const w = blobValues(l, 0);
  const bias = p.bias_term === false ? undefined : blobValues(l, 1);
  const cg = C / G;
  const og = O / G;
  if (!deconv) {
    const OH = Math.floor((H + 2 * ph - (dh * (kh - 1) + 1)) / sh) + 1;
    const OW = Math.floor((W + 2 * pw - (dw * (kw - 1) + 1)) / sw) + 1;
    const y = arr([N, O, OH, OW]);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        const g = Math.floor(o / og);
        for (let oy = 0; oy < OH; oy++)
          for (let ox = 0; ox < OW; ox++) {
            let s = bias ? bias[o] : 0;
            for (let c = 0; c < cg; c++)
              for (let ky = 0; ky < kh; ky++)
                for (let kx = 0; kx < kw; kx++) {
                  const iy = oy * sh - ph + ky * dh;
                  const ix = ox * sw - pw + kx * dw;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  s += w[((o * cg + c) * kh + ky) * kw + kx] * x.data[((n * C + g * cg + c) * H + iy) * W + ix];
                }
            y.data[((n * O + o) * OH + oy) * OW + ox] = s;
          }
      }
    return y;
  }
  // Deconvolution: the gradient of a convolution, scattered from every input pixel.
  const OH = sh * (H - 1) + dh * (kh - 1) + 1 - 2 * ph;
  const OW = sw * (W - 1) + dw * (kw - 1) + 1 - 2 * pw;
  const y = arr([N, O, OH, OW]);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      const g = Math.floor(c / cg);
      for (let iy = 0; iy < H; iy++)
        for (let ix = 0; ix < W; ix++) {
          const v = x.data[((n * C + c) * H + iy) * W + ix];
          for (let ol = 0; ol < og; ol++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const oy = iy * sh - ph + ky * dh;
                const ox = ix * sw - pw + kx * dw;
                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                y.data[((n * O + g * og + ol) * OH + oy) * OW + ox] += v * w[((c * og + ol) * kh + ky) * kw + kx];
              }
        }
    }
  if (bias) for (let i = 0; i < y.data.length; i++) y.data[i] += bias[Math.floor(i / (OH * OW)) % O];
  return y;
}

function pooling(l: LayerSpec, x: Arr): Arr {
  const p = l.pooling_param as P;
  const [N, C, H, W] = x.shape;
  let kh: number, kw: number;
  if (p.global_pooling) [kh, kw] = [H, W];
  else [kh, kw] = p.kernel_size !== undefined ? [p.kernel_size, p.kernel_size] : [p.kernel_h, p.kernel_w];
  const [ph, pw] = p.pad_h !== undefined || p.pad_w !== undefined ? [p.pad_h ?? 0, p.pad_w ?? 0] : [p.pad ?? 0, p.pad ?? 0];
  const [sh, sw] = p.stride_h !== undefined ? [p.stride_h, p.stride_w] : [p.stride ?? 1, p.stride ?? 1];
  const round = p.round_mode === 'FLOOR' ? Math.floor : Math.ceil;
  let OH = round((H + 2 * ph - kh) / sh) + 1;
  let OW = round((W + 2 * pw - kw) / sw) + 1;
  if (ph || pw) {
    if ((OH - 1) * sh >= H + ph) OH--;
    if ((OW - 1) * sw >= W + pw) OW--;
  }
  const y = arr([N, C, OH, OW]);
  for (let nc = 0; nc < N * C; nc++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        let hs = oy * sh - ph;
        let ws = ox * sw - pw;
        let r: number;
        if ((p.pool ?? 'MAX') === 'MAX') {
          const he = Math.min(hs + kh, H);
          const we = Math.min(ws + kw, W);
          hs = Math.max(hs, 0);
          ws = Math.max(ws, 0);
          r = -Infinity;
          for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) r = Math.max(r, x.data[(nc * H + h) * W + w]);
        } else {
          let he = Math.min(hs + kh, H + ph);
          let we = Math.min(ws + kw, W + pw);
          const count = (he - hs) * (we - ws);
          hs = Math.max(hs, 0);
          ws = Math.max(ws, 0);
          he = Math.min(he, H);
          we = Math.min(we, W);
          r = 0;
          for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) r += x.data[(nc * H + h) * W + w];
          r /= count;
        }
        y.data[(nc * OH + oy) * OW + ox] = r;
      }
  return y;
}

/** Multiply/add a parameter aligned at `axis` (Scale, Bias, Axpy-like broadcasting). */
function alignedOp(x: Arr, axis: number, pDims: number[], param: Float64Array, f: (v: number, q: number) => number): Arr {
  const y = arr(x.shape.slice());
  const inner = size(x.shape.slice(axis + pDims.length));
  const ps = size(pDims);
  for (let i = 0; i < x.data.length; i++) y.data[i] = f(x.data[i], param[Math.floor(i / inner) % ps]);
  return y;
}

function perElement(x: Arr, f: (v: number) => number): Arr {
  return { shape: x.shape.slice(), data: x.data.map(f) };
}

function axisCopy(x: Arr, axis: number, start: number, len: number): Arr {
  const outer = size(x.shape.slice(0, axis));
  const inner = size(x.shape.slice(axis + 1));
  const shape = x.shape.slice();
  shape[axis] = len;
  const y = arr(shape);
  for (let o = 0; o < outer; o++)
    for (let a = 0; a < len; a++)
      for (let i = 0; i < inner; i++) y.data[(o * len + a) * inner + i] = x.data[(o * x.shape[axis] + start + a) * inner + i];
  return y;
}

function transpose(x: Arr, perm: number[]): Arr {
  const shape = perm.map((a) => x.shape[a]);
  const y = arr(shape);
  const inStrides = x.shape.map((_, i) => size(x.shape.slice(i + 1)));
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < y.data.length; o++) {
    let rem = o;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
    }
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += idx[d] * inStrides[perm[d]];
    y.data[o] = x.data[src];
  }
  return y;
}

function caffeLayer(l: LayerSpec, b: Arr[]): Arr[] {
  const x = b[0];
  const p = (name: string): P => (l[name] as P | undefined) ?? {};
  switch (l.type) {
    case 'Convolution':
      return [conv2d(l, x, false)];
    case 'Deconvolution':
      return [conv2d(l, x, true)];
    case 'Pooling':
      return [pooling(l, x)];
    case 'BatchNorm': {
      const q = p('batch_norm_param');
      const eps = q.eps ?? 1e-5;
      const C = x.shape[1];
      const inner = size(x.shape.slice(2));
      const mean = new Float64Array(C);
      const variance = new Float64Array(C);
      if (q.use_global_stats === false) {
        const cnt = x.shape[0] * inner;
        for (let i = 0; i < x.data.length; i++) mean[Math.floor(i / inner) % C] += x.data[i] / cnt;
        for (let i = 0; i < x.data.length; i++) variance[Math.floor(i / inner) % C] += (x.data[i] - mean[Math.floor(i / inner) % C]) ** 2 / cnt;
      } else {
        const f = blobValues(l, 2)[0];
        const s = f === 0 ? 0 : 1 / f;
        blobValues(l, 0).forEach((v, c) => (mean[c] = v * s));
        blobValues(l, 1).forEach((v, c) => (variance[c] = v * s));
      }
      const y = arr(x.shape.slice());
      for (let i = 0; i < x.data.length; i++) {
        const c = Math.floor(i / inner) % C;
        y.data[i] = (x.data[i] - mean[c]) / Math.sqrt(variance[c] + eps);
      }
      return [y];
    }
    case 'Scale':
    case 'Bias': {
      const q = p(l.type === 'Scale' ? 'scale_param' : 'bias_param');
      const axis = canon(q.axis ?? 1, x.shape.length);
      let dims: number[];
      let param: Float64Array;
      let next = 0;
      if (b.length === 2) {
        dims = b[1].shape;
        param = b[1].data;
      } else {
        const na = q.num_axes ?? 1;
        dims = na === -1 ? x.shape.slice(axis) : x.shape.slice(axis, axis + na);
        param = blobValues(l, next++);
      }
      if (l.type === 'Bias') return [alignedOp(x, axis, dims, param, (v, q2) => v + q2)];
      let y = alignedOp(x, axis, dims, param, (v, q2) => v * q2);
      if (q.bias_term) y = alignedOp(y, axis, dims, blobValues(l, next), (v, q2) => v + q2);
      return [y];
    }
    case 'ReLU': {
      const s = p('relu_param').negative_slope ?? 0;
      return [perElement(x, (v) => (v > 0 ? v : v * s))];
    }
    case 'PReLU': {
      const slope = blobValues(l, 0);
      const inner = size(x.shape.slice(2));
      const y = arr(x.shape.slice());
      x.data.forEach((v, i) => (y.data[i] = v > 0 ? v : v * slope[slope.length === 1 ? 0 : Math.floor(i / inner) % x.shape[1]]));
      return [y];
    }
    case 'ELU': {
      const a = p('elu_param').alpha ?? 1;
      return [perElement(x, (v) => (v > 0 ? v : a * (Math.exp(v) - 1)))];
    }
    case 'Sigmoid':
      return [perElement(x, (v) => 1 / (1 + Math.exp(-v)))];
    case 'TanH':
      return [perElement(x, Math.tanh)];
    case 'AbsVal':
      return [perElement(x, Math.abs)];
    case 'BNLL':
      return [perElement(x, (v) => (v > 0 ? v + Math.log(1 + Math.exp(-v)) : Math.log(1 + Math.exp(v))))];
    case 'Power': {
      const q = p('power_param');
      return [perElement(x, (v) => ((q.shift ?? 0) + (q.scale ?? 1) * v) ** (q.power ?? 1))];
    }
    case 'Exp': {
      const q = p('exp_param');
      const base = (q.base ?? -1) === -1 ? Math.E : q.base;
      return [perElement(x, (v) => base ** ((q.shift ?? 0) + (q.scale ?? 1) * v))];
    }
    case 'Log': {
      const q = p('log_param');
      const ln = (q.base ?? -1) === -1 ? 1 : Math.log(q.base);
      return [perElement(x, (v) => Math.log((q.shift ?? 0) + (q.scale ?? 1) * v) / ln)];
    }
    case 'Clip': {
      const q = p('clip_param');
      return [perElement(x, (v) => Math.min(Math.max(v, q.min), q.max))];
    }
    case 'Swish': {
      const beta = p('swish_param').beta ?? 1;
      return [perElement(x, (v) => v / (1 + Math.exp(-beta * v)))];
    }
    case 'LRN': {
      const q = p('lrn_param');
      const n = q.local_size ?? 5;
      const C = x.shape[1];
      const inner = size(x.shape.slice(2));
      const y = arr(x.shape.slice());
      for (let i = 0; i < x.data.length; i++) {
        const c = Math.floor(i / inner) % C;
        const base = i - c * inner;
        let sq = 0;
        for (let k = Math.max(0, c - (n - 1) / 2); k <= Math.min(C - 1, c + (n - 1) / 2); k++) sq += x.data[base + k * inner] ** 2;
        y.data[i] = x.data[i] * ((q.k ?? 1) + ((q.alpha ?? 1) / n) * sq) ** -(q.beta ?? 0.75);
      }
      return [y];
    }
    case 'InnerProduct': {
      const q = p('inner_product_param');
      const axis = canon(q.axis ?? 1, x.shape.length);
      const M = size(x.shape.slice(0, axis));
      const K = size(x.shape.slice(axis));
      const Nn = q.num_output;
      const w = blobValues(l, 0);
      const bias = q.bias_term === false ? undefined : blobValues(l, 1);
      const y = arr([...x.shape.slice(0, axis), Nn]);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < Nn; n++) {
          let s = bias ? bias[n] : 0;
          for (let k = 0; k < K; k++) s += x.data[m * K + k] * (q.transpose ? w[k * Nn + n] : w[n * K + k]);
          y.data[m * Nn + n] = s;
        }
      return [y];
    }
    case 'Eltwise': {
      const q = p('eltwise_param');
      const op = q.operation ?? 'SUM';
      const y = arr(x.shape.slice());
      for (let i = 0; i < y.data.length; i++) {
        const vs = b.map((t) => t.data[i]);
        y.data[i] = op === 'MAX' ? Math.max(...vs) : op === 'PROD' ? vs.reduce((a, v) => a * v, 1) : vs.reduce((a, v, k) => a + v * (q.coeff ? q.coeff[k] : 1), 0);
      }
      return [y];
    }
    case 'Concat': {
      const q = p('concat_param');
      const axis = q.concat_dim ?? canon(q.axis ?? 1, x.shape.length);
      const shape = x.shape.slice();
      shape[axis] = b.reduce((a, t) => a + t.shape[axis], 0);
      const y = arr(shape);
      const outer = size(shape.slice(0, axis));
      const inner = size(shape.slice(axis + 1));
      let off = 0;
      for (const t of b) {
        for (let o = 0; o < outer; o++)
          for (let a = 0; a < t.shape[axis]; a++)
            for (let i = 0; i < inner; i++) y.data[(o * shape[axis] + off + a) * inner + i] = t.data[(o * t.shape[axis] + a) * inner + i];
        off += t.shape[axis];
      }
      return [y];
    }
    case 'Slice': {
      const q = p('slice_param');
      const axis = q.slice_dim ?? canon(q.axis ?? 1, x.shape.length);
      const tops = (l.top ?? []).length;
      const pts: number[] = q.slice_point ?? Array.from({ length: tops - 1 }, (_, i) => ((i + 1) * x.shape[axis]) / tops);
      const edges = [0, ...pts, x.shape[axis]];
      return edges.slice(0, -1).map((s, i) => axisCopy(x, axis, s, edges[i + 1] - s));
    }
    case 'Split':
      return (l.top ?? []).map(() => ({ shape: x.shape.slice(), data: x.data.slice() }));
    case 'Softmax': {
      const axis = canon(p('softmax_param').axis ?? 1, x.shape.length);
      const outer = size(x.shape.slice(0, axis));
      const n = x.shape[axis];
      const inner = size(x.shape.slice(axis + 1));
      const y = arr(x.shape.slice());
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          let mx = -Infinity;
          for (let a = 0; a < n; a++) mx = Math.max(mx, x.data[(o * n + a) * inner + i]);
          let s = 0;
          for (let a = 0; a < n; a++) s += Math.exp(x.data[(o * n + a) * inner + i] - mx);
          for (let a = 0; a < n; a++) y.data[(o * n + a) * inner + i] = Math.exp(x.data[(o * n + a) * inner + i] - mx) / s;
        }
      return [y];
    }
    case 'Flatten': {
      const q = p('flatten_param');
      const a = canon(q.axis ?? 1, x.shape.length);
      const e = canon(q.end_axis ?? -1, x.shape.length);
      return [{ shape: [...x.shape.slice(0, a), size(x.shape.slice(a, e + 1)), ...x.shape.slice(e + 1)], data: x.data.slice() }];
    }
    case 'Reshape': {
      const q = p('reshape_param');
      const dims: number[] = q.shape.dim;
      const start = (q.axis ?? 0) < 0 ? q.axis + x.shape.length + 1 : q.axis ?? 0;
      const end = (q.num_axes ?? -1) === -1 ? x.shape.length : start + q.num_axes;
      const mid = dims.map((d, i) => (d === 0 ? x.shape[start + i] : d));
      const shape = [...x.shape.slice(0, start), ...mid, ...x.shape.slice(end)];
      const known = shape.filter((d) => d !== -1).reduce((a, d) => a * d, 1);
      return [{ shape: shape.map((d) => (d === -1 ? x.data.length / known : d)), data: x.data.slice() }];
    }
    case 'Permute': {
      const order: number[] = p('permute_param').order.slice();
      for (let a = 0; a < x.shape.length; a++) if (!order.includes(a)) order.push(a);
      return [transpose(x, order)];
    }
    case 'Crop': {
      const q = p('crop_param');
      const axis = canon(q.axis ?? 2, x.shape.length);
      let y = x;
      for (let a = axis; a < x.shape.length; a++) {
        const offs: number[] = q.offset ?? [0];
        const o = offs.length === 1 ? offs[0] : offs[a - axis];
        y = axisCopy(y, a, o, b[1].shape[a]);
      }
      return [y];
    }
    case 'Dropout': {
      const q = p('dropout_param');
      return [q.scale_train === false ? perElement(x, (v) => v * (1 - (q.dropout_ratio ?? 0.5))) : { shape: x.shape.slice(), data: x.data.slice() }];
    }
    case 'Axpy': {
      const [a, xx, yy] = b;
      const inner = size(xx.shape.slice(2));
      const y = arr(xx.shape.slice());
      for (let i = 0; i < y.data.length; i++) y.data[i] = a.data[Math.floor(i / inner)] * xx.data[i] + yy.data[i];
      return [y];
    }
    case 'Upsample': {
      const s = p('upsample_param').scale ?? 1;
      const [N, C, H, W] = x.shape;
      const y = arr([N, C, H * s, W * s]);
      for (let nc = 0; nc < N * C; nc++)
        for (let h = 0; h < H * s; h++)
          for (let w = 0; w < W * s; w++) y.data[(nc * H * s + h) * W * s + w] = x.data[(nc * H + Math.floor(h / s)) * W + Math.floor(w / s)];
      return [y];
    }
    case 'Silence':
      return [];
    default:
      throw new Error(`naive evaluator: layer type ${l.type} not implemented`);
  }
}

interface CaffeRun {
  blobs: Map<string, Arr>;
  /** Caffe's net outputs: blobs produced and never consumed afterwards, sorted */
  outputs: string[];
  inputs: Map<string, number[]>;
}

function inTest(l: LayerSpec): boolean {
  const inc = (l.include as P[] | undefined) ?? [];
  const exc = (l.exclude as P[] | undefined) ?? [];
  if (inc.length) return inc.some((r) => r.phase === undefined || r.phase === 'TEST');
  return !exc.some((r) => r.phase === undefined || r.phase === 'TEST');
}

function netInputs(spec: NetSpec): Map<string, number[]> {
  const m = new Map<string, number[]>();
  (spec.input ?? []).forEach((n, i) => m.set(n, spec.input_shape ? spec.input_shape[i].dim : (spec.input_dim ?? []).slice(4 * i, 4 * i + 4)));
  for (const l of spec.layer) if (l.type === 'Input' && inTest(l)) (l.top ?? []).forEach((t, k) => m.set(t, (l.input_param as P).shape[Math.min(k, (l.input_param as P).shape.length - 1)].dim));
  return m;
}

function runCaffe(spec: NetSpec, feeds: Map<string, Arr>): CaffeRun {
  const blobs = new Map<string, Arr>(feeds);
  const available = new Set<string>(feeds.keys());
  for (const l of spec.layer) {
    if (!inTest(l) || l.type === 'Input') continue;
    const bottoms = (l.bottom ?? []).map((n) => {
      const v = blobs.get(n);
      if (!v) throw new Error(`naive evaluator: ${l.name} reads missing blob ${n}`);
      return v;
    });
    const tops = caffeLayer(l, bottoms);
    for (const n of l.bottom ?? []) available.delete(n);
    (l.top ?? []).forEach((t, k) => {
      blobs.set(t, tops[k]);
      available.add(t);
    });
  }
  return { blobs, outputs: [...available].sort(), inputs: netInputs(spec) };
}

// ============================================================ comparison helpers

/** err_i = |a − b| / max(|b_i|, 1 % of max|b|); the maximum over the tensor. */
function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let peak = 0;
  for (let i = 0; i < want.length; i++) peak = Math.max(peak, Math.abs(want[i]));
  const floor = Math.max(peak * 1e-2, 1e-30);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), floor);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

function randomFeeds(inputs: Map<string, number[]>, seed: number): Map<string, Arr> {
  const rng = new Rng(seed);
  const m = new Map<string, Arr>();
  for (const [n, s] of inputs) {
    const a = arr(s);
    for (let i = 0; i < a.data.length; i++) a.data[i] = Math.fround(rng.normal());
    m.set(n, a);
  }
  return m;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-caffe-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const CHECK_SCRIPT = path.join(__dirname, '..', '..', 'test', 'onnx', 'check_models.py');

function onnxCheck(files: string[]): Record<string, string | null> {
  const r = spawnSync('/usr/bin/python3', [CHECK_SCRIPT, ...files], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`check_models.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string | null>;
}

interface Converted {
  spec: NetSpec;
  model: Model;
  onnxFile: string;
}

function convertFixture(name: string, spec: NetSpec): Converted {
  const files = writeCaffeFiles(spec, tmp, name);
  const model = loadCaffeModel(files.prototxt, files.caffemodel);
  const onnxFile = path.join(tmp, `${name}.onnx`);
  saveModel(model, onnxFile);
  return { spec, model, onnxFile };
}

/** Run the converted model with both engines and compare every Caffe blob that is a value of the graph. */
async function expectMatchesCaffe(c: Converted, seed = 1): Promise<{ compared: number; worst: number }> {
  const inputs = netInputs(c.spec);
  const feeds = randomFeeds(inputs, seed);
  const caffe = runCaffe(c.spec, feeds);
  expect(c.model.graph.realInputs.map((v) => v.name).sort()).toEqual([...inputs.keys()].sort());
  expect(c.model.graph.outputs.map((o) => o.name)).toEqual(caffe.outputs);
  const produced = new Set(c.model.graph.nodes.flatMap((n) => n.outputs));
  const fetch = [...caffe.blobs.keys()].filter((n) => produced.has(n) && !c.model.graph.outputs.some((o) => o.name === n));
  const onnxFeeds: Record<string, Tensor> = {};
  for (const [n, a] of feeds) onnxFeeds[n] = new Tensor('float32', a.shape, Float32Array.from(a.data));
  const ref = new ReferenceEngine(c.model).runSync(onnxFeeds, { fetch });
  const ort = await OrtEngine.create(c.model, { fetchable: fetch });
  const fromOrt = await ort.run(onnxFeeds, { fetch });
  await ort.dispose();
  let worst = 0;
  let compared = 0;
  for (const name of [...c.model.graph.outputs.map((o) => o.name), ...fetch]) {
    const want = caffe.blobs.get(name) as Arr;
    for (const [engine, got] of [['reference', ref[name]], ['ort', fromOrt[name]]] as const) {
      expect({ engine, name, dims: got.dims }).toEqual({ engine, name, dims: want.shape });
      const e = maxRelErr(got.array as Float32Array, want.data);
      if (!(e <= 1e-4)) throw new Error(`${engine}: blob '${name}' differs from Caffe: max relative error ${e}`);
      worst = Math.max(worst, e);
    }
    compared++;
  }
  return { compared, worst };
}

// ============================================================ tests

describe('Caffe fixtures convert to ONNX models that compute what Caffe computes', () => {
  const converted = new Map<string, Converted>();
  beforeAll(() => {
    for (const [name, make] of Object.entries(CAFFE_FIXTURES)) converted.set(name, convertFixture(name, make()));
  });

  it.each(Object.keys(CAFFE_FIXTURES))('%s: reference engine and onnxruntime match the naive Caffe evaluator (max rel err ≤ 1e-4)', async (name) => {
    const c = converted.get(name) as Converted;
    const r = await expectMatchesCaffe(c);
    expect(r.compared).toBeGreaterThan(name === 'all_layers' ? 50 : 5);
  });

  it('the converted models pass onnx.checker (full_check)', () => {
    const results = onnxCheck([...converted.values()].map((c) => c.onnxFile));
    for (const [file, err] of Object.entries(results)) expect({ file, err }).toEqual({ file, err: null });
    expect(Object.keys(results)).toHaveLength(converted.size);
  });

  it('uses Caffe names: nodes = layer names, values = top names, in-place versions renamed', () => {
    const { model } = converted.get('resnet') as Converted;
    const names = model.graph.nodes.map((n) => n.name);
    expect(names).toContain('conv1');
    expect(names).toContain('res2a');
    expect(new Set(names).size).toBe(names.length);
    // conv1 → bn (in place) → scale (folded) → relu (in place): the last version is 'conv1'
    const relu = model.graph.nodes.find((n) => n.name === 'conv1_relu');
    expect(relu?.outputs).toEqual(['conv1']);
    expect(model.graph.nodes.find((n) => n.name === 'conv1')?.outputs).toEqual(['conv1_conv1']);
    expect(model.graph.inputs.map((v) => v.name)).toEqual(['data']);
  });

  it('folds Scale into the BatchNorm before it (no Mul left in the Caffe BN+Scale nets)', () => {
    for (const name of ['mobilenet', 'resnet']) {
      const { model, spec } = converted.get(name) as Converted;
      const types = model.graph.nodes.map((n) => n.opType);
      expect(types).not.toContain('Mul');
      expect(types.filter((t) => t === 'BatchNormalization')).toHaveLength(spec.layer.filter((l) => l.type === 'BatchNorm').length);
    }
    const all = (converted.get('all_layers') as Converted).model;
    expect(all.graph.nodes.find((n) => n.name === 'sc1')).toBeUndefined();
    expect(all.graph.nodes.find((n) => n.name === 'scale_hw')?.opType).toBe('Mul');
  });

  it('readCaffeInputs gives the graph inputs from the prototxt alone', () => {
    for (const name of Object.keys(CAFFE_FIXTURES)) {
      const { model } = converted.get(name) as Converted;
      const want = model.graph.realInputs.map((v) => ({ name: v.name, shape: v.type?.shape }));
      expect(readCaffeInputs(path.join(tmp, `${name}.prototxt`))).toEqual(want);
    }
  });

  it('mobilenet keeps depthwise convolutions as grouped Conv nodes', () => {
    const { model } = converted.get('mobilenet') as Converted;
    const dw = model.graph.nodes.find((n) => n.name === 'conv2_dw');
    expect(dw?.opType).toBe('Conv');
    expect(dw?.int('group')).toBe(16);
  });

  it('drops layers excluded from the TEST phase and Dropout', () => {
    const { model } = converted.get('all_layers') as Converted;
    const names = new Set(model.graph.nodes.map((n) => n.name));
    for (const n of ['train_data', 'accuracy', 'loss', 'drop1', 'silence']) expect(names.has(n)).toBe(false);
    expect(model.graph.nodes.find((n) => n.name === 'drop2')?.opType).toBe('Mul'); // scale_train: false
  });
});

describe('Caffe pooling output sizes and windows', () => {
  it('computes the output sizes of well-known Caffe nets', () => {
    expect(caffePoolOutput(55, 3, 2, 0, true)).toBe(27); // AlexNet pool1
    expect(caffePoolOutput(112, 3, 2, 0, true)).toBe(56); // GoogLeNet pool1 (floor would give 55)
    expect(caffePoolOutput(7, 3, 2, 0, true)).toBe(3);
    expect(caffePoolOutput(6, 3, 2, 0, true)).toBe(3); // ceil: the last window covers 4..5 only
    expect(caffePoolOutput(5, 2, 2, 1, true)).toBe(3); // ceil gives 4; its last window would start in the padding
    expect(caffePoolOutput(5, 2, 2, 0, true, true)).toBe(3); // the clip applies when the other axis is padded
  });

  it('matches Caffe for every small MAX/AVE × CEIL/FLOOR × kernel/stride/pad combination', async () => {
    const sizes: [string, number, number][] = [
      ['x5', 5, 7],
      ['x6', 6, 9],
      ['x9', 9, 8],
    ];
    const layers: LayerSpec[] = [];
    for (const [input, H, W] of sizes)
      for (const pool of ['MAX', 'AVE'])
        for (const round of ['CEIL', 'FLOOR'])
          for (const k of [2, 3])
            for (const s of [1, 2, 3])
              for (const pad of [0, 1, 2]) {
                if (pad >= k) continue;
                // skip what Caffe itself computes as empty windows (stride > kernel without padding)
                const out = (n: number): number => caffePoolOutput(n, k, s, pad, round === 'CEIL');
                if ((out(H) - 1) * s - pad >= H || (out(W) - 1) * s - pad >= W) continue;
                const name = `${input}_${pool}_${round}_k${k}s${s}p${pad}`;
                layers.push({ name, type: 'Pooling', bottom: [input], top: [name], pooling_param: { pool, kernel_size: k, stride: s, pad, round_mode: round } });
              }
    // rectangular windows and per-axis padding
    layers.push({ name: 'rect', type: 'Pooling', bottom: ['x9'], top: ['rect'], pooling_param: { pool: 'AVE', kernel_h: 3, kernel_w: 2, stride_h: 2, stride_w: 3, pad_h: 1, pad_w: 0 } });
    layers.push({ name: 'rect_max', type: 'Pooling', bottom: ['x6'], top: ['rect_max'], pooling_param: { pool: 'MAX', kernel_h: 2, kernel_w: 3, stride_h: 3, stride_w: 2, pad_h: 0, pad_w: 2 } });
    const spec: NetSpec = { name: 'pools', input: sizes.map((s) => s[0]), input_shape: sizes.map(([, H, W]) => ({ dim: [1, 2, H, W] })), layer: layers };
    const c = convertFixture('pools', spec);
    const r = await expectMatchesCaffe(c, 7);
    expect(r.compared).toBe(layers.length);
    expect(onnxCheck([c.onnxFile])[c.onnxFile]).toBeNull();
  });
});

describe('Caffe conversion errors', () => {
  /** The Accuracy example of the reference guide (hb_mapper checker), completed with Convolution2/3. */
  const REFERENCE_EXAMPLE = `
  layer {
    name: "data"
    type: "Input"
    top: "data"
    input_param { shape: { dim: 1 dim: 3 dim: 224 dim: 224 } }
  }
  layer {
    name: "Convolution1"
    type: "Convolution"
    bottom: "data"
    top: "Convolution1"
    convolution_param {
      num_output: 128
      bias_term: false
      pad: 0
      kernel_size: 1
      group: 1
      stride: 1
      weight_filler {
        type: "msra"
      }
    }
  }
  layer {
    name: "Convolution2"
    type: "Convolution"
    bottom: "Convolution1"
    top: "Convolution2"
    convolution_param { num_output: 64 bias_term: false kernel_size: 1 weight_filler { type: "msra" } }
  }
  layer {
    name: "Convolution3"
    type: "Convolution"
    bottom: "Convolution2"
    top: "Convolution3"
    convolution_param { num_output: 32 bias_term: false kernel_size: 1 weight_filler { type: "msra" } }
  }
  layer {
    name: "accuracy"
    type: "Accuracy"
    bottom: "Convolution3"
    top: "accuracy"
    include {
      phase: TEST
    }
  }
`;

  const referenceWeights = (): Uint8Array =>
    encodeCaffemodel({
      layer: [
        { name: 'Convolution1', type: 'Convolution', blobs: [{ shape: [128, 3, 1, 1], data: new Float32Array(384).fill(0.01) }] },
        { name: 'Convolution2', type: 'Convolution', blobs: [{ shape: [64, 128, 1, 1], data: new Float32Array(64 * 128).fill(0.01) }] },
        { name: 'Convolution3', type: 'Convolution', blobs: [{ shape: [32, 64, 1, 1], data: new Float32Array(32 * 64).fill(0.01) }] },
      ],
    });

  function caught(f: () => unknown): PtqError {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(PtqError);
      expect((e as PtqError).oneLine()).not.toMatch(/\n/);
      return e as PtqError;
    }
    throw new Error('expected a PtqError');
  }

  it("the reference's Accuracy example (TEST phase) gives the reference's message", () => {
    const e = caught(() => convertCaffe(REFERENCE_EXAMPLE, referenceWeights()));
    expect(e.message).toBe('Not support layer name=accuracy type=Accuracy');
    expect(e.code).toBe('E_CAFFE_UNSUPPORTED_LAYER');
  });

  it('the same net with the Accuracy layer in the TRAIN phase converts', () => {
    const m = convertCaffe(REFERENCE_EXAMPLE.replace('phase: TEST', 'phase: TRAIN'), referenceWeights());
    expect(m.graph.outputs.map((o) => o.name)).toEqual(['Convolution3']);
    expect(m.graph.outputs[0].type?.shape).toEqual([1, 32, 224, 224]);
  });

  it('an unknown field names the field and the prototxt line', () => {
    const text = REFERENCE_EXAMPLE.replace('group: 1', 'group: 1\n      fancy_fork_option: 3');
    const e = caught(() => convertCaffe(text, referenceWeights(), { prototxt: 'deploy.prototxt' }));
    const line = text.split('\n').findIndex((l) => l.includes('fancy_fork_option')) + 1;
    expect(e.message).toBe(`prototxt 'deploy.prototxt' line ${line}: unknown field 'fancy_fork_option' in ConvolutionParameter (in layer 'Convolution1')`);
  });

  it('an unknown layer parameter message from a fork is an unknown field too', () => {
    const text = 'layer { name: "det" type: "DetectionOutput"\n detection_output_param { num_classes: 21 } }';
    expect(caught(() => convertCaffe(text, new Uint8Array())).message).toMatch(/line 2: unknown field 'detection_output_param' in LayerParameter \(in layer 'det'\)/);
  });

  const tiny = (conv: Record<string, unknown>, blobs: { shape: number[]; data: Float32Array }[]): [string, Uint8Array] => {
    const spec: NetSpec = {
      layer: [
        { name: 'data', type: 'Input', top: ['data'], input_param: { shape: [{ dim: [1, 2, 4, 4] }] } },
        { name: 'conv', type: 'Convolution', bottom: ['data'], top: ['conv'], convolution_param: conv, blobs },
      ],
    };
    return [writePrototxt(spec), encodeCaffemodel(spec)];
  };

  it('missing or mis-shaped weights name the layer', () => {
    const [text, bytes] = tiny({ num_output: 3, kernel_size: [3] }, []);
    expect(caught(() => convertCaffe(text, bytes)).message).toMatch(/^layer 'conv' \(Convolution, prototxt '<prototxt>' line \d+\): needs a weight blob/);
    const [text2, bytes2] = tiny({ num_output: 3, kernel_size: [3], bias_term: false }, [{ shape: [3, 2, 2, 2], data: new Float32Array(24) }]);
    expect(caught(() => convertCaffe(text2, bytes2)).message).toMatch(/weight blob has shape \[3,2,2,2\], the prototxt implies \[3,2,3,3\]/);
  });

  it('a bottom nobody produces, and a label read in TEST, are errors naming the layer', () => {
    const text = 'input: "data" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\nlayer { name: "r" type: "ReLU" bottom: "nope" top: "r" }';
    expect(caught(() => convertCaffe(text, new Uint8Array())).message).toMatch(/layer 'r' \(ReLU, prototxt '<prototxt>' line 2\) reads blob 'nope'/);
    const withLabel = 'layer { name: "d" type: "MemoryData" top: "data" top: "label" memory_data_param { batch_size: 1 channels: 1 height: 2 width: 2 } }\nlayer { name: "r" type: "Power" bottom: "label" top: "r" }';
    expect(caught(() => convertCaffe(withLabel, new Uint8Array())).message).toMatch(/reads 'label', the label output of data layer 'd'/);
  });

  it('a Data layer (shape only known from its database) asks for an Input layer', () => {
    const text = 'layer { name: "d" type: "Data" top: "data" data_param { source: "x" batch_size: 4 } }';
    const e = caught(() => convertCaffe(text, new Uint8Array()));
    expect(e.message).toMatch(/layer 'd' \(Data, .*\): its data shape comes from the database/);
    expect(e.fix).toMatch(/Input layer/);
  });

  it('pooling whose last window lies outside the input is refused rather than approximated', () => {
    const text = 'input: "x" input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }\nlayer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: MAX kernel_size: 1 stride: 3 } }';
    expect(caught(() => convertCaffe(text, new Uint8Array())).message).toMatch(/lies entirely outside the input/);
  });
});
