import { isPtqError } from '../errors';
import { Attribute, Graph, Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor } from '../onnx/tensor';
import { ValueFacts } from '../ops/registry';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import type { CalibrationStatistics, CollectOptions, Sample, SampleSource, TensorStatistics } from './collect';
import { GrowingState, HistogramSink, openHistogramSink, SinkItem, SinkSite } from './counting';
import { StatisticsGraph } from './statistics-graph';
import { FloatData, growingToFixed, growingTotal, HISTOGRAM_BINS, MinMaxObserver, RangeSummary } from './observers';

/** Histogram values per tensor per sample the calibrate stage takes by default (`histogram_sample`). */
export const DEFAULT_HISTOGRAM_SAMPLE = 8192;

/**
 * Calibration statistics in ONE pass over the samples, with the histograms taken from a fixed
 * subsample of each large tensor (collectStatistics with `sample`; the two-pass collection
 * counts every value). This is how calibration meets its cost budget: two forward passes and the
 * copy of every activation out of onnxruntime (28 MB a sample on MobileNetV2-224) cost 10× the
 * forward pass alone; one pass that moves ≈ `sample` values per tensor costs about 2×.
 *
 * Per tensor, the samples run a copy of the model whose outputs are (statisticsModel):
 *  - exact ranges, reduced next to the activations: the max per channel (GlobalMaxPool for a
 *    tensor of rank ≥ 3, which onnxruntime runs in its blocked NCHWc layout without converting
 *    the tensor back; ReduceMax otherwise) and the min per channel (ReduceMin). A tensor made by
 *    Relu, or by Clip with a constant lower bound L ≥ 0, gets no ReduceMin: its values are ≥ L
 *    by construction, and its min is L as soon as one observed value (below) equals L — what
 *    the subsample of a Relu/ReLU6 output always shows. When it does not (a channel that never
 *    reached its bound in the subsample), the min of that tensor comes from an extra exact range
 *    pass (collectRanges) over it alone.
 *  - values for the histogram: the whole tensor when it has at most `sample` elements; else a
 *    fixed spatial grid of every channel (MaxPool with a 1×…×1 kernel and stride s in every
 *    spatial axis, s = ⌈(elements / sample)^(1 / spatial axes)⌉: positions 0, s, 2s, … of each
 *    row and column, all channels, all batch items), or for rank < 3 every k-th element of the
 *    flattened tensor (Slice with step k = ⌈elements / sample⌉). The same positions in every
 *    sample: the histogram estimates the distribution of |x| over the tensor from ≈ `sample`
 *    values per sample (819 200 per tensor with 100 samples and the default 8192).
 * The outputs of known size come out of onnxruntime packed into one tensor (unpack). The
 * histogram counts into a range that grows by powers of two with each sample's exact absmax
 * (GrowingHistogram), and is laid out over [0, final absmax] in `bins` bins at the end
 * (growingToFixed). Tensors with at most `sample` elements are counted whole: their statistics
 * equal the two-pass ones up to that re-binning (≤ 1/16 of a bin). The counting runs in a
 * worker thread (counting.ts) while onnxruntime computes the next sample.
 *
 * Non-finite values: a tensor whose reduced range or observed values hold NaN/±Infinity is
 * collected again by the exact two-pass collection (which skips and counts them).
 *
 * Memory: per tensor 2 numbers per channel and 4 lanes × 2 × `bins` Uint32 counts (64 KiB at 2048
 * bins; 256 KiB for a tensor counted whole), plus at most three samples' subsampled values in
 * flight; O(tensors × (bins + channels)).
 */
