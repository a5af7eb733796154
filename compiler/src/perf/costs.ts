import type { CompileMode, OptimizeLevel } from '../config/types';
import type { March } from '../check/table';
import bayesJson from './marchs/bayes.json';
import bernoulli2Json from './marchs/bernoulli2.json';

/**
 * The cost constants of one march (compiler/src/perf/marchs/<march>.json): what the static
 * cost model (estimate.ts) multiplies op geometry by. Every field is documented, with its
 * source and whether it was fitted, in the file's `doc` and `sources`.
 */

/** Cost classes of BPU ops: each has an efficiency (fraction of peak) in `efficiency`. */
export const OP_CLASSES = [
  'conv1x1', 'conv3x3', 'convKxK', 'depthwise', 'groupConv', 'deconv', 'fc', 'matmul',
  'pool', 'globalPool', 'elementwise', 'relu', 'lut', 'resize', 'concat', 'split', 'reshape',
  'layout', 'reduce', 'argmax', 'softmax', 'preprocess', 'other',
] as const;
export type OpClass = (typeof OP_CLASSES)[number];

/** Classes computed on the MAC array (the rest run on the vector/data-movement units). */
export const MAC_CLASSES: ReadonlySet<OpClass> = new Set<OpClass>(['conv1x1', 'conv3x3', 'convKxK', 'depthwise', 'groupConv', 'deconv', 'fc', 'matmul']);

export interface BpuCosts {
  clockGHz: number;
  /** int8 multiply-accumulates per cycle of one core */
  macsPerCycle: number;
  /** int8 elements per cycle of one core's vector / data-movement units (pooling, elementwise, LUT, copies) */
  vectorElementsPerCycle: number;
  /** cores of the BPU (core_num may not exceed it) */
  cores: number;
  /** core_num values the march accepts */
  coreNumSupported: number[];
  /** on-chip SRAM usable by one layer (activations + weights), KiB */
  onChipKiB: number;
  /** share of the on-chip memory that holds weights when a layer must be tiled */
  weightShare: number;
  /** DDR peak bandwidth, GB/s (1e9 bytes) */
  ddrGBps: number;
  /** fraction of the peak the BPU's DMA sustains */
  ddrEfficiency: number;
  align: {
    /** activation channels are stored padded to this */
    activationChannels: number;
    /** conv input channels (per group) are computed padded to this */
    convInputChannels: number;
    /** conv output channels (per group) are computed padded to this */
    convOutputChannels: number;
    /** depthwise channels are computed padded to this */
    depthwiseChannels: number;
    /** feature-map width is stored and computed padded to this */
    width: number;
    /** feature-map height is computed padded to this */
    height: number;
  };
  /** fixed cost of every BPU layer (instruction issue, DMA set-up, pipeline fill), µs */
  opOverheadUs: number;
  /** fixed cost of every BPU function call (task submission, interrupt), µs */
  functionCallOverheadUs: number;
  /** extra per-layer cost of core_num 2 (split, cross-core synchronisation, merge), µs */
  dualCoreSyncUs: number;
  /** compute speed-up of a layer split over two cores (below 2: split imbalance, halo rows, shared DDR and caches) */
  dualCoreComputeSpeedup: number;
  /** a layer splits over two cores only when its output has at least this many rows per core */
  dualCoreMinRows: number;
  /** bytes per output channel of a conv besides the weights (int32 bias, requantisation scale/shift) */
  paramBytesPerChannel: number;
}

export interface ModeCosts {
  /** a value feeding only the next layer stays on-chip when its padded size is at most this fraction of the on-chip memory */
  residentFraction: number;
  /** any value (shortcuts, branch inputs) is held on-chip until its last consumer when at most this fraction */
  holdFraction: number;
  /** chains of single-consumer layers are streamed through on-chip row buffers (layer fusion) whatever their size */
  streamChains: boolean;
  /** compute multiplier (halo recompute and small tiles of fused chains) */
  computeScale: number;
  /** fraction of the shorter of compute and DMA hidden under the longer */
  overlap: number;
}

export interface LevelCosts {
  /** multiplies every efficiency (instruction scheduling quality) */
  efficiencyScale: number;
  /** multiplies the compile mode's overlap */
  overlapScale: number;
  /** values may stay on-chip between layers (else every layer reads and writes DDR) */
  onChipReuse: boolean;
  /** a Concat is written in place by its producers (which ops fuse is the compiler's decision: compile/fuse.ts `fusionsAt`) */
  fuseLayers: boolean;
}

/** Cost of one CPU-side op: a fixed part and a part per element. */
export interface ElementCost {
  fixedUs: number;
  nsPerElement: number;
}

export interface CpuCosts {
  core: string;
  clockGHz: number;
  /** float multiply-accumulates of Conv/Gemm/MatMul on the CPU, ns per MAC (one thread), besides the op's fixedUs */
  nsPerMac: number;
  /** per ONNX op type (elements: the larger of input and output elements); `default` for the rest */
  ops: Record<string, ElementCost>;
}

/** Quantize / Dequantize / layout conversions around BPU subgraphs (elements of the value converted). */
export interface BorderCosts {
  quantize: ElementCost;
  dequantize: ElementCost;
  /** padding + layout conversion into / out of the BPU's aligned native layout */
  inputLayoutConvert: ElementCost;
  outputLayoutConvert: ElementCost;
}

export interface InputCosts {
  /** fixed cost of preparing one model input (`Preprocess` in the board profile), µs */
  fixedUs: number;
  /** ns per byte of the runtime input (nv12: 1.5 bytes per pixel, rgb/bgr/yuv444: 3, gray: 1) */
  nsPerByte: number;
}

