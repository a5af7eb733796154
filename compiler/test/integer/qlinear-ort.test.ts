/**
 * Acceptance test of the integer path: randomized, seeded QLinearConv / QLinearMatMul /
 * ConvInteger / MatMulInteger / QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear
 * cases, each a node of a tiny ONNX model, run by onnxruntime-node and by our reference
 * engine; every output element must be EXACTLY equal.
 *
 * Many cases share one model (independent nodes side by side) so that a handful of sessions
 * cover well over a thousand cases. Cases include constructed .5 ties (power-of-two scales
 * times a small odd factor, so fround(acc)·M lands exactly on k + 0.5 inside the output
 * range), per-channel weight scales, padding / auto_pad, groups and depthwise, strides,
 * dilations, 1-D/2-D/3-D, int8 and uint8 activations, bias present/absent, weights as
 * initializers (prepacked / symmetric paths in onnxruntime) and as graph inputs, batch > 1
 * and broadcasting for MatMul, and requantisation probes whose accumulators are chosen where
 * plausible variants of the formula would give another integer.
 *
 * onnxruntime restrictions the generator respects (it rejects or computes otherwise):
 *  - int8 activations only with int8 weights (uint8 activations take uint8 or int8 weights);
 *  - QLinearConv per-channel weight zero points must all be equal;
 *  - QLinearMatMul a_scale / a_zero_point per tensor only;
 *  - no dilations with auto_pad SAME_UPPER / SAME_LOWER;
 *  - uint8 × int8 products on AVX2 without VNNI go through VPMADDUBSW, which saturates the
 *    sum of two adjacent products to int16, so full-range int8 weights with uint8
 *    activations differ from exact int32 arithmetic (measured: only the uint8×int8 cases
 *    mismatch). Those cases keep |w| <= 63 (255·63·2 < 32767), the "reduce_range" weights
 *    onnxruntime's own quantizer uses on such CPUs. int8 × int8 (the nx-ptq contract) and
 *    uint8 × uint8 are exact over the full range and are tested so.
 */
import { Attribute, Graph, Model, Node, ValueInfo } from '../../src/onnx/ir';
import { encodeModel } from '../../src/onnx/encode';
import { Tensor } from '../../src/onnx/tensor';
import { DType } from '../../src/onnx/dtype';
import { ReferenceEngine } from '../../src/runtime/reference';

/* eslint-disable @typescript-eslint/no-explicit-any -- onnxruntime-node is used untyped here */

/** Node's real require (jest runs modules in a vm context, which breaks onnxruntime's instanceof checks). */
function loadOrt(): any {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vm = require('vm') as typeof import('vm');
  const proc = vm.runInThisContext('process') as { getBuiltinModule?: (id: string) => unknown };
  const mod = proc.getBuiltinModule?.('module') as typeof import('module') | undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return mod ? mod.createRequire(__filename)('onnxruntime-node') : require('onnxruntime-node');
}
const ort = loadOrt();

/** mulberry32 */
class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

type Q8 = 'int8' | 'uint8';
const RANGE: Record<Q8, [number, number]> = { int8: [-128, 127], uint8: [0, 255] };
const clampTo = (v: number, t: Q8) => Math.min(RANGE[t][1], Math.max(RANGE[t][0], v));
const f32 = Math.fround;

/** One case = one node plus its constant and fed tensors. */
interface Case {
  op: 'QLinearConv' | 'QLinearMatMul' | 'ConvInteger' | 'MatMulInteger' | 'QuantizeLinear' | 'DequantizeLinear' | 'DynamicQuantizeLinear';
  label: string;
  /** node inputs in operator order: a tensor, or undefined for an absent optional input */
  inputs: (Tensor | undefined)[];
  /** indices of `inputs` fed as graph inputs (the rest become initializers) */
  fed: Set<number>;
  attrs: Record<string, Attribute>;
  outDtype: DType;
  /** types of further outputs (DynamicQuantizeLinear's scale and zero point) */
  moreOutputs?: DType[];
  /** elements whose exact acc·M is k + 0.5 with both roundings inside the output range */
  ties: number;
}

const ints = (v: number[]): Attribute => ({ type: 'ints', value: v });
const str = (v: string): Attribute => ({ type: 'string', value: v });
const int = (v: number): Attribute => ({ type: 'int', value: v });

function q8(dtype: Q8, dims: number[], f: (i: number) => number): Tensor {
  const n = dims.reduce((p, q) => p * q, 1);
  const a = dtype === 'int8' ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = clampTo(f(i), dtype);
  return new Tensor(dtype, dims, a);
}

const f32t = (dims: number[], v: number[]) => new Tensor('float32', dims, Float32Array.from(v));

/**
 * Scales: 'tie' cases use x_scale = 2^-a, w_scale[c] = p_c·2^-b, y_scale = 2^-c so that
 * M = p_c·2^-e exactly (p odd, e = 1..3): fround(acc)·M is k + 0.5 for a fraction of the
 * accumulators. 'random' cases use arbitrary float32 scales sized for outputs of ±~100.
 */
