import { Rng } from '../kernels/random';
import { broadcastDims } from '../kernels/shape';
import { DType } from './dtype';
import { Attribute, Dim, Graph, Model, Node } from './ir';
import { Tensor, tensorFrom } from './tensor';

/** A value of the graph being built: its name, element type and (when known) shape. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  /** undefined = unknown rank (outputs of `node()` without `shapes`). */
  readonly shape: Dim[] | undefined;
}

export interface BuilderOptions {
  /** Default-domain opset (default 13). */
  opset?: number;
  /** Seed of the weight generator: same seed → byte-identical encoded model. */
  seed?: number;
  irVersion?: number;
  /** Extra opset imports (custom domains). */
  opsetImports?: { domain: string; version: number }[];
  docString?: string;
}

type Pair = number | [number, number];

export interface ConvOptions {
  outChannels: number;
  kernel: Pair;
  stride?: Pair;
  /** symmetric `p`, `[ph, pw]`, or ONNX order `[top, left, bottom, right]` (default 0) */
  pad?: number | [number, number] | [number, number, number, number];
  group?: number;
  dilation?: Pair;
  /** default true */
  bias?: boolean;
  name?: string;
  /** standard deviation of the weights (default He: sqrt(2 / fan_in)) */
  weightStd?: number;
}

export interface BatchNormOptions {
  epsilon?: number;
  name?: string;
  /**
   * Typical output scale (default 1, each channel's gamma within ±25 % of it): 1 keeps
   * activations O(1); a smaller gain damps a residual branch.
   */
  gain?: number;
}

export interface PoolOptions {
  kernel: Pair;
  /** default 1 (the ONNX default) */
  stride?: Pair;
  pad?: number | [number, number] | [number, number, number, number];
  ceilMode?: boolean;
  /** AveragePool only (default false, the ONNX default) */
  countIncludePad?: boolean;
  name?: string;
}

export interface GemmOptions {
  bias?: boolean;
  name?: string;
  weightStd?: number;
}

/** A plain attribute value; integers become `int`, other numbers `float` (use `floatAttr` for 1.0). */
export type AttrValue = number | string | number[] | string[] | Tensor | Attribute;

export function floatAttr(v: number): Attribute {
  return { type: 'float', value: v };
}

export function floatsAttr(v: number[]): Attribute {
  return { type: 'floats', value: v };
}

export interface NodeOptions {
  name?: string;
  domain?: string;
  /** element type of the outputs (default: the first input's) */
  dtype?: DType;
  /** shapes of the outputs when the caller knows them */
  shapes?: (Dim[] | undefined)[];
}

/** Parameter and compute totals of what was built (conventional counts: Conv and Gemm MACs). */
export interface BuildStats {
  /** elements of float initializers */
  params: number;
  /** multiply-accumulates of Conv and Gemm for the declared input shapes */
  macs: number;
}

/**
 * Builds models in code, e.g. fixture networks for tests and benchmarks:
 *
 *   const b = new GraphBuilder('tiny', { opset: 13, seed: 1 });
 *   const x = b.input('data', 'float32', [1, 3, 32, 32]);
 *   const y = b.relu(b.batchNorm(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 })));
 *   b.output(b.gemm(b.flatten(b.globalAvgPool(y)), 10));
 *   const model = b.build();
 *
 * Weights are drawn from a seeded generator in call order (He-scaled so activations stay
 * O(1)), so the same calls with the same seed give a byte-identical model. Attributes follow
 * the ONNX defaults except `bias`, which defaults to true. Shapes are tracked as values are
 * created; they give the value_info of graph inputs/outputs and the MAC count.
 */
export class GraphBuilder {
  readonly opset: number;
  readonly rng: Rng;
  private readonly graph: Graph;
  private readonly opsetImports: { domain: string; version: number }[];
  private readonly irVersion: number;
  private readonly values = new Map<string, Value>();
  /** Estimated moments of each value (over elements, for N(0,1) inputs), so BatchNorm statistics match what flows through it. */
  private readonly moments = new Map<string, Moments>();
  private readonly counters = new Map<string, number>();
  private macCount = 0;
  private built = false;