export async function collectSampled(
  model: Model,
  samples: SampleSource,
  names: string[],
  opts: CollectOptions & { sample: number },
  exact: (names: string[], kind: 'statistics' | 'ranges') => Promise<{ tensors: Record<string, TensorStatistics | RangeSummary> }>,
  runPass: (engine: Engine, samples: SampleSource, visit: (out: Record<string, Tensor>, feeds: Sample) => Promise<void>) => Promise<number>,
  floatData: (t: Tensor, name: string) => FloatData,
): Promise<CalibrationStatistics> {
  const perChannel = opts.perChannel ?? false;
  const bins = opts.bins ?? HISTOGRAM_BINS;
  const facts = inferShapes(model, { apply: false });
  const plan = statisticsModel(model, names, facts, perChannel, opts.sample);
  const acc = plan.sites.map((s) => new SiteAccumulator(s, perChannel));
  // the worker starts while onnxruntime loads the model
  const sinkOpening = openHistogramSink(acc.map((a) => a.sinkSite(bins)));
  let engine: Engine | undefined;
  let sink: HistogramSink | undefined;
  let count: number;
  let counted: GrowingState[];
  try {
    engine = await openStatisticsEngine(plan.model, opts.engine);
    sink = await sinkOpening;
    const into = sink;
    count = await runPass(engine, samples, (packed, feeds) => {
      const out = unpack(plan, packed);
      const items: SinkItem[] = [];
      acc.forEach((a, site) => {
        const v = a.observe(out, feeds, floatData);
        if (v) items.push({ site, ...v });
      });
      return into.add(items);
    });
    counted = await sink.finish();
  } finally {
    await engine?.dispose();
    await (sink ?? (await sinkOpening.catch(() => undefined)))?.close();
  }

  const redo = plan.sites.filter((s, k) => acc[k].sawNonFinite(counted[k])).map((s) => s.name);
  const minsFor = plan.sites.filter((s, k) => !redo.includes(s.name) && !acc[k].minKnown(counted[k])).map((s) => s.name);
  const out: Record<string, TensorStatistics> = {};
  if (redo.length) Object.assign(out, (await exact(redo, 'statistics')).tensors as Record<string, TensorStatistics>);
  const mins = minsFor.length ? ((await exact(minsFor, 'ranges')).tensors as Record<string, RangeSummary>) : {};
  plan.sites.forEach((site, k) => {
    if (!redo.includes(site.name)) out[site.name] = acc[k].statistics(bins, counted[k], mins[site.name]);
  });
  return { engine: engine.name, samples: count, tensors: out };
}

/** How one tensor is observed (see collectSampled). */
export interface StatisticsSite {
  name: string;
  /** `whole`: the tensor (or the feed) itself is fetched; `reduced`: ranges and a subsample come from the graph */
  kind: 'whole' | 'reduced';
  /** output holding the max per channel (GlobalMaxPool: N×C values; ReduceMax: C or 1) */
  max?: string;
  /** output holding the min per channel (C or 1 values); absent when `lower` bounds the tensor */
  min?: string;
  /** a constant no value of the tensor is below (Relu: 0, Clip: its min), when ≥ 0 */
  lower?: number;
  /** output holding the subsample ([N, C, …] for the pooled grid, flat for the strided slice) */
  sample?: string;
  /** whether the subsample keeps axis 1 as the channel axis (pooled grid) */
  channelled: boolean;
  /** elements of the tensor per sample */
  elements: number;
}

export interface StatisticsPlan {
  model: Model;
  sites: StatisticsSite[];
  /**
   * The statistics outputs of known size, flattened and concatenated into the one graph output
   * `packed.output` (one tensor to hand over from onnxruntime instead of ~2 per tensor: 1.5 ms a
   * sample less on MobileNetV2); `unpack` gives them back by name.
   */
  packed?: { output: string; parts: { name: string; dims: number[]; offset: number }[] };
}

/** The outputs of a run of `plan.model` by name, the packed ones as views of the packed output. */
export function unpack(plan: StatisticsPlan, out: Record<string, Tensor>): Record<string, Tensor> {
  if (!plan.packed) return out;
  const all = out[plan.packed.output].data as Float32Array;
  const views: Record<string, Tensor> = { ...out };
  for (const p of plan.packed.parts) {
    const size = p.dims.reduce((a, b) => a * b, 1);
    views[p.name] = new Tensor('float32', p.dims, all.subarray(p.offset, p.offset + size));
  }
  return views;
}

/**
 * `model` with the statistics outputs of collectSampled for `names` as its only graph outputs
 * (plus the `whole` tensors). Tensors are shared with `model`.
 */