interface ScalePlan {
  xs: number;
  ws: number[];
  ys: number;
  /** exact multipliers (tie mode), to count ties independently of the kernel */
  exactM?: number[];
}

function tieScales(r: Prng, M: number, perChannel: boolean): ScalePlan {
  const a = r.int(0, 8);
  const e = r.int(1, 3);
  const ps = Array.from({ length: perChannel ? M : 1 }, () => r.pick([1, 1, 3, 5]));
  const b = r.int(0, 8);
  // M = 2^-a · p·2^-b / 2^(e-a-b) = p · 2^-e, exact in float32 at every step
  return { xs: 2 ** -a, ws: ps.map((p) => p * 2 ** -b), ys: 2 ** (e - a - b), exactM: ps.map((p) => p * 2 ** -e) };
}

function randomScales(r: Prng, M: number, perChannel: boolean, accStd: number): ScalePlan {
  const xs = f32(0.002 + r.next() * 0.05);
  const ws = Array.from({ length: perChannel ? M : 1 }, () => f32(0.001 + r.next() * 0.02));
  const mean = ws.reduce((p, q) => p + q, 0) / ws.length;
  const ys = f32((xs * mean * Math.max(1, accStd)) / (30 + r.next() * 60));
  return { xs, ws, ys };
}

/**
 * Whether the exact acc·M is a tie that decides the output: k + 0.5 with both neighbours
 * k + yz and k + 1 + yz inside the output range (so the clamp does not hide the rounding).
 */
function isLiveTie(v: number, yz: number, t: Q8): boolean {
  if (Math.abs(v - Math.trunc(v)) !== 0.5) return false;
  return Math.floor(v) + yz >= RANGE[t][0] && Math.ceil(v) + yz <= RANGE[t][1];
}

/** Count live ties among plain-JS accumulators (bias included). */
function countTies(acc: number[], chanOf: (i: number) => number, exactM: number[], yz: number, t: Q8): number {
  let n = 0;
  for (let i = 0; i < acc.length; i++) if (isLiveTie(acc[i] * exactM[exactM.length > 1 ? chanOf(i) : 0], yz, t)) n++;
  return n;
}

/** Value spreads for tie cases, small enough that |acc·M| stays around 40 (outputs rarely clamp). */
function tieSpreads(r: Prng, K: number, maxM: number): [number, number] {
  let xs = r.int(1, 8);
  let ws = r.int(1, 4);
  while ((xs > 1 || ws > 1) && Math.sqrt(K) * (xs / 1.7) * (ws / 1.7) * maxM > 40) {
    if (xs >= ws && xs > 1) xs--;
    else ws--;
  }
  return [xs, ws];
}

/** Output zero point: anywhere for random cases, mid-range for tie cases. */
function outZp(r: Prng, t: Q8, tie: boolean): number {
  const mid = t === 'uint8' ? 128 : 0;
  return tie ? mid + r.int(-20, 20) : r.int(RANGE[t][0], RANGE[t][1]);
}

// ---------------------------------------------------------------- convolution cases

interface ConvShape {
  N: number;
  C: number;
  M: number;
  group: number;
  spatial: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads?: number[];
  autoPad?: string;
}

function convShape(r: Prng): ConvShape {
  const rank = r.pick([1, 2, 2, 2, 2, 3]);
  const kind = r.pick(['plain', 'plain', 'group', 'depthwise', 'depthwise', 'pointwise']);
  let group = 1;
  let Cg = r.int(1, 4);
  let Mg = r.int(1, 4);
  if (kind === 'group') {
    group = r.int(2, 3);
  } else if (kind === 'depthwise') {
    group = r.int(2, 6);
    Cg = 1;
    Mg = r.pick([1, 1, 2]);
  }
  const kernel = Array.from({ length: rank }, () => (kind === 'pointwise' ? 1 : r.int(1, rank === 3 ? 2 : 3)));
  const strides = Array.from({ length: rank }, () => r.pick([1, 1, 2, 3]));
  const dilations = Array.from({ length: rank }, () => r.pick([1, 1, 2]));
  const maxSide = rank === 3 ? 5 : rank === 2 ? 7 : 12;
  const spatial = kernel.map((k, i) => r.int((k - 1) * dilations[i] + 1, Math.max((k - 1) * dilations[i] + 1, maxSide)));
  const s: ConvShape = { N: r.pick([1, 1, 2]), C: Cg * group, M: Mg * group, group, spatial, kernel, strides, dilations };
  const padMode = r.pick(['none', 'explicit', 'explicit', 'same_upper', 'same_lower', 'valid']);
  if (padMode === 'explicit') s.pads = [...kernel, ...kernel].map((k) => r.int(0, k - 1 + (k > 1 ? 1 : 0)));
  else if (padMode === 'same_upper' || padMode === 'same_lower') {
    s.autoPad = padMode === 'same_upper' ? 'SAME_UPPER' : 'SAME_LOWER';
    s.dilations.fill(1); // onnxruntime: "Dilation not supported for AutoPadType::SAME_UPPER or SAME_LOWER"
  }
  else if (padMode === 'valid') s.autoPad = 'VALID';
  if (kind === 'pointwise' && r.chance(0.5)) {
    s.strides.fill(1);
    s.pads = undefined;
    s.autoPad = undefined;
  }
  return s;
}