  constructor(name: string, opts: BuilderOptions = {}) {
    this.opset = opts.opset ?? 13;
    this.rng = new Rng(opts.seed ?? 0);
    this.irVersion = opts.irVersion ?? (this.opset >= 14 ? 8 : 7);
    this.opsetImports = [{ domain: '', version: this.opset }, ...(opts.opsetImports ?? [])];
    this.graph = new Graph({ name, docString: opts.docString });
  }

  get stats(): BuildStats {
    let params = 0;
    for (const t of this.graph.initializers.values()) if (t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'float64') params += t.size;
    return { params, macs: this.macCount };
  }

  // ---------------------------------------------------------------- values

  input(name: string, dtype: DType, shape: Dim[]): Value {
    this.claim(name);
    this.graph.inputs.push({ name, type: { dtype, shape: shape.slice() } });
    return this.define(name, dtype, shape.slice());
  }

  /** Add an initializer (named `const_<k>` when no name is given). */
  initializer(tensor: Tensor, name?: string): Value {
    const n = name ?? this.fresh('const');
    this.claim(n);
    this.graph.initializers.set(n, tensor);
    return this.define(n, tensor.dtype, tensor.dims.slice());
  }

  /** Mark `v` as a graph output, renamed to `name` when given (use the returned Value afterwards). */
  output(v: Value, name?: string): Value {
    this.check();
    let out = v;
    if (name !== undefined && name !== v.name) {
      this.claim(name);
      if (this.graph.initializers.has(v.name) || this.graph.inputs.some((i) => i.name === v.name)) {
        // an input or constant cannot be renamed: route it through an Identity
        return this.output(this.node('Identity', [v], {}, 1, { name, shapes: [v.shape] })[0]);
      }
      this.graph.renameValue(v.name, name);
      this.values.delete(v.name);
      out = this.define(name, v.dtype, v.shape, this.mo(v));
    }
    this.graph.outputs.push({ name: out.name, type: { dtype: out.dtype, shape: out.shape?.slice() } });
    return out;
  }

  /** The finished model (the builder cannot be used afterwards). */
  build(): Model {
    this.check();
    this.built = true;
    this.graph.validate();
    return new Model(this.graph, {
      irVersion: this.irVersion,
      opsetImports: this.opsetImports.map((o) => ({ ...o })),
      producerName: 'nx-ptq-builder',
    });
  }

  // ---------------------------------------------------------------- generic node

  /** Any operator: inputs (Value, value name, or '' for an absent optional input) → `nOutputs` values. */
  node(opType: string, inputs: (Value | string | undefined)[], attrs: Record<string, AttrValue> = {}, nOutputs = 1, opts: NodeOptions = {}): Value[] {
    this.check();
    const name = opts.name ?? this.fresh(opType);
    const names = inputs.map((i) => (i === undefined ? '' : typeof i === 'string' ? i : i.name));
    for (const n of names) if (n && !this.values.has(n)) throw new Error(`GraphBuilder: node '${name}' reads unknown value '${n}'`);
    const outNames = Array.from({ length: nOutputs }, (_, k) => (nOutputs === 1 ? name : `${name}:${k}`));
    outNames.forEach((o) => this.claim(o));
    const a = new Map<string, Attribute>();
    for (const [k, v] of Object.entries(attrs)) a.set(k, toAttribute(v));
    this.graph.nodes.push(new Node({ opType, name, domain: opts.domain, inputs: names, outputs: outNames, attrs: a }));
    const first = inputs.find((i): i is Value => typeof i === 'object');
    const dtype = opts.dtype ?? first?.dtype ?? 'float32';
    const mo = first ? this.mo(first) : UNIT;
    return outNames.map((o, k) => this.define(o, dtype, opts.shapes?.[k]?.slice(), mo));
  }

  // ---------------------------------------------------------------- layers with weights