export function statisticsModel(model: Model, names: string[], facts: Map<string, ValueFacts>, perChannel: boolean, sample: number): StatisticsPlan {
  if (!(Number.isInteger(sample) && sample >= 1)) throw new Error(`statisticsModel: sample must be a positive integer, got ${sample}`);
  const sg = new StatisticsGraph(model);
  const g = sg.g;
  const inputs = new Set(g.realInputs.map((v) => v.name));
  const opset = model.opset('') ?? 13;
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const outputs: string[] = [];
  /** static dims of the outputs that can be packed (float32, known shape) */
  const sizes = new Map<string, number[]>();
  const sites: StatisticsSite[] = [];
  const add = sg.node.bind(sg);
  const ints = (xs: number[]): Attribute => ({ type: 'ints', value: xs });

  for (const name of names) {
    const f = facts.get(name);
    const shape = f?.shape;
    const known = f?.dtype === 'float32' && shape !== undefined && shape.every((d) => typeof d === 'number' && d >= 0);
    const dims = known ? (shape as number[]) : [];
    const elements = dims.reduce((p, q) => p * q, 1);
    const rank = dims.length;
    // graph inputs and small tensors: the values themselves (an input is the feed, not an output)
    const pooled = known && rank >= 3 ? poolStride(dims, sample) : 0;
    const whole = !known || elements <= sample || (rank >= 3 && pooledElements(dims, pooled) >= elements) || (rank < 3 && opset < 10);
    if (whole) {
      if (!inputs.has(name)) {
        outputs.push(name);
        if (known) sizes.set(name, dims);
      }
      sites.push({ name, kind: 'whole', channelled: true, elements });
      continue;
    }
    const site: StatisticsSite = { name, kind: 'reduced', channelled: rank >= 3, elements };
    const lower = rank >= 3 ? lowerBound(producer.get(name), g) : undefined;
    if (rank >= 3) site.max = add('GlobalMaxPool', [name], `${name}__calibration_max`);
    else site.max = sg.reduce('ReduceMax', name, rank, perChannel);
    if (lower !== undefined) site.lower = lower;
    else site.min = sg.reduce('ReduceMin', name, rank, perChannel);
    if (rank >= 3) {
      const spatial = rank - 2;
      site.sample = add('MaxPool', [name], `${name}__calibration_sample`, {
        kernel_shape: ints(Array(spatial).fill(1)),
        strides: ints(Array(spatial).fill(pooled)),
      });
    } else {
      const step = Math.ceil(elements / sample);
      const flat = add('Reshape', [name, sg.int64([-1])], `${name}__calibration_flat`);
      site.sample = add('Slice', [flat, sg.int64([0]), sg.int64([elements]), sg.int64([0]), sg.int64([step])], `${name}__calibration_sample`);
    }
    outputs.push(site.max, ...(site.min ? [site.min] : []), site.sample);
    const reducedDims = rank >= 2 && perChannel ? [dims[1]] : [];
    sizes.set(site.max, rank >= 3 ? [dims[0], dims[1], ...dims.slice(2).map(() => 1)] : reducedDims);
    if (site.min) sizes.set(site.min, reducedDims);
    sizes.set(site.sample, rank >= 3 ? [dims[0], dims[1], ...dims.slice(2).map((d) => Math.ceil(d / pooled))] : [Math.ceil(elements / Math.ceil(elements / sample))]);
    sites.push(site);
  }
  const plan: StatisticsPlan = { model: sg.model, sites };
  const packable = outputs.filter((o) => sizes.has(o));
  if (packable.length > 1) {
    const flat = sg.int64([-1]);
    const parts: { name: string; dims: number[]; offset: number }[] = [];
    let offset = 0;
    const pieces = packable.map((o) => {
      parts.push({ name: o, dims: sizes.get(o)!, offset });
      offset += sizes.get(o)!.reduce((a, b) => a * b, 1);
      return add('Reshape', [o, flat], `${o}__flat`);
    });
    const output = add('Concat', pieces, 'calibration_statistics', { axis: { type: 'int', value: 0 } });
    plan.packed = { output, parts };
    outputs.splice(0, outputs.length, output, ...outputs.filter((o) => !sizes.has(o)));
  }
  sg.setOutputs(outputs);
  return plan;
}

