import { Rng } from '../kernels/random';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { ReferenceEngine } from '../runtime/reference';
import type { BinModel } from './bin-format';

/**
 * Test helpers for the compiler and the `.bin` runtime (not a test file): random inputs in
 * the `.bin`'s input formats together with what the quantized ONNX model takes for the same
 * data — written here independently of the runtime's Preprocess op — and the bit-exact
 * comparison of both engines.
 */

export interface PairedFeeds {
  /** feeds of the `.bin` (uint8 images in input_type_rt / input_layout_rt, NV12, float featuremaps) */
  bin: Record<string, Tensor>;
  /** the same data as `***_quantized_model.onnx` takes it (int8 x − 128 in its layout, float32) */
  ref: Record<string, Tensor>;
}

function nchwToNhwc<T extends Int8Array | Float32Array>(src: T, [n, c, h, w]: number[]): T {
  const out = new (src.constructor as { new (n: number): T })(src.length);
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + k] = src[((b * c + k) * h + y) * w + x];
  return out;
}

function nhwcToNchw<T extends Int8Array | Float32Array>(src: T, [n, h, w, c]: number[]): T {
  const out = new (src.constructor as { new (n: number): T })(src.length);
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * c + k) * h + y) * w + x] = src[((b * h + y) * w + x) * c + k];
  return out;
}

/** Random feeds for every `.bin` input and the quantized model's equivalent. */
export function pairedFeeds(bin: BinModel, quantized: Model, rng: Rng): PairedFeeds {
  const out: PairedFeeds = { bin: {}, ref: {} };
  for (const io of bin.inputs) {
    const qv = quantized.graph.inputs.find((v) => v.name === io.name);
    const qDims = (qv?.type?.shape ?? io.shape) as number[];
    const n = io.shape.reduce((a, b) => a * b, 1);
    if (io.dtype === 'uint8') {
      const u = new Uint8Array(n);
      for (let i = 0; i < n; i++) u[i] = rng.int(256);
      out.bin[io.name] = new Tensor('uint8', io.shape, u);
      // the image as NHWC int8 (x − 128)
      let nhwc: Int8Array;
      let dims: number[];
      if (io.typeRt === 'nv12') {
        const [N, H3, W] = io.shape;
        const H = (H3 * 2) / 3;
        dims = [N, H, W, 3];
        nhwc = new Int8Array(N * H * W * 3);
        for (let b = 0; b < N; b++) {
          const base = b * H3 * W;
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              const o = ((b * H + y) * W + x) * 3;
              const uv = base + H * W + (y >> 1) * W + (x >> 1) * 2;
              nhwc[o] = u[base + y * W + x] - 128;
              nhwc[o + 1] = u[uv] - 128;
              nhwc[o + 2] = u[uv + 1] - 128;
            }
          }
        }
      } else if (io.layout === 'NHWC') {
        dims = io.shape.slice();
        nhwc = Int8Array.from(u, (v) => v - 128);
      } else {
        dims = [io.shape[0], io.shape[2], io.shape[3], io.shape[1]];
        nhwc = nchwToNhwc(Int8Array.from(u, (v) => v - 128), io.shape);
      }
      // the quantized model's input: NHWC when its last dim holds the channels, else NCHW
      const qNhwc = qDims[3] === dims[3] && qDims[1] === dims[1] && qDims[2] === dims[2];
      out.ref[io.name] = qNhwc ? new Tensor('int8', dims, nhwc) : new Tensor('int8', [dims[0], dims[3], dims[1], dims[2]], nhwcToNchw(nhwc, dims));
    } else if (io.dtype === 'float32') {
      const f = rng.fillNormal(new Float32Array(n), 0, 1);
      out.bin[io.name] = new Tensor('float32', io.shape, f);
      const sameShape = qDims.length === io.shape.length && qDims.every((d, i) => d === io.shape[i]);
      out.ref[io.name] = sameShape || io.shape.length !== 4 ? new Tensor('float32', qDims, f) : new Tensor('float32', qDims, nhwcToNchw(f, io.shape));
    } else {
      const a = new Int8Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.int(256) - 128;
      out.bin[io.name] = new Tensor(io.dtype, io.shape, a);
      out.ref[io.name] = new Tensor(io.dtype, qDims, a);
    }
  }
  return out;
}

export interface Agreement {
  samples: number;
  elements: number;
  /** first mismatch, if any */
  mismatch?: string;
}

/**
 * Run both on `samples` random inputs and compare every output bit for bit (floats by their
 * bit patterns: NaN = NaN, −0 ≠ +0 is not tolerated either).
 */