  conv(x: Value, o: ConvOptions): Value {
    const name = o.name ?? this.fresh('Conv');
    const [c, h, w] = this.nchw(x, 'Conv');
    const group = o.group ?? 1;
    const [kh, kw] = pair(o.kernel);
    const [sh, sw] = pair(o.stride ?? 1);
    const [dh, dw] = pair(o.dilation ?? 1);
    const pads = pads4(o.pad ?? 0);
    if (typeof c === 'number' && (c % group !== 0 || o.outChannels % group !== 0)) {
      throw new Error(`GraphBuilder: conv '${name}': ${c} input / ${o.outChannels} output channels are not divisible by group ${group}`);
    }
    const cin = typeof c === 'number' ? c / group : 1;
    const fanIn = cin * kh * kw;
    const std = o.weightStd ?? Math.sqrt(2 / fanIn);
    const weight = this.randomTensor([o.outChannels, cin, kh, kw], std);
    const ins: Value[] = [x, this.initializer(weight, `${name}.weight`)];
    if (o.bias ?? true) ins.push(this.initializer(this.randomTensor([o.outChannels], BIAS_STD), `${name}.bias`));
    const oh = outSize(h, kh, sh, dh, pads[0], pads[2], false);
    const ow = outSize(w, kw, sw, dw, pads[1], pads[3], false);
    const shape: Dim[] = [x.shape![0], o.outChannels, oh, ow];
    if (shape.every((d) => typeof d === 'number')) this.macCount += (shape as number[]).reduce((p, q) => p * q, 1) * fanIn;
    const y = this.node('Conv', ins, {
      dilations: [dh, dw], group, kernel_shape: [kh, kw], pads, strides: [sh, sw],
    }, 1, { name, shapes: [shape] })[0];
    return this.estimate(y, linearMoments(this.mo(x), fanIn * std * std, o.bias ?? true ? BIAS_STD : 0));
  }

  /** y = x · Wᵀ + b for x of shape [N, in] (W stored as [out, in], transB = 1, as exporters do). */
  gemm(x: Value, outFeatures: number, o: GemmOptions = {}): Value {
    const name = o.name ?? this.fresh('Gemm');
    if (!x.shape || x.shape.length !== 2 || typeof x.shape[1] !== 'number') {
      throw new Error(`GraphBuilder: gemm '${name}' needs a [N, features] input, got [${x.shape ?? '?'}]`);
    }
    const inF = x.shape[1];
    const std = o.weightStd ?? Math.sqrt(1 / inF);
    const ins: Value[] = [x, this.initializer(this.randomTensor([outFeatures, inF], std), `${name}.weight`)];
    if (o.bias ?? true) ins.push(this.initializer(this.randomTensor([outFeatures], 0.01), `${name}.bias`));
    if (typeof x.shape[0] === 'number') this.macCount += x.shape[0] * inF * outFeatures;
    const y = this.node('Gemm', ins, { alpha: floatAttr(1), beta: floatAttr(1), transB: 1 }, 1, { name, shapes: [[x.shape[0], outFeatures]] })[0];
    return this.estimate(y, linearMoments(this.mo(x), inF * std * std, o.bias ?? true ? 0.01 : 0));
  }

  /**
   * Inference BatchNormalization with random but plausible statistics (so folding it changes
   * the weights): running_var is near the estimated variance of `x`, so the output is ~unit scale × gain.
   */
  batchNorm(x: Value, o: BatchNormOptions = {}): Value {
    const name = o.name ?? this.fresh('BatchNormalization');
    const [c] = this.nchw(x, 'BatchNormalization', 2);
    if (typeof c !== 'number') throw new Error(`GraphBuilder: batchNorm '${name}' needs a known channel count`);
    const eps = o.epsilon ?? 1e-5;
    const gain = o.gain ?? 1;
    const r = this.rng;
    const gamma = new Float32Array(c);
    const beta = new Float32Array(c);
    const mean = new Float32Array(c);
    const variance = new Float32Array(c);
    const m = this.mo(x);
    const sd = Math.sqrt(m.variance);
    for (let i = 0; i < c; i++) {
      variance[i] = m.variance * r.uniform(0.7, 1.3);
      gamma[i] = gain * r.uniform(0.75, 1.25);
      beta[i] = r.normal(0, 0.1 * gain);
      mean[i] = m.mean + r.normal(0, 0.1 * sd);
    }
    const ins = [
      x,
      this.initializer(new Tensor('float32', [c], gamma), `${name}.weight`),
      this.initializer(new Tensor('float32', [c], beta), `${name}.bias`),
      this.initializer(new Tensor('float32', [c], mean), `${name}.running_mean`),
      this.initializer(new Tensor('float32', [c], variance), `${name}.running_var`),
    ];
    const y = this.node('BatchNormalization', ins, { epsilon: floatAttr(eps) }, 1, { name, shapes: [x.shape] })[0];
    return this.estimate(y, { mean: 0, variance: gain * gain });
  }