function convAttrs(s: ConvShape, r: Prng): Record<string, Attribute> {
  const a: Record<string, Attribute> = {};
  if (r.chance(0.5)) a.kernel_shape = ints(s.kernel);
  if (s.strides.some((v) => v !== 1) || r.chance(0.3)) a.strides = ints(s.strides);
  if (s.dilations.some((v) => v !== 1) || r.chance(0.3)) a.dilations = ints(s.dilations);
  if (s.pads) a.pads = ints(s.pads);
  if (s.autoPad) a.auto_pad = str(s.autoPad);
  if (s.group !== 1 || r.chance(0.3)) a.group = int(s.group);
  return a;
}

/** Plain-JS convolution accumulators (independent of kernels/iconv) for tie counting. */
function naiveConvAcc(s: ConvShape, x: Tensor, xz: number, w: Tensor, wz: number, bias?: Int32Array): { acc: number[]; P: number } {
  const r = s.spatial.length;
  const outSp: number[] = [];
  const pb: number[] = [];
  for (let i = 0; i < r; i++) {
    const ek = (s.kernel[i] - 1) * s.dilations[i] + 1;
    if (s.autoPad === 'SAME_UPPER' || s.autoPad === 'SAME_LOWER') {
      const o = Math.ceil(s.spatial[i] / s.strides[i]);
      const tot = Math.max(0, (o - 1) * s.strides[i] + ek - s.spatial[i]);
      outSp.push(o);
      pb.push(s.autoPad === 'SAME_UPPER' ? Math.floor(tot / 2) : tot - Math.floor(tot / 2));
    } else {
      const b = s.pads ? s.pads[i] : 0;
      const e = s.pads ? s.pads[i + r] : 0;
      outSp.push(Math.floor((s.spatial[i] + b + e - ek) / s.strides[i]) + 1);
      pb.push(b);
    }
  }
  const P = outSp.reduce((p, q) => p * q, 1);
  const ks = s.kernel.reduce((p, q) => p * q, 1);
  const inImg = s.spatial.reduce((p, q) => p * q, 1);
  const Cg = s.C / s.group;
  const Mg = s.M / s.group;
  const xd = x.data as Int8Array;
  const wd = w.data as Int8Array;
  const acc: number[] = [];
  for (let n = 0; n < s.N; n++) {
    for (let m = 0; m < s.M; m++) {
      const g = Math.floor(m / Mg);
      for (let p = 0; p < P; p++) {
        let sum = bias ? bias[m] : 0;
        for (let c = 0; c < Cg; c++) {
          for (let k = 0; k < ks; k++) {
            let off = 0;
            let inside = true;
            let pr = p;
            let kr = k;
            let mul = 1;
            for (let d = r - 1; d >= 0; d--) {
              const o = pr % outSp[d];
              pr = Math.floor(pr / outSp[d]);
              const kk = kr % s.kernel[d];
              kr = Math.floor(kr / s.kernel[d]);
              const xi = o * s.strides[d] - pb[d] + kk * s.dilations[d];
              if (xi < 0 || xi >= s.spatial[d]) inside = false;
              off += xi * mul;
              mul *= s.spatial[d];
            }
            if (!inside) continue;
            const xv = xd[(n * s.C + g * Cg + c) * inImg + off] - xz;
            const wv = wd[(m * Cg + c) * ks + k] - wz;
            sum += xv * wv;
          }
        }
        acc.push(sum);
      }
    }
  }
  return { acc, P };
}