/** The stride of the pooled grid: ⌈(elements / sample)^(1 / spatial axes)⌉. */
function poolStride(dims: number[], sample: number): number {
  const elements = dims.reduce((p, q) => p * q, 1);
  const spatial = dims.length - 2;
  let s = Math.max(1, Math.ceil((elements / sample) ** (1 / spatial)));
  // (rounding of the root: the smallest stride that brings the grid to `sample` or below, if one does)
  while (s > 1 && pooledElements(dims, s - 1) <= sample) s--;
  return s;
}

function pooledElements(dims: number[], stride: number): number {
  let n = dims[0] * dims[1];
  for (let k = 2; k < dims.length; k++) n *= Math.ceil(dims[k] / stride);
  return n;
}

/** The lower bound a Relu or a Clip with a constant min ≥ 0 puts on its output. */
function lowerBound(node: Node | undefined, g: Graph): number | undefined {
  if (!node || node.domain) return undefined;
  if (node.opType === 'Relu') return 0;
  if (node.opType !== 'Clip') return undefined;
  let lo: number | undefined;
  if (node.inputs.length > 1) {
    const t = node.inputs[1] ? g.initializers.get(node.inputs[1]) : undefined;
    if (t && t.size === 1) lo = Number(t.toNumbers()[0]);
  } else if (node.attrs.has('min')) {
    lo = node.float('min');
  }
  return lo !== undefined && lo >= 0 && Number.isFinite(lo) ? lo : undefined;
}

async function openStatisticsEngine(model: Model, choice: CollectOptions['engine']): Promise<Engine> {
  if (choice === 'reference') return new ReferenceEngine(model);
  try {
    return await OrtEngine.create(model, { threads: 1 });
  } catch (e) {
    if (choice === 'ort' || !isPtqError(e) || !['E_ORT_MISSING', 'E_ORT_LOAD', 'E_ORT_DTYPE'].includes(e.code)) throw e;
    return new ReferenceEngine(model);
  }
}

const { abs, max, min } = Math;

/** Fine bins of a tensor counted whole: the power of two ≥ 32 × bins (65 536 at 2048 bins). */
function wholeFineBins(bins: number): number {
  return 2 ** Math.ceil(Math.log2(32 * bins));
}

/** What collectSampled folds for one tensor. */
class SiteAccumulator {
  /** per slot (channel, or one): min and max */
  private lo = new Float64Array(0);
  private hi = new Float64Array(0);
  /** smallest value seen in the subsample per slot (for a bounded tensor's min) */
  private seen = new Float64Array(0);
  private readonly ranges: MinMaxObserver;
  private slots = 0;
  private elements = 0;
  /** a non-finite bound was reduced: the tensor is collected again exactly */
  nonFinite = false;

  constructor(
    private readonly site: StatisticsSite,
    private readonly perChannel: boolean,
  ) {
    this.ranges = new MinMaxObserver(perChannel);
  }

  /**
   * The histogram of a tensor counted whole has 32 fine bins a final bin, so that laying them
   * out over the final range moves counts by at most 1/16 of a bin (its histogram is the
   * two-pass one but for that); few values a sample, so the big table costs little (one lane).
   * Subsampled tensors: 2 fine bins a final bin, four lanes.
   */
  sinkSite(bins: number): SinkSite {
    return this.site.kind === 'whole' ? { fineBins: wholeFineBins(bins), lanes: 1 } : { fineBins: 2 * bins, lanes: 4 };
  }

  /** Fold the ranges of one sample in; the values to count in the histogram and the absmax to count them with. */
  observe(out: Record<string, Tensor>, feeds: Sample, floatData: (t: Tensor, name: string) => FloatData): { data: FloatData; absmax: number } | undefined {
    const site = this.site;
    if (site.kind === 'whole') {
      const t = out[site.name] ?? feeds[site.name];
      const data = floatData(t, site.name);
      this.ranges.observe(data, t.dims);
      this.elements += data.length;
      // the range so far holds this sample's values, and is within the final one
      return { data, absmax: this.ranges.absmax() };
    }
    this.elements += site.elements;
    const hi = floatData(out[site.max!], site.name);
    const lo = site.min ? floatData(out[site.min], site.name) : undefined;
    const sub = out[site.sample!];
    const values = floatData(sub, site.name);
    // slots: the channels of axis 1 when per channel, else one
    const channels = site.channelled ? sub.dims[1] : 1;
    if (!this.slots) this.init(this.perChannel ? (site.channelled ? channels : hi.length) : 1);
    if (!foldSlots(hi, this.hi, max) || (lo && !foldSlots(lo, this.lo, min))) this.nonFinite = true;
    if (this.nonFinite) return undefined; // collected again exactly
    if (!lo && (site.lower !== 0 || this.slots > 1)) {
      const inner = site.channelled ? sub.dims.slice(2).reduce((p, q) => p * q, 1) : values.length;
      lowestPerSlot(values, channels, inner, this.seen);
    }
    return { data: values, absmax: this.absmax() };
  }