export function compareWithReference(
  run: (feeds: Record<string, Tensor>) => Record<string, Tensor>,
  bin: BinModel,
  quantized: Model,
  samples: number,
  seed: number,
  refOutput: (name: string, ref: Record<string, Tensor>) => Tensor = (name, ref) => ref[name],
): Agreement {
  const rng = new Rng(seed);
  const ref = new ReferenceEngine(quantized);
  let elements = 0;
  for (let s = 0; s < samples; s++) {
    const f = pairedFeeds(bin, quantized, rng);
    const want = ref.runSync(f.ref, { fetch: bin.outputs.filter((o) => !quantized.graph.outputs.some((q) => q.name === o.name)).map((o) => o.name).filter((n) => quantized.graph.nodes.some((nd) => nd.outputs.includes(n))) });
    const got = run(f.bin);
    for (const o of bin.outputs) {
      const a = got[o.name];
      const b = refOutput(o.name, want);
      if (!a || !b) return { samples: s, elements, mismatch: `output '${o.name}' missing (${a ? 'reference' : 'bin'})` };
      const x = a.data as ArrayLike<number>;
      const y = b.data as ArrayLike<number>;
      if (a.dtype !== b.dtype || x.length !== y.length) return { samples: s, elements, mismatch: `output '${o.name}': ${a.dtype}[${a.dims}] vs ${b.dtype}[${b.dims}]` };
      for (let i = 0; i < x.length; i++) {
        if (!Object.is(x[i], y[i])) return { samples: s, elements, mismatch: `output '${o.name}'[${i}] of sample ${s}: ${x[i]} vs ${y[i]}` };
      }
      elements += x.length;
    }
  }
  return { samples, elements };
}

// ------------------------------------------------------------------------------------------
// quantized models through the real pipeline (in memory)

export interface PipelineOptions {
  /** HzPreprocess of image inputs (as the check stage inserts it) */
  preprocess?: import('../preprocess/hz-preprocess').InputSpec[];
  march?: 'bernoulli2' | 'bayes';
  runOnCpu?: string[];
  /** node_info (bayes): ON and InputType/OutputType per node; OutputType int16 nodes compute in int16 */
  nodeInfo?: Record<string, import('../check/placement').NodeInfoOverride>;
  outputType?: 'float32' | 'int8' | 'int16';
  /** calibration samples (absmax over seeded random inputs; default 2) */
  samples?: number;
  seed?: number;
}

export interface PipelineModels {
  /** the optimized float model (with HzPreprocess) */
  optimized: Model;
  placement: import('../check/placement').Placement;
  cpuNodes: Set<string>;
  quantized: Model;
}

/** float model → HzPreprocess → optimisation → placement → absmax thresholds → `***_quantized_model.onnx`. */
export function quantizeThroughPipeline(float: Model, o: PipelineOptions = {}): PipelineModels {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { insertPreprocess } = require('../preprocess/hz-preprocess') as typeof import('../preprocess/hz-preprocess');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { optimizeModel } = require('../optimize/pipeline') as typeof import('../optimize/pipeline');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { placeModel } = require('../check/placement') as typeof import('../check/placement');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { emitQuantizedModel } = require('../quantize') as typeof import('../quantize');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { maxThresholds, randomFeeds } = require('../quantize/quantize.test.util') as typeof import('../quantize/quantize.test.util');
  const pre = o.preprocess?.length ? insertPreprocess(float, o.preprocess).model : float;
  optimizeModel(pre);
  const march = o.march ?? 'bernoulli2';
  const placement = placeModel(pre, { march, runOnCpu: o.runOnCpu, ...(o.nodeInfo ? { nodeInfo: o.nodeInfo } : {}) });
  const cpuNodes = new Set(placement.nodes.filter((n) => n.on === 'CPU').map((n) => n.name));
  // as the stages do (stages/artifacts.ts): the nodes check.json gives an int16 output
  const int16Nodes = new Set(placement.nodes.filter((n) => n.outputType === 'int16').map((n) => n.name));
  const quantized = emitQuantizedModel(pre, {
    activations: maxThresholds(pre, randomFeeds(pre, o.samples ?? 2, o.seed ?? 1)),
    cpuNodes,
    march,
    ...(int16Nodes.size ? { int16Nodes } : {}),
    ...(o.outputType ? { outputType: o.outputType } : {}),
  });
  return { optimized: pre, placement, cpuNodes, quantized };
}