function convCase(r: Prng, id: number, opts: { integerOnly?: boolean; fullRangeWeights?: boolean } = {}): Case {
  const s = convShape(r);
  const act: Q8 = r.pick(['uint8', 'uint8', 'int8']);
  const wt: Q8 = act === 'int8' ? 'int8' : r.pick(['uint8', 'int8', 'int8']);
  const tie = !opts.integerOnly && r.chance(0.5);
  const Cg = s.C / s.group;
  const Kd = Cg * s.kernel.reduce((p, q) => p * q, 1);
  const perChannel = r.chance(0.6);
  const tieSc = tie ? tieScales(r, s.M, perChannel) : undefined;
  const [xTie, wTie] = tieSc ? tieSpreads(r, Kd, Math.max(...(tieSc.exactM as number[]))) : [0, 0];
  const xDims = [s.N, s.C, ...s.spatial];
  const wDims = [s.M, Cg, ...s.kernel];
  // zero points and value spreads
  const [alo, ahi] = RANGE[act];
  const xz = tie ? r.int(alo + 8, ahi - 8) : r.int(alo, ahi);
  const xSpread = tie ? xTie : 255;
  const x = q8(act, xDims, () => (tie ? xz + r.int(-xSpread, xSpread) : r.int(alo, ahi)));
  const wSym = wt === 'int8' && r.chance(0.7);
  const wz = wSym ? 0 : wt === 'int8' ? r.int(-20, 20) : r.int(0, 255);
  const wLimit = wt === 'int8' && act === 'uint8' && !opts.fullRangeWeights ? 63 : 127;
  const wSpread = tie ? wTie : wLimit;
  const w = q8(wt, wDims, () => {
    if (tie) return wz + r.int(-wSpread, wSpread);
    if (wt === 'int8') return act === 'int8' ? r.int(-128, 127) : r.int(-wLimit, wLimit);
    return r.int(0, 255);
  });
  const xStd = tie ? xSpread / 1.7 : act === 'uint8' ? 100 : 74;
  const wStd = tie ? wSpread / 1.7 : wt === 'int8' ? wLimit / 1.7 : 74;
  const accStd = Math.sqrt(Kd) * xStd * wStd;
  const sc = tieSc ?? randomScales(r, s.M, perChannel, accStd);
  const hasBias = !opts.integerOnly && r.chance(0.6);
  const bias = hasBias ? Int32Array.from({ length: s.M }, () => r.int(-Math.ceil(2 * accStd), Math.ceil(2 * accStd))) : undefined;
  const weightFed = r.chance(0.25);
  const attrs = convAttrs(s, r);
  const wzT = perChannel && r.chance(0.5) ? q8(wt, [s.M], () => wz) : q8(wt, [], () => wz);
  if (opts.integerOnly) {
    const inputs = [x, w, q8(act, [], () => xz), q8(wt, [], () => wz)];
    return { op: 'ConvInteger', label: `convint${id}`, inputs, fed: new Set(weightFed ? [0, 1] : [0]), attrs, outDtype: 'int32', ties: 0 };
  }
  const yz = outZp(r, act, tie);
  let ties = 0;
  if (sc.exactM) {
    const { acc, P } = naiveConvAcc(s, x, xz, w, wz, bias);
    ties = countTies(acc, (i) => Math.floor(i / P) % s.M, sc.exactM, yz, act);
  }
  const inputs: (Tensor | undefined)[] = [
    x,
    f32t([], [sc.xs]),
    q8(act, [], () => xz),
    w,
    sc.ws.length > 1 ? f32t([s.M], sc.ws) : f32t(r.chance(0.5) ? [1] : [], sc.ws),
    wzT,
    f32t([], [sc.ys]),
    q8(act, [], () => yz),
    bias ? new Tensor('int32', [s.M], bias) : undefined,
  ];
  return { op: 'QLinearConv', label: `qconv${id}`, inputs, fed: new Set(weightFed ? [0, 3] : [0]), attrs, outDtype: act, ties };
}

// ---------------------------------------------------------------- matmul cases

function matmulShapes(r: Prng): { a: number[]; b: number[] } {
  const M = r.int(1, 6);
  const K = r.int(1, 24);
  const N = r.int(1, 9);
  switch (r.pick(['2d', '2d', 'a3b2', 'a3b3', 'bcast4', 'a2b3', 'vec'])) {
    case 'a3b2':
      return { a: [r.int(2, 3), M, K], b: [K, N] };
    case 'a3b3': {
      const B = r.int(2, 3);
      return { a: [B, M, K], b: [B, K, N] };
    }
    case 'bcast4':
      return { a: [2, 1, M, K], b: [r.int(2, 3), K, N] };
    case 'a2b3':
      return { a: [M, K], b: [r.int(2, 3), K, N] };
    case 'vec':
      return r.chance(0.5) ? { a: [K], b: [K, N] } : { a: [r.int(2, 3), M, K], b: [K] };
    default:
      return { a: [M, K], b: [K, N] };
  }
}