  // ---------------------------------------------------------------- activations and elementwise

  relu(x: Value, name?: string): Value {
    return this.estimate(this.node('Relu', [x], {}, 1, { name, shapes: [x.shape] })[0], reluMoments(this.mo(x)));
  }

  sigmoid(x: Value, name?: string): Value {
    return this.estimate(this.node('Sigmoid', [x], {}, 1, { name, shapes: [x.shape] })[0], { mean: 0.5, variance: 0.05 });
  }

  /** Clip to [lo, hi] (Relu6 is clip(x, 0, 6)); min/max are inputs from opset 11, attributes before. */
  clip(x: Value, lo: number, hi: number, name?: string): Value {
    const n = name ?? this.fresh('Clip');
    const ms = lo >= 0 ? reluMoments(this.mo(x)) : this.mo(x); // the upper bound is ignored
    if (this.opset < 11) return this.estimate(this.node('Clip', [x], { min: floatAttr(lo), max: floatAttr(hi) }, 1, { name: n, shapes: [x.shape] })[0], ms);
    const min = this.initializer(tensorFrom(x.dtype, [], [lo]), `${n}.min`);
    const max = this.initializer(tensorFrom(x.dtype, [], [hi]), `${n}.max`);
    return this.estimate(this.node('Clip', [x, min, max], {}, 1, { name: n, shapes: [x.shape] })[0], ms);
  }

  add(a: Value, b: Value, name?: string): Value {
    return this.estimate(this.node('Add', [a, b], {}, 1, { name, shapes: [broadcastDims([a.shape, b.shape])] })[0], {
      mean: this.mo(a).mean + this.mo(b).mean,
      variance: this.mo(a).variance + this.mo(b).variance,
    });
  }

  /** Softmax over `axis` (always written explicitly: the default changed at opset 13). */
  softmax(x: Value, axis = -1, name?: string): Value {
    const n = x.shape?.[axis < 0 ? axis + x.shape.length : axis];
    return this.estimate(this.node('Softmax', [x], { axis }, 1, { name, shapes: [x.shape] })[0], { mean: typeof n === 'number' ? 1 / n : 0.5, variance: 0 });
  }

  // ---------------------------------------------------------------- pooling and shape

  maxPool(x: Value, o: PoolOptions): Value {
    return this.pool('MaxPool', x, o);
  }

  avgPool(x: Value, o: PoolOptions): Value {
    return this.pool('AveragePool', x, o);
  }

  globalAvgPool(x: Value, name?: string): Value {
    const [c] = this.nchw(x, 'GlobalAveragePool');
    const y = this.node('GlobalAveragePool', [x], {}, 1, { name, shapes: [[x.shape![0], c, ...x.shape!.slice(2).map(() => 1)]] })[0];
    const area = x.shape!.slice(2).reduce<number>((p, d) => p * (typeof d === 'number' ? d : 1), 1);
    return this.estimate(y, poolMoments(this.mo(x), area, false));
  }

  flatten(x: Value, axis = 1, name?: string): Value {
    let shape: Dim[] | undefined;
    if (x.shape) {
      const a = axis < 0 ? axis + x.shape.length : axis;
      shape = [product(x.shape.slice(0, a)), product(x.shape.slice(a))];
    }
    return this.node('Flatten', [x], { axis }, 1, { name, shapes: [shape] })[0];
  }

  /** Reshape to `shape` (0 copies a dimension, -1 is inferred), the shape as an int64 initializer. */
  reshape(x: Value, shape: number[], name?: string): Value {
    const n = name ?? this.fresh('Reshape');
    const s = this.initializer(tensorFrom('int64', [shape.length], shape), `${n}.shape`);
    return this.node('Reshape', [x, s], {}, 1, { name: n, shapes: [reshapeDims(x.shape, shape)] })[0];
  }

