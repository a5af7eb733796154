import { BinModel, BinOp, BinTensor, BinValue, attrOf } from '../compile/bin-format';
import { DType } from '../onnx/dtype';
import { constantValues } from './boundary';

/**
 * Hand-built `.bin` models for the tools' tests (not a test file). `boundaryModel` is shaped
 * like a compiled featuremap model: a CPU segment at the input (Transpose NCHW→NHWC, then
 * Quantize), a BPU segment (a 1×1 integer convolution and a global average pool), and a CPU
 * segment at the outputs (Dequantize → Reshape → Softmax for `prob`, an ONNX-style
 * DequantizeLinear with constant scale / zero point for `pool`).
 *
 * `interpret` executes such a model in float64 with the ops' textbook definitions (a test
 * oracle for the rewiring of model-modifier, independent of the real runtime).
 */

const V = (name: string, dtype: DType, shape: number[], layout: string, scale: number, offset: number): BinValue => {
  const bytes = shape.reduce((a, b) => a * b, 1) * (dtype === 'float32' || dtype === 'int32' ? 4 : dtype === 'int64' ? 8 : 1);
  return { name, dtype, shape, layout, scale, offset, bytes, firstUse: 0, lastUse: 0 };
};

function raw(dtype: DType, values: number[]): Uint8Array {
  const t =
    dtype === 'int8' ? Int8Array.from(values) : dtype === 'int32' ? Int32Array.from(values) : dtype === 'int64' ? BigInt64Array.from(values.map(BigInt)) : Float32Array.from(values);
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
}

const C = (name: string, dtype: DType, dims: number[], values: number[]): BinTensor => ({ name, dtype, dims, raw: raw(dtype, values) });

const op = (name: string, type: string, inputs: string[], outputs: string[], attrs: BinOp['attrs'] = []): BinOp => ({
  name, type, domain: '', inputs, outputs, attrs, sourceNodes: [name], functionCall: 0,
});

export const IN_SCALE = 0.0234375;
export const CONV_SCALE = 0.05;
export const POOL_SCALE = 0.04;