function matmulCase(r: Prng, id: number, opts: { integerOnly?: boolean; fullRangeWeights?: boolean } = {}): Case {
  const { a: aDims, b: bDims } = matmulShapes(r);
  const act: Q8 = r.pick(['uint8', 'uint8', 'int8']);
  const wt: Q8 = act === 'int8' ? 'int8' : r.pick(['uint8', 'int8']);
  const tie = !opts.integerOnly && r.chance(0.5);
  const K = aDims[aDims.length - 1];
  const N = bDims.length === 1 ? 1 : bDims[bDims.length - 1];
  // per-column parameters: [N] for 2-D b, [..., 1, N] for N-D b
  const perCol = bDims.length >= 2 && r.chance(0.5);
  const colDims = bDims.length === 2 ? (r.chance(0.5) ? [N] : [1, N]) : [...bDims.slice(0, -2), 1, N];
  const nParams = perCol ? colDims.reduce((p, q) => p * q, 1) : 1;
  const tieSc = tie ? tieScales(r, nParams, perCol) : undefined;
  const [aTie, bTie] = tieSc ? tieSpreads(r, K, Math.max(...(tieSc.exactM as number[]))) : [0, 0];
  const [alo, ahi] = RANGE[act];
  const az = tie ? r.int(alo + 8, ahi - 8) : r.int(alo, ahi);
  const aSpread = tie ? aTie : 255;
  const a = q8(act, aDims, () => (tie ? az + r.int(-aSpread, aSpread) : r.int(alo, ahi)));
  const bzs = Array.from({ length: nParams }, () => (wt === 'int8' ? (r.chance(0.6) ? 0 : r.int(-20, 20)) : r.int(0, 255)));
  const wLimit = wt === 'int8' && act === 'uint8' && !opts.fullRangeWeights ? 63 : 127;
  const bSpread = tie ? bTie : wLimit;
  const bStrideBatch = K * N;
  const b = q8(wt, bDims, (i) => {
    const col = i % N;
    const batch = Math.floor(i / bStrideBatch);
    const z = bzs[perCol ? (nParams === N ? col : batch * N + col) : 0];
    if (tie) return z + r.int(-bSpread, bSpread);
    if (wt === 'int8') return act === 'int8' ? r.int(-128, 127) : r.int(-wLimit, wLimit);
    return r.int(0, 255);
  });
  const xStd = tie ? aSpread / 1.7 : act === 'uint8' ? 100 : 74;
  const wStd = tie ? bSpread / 1.7 : wt === 'int8' ? wLimit / 1.7 : 74;
  const accStd = Math.sqrt(K) * xStd * wStd;
  const bFed = r.chance(0.3);
  if (opts.integerOnly) {
    const bzT = perCol && bDims.length === 2 ? q8(wt, [N], (i) => bzs[i]) : q8(wt, [], () => bzs[0]);
    const inputs = [a, b, q8(act, [], () => az), bzT];
    return { op: 'MatMulInteger', label: `mmint${id}`, inputs, fed: new Set(bFed ? [0, 1] : [0]), attrs: {}, outDtype: 'int32', ties: 0 };
  }
  const sc = tieSc ?? randomScales(r, nParams, perCol, accStd);
  const yz = outZp(r, act, tie);
  let ties = 0;
  if (sc.exactM) ties = countMatmulTies(aDims, bDims, a, az, b, bzs, perCol, nParams, sc.exactM, yz, act);
  const inputs: (Tensor | undefined)[] = [
    a,
    f32t([], [sc.xs]),
    q8(act, [], () => az),
    b,
    perCol ? f32t(colDims, sc.ws) : f32t([], sc.ws),
    perCol ? q8(wt, colDims, (i) => bzs[i]) : q8(wt, [], () => bzs[0]),
    f32t([], [sc.ys]),
    q8(act, [], () => yz),
  ];
  return { op: 'QLinearMatMul', label: `qmm${id}`, inputs, fed: new Set(bFed ? [0, 3] : [0]), attrs: {}, outDtype: act, ties };
}

/** Plain-JS batched matmul accumulators for tie counting (numpy broadcasting of batch dims). */
function countMatmulTies(aDims: number[], bDims: number[], a: Tensor, az: number, b: Tensor, bzs: number[], perCol: boolean, nParams: number, exactM: number[], yz: number, t: Q8): number {
  const aa = aDims.length === 1 ? [1, aDims[0]] : aDims;
  const bb = bDims.length === 1 ? [bDims[0], 1] : bDims;
  const M = aa[aa.length - 2];
  const K = aa[aa.length - 1];
  const N = bb[bb.length - 1];
  const ab = aa.slice(0, -2);
  const bbat = bb.slice(0, -2);
  const rank = Math.max(ab.length, bbat.length);
  const pa = [...new Array(rank - ab.length).fill(1), ...ab];
  const pb = [...new Array(rank - bbat.length).fill(1), ...bbat];
  const batch = pa.map((x, i) => Math.max(x, pb[i]));
  const nb = batch.reduce((p, q) => p * q, 1);
  const ad = a.data as Int8Array;
  const bd = b.data as Int8Array;
  let ties = 0;
  for (let i = 0; i < nb; i++) {
    let rem = i;
    let ia = 0;
    let ib = 0;
    let ma = 1;
    let mb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
      ia += (pa[d] === 1 ? 0 : c) * ma;
      ib += (pb[d] === 1 ? 0 : c) * mb;
      ma *= pa[d];
      mb *= pb[d];
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const p = perCol ? (nParams === N ? n : ib * N + n) : 0;
        let s = 0;
        for (let k = 0; k < K; k++) s += (ad[ia * M * K + m * K + k] - az) * (bd[ib * K * N + k * N + n] - bzs[p]);
        if (isLiveTie(s * exactM[exactM.length > 1 ? p : 0], yz, t)) ties++;
      }
    }
  }
  return ties;
}

// ---------------------------------------------------------------- requantisation probes