  concat(xs: Value[], axis = 1, name?: string): Value {
    let shape: Dim[] | undefined;
    if (xs.every((v) => v.shape)) {
      const r = xs[0].shape!.length;
      const a = axis < 0 ? axis + r : axis;
      shape = xs[0].shape!.slice();
      shape[a] = xs.map((v) => v.shape![a]).reduce((p, q) => (typeof p === 'number' && typeof q === 'number' ? p + q : '?'));
    }
    const y = this.node('Concat', xs, { axis }, 1, { name, shapes: [shape] })[0];
    return this.estimate(y, concatMoments(xs.map((v) => this.mo(v)), xs.map((v) => (typeof v.shape?.[axis] === 'number' ? (v.shape[axis] as number) : 1))));
  }

  // ---------------------------------------------------------------- internals

  /** He/Xavier-style normal weights from the seeded generator. */
  randomTensor(dims: number[], std: number): Tensor {
    const n = dims.reduce((p, q) => p * q, 1);
    return new Tensor('float32', dims, this.rng.fillNormal(new Float32Array(n), 0, std));
  }

  private pool(op: 'MaxPool' | 'AveragePool', x: Value, o: PoolOptions): Value {
    const name = o.name ?? this.fresh(op);
    const [c, h, w] = this.nchw(x, op);
    const [kh, kw] = pair(o.kernel);
    const [sh, sw] = pair(o.stride ?? 1);
    const pads = pads4(o.pad ?? 0);
    const ceil = o.ceilMode ?? false;
    const attrs: Record<string, AttrValue> = { kernel_shape: [kh, kw], pads, strides: [sh, sw] };
    if (ceil && this.opset < 10) throw new Error(`GraphBuilder: ${op} '${name}': ceil_mode needs opset 10 or later (the builder is at ${this.opset})`);
    if (ceil) attrs.ceil_mode = 1;
    if (op === 'AveragePool' && o.countIncludePad) attrs.count_include_pad = 1;
    const shape: Dim[] = [x.shape![0], c, outSize(h, kh, sh, 1, pads[0], pads[2], ceil), outSize(w, kw, sw, 1, pads[1], pads[3], ceil)];
    const y = this.node(op, [x], attrs, 1, { name, shapes: [shape] })[0];
    return this.estimate(y, poolMoments(this.mo(x), kh * kw, op === 'MaxPool'));
  }

  /** [C, H, W] of an NCHW value (rank checked). */
  private nchw(x: Value, op: string, minRank = 4): Dim[] {
    if (!x.shape || x.shape.length < minRank) throw new Error(`GraphBuilder: ${op} needs an NCHW input, '${x.name}' has shape [${x.shape ?? '?'}]`);
    return [x.shape[1], x.shape[2], x.shape[3]];
  }

  private define(name: string, dtype: DType, shape: Dim[] | undefined, moments = UNIT): Value {
    const v: Value = Object.freeze({ name, dtype, shape: shape ? Object.freeze(shape.slice()) as Dim[] : undefined });
    this.values.set(name, v);
    this.moments.set(name, moments);
    return v;
  }

  private mo(v: Value): Moments {
    return this.moments.get(v.name) ?? UNIT;
  }

  private estimate(v: Value, m: Moments): Value {
    this.moments.set(v.name, m);
    return v;
  }

  private claim(name: string): void {
    this.check();
    if (!name) throw new Error('GraphBuilder: empty value name');
    if (this.values.has(name)) throw new Error(`GraphBuilder: value name '${name}' is already used`);
  }

  /** `${op}_${k}` with the first k that is free. */
  private fresh(op: string): string {
    let k = this.counters.get(op) ?? 0;
    let n = `${op}_${k}`;
    while (this.values.has(n)) n = `${op}_${++k}`;
    this.counters.set(op, k + 1);
    return n;
  }

  private check(): void {
    if (this.built) throw new Error('GraphBuilder: build() was called; start a new builder');
  }
}