export function boundaryModel(name = 'featnet', march = 'bernoulli2'): BinModel {
  const w = Array.from({ length: 16 * 3 }, (_, i) => ((i * 37) % 41) - 20);
  const bias = Array.from({ length: 16 }, (_, i) => (i - 8) * 3);
  const m: BinModel = {
    name,
    march,
    deps: { nxPtqVersion: '0.1.0', compilerVersion: '0.1.0', runtimeVersion: '0.1.0', formatVersion: 1 },
    params: [
      {
        group: 'model_parameters', input: '', params: [
          { key: 'onnx_model', value: '/models/featnet.onnx' }, { key: 'BPU march', value: march },
          { key: 'layer_out_dump', value: 'False' }, { key: 'working dir', value: '/models/model_output' },
          { key: 'output_model_file_prefix', value: name },
        ],
      },
      {
        group: 'input_parameters', input: 'data', params: [
          { key: 'input_name', value: 'data' }, { key: 'input_type_rt', value: 'featuremap' },
          { key: 'input_space&range', value: 'regular' }, { key: 'input_layout_rt', value: 'NCHW' },
          { key: 'input_type_train', value: 'featuremap' }, { key: 'input_layout_train', value: 'NCHW' },
          { key: 'norm_type', value: 'no_preprocess' }, { key: 'input_shape', value: '1x3x4x4' },
          { key: 'cal_data_dir', value: '/models/calibration_data' },
        ],
      },
      { group: 'calibration_parameters', input: '', params: [{ key: 'preprocess_on', value: 'False' }, { key: 'calibration_type', value: 'max' }] },
      { group: 'compiler_parameters', input: '', params: [{ key: 'hbdk_pass_through_params', value: '--fast --O3' }, { key: 'input-source', value: "{'data': 'ddr', '_default_value': 'ddr'}" }] },
    ],
    inputs: [{ name: 'data', value: 'data', dtype: 'float32', shape: [1, 3, 4, 4], layout: 'NCHW', typeRt: 'featuremap', typeTrain: 'featuremap', spaceAndRange: 'regular', source: 'ddr', scale: 0, zeroPoint: 0 }],
    outputs: [
      { name: 'prob', value: 'prob', dtype: 'float32', shape: [1, 256], layout: '', typeRt: '', typeTrain: '', spaceAndRange: '', source: '', scale: 0, zeroPoint: 0 },
      { name: 'pool', value: 'pool', dtype: 'float32', shape: [1, 1, 1, 16], layout: 'NHWC', typeRt: '', typeTrain: '', spaceAndRange: '', source: '', scale: 0, zeroPoint: 0 },
    ],
    values: [
      V('data', 'float32', [1, 3, 4, 4], 'NCHW', 0, -1),
      V('data_nhwc', 'float32', [1, 4, 4, 3], 'NHWC', 0, 0),
      V('data_q', 'int8', [1, 4, 4, 3], 'NHWC', IN_SCALE, 192),
      V('conv_out', 'int8', [1, 4, 4, 16], 'NHWC', CONV_SCALE, 0),
      V('pool_out', 'int8', [1, 1, 1, 16], 'NHWC', POOL_SCALE, 256),
      V('conv_out_f', 'float32', [1, 4, 4, 16], 'NHWC', 0, 272),
      V('logits', 'float32', [1, 256], '', 0, 1296),
      V('prob', 'float32', [1, 256], '', 0, -1),
      V('pool', 'float32', [1, 1, 1, 16], 'NHWC', 0, -1),
    ],
    tensors: [
      C('conv0_w', 'int8', [16, 3], w),
      C('conv0_b', 'int32', [16], bias),
      C('pool_scale', 'float32', [], [POOL_SCALE]),
      C('pool_zp', 'int8', [], [0]),
      C('fc_shape', 'int64', [2], [1, 256]),
    ],
    segments: [
      {
        name: 'featnet_cpu_0', kind: 'cpu', inputs: ['data'], outputs: ['data_q'],
        ops: [
          op('data_NCHW2NHWC_LayoutConvert_Input0', 'Transpose', ['data'], ['data_nhwc'], [{ name: 'perm', ints: [0, 2, 3, 1] }]),
          op('data_HzQuantize', 'Quantize', ['data_nhwc'], ['data_q'], [{ name: 'scale', f: IN_SCALE }, { name: 'zero_point', i: 0 }]),
        ],
      },
      {
        name: 'featnet_subgraph_0', kind: 'bpu', inputs: ['data_q'], outputs: ['conv_out', 'pool_out'],
        ops: [
          op('conv0', 'Conv1x1', ['data_q', 'conv0_w', 'conv0_b'], ['conv_out'], [{ name: 'multiplier', f: (IN_SCALE * 0.01) / CONV_SCALE }]),
          op('pool0', 'GlobalAveragePool', ['conv_out'], ['pool_out'], [{ name: 'multiplier', f: CONV_SCALE / POOL_SCALE }]),
        ],
      },
      {
        name: 'featnet_cpu_1', kind: 'cpu', inputs: ['conv_out', 'pool_out'], outputs: ['prob', 'pool'],
        ops: [
          op('conv_out_HzDequantize', 'Dequantize', ['conv_out'], ['conv_out_f'], [{ name: 'scale', f: CONV_SCALE }, { name: 'zero_point', i: 0 }]),
          op('fc_reshape_0', 'Reshape', ['conv_out_f', 'fc_shape'], ['logits']),
          op('prob_softmax', 'Softmax', ['logits'], ['prob'], [{ name: 'axis', i: 1 }]),
          op('pool_out_HzDequantize', 'DequantizeLinear', ['pool_out', 'pool_scale', 'pool_zp'], ['pool']),
        ],
      },
    ],
    arenaBytes: 2320,
    deletedNodes: [],
    perfJson: '',
    debug: false,
    graphName: name,
  };
  // first/last use steps of the memory plan
  const steps = m.segments.flatMap((s) => s.ops);
  for (const v of m.values) {
    const uses = steps.map((o, i) => (o.inputs.includes(v.name) || o.outputs.includes(v.name) ? i : -1)).filter((i) => i >= 0);
    v.firstUse = uses.length ? uses[0] : 0;
    v.lastUse = uses.length ? uses[uses.length - 1] : 0;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// a float64 oracle for these op types

type Arr = { dims: number[]; data: Float64Array };

const roundHalfEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const clampInt = (x: number): number => Math.max(-128, Math.min(127, x));

function num(m: BinModel, o: BinOp, name: string, index: number): number[] {
  const a = attrOf(o.attrs, name);
  if (a?.f !== undefined) return [a.f];
  if (a?.i !== undefined) return [a.i];
  if (a?.ints) return a.ints;
  if (a?.floats) return a.floats;
  const t = m.tensors.find((x) => x.name === o.inputs[index]);
  if (!t) throw new Error(`${o.name}: no ${name}`);
  return constantValues(t) as number[];
}

export function transpose(x: Arr, perm: number[]): Arr {
  const dims = perm.map((p) => x.dims[p]);
  const strides = x.dims.map((_, i) => x.dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float64Array(x.data.length);
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < out.length; k++) {
    let src = 0;
    for (let d = 0; d < dims.length; d++) src += idx[d] * strides[perm[d]];
    out[k] = x.data[src];
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return { dims, data: out };
}

/** ONNX QuantizeLinear: the division in float32, then round half to even. */
export function quantize(x: Arr, scale: number, zp: number): Arr {
  const s = Math.fround(scale);
  return { dims: x.dims, data: x.data.map((v) => clampInt(roundHalfEven(Math.fround(Math.fround(v) / s)) + zp)) };
}

/** ONNX DequantizeLinear: float32 arithmetic. */
export function dequantize(x: Arr, scale: number, zp: number): Arr {
  const s = Math.fround(scale);
  return { dims: x.dims, data: x.data.map((v) => Math.fround(Math.fround(v - zp) * s)) };
}

export function softmax(x: Arr, axis: number): Arr {
  if (axis !== 1 || x.dims.length !== 2) throw new Error('oracle softmax: axis 1 of a 2-D value only');
  const [n, c] = x.dims;
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) {
    let mx = -Infinity;
    for (let i = 0; i < c; i++) mx = Math.max(mx, x.data[b * c + i]);
    let s = 0;
    for (let i = 0; i < c; i++) s += Math.exp(x.data[b * c + i] - mx);
    for (let i = 0; i < c; i++) out[b * c + i] = Math.exp(x.data[b * c + i] - mx) / s;
  }
  return { dims: x.dims, data: out };
}

/** Run a model built like `boundaryModel` (or a modified one) on float64 feeds. */
export function interpret(m: BinModel, feeds: Record<string, Arr>): Record<string, Arr> {
  const env = new Map<string, Arr>();
  for (const io of m.inputs) {
    const f = feeds[io.name];
    if (!f) throw new Error(`no feed for ${io.name}`);
    const v = m.values.find((x) => x.name === io.value) as BinValue;
    if (f.dims.join() !== v.shape.join()) throw new Error(`feed ${io.name} has dims ${f.dims}, value ${v.name} ${v.shape}`);
    env.set(io.value, f);
  }
  for (const s of m.segments) {
    for (const o of s.ops) {
      const x = env.get(o.inputs[0]) as Arr;
      if (!x) throw new Error(`${o.name} reads '${o.inputs[0]}' before it exists`);
      let y: Arr;
      switch (o.type) {
        case 'Transpose': y = transpose(x, num(m, o, 'perm', 1)); break;
        case 'Quantize': y = quantize(x, num(m, o, 'scale', 1)[0], num(m, o, 'zero_point', 2)[0]); break;
        case 'Dequantize':
        case 'DequantizeLinear': y = dequantize(x, num(m, o, 'scale', 1)[0], num(m, o, 'zero_point', 2)[0]); break;
        case 'Reshape': {
          // like the runtime: an NHWC-stored value is reshaped in its logical (NCHW) order
          const nhwc = m.values.find((v) => v.name === o.inputs[0])?.layout === 'NHWC' && x.dims.length === 4;
          y = { dims: num(m, o, 'shape', 1), data: (nhwc ? transpose(x, [0, 3, 1, 2]) : x).data };
          break;
        }
        case 'Softmax': y = softmax(x, num(m, o, 'axis', 99)[0]); break;
        case 'Conv1x1': {
          const w = constantValues(m.tensors.find((t) => t.name === o.inputs[1]) as BinTensor) as number[];
          const b = constantValues(m.tensors.find((t) => t.name === o.inputs[2]) as BinTensor) as number[];
          const mult = num(m, o, 'multiplier', 99)[0];
          const cin = x.dims[3];
          const cout = b.length;
          const px = x.data.length / cin;
          const out = new Float64Array(px * cout);
          for (let p = 0; p < px; p++) {
            for (let k = 0; k < cout; k++) {
              let acc = b[k];
              for (let c = 0; c < cin; c++) acc += x.data[p * cin + c] * w[k * cin + c];
              out[p * cout + k] = clampInt(roundHalfEven(acc * mult));
            }
          }
          y = { dims: [...x.dims.slice(0, 3), cout], data: out };
          break;
        }
        case 'GlobalAveragePool': {
          const c = x.dims[3];
          const px = x.data.length / c;
          const mult = num(m, o, 'multiplier', 99)[0];
          const out = new Float64Array(c);
          for (let k = 0; k < c; k++) {
            let s = 0;
            for (let p = 0; p < px; p++) s += x.data[p * c + k];
            out[k] = clampInt(roundHalfEven((s / px) * mult));
          }
          y = { dims: [1, 1, 1, c], data: out };
          break;
        }
        default:
          throw new Error(`oracle: op type ${o.type}`);
      }
      env.set(o.outputs[0], y);
    }
  }
  const out: Record<string, Arr> = {};
  for (const io of m.outputs) out[io.name] = env.get(io.value) as Arr;
  return out;
}

/** `Tensor`-free helper: an Arr from numbers. */
export function arr(dims: number[], values: ArrayLike<number>): Arr {
  return { dims: dims.slice(), data: Float64Array.from(values) };
}

export type { Arr };