  /** max |x| over the slots so far (a bounded tensor's values are ≥ its bound ≥ 0: its max) */
  private absmax(): number {
    let a = 0;
    for (let s = 0; s < this.slots; s++) a = max(a, this.hi[s], this.site.min ? -this.lo[s] : 0);
    return a;
  }

  /** Whether non-finite values were seen (in the ranges, or by the histogram's `counted` state). */
  sawNonFinite(counted: GrowingState): boolean {
    return this.nonFinite || counted.nonFinite > 0 || (this.site.kind === 'whole' && this.ranges.summary().nonFinite > 0);
  }

  /** False when a bounded tensor's subsample never showed its bound in some slot (its min needs an exact pass). */
  minKnown(counted: GrowingState): boolean {
    if (this.site.kind === 'whole' || this.site.min || !this.slots) return true;
    // bound 0, one slot: the histogram's zeros are the values that showed it
    if (this.site.lower === 0 && this.slots === 1) return counted.zeros > 0;
    for (let s = 0; s < this.slots; s++) if (this.seen[s] !== this.site.lower) return false;
    return true;
  }

  statistics(bins: number, counted: GrowingState, exactMins: RangeSummary | undefined): TensorStatistics {
    let summary: RangeSummary;
    if (this.site.kind === 'whole') summary = this.ranges.summary();
    else {
      const lo = this.site.min ? this.lo : exactMins ? slotsOf(exactMins, this.slots) : this.seen.map(() => this.site.lower!);
      const r = new MinMaxObserver(this.perChannel);
      if (this.slots) r.observeRanges(lo, this.hi);
      summary = { ...r.summary(), count: this.elements, nonFinite: 0 };
    }
    const histogram = growingToFixed(counted, summary.absmax, bins);
    return { ...summary, histogram, binWidth: summary.absmax / bins, zeros: counted.zeros, histogramValues: growingTotal(counted) };
  }

  private init(slots: number): void {
    this.slots = slots;
    this.lo = new Float64Array(slots).fill(Infinity);
    this.hi = new Float64Array(slots).fill(-Infinity);
    this.seen = new Float64Array(slots).fill(Infinity);
  }
}

/**
 * Fold per-slot reductions (`values[k]` belongs to slot k mod slots) into `acc` with `pick`
 * (min or max). False when a value is not finite.
 */
function foldSlots(values: FloatData, acc: Float64Array, pick: (a: number, b: number) => number): boolean {
  const slots = acc.length;
  let finite = true;
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (v - v !== 0) finite = false;
    const s = slots === 1 ? 0 : k % slots;
    acc[s] = pick(acc[s], v);
  }
  return finite;
}

/**
 * Per slot, the smallest of `values` laid out as blocks of `inner` values, block b of channel
 * b mod `channels` ([batch, channels, inner]); slot = channel, or the one slot.
 */
function lowestPerSlot(values: FloatData, channels: number, inner: number, seen: Float64Array): void {
  const slots = seen.length;
  for (let b = 0, i = 0; i < values.length; b++) {
    const s = slots === 1 ? 0 : b % channels;
    let m = seen[s];
    for (const end = i + inner; i < end; i++) m = min(m, values[i]);
    seen[s] = m;
  }
}

/** The per-slot minima of an exact range summary. */
function slotsOf(r: RangeSummary, slots: number): Float64Array {
  if (slots > 1 && r.perChannelMin) return Float64Array.from(r.perChannelMin);
  return new Float64Array(slots).fill(r.min);
}