function toAttribute(v: AttrValue): Attribute {
  if (v instanceof Tensor) return { type: 'tensor', value: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') return { type: 'strings', value: v as string[] };
    const nums = v as number[];
    return nums.every(Number.isInteger) ? { type: 'ints', value: nums.slice() } : { type: 'floats', value: nums.slice() };
  }
  return v;
}

function pair(p: Pair): [number, number] {
  return typeof p === 'number' ? [p, p] : [p[0], p[1]];
}

function pads4(p: number | number[]): number[] {
  if (typeof p === 'number') return [p, p, p, p];
  if (p.length === 2) return [p[0], p[1], p[0], p[1]];
  return p.slice();
}

/**
 * Output size of a convolution or pooling window. With ceil_mode the last window must still
 * start inside the input or its begin padding (the rule onnxruntime and PyTorch apply).
 */
export function outSize(n: Dim, k: number, s: number, d: number, padBegin: number, padEnd: number, ceil: boolean): Dim {
  if (typeof n !== 'number') return '?';
  const span = n + padBegin + padEnd - d * (k - 1) - 1;
  if (!ceil) return Math.floor(span / s) + 1;
  let out = Math.ceil(span / s) + 1;
  if ((out - 1) * s >= n + padBegin) out--;
  return out;
}

function product(ds: Dim[]): Dim {
  if (ds.length === 1) return ds[0];
  let p = 1;
  for (const d of ds) {
    if (typeof d !== 'number') return '?';
    p *= d;
  }
  return p;
}

function reshapeDims(inShape: Dim[] | undefined, target: number[]): Dim[] | undefined {
  const out: Dim[] = target.map((d, i) => (d === 0 ? inShape?.[i] ?? '?' : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const total = inShape ? product(inShape) : '?';
    const rest = product(out.filter((_, i) => i !== minus));
    out[minus] = typeof total === 'number' && typeof rest === 'number' ? total / rest : '?';
  }
  return out;
}

// ---------------------------------------------------------------- moment estimates
// Rough per-element mean/variance propagation (elements treated as Gaussian, weights as
// independent zero-mean draws). It only has to be good enough for BatchNorm statistics
// to put activations back near unit scale, as a trained network's do.

interface Moments {
  mean: number;
  variance: number;
}

const UNIT: Moments = { mean: 0, variance: 1 };
const BIAS_STD = 0.05;

/** y = Σ w·x (+ b) with E[w] = 0, Σ Var(w) = `gain`. */
function linearMoments(x: Moments, gain: number, biasStd: number): Moments {
  return { mean: 0, variance: gain * (x.mean * x.mean + x.variance) + biasStd * biasStd };
}

/** max(x, 0) of a Gaussian (rectified normal moments). */
function reluMoments(x: Moments): Moments {
  const sd = Math.sqrt(x.variance);
  if (sd === 0) return { mean: Math.max(x.mean, 0), variance: 0 };
  const z = x.mean / sd;
  const pdf = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
  const cdf = normalCdf(z);
  const m1 = x.mean * cdf + sd * pdf;
  const m2 = (x.mean * x.mean + x.variance) * cdf + x.mean * sd * pdf;
  return { mean: m1, variance: Math.max(m2 - m1 * m1, 0) };
}

/** Max or average over `area` neighbouring (correlated, so about half as many independent) elements. */
function poolMoments(x: Moments, area: number, max: boolean): Moments {
  const n = Math.max(1, area / 2);
  const sd = Math.sqrt(x.variance);
  if (max) return { mean: x.mean + sd * Math.sqrt(Math.log(n)), variance: x.variance / Math.sqrt(n) };
  return { mean: x.mean, variance: x.variance / Math.sqrt(n) };
}

/** Channel-weighted mixture of the inputs' moments. */
function concatMoments(xs: Moments[], weights: number[]): Moments {
  const total = weights.reduce((p, q) => p + q, 0);
  let m1 = 0;
  let m2 = 0;
  xs.forEach((x, i) => {
    m1 += (weights[i] / total) * x.mean;
    m2 += (weights[i] / total) * (x.mean * x.mean + x.variance);
  });
  return { mean: m1, variance: Math.max(m2 - m1 * m1, 0) };
}

/** Φ(z) (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}