export interface MarchCosts {
  march: March;
  board: string;
  bpu: BpuCosts;
  efficiency: Record<OpClass, number>;
  /** per-element work of vector classes relative to one element copy (pool: per window tap, resize: bilinear taps…) */
  vectorWork: Partial<Record<OpClass, number>>;
  compileMode: Record<CompileMode, ModeCosts>;
  optimizeLevel: Record<OptimizeLevel, LevelCosts>;
  cpu: CpuCosts;
  borders: BorderCosts;
  /** per input_type_rt */
  input: Record<string, InputCosts>;
  runtime: {
    /** per inference: task submission, scheduling, waiting for completion (hrt_model_exec's TaskPendingTime and the rest) */
    perInferenceUs: number;
  };
  /** published board numbers the constants were fitted to (calibration.test.ts checks them) */
  calibration?: {
    conditions: string;
    targets: CalibrationTarget[];
    /** allowed relative error of an estimate */
    tolerance: number;
  };
}

export interface CalibrationTarget {
  /** a fixture architecture of scripts/fixtures/architectures.ts */
  model: string;
  metric: 'bpuMs' | 'endToEndMs';
  ms: number;
  /** a key of the file's `sources` */
  source: string;
}

const cache = new Map<March, MarchCosts>();

/** The cost constants of `march` (validated once). */
export function marchCosts(march: March): MarchCosts {
  let c = cache.get(march);
  if (!c) {
    const raw = (march === 'bernoulli2' ? bernoulli2Json : bayesJson) as unknown as MarchCosts;
    const problems = validateCosts(raw);
    if (problems.length) throw new Error(`perf/marchs/${march}.json: ${problems.join('; ')}`);
    c = raw;
    cache.set(march, c);
  }
  return c;
}

/** Problems of a cost file (empty when it is complete and every number is finite and positive where it must be). */
export function validateCosts(c: MarchCosts): string[] {
  const out: string[] = [];
  const num = (path: string, v: unknown, min = 0, max = Infinity): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) out.push(`${path} must be a number in [${min}, ${max}] (is ${String(v)})`);
  };
  const b = c.bpu;
  if (!b) return ['bpu missing'];
  num('bpu.clockGHz', b.clockGHz, 1e-3);
  num('bpu.macsPerCycle', b.macsPerCycle, 1);
  num('bpu.vectorElementsPerCycle', b.vectorElementsPerCycle, 1);
  num('bpu.cores', b.cores, 1);
  num('bpu.onChipKiB', b.onChipKiB, 1);
  num('bpu.weightShare', b.weightShare, 0.01, 0.99);
  num('bpu.ddrGBps', b.ddrGBps, 1e-3);
  num('bpu.ddrEfficiency', b.ddrEfficiency, 0.01, 1);
  for (const k of ['activationChannels', 'convInputChannels', 'convOutputChannels', 'depthwiseChannels', 'width', 'height'] as const) num(`bpu.align.${k}`, b.align?.[k], 1);
  num('bpu.opOverheadUs', b.opOverheadUs);
  num('bpu.functionCallOverheadUs', b.functionCallOverheadUs);
  num('bpu.dualCoreSyncUs', b.dualCoreSyncUs);
  num('bpu.dualCoreMinRows', b.dualCoreMinRows, 1);
  num('bpu.dualCoreComputeSpeedup', b.dualCoreComputeSpeedup, 1, 2);
  num('bpu.paramBytesPerChannel', b.paramBytesPerChannel);
  if (!Array.isArray(b.coreNumSupported) || !b.coreNumSupported.includes(1)) out.push('bpu.coreNumSupported must list 1');
  for (const k of OP_CLASSES) num(`efficiency.${k}`, c.efficiency?.[k], 1e-3, 1);
  for (const m of ['latency', 'bandwidth'] as const) {
    const mc = c.compileMode?.[m];
    if (!mc) out.push(`compileMode.${m} missing`);
    else {
      num(`compileMode.${m}.residentFraction`, mc.residentFraction, 0, 1);
      num(`compileMode.${m}.holdFraction`, mc.holdFraction, 0, 1);
      num(`compileMode.${m}.computeScale`, mc.computeScale, 1);
      num(`compileMode.${m}.overlap`, mc.overlap, 0, 1);
    }
  }
  for (const l of ['O0', 'O1', 'O2', 'O3'] as const) {
    const lc = c.optimizeLevel?.[l];
    if (!lc) out.push(`optimizeLevel.${l} missing`);
    else {
      num(`optimizeLevel.${l}.efficiencyScale`, lc.efficiencyScale, 1e-3, 1);
      num(`optimizeLevel.${l}.overlapScale`, lc.overlapScale, 0, 1);
    }
  }
  num('cpu.nsPerMac', c.cpu?.nsPerMac);
  if (!c.cpu?.ops?.default) out.push('cpu.ops.default missing');
  for (const [k, v] of Object.entries(c.cpu?.ops ?? {})) {
    num(`cpu.ops.${k}.fixedUs`, v?.fixedUs);
    num(`cpu.ops.${k}.nsPerElement`, v?.nsPerElement);
  }
  for (const k of ['quantize', 'dequantize', 'inputLayoutConvert', 'outputLayoutConvert'] as const) {
    num(`borders.${k}.fixedUs`, c.borders?.[k]?.fixedUs);
    num(`borders.${k}.nsPerElement`, c.borders?.[k]?.nsPerElement);
  }
  num('runtime.perInferenceUs', c.runtime?.perInferenceUs);
  for (const t of ['nv12', 'yuv444', 'rgb', 'bgr', 'gray', 'featuremap']) {
    num(`input.${t}.fixedUs`, c.input?.[t]?.fixedUs);
    num(`input.${t}.nsPerByte`, c.input?.[t]?.nsPerByte);
  }
  return out;
}