/** RNE written independently of kernels/requant.ts (floor + comparison of the fraction). */
function rne(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** Candidate requantisation formulas; index 0 is the contract, the others are plausible variants. */
const FORMULAS: ((acc: number, sx: number, sw: number, sy: number) => number)[] = [
  (acc, sx, sw, sy) => rne(f32(f32(acc) * f32(f32(sx * sw) / sy))),
  (acc, sx, sw, sy) => rne(f32(f32(acc) * f32(sx * f32(sw / sy)))), // M = sx · (sw / sy)
  (acc, sx, sw, sy) => rne(f32(f32(acc) * ((sx * sw) / sy))), // M kept in double
  (acc, sx, sw, sy) => rne(f32(acc * f32(f32(sx * sw) / sy))), // acc not rounded to float32 first
  (acc, sx, sw, sy) => rne(f32(acc) * f32(f32(sx * sw) / sy)), // product not rounded to float32
];

/**
 * QLinearConv probes of the requantisation alone: a 1×1 input equal to its zero point makes
 * every accumulator equal to the bias, so the int32 bias feeds chosen accumulators (up to
 * ±2^31, beyond float32's 2^24) through per-channel multipliers from 1e-8 to 2. Most
 * channels are searched so that one of the variant formulas gives another integer.
 */
function requantCase(r: Prng, id: number, discriminating: number[]): Case {
  const act: Q8 = r.pick(['uint8', 'int8']);
  const C = 48;
  const xz = r.int(RANGE[act][0], RANGE[act][1]);
  const yz = act === 'uint8' ? 128 : 0;
  const sx = f32(2 ** (r.next() * 10 - 12));
  const sy = f32(2 ** (r.next() * 10 - 8));
  const sws: number[] = [];
  const bias = new Int32Array(C);
  for (let c = 0; c < C; c++) {
    const targetM = 2 ** (r.next() * 27 - 26);
    const sw = f32((targetM * sy) / sx);
    sws.push(sw);
    const M = f32(f32(sx * sw) / sy);
    // scan the accumulators around a rounding boundary h = k + 0.5 for one where variant `v` differs
    const v = 1 + (c % (FORMULAS.length - 1));
    const h = r.int(-100, 99) + 0.5;
    const acc0 = Math.round(h / M);
    let acc = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, acc0));
    let best: boolean[] | undefined;
    for (let d = 0; d <= 400; d++) {
      const cand = acc0 + (d % 2 ? -((d + 1) >> 1) : d >> 1);
      if (cand < -(2 ** 31) || cand > 2 ** 31 - 1) continue;
      const want = FORMULAS[0](cand, sx, sw, sy);
      const differs = FORMULAS.map((f) => f(cand, sx, sw, sy) !== want);
      if (differs[v] || (!best && differs.some(Boolean))) {
        acc = cand;
        best = differs;
        if (differs[v]) break;
      }
    }
    best?.forEach((d, k) => d && discriminating[k]++);
    bias[c] = acc;
  }
  const inputs: (Tensor | undefined)[] = [
    q8(act, [1, 1, 1, 1], () => xz),
    f32t([], [sx]),
    q8(act, [], () => xz),
    q8('int8', [C, 1, 1, 1], () => r.int(-128, 127)),
    f32t([C], sws),
    q8('int8', [C], () => 0),
    f32t([], [sy]),
    q8(act, [], () => yz),
    new Tensor('int32', [C], bias),
  ];
  return { op: 'QLinearConv', label: `rq${id}`, inputs, fed: new Set([0]), attrs: {}, outDtype: act, ties: 0 };
}

// ---------------------------------------------------------------- QuantizeLinear / DequantizeLinear cases

/** Per-tensor or per-axis (opset 13) parameters for a tensor of `dims`. */
function axisParams(r: Prng, dims: number[]): { axis?: number; n: number; pdims: number[] } {
  if (r.chance(0.4)) return { n: 1, pdims: r.chance(0.5) ? [] : [1] };
  const axis = r.int(0, dims.length - 1);
  return { axis: r.chance(0.3) ? axis - dims.length : axis, n: dims[axis], pdims: [dims[axis]] };
}

function qdqDims(r: Prng): number[] {
  return Array.from({ length: r.int(1, 4) }, () => r.int(1, 5));
}

/**
 * QuantizeLinear: power-of-two scales with x = (k + 0.5)·scale for a third of the elements
 * (exact ties of x / scale), random values elsewhere, some far outside the range (saturation).
 */
function quantizeCase(r: Prng, id: number): Case {
  const dims = qdqDims(r);
  const t: Q8 = r.pick(['int8', 'uint8']);
  const p = axisParams(r, dims);
  const pow2 = r.chance(0.6);
  const scales = Array.from({ length: p.n }, () => (pow2 ? 2 ** -r.int(-2, 8) : f32(0.001 + r.next() * 0.2)));
  const zps = Array.from({ length: p.n }, () => (r.chance(0.3) ? 0 : r.int(RANGE[t][0], RANGE[t][1])));
  const size = dims.reduce((a, b) => a * b, 1);
  const inner = p.axis === undefined ? size : dims.slice((p.axis + dims.length) % dims.length + 1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const c = p.n === 1 ? 0 : Math.floor(i / inner) % p.n;
    const k = r.int(-200, 200);
    const u = r.next();
    x[i] = u < 0.35 ? f32((k + 0.5) * scales[c]) : u < 0.9 ? f32((r.next() - 0.5) * 300 * scales[c]) : f32((r.next() - 0.5) * 2000 * scales[c]);
  }
  const attrs: Record<string, Attribute> = p.axis !== undefined ? { axis: int(p.axis) } : {};
  const withZp = r.chance(0.85) || t === 'int8';
  const inputs: (Tensor | undefined)[] = [new Tensor('float32', dims, x), f32t(p.pdims, scales), withZp ? q8(t, p.pdims, (i) => zps[i]) : undefined];
  if (!withZp) zps.fill(0);
  return { op: 'QuantizeLinear', label: `q${id}`, inputs, fed: new Set([0]), attrs, outDtype: withZp ? t : 'uint8', ties: 0 };
}

function dequantizeCase(r: Prng, id: number): Case {
  const dims = qdqDims(r);
  const t = r.pick(['int8', 'uint8', 'int32'] as const);
  const p = axisParams(r, dims);
  const scales = Array.from({ length: p.n }, () => f32(0.0001 + r.next() * 0.5));
  const size = dims.reduce((a, b) => a * b, 1);
  let x: Tensor;
  let zp: Tensor | undefined;
  if (t === 'int32') {
    x = new Tensor('int32', dims, Int32Array.from({ length: size }, () => r.int(-(2 ** 30), 2 ** 30)));
    zp = r.chance(0.5) ? new Tensor('int32', p.pdims, new Int32Array(p.n)) : undefined;
  } else {
    x = q8(t, dims, () => r.int(RANGE[t][0], RANGE[t][1]));
    zp = q8(t, p.pdims, () => r.int(RANGE[t][0], RANGE[t][1]));
  }
  const attrs: Record<string, Attribute> = p.axis !== undefined ? { axis: int(p.axis) } : {};
  return { op: 'DequantizeLinear', label: `dq${id}`, inputs: [x, f32t(p.pdims, scales), zp], fed: new Set([0]), attrs, outDtype: 'float32', ties: 0 };
}

/** DynamicQuantizeLinear on data of every magnitude, all-positive, all-negative and all-zero inputs. */
function dynamicQuantizeCase(r: Prng, id: number): Case {
  const dims = qdqDims(r);
  const n = dims.reduce((a, b) => a * b, 1);
  const kind = r.pick(['mixed', 'mixed', 'positive', 'negative', 'zero']);
  const mag = 10 ** (r.next() * 8 - 4);
  const x = Float32Array.from({ length: n }, () => {
    const u = r.next() * mag;
    if (kind === 'zero') return 0;
    if (kind === 'positive') return f32(u);
    if (kind === 'negative') return f32(-u);
    return f32(r.chance(0.5) ? u : -u * r.next());
  });
  return { op: 'DynamicQuantizeLinear', label: `dql${id}`, inputs: [new Tensor('float32', dims, x)], fed: new Set([0]), attrs: {}, outDtype: 'uint8', moreOutputs: ['float32', 'uint8'], ties: 0 };
}

// ---------------------------------------------------------------- running

function outputsOf(c: Case): { name: string; dtype: DType }[] {
  return [c.outDtype, ...(c.moreOutputs ?? [])].map((dtype, k) => ({ name: k ? `${c.label}_y${k}` : `${c.label}_y`, dtype }));
}

function buildModel(cases: Case[]): { model: Model; feeds: Record<string, Tensor> } {
  const g = new Graph({ name: 'qlinear_cases' });
  const feeds: Record<string, Tensor> = {};
  for (const c of cases) {
    const names = c.inputs.map((t, k) => (t ? `${c.label}_in${k}` : ''));
    c.inputs.forEach((t, k) => {
      if (!t) return;
      if (c.fed.has(k)) {
        g.inputs.push({ name: names[k], type: { dtype: t.dtype, shape: t.dims.slice() } } as ValueInfo);
        feeds[names[k]] = t;
      } else {
        g.initializers.set(names[k], t);
      }
    });
    while (names.length && names[names.length - 1] === '') names.pop();
    const outs = outputsOf(c);
    g.nodes.push(new Node({ opType: c.op, name: c.label, inputs: names, outputs: outs.map((o) => o.name), attrs: c.attrs }));
    for (const o of outs) g.outputs.push({ name: o.name, type: { dtype: o.dtype } });
  }
  return { model: new Model(g, { irVersion: 8, opsetImports: [{ domain: '', version: 13 }] }), feeds };
}

/** The tensor's data as a typed array of onnxruntime's realm (jest's vm context has its own constructors). */
function ortView(t: Tensor): unknown {
  const ctor = new ort.Tensor(t.dtype, [], [0]).data.constructor;
  const a = t.data as Int8Array;
  return a instanceof ctor ? a : new ctor(a.buffer, a.byteOffset, a.length);
}

interface Mismatch {
  label: string;
  index: number;
  ours: number;
  ort: number;
}

/** Run `cases` in one onnxruntime session and in the reference engine; returns mismatches and element count. */
async function compare(cases: Case[]): Promise<{ mismatches: Mismatch[]; elements: number }> {
  const { model, feeds } = buildModel(cases);
  const session = await ort.InferenceSession.create(Buffer.from(encodeModel(model)), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ortFeeds: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(t.dtype, ortView(t), t.dims);
  const got = await session.run(ortFeeds);
  await session.release?.();
  const ours = new ReferenceEngine(model).runSync(feeds);
  const mismatches: Mismatch[] = [];
  let elements = 0;
  for (const c of cases) {
    for (const { name, dtype } of outputsOf(c)) {
      const o = ours[name];
      const t = got[name];
      expect(o.dtype).toBe(dtype);
      expect(o.dims).toEqual(Array.from(t.dims as readonly number[], Number));
      const od = o.data as Int32Array;
      const td = t.data as Int32Array;
      elements += td.length;
      for (let i = 0; i < td.length; i++) if (od[i] !== td[i]) mismatches.push({ label: name, index: i, ours: od[i], ort: td[i] });
    }
  }
  return { mismatches, elements };
}

const CASES_PER_MODEL = 60;

async function runCases(make: (r: Prng, id: number) => Case, count: number, seed: number): Promise<{ cases: number; elements: number; ties: number; mismatches: Mismatch[] }> {
  const r = new Prng(seed);
  let elements = 0;
  let ties = 0;
  const mismatches: Mismatch[] = [];
  for (let start = 0; start < count; start += CASES_PER_MODEL) {
    const batch: Case[] = [];
    for (let id = start; id < Math.min(count, start + CASES_PER_MODEL); id++) batch.push(make(r, id));
    ties += batch.reduce((p, c) => p + c.ties, 0);
    const res = await compare(batch);
    elements += res.elements;
    mismatches.push(...res.mismatches);
  }
  return { cases: count, elements, ties, mismatches };
}

describe('integer kernels agree exactly with onnxruntime', () => {
  it('QLinearConv: 720 random cases (ties, per-channel, pads, groups, depthwise, strides, dilations, 1-3-D)', async () => {
    const res = await runCases(convCase, 720, 0x5eed01);
    console.log(`QLinearConv: ${res.cases} cases, ${res.elements} elements, ${res.ties} constructed ties, ${res.mismatches.length} mismatches`);
    expect(res.mismatches.slice(0, 10)).toEqual([]);
    expect(res.ties).toBeGreaterThan(1000);
  });

  it('QLinearMatMul: 420 random cases (ties, per-column, batch broadcast, 1-D operands)', async () => {
    const res = await runCases(matmulCase, 420, 0x5eed02);
    console.log(`QLinearMatMul: ${res.cases} cases, ${res.elements} elements, ${res.ties} constructed ties, ${res.mismatches.length} mismatches`);
    expect(res.mismatches.slice(0, 10)).toEqual([]);
    expect(res.ties).toBeGreaterThan(500);
  });

  it('requantisation: 60 × 48 accumulators chosen where variant formulas disagree', async () => {
    const discriminating = FORMULAS.map(() => 0);
    const res = await runCases((r, id) => requantCase(r, id, discriminating), 60, 0x5eed07);
    console.log(`requant probes: ${res.elements} elements; accumulators where a variant differs from the contract: ${discriminating.slice(1).join(', ')} (M = sx·(sw/sy), M in double, acc not rounded to float32, product not rounded)`);
    expect(res.mismatches.slice(0, 10)).toEqual([]);
    for (const n of discriminating.slice(1)) expect(n).toBeGreaterThan(50);
  });

  it('QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear: 420 random cases (ties of x / scale, per axis, saturation)', async () => {
    const q = await runCases(quantizeCase, 180, 0x5eed05);
    const dq = await runCases(dequantizeCase, 120, 0x5eed06);
    const dyn = await runCases(dynamicQuantizeCase, 120, 0x5eed08);
    console.log(`QuantizeLinear: ${q.cases} cases, ${q.elements} elements; DequantizeLinear: ${dq.cases} cases, ${dq.elements} elements; DynamicQuantizeLinear: ${dyn.cases} cases`);
    expect(q.mismatches.slice(0, 10)).toEqual([]);
    expect(dq.mismatches.slice(0, 10)).toEqual([]);
    expect(dyn.mismatches.slice(0, 10)).toEqual([]);
  });

  it('ConvInteger and MatMulInteger: 240 random cases', async () => {
    const conv = await runCases((r, id) => convCase(r, id, { integerOnly: true }), 120, 0x5eed03);
    const mm = await runCases((r, id) => matmulCase(r, id, { integerOnly: true }), 120, 0x5eed04);
    console.log(`ConvInteger: ${conv.cases} cases, ${conv.elements} elements; MatMulInteger: ${mm.cases} cases, ${mm.elements} elements`);
    expect(conv.mismatches.slice(0, 10)).toEqual([]);
    expect(mm.mismatches.slice(0, 10)).toEqual([]);
  });
});
