import { attr, attrStr, Device, Layout, Names, NX_DOMAIN, POp, Program, PValue, sameBytes } from './program';

/**
 * Layout assignment: BPU activations of rank 4 are stored NHWC (channels last, the
 * accelerator's native layout); CPU values, model inputs and model outputs keep the ONNX
 * (logical) order. Each op states what it reads and writes:
 *
 *  - NHWC operators (Conv, AvgPool, GlobalAvgPool, MaxPool, GlobalMaxPool): NHWC in, NHWC out
 *  - FC: its rows of K features must be contiguous: a plain input, or NHWC with H = W = 1
 *  - elementwise (Lut, Clip, Quantize, Dequantize on the BPU side): the input's layout
 *  - Eltwise, Requant, ConvFloatAcc and the ONNX ops the BPU runs as they are (Reshape,
 *    Transpose, Slice, Resize, …): any input layout (the runtime indexes or converts), NHWC
 *    output at rank 4 — except where the other layout makes the op a pure relabel of the same
 *    bytes (Reshape of a vector, the image input's NHWC → NCHW Transpose)
 *  - Concat: all inputs in the output's layout, the axis taken in the physical order
 *  - the ONNX ops of node_info int16 patterns (POp.int16Pattern): any input layout, plain
 *    outputs — the pattern's integer steps run in the logical order, converting once where an
 *    NHWC value enters it instead of around every step
 *  - CPU ops and model outputs: plain (Quantize keeps its input's layout: an NHWC featuremap
 *    input goes to the BPU without a conversion)
 *
 * Where a reader needs another layout than the value has, a LayoutConvert op is inserted
 * (one per value and layout): these are the `*_input_layout_convert` /
 * `*_output_layout_convert` steps at the borders of the BPU subgraphs.
 */

const NHWC_OPS = new Set(['Conv', 'AvgPool', 'GlobalAvgPool', 'MaxPool', 'GlobalMaxPool']);
const FOLLOW_OPS = new Set(['Lut', 'Clip', 'Quantize', 'Dequantize']);
/** ONNX ops that only relabel the bytes of their first input. */
export const RELABEL_OPS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

function physPerm(perm: number[], inLayout: Layout, outLayout: Layout, rank: number): number[] {
  // physical out axis j holds logical out axis lo[j] = logical in axis perm[lo[j]], which is at physical in axis pin^-1(...)
  const lo = outLayout === 'nhwc' ? [0, 2, 3, 1] : Array.from({ length: rank }, (_, i) => i);
  const li = inLayout === 'nhwc' ? [0, 2, 3, 1] : Array.from({ length: rank }, (_, i) => i);
  const inv = new Array<number>(rank);
  li.forEach((logical, phys) => (inv[logical] = phys));
  return lo.map((l) => inv[perm[l]]);
}

/** Whether a Transpose from `inLayout` to `outLayout` moves no bytes (identity up to size-1 axes). */
export function transposeIsRelabel(perm: number[], inDims: number[], inLayout: Layout, outLayout: Layout): boolean {
  const rank = inDims.length;
  const pp = physPerm(perm, inLayout, outLayout, rank);
  const inPhys = inLayout === 'nhwc' ? [inDims[0], inDims[2], inDims[3], inDims[1]] : inDims;
  const moved = pp.filter((a) => inPhys[a] > 1);
  return moved.every((a, i) => i === 0 || moved[i - 1] < a);
}

export function assignLayouts(p: Program): void {
  const names = new Names(p);
  const ops: POp[] = [];
  const converted = new Map<string, string>();
  const producerDevice = new Map<string, Device>();
  for (const i of p.inputs) producerDevice.set(i.value, 'cpu');
  const val = (v: string): PValue => p.values.get(v) as PValue;
  const isValue = (v: string): boolean => !!v && p.values.has(v);

  /** `v` in layout `want`, converting it once if needed. */
  const as = (v: string, want: Layout, reader: Device): string => {
    const pv = val(v);
    if (pv.layout === want) return v;
    const key = `${v}\u0000${want}`;
    const have = converted.get(key);
    if (have) return have;
    const name = names.fresh(want === 'nhwc' ? `${v}_nhwc` : `${v}_nchw`);
    p.values.set(name, { ...pv, name, layout: want });
    const from = pv.layout === 'nhwc' ? 'NHWC' : 'NCHW';
    const to = want === 'nhwc' ? 'NHWC' : 'NCHW';
    const device: Device = reader === 'cpu' || producerDevice.get(v) === 'cpu' ? 'cpu' : 'bpu';
    ops.push({
      name: names.fresh(`${v}_layout_convert`), type: 'LayoutConvert', domain: NX_DOMAIN, device,
      inputs: [v], outputs: [name], attrs: [attr.s('from', from), attr.s('to', to)], sources: [],
    });
    producerDevice.set(name, device);
    converted.set(key, name);
    return name;
  };

  for (const op of p.ops) {
    const nx = op.domain === NX_DOMAIN;
    const rank4 = (v: string): boolean => isValue(v) && val(v).dims.length === 4;
    const setOut = (l: Layout): void => {
      for (const o of op.outputs) if (o) val(o).layout = val(o).dims.length === 4 ? l : 'plain';
    };
    if (nx && op.type === 'Quantize') {
      // elementwise: an NHWC featuremap input is quantized as it is, ready for the BPU
      setOut(isValue(op.inputs[0]) ? val(op.inputs[0]).layout : 'plain');
    } else if (op.device === 'cpu' && !(nx && (op.type === 'Preprocess' || op.type === 'LayoutConvert'))) {
      // CPU ops read and write the logical order
      op.inputs = op.inputs.map((i) => (isValue(i) ? as(i, 'plain', 'cpu') : i));
      setOut('plain');
    } else if (nx && op.type === 'Preprocess') {
      setOut(attrStr(op, 'order') === 'NHWC' ? 'plain' : 'nhwc');
    } else if (nx && NHWC_OPS.has(op.type)) {
      op.inputs = op.inputs.map((i, k) => (k === 0 && rank4(i) ? as(i, 'nhwc', 'bpu') : i));
      setOut('nhwc');
    } else if (nx && op.type === 'FC') {
      const x = op.inputs[0];
      const pv = val(x);
      if (pv.layout === 'nhwc' && !sameBytes(pv.dims, 'nhwc', 'plain')) op.inputs[0] = as(x, 'plain', 'bpu');
      setOut('nhwc');
      for (const o of op.outputs) if (o && val(o).layout === 'nhwc' && !sameBytes(val(o).dims, 'nhwc', 'plain')) val(o).layout = 'plain';
    } else if (nx && FOLLOW_OPS.has(op.type)) {
      setOut(isValue(op.inputs[0]) ? val(op.inputs[0]).layout : 'plain');
    } else if (nx && op.type === 'Concat') {
      const o = val(op.outputs[0]);
      const want: Layout = o.dims.length === 4 && op.inputs.some((i) => isValue(i) && val(i).layout === 'nhwc') ? 'nhwc' : 'plain';
      op.inputs = op.inputs.map((i) => (isValue(i) ? as(i, want, 'bpu') : i));
      setOut(want);
    } else if (nx && op.type === 'Eltwise') {
      const o = val(op.outputs[0]);
      const same = op.inputs.filter(isValue).every((i) => val(i).dims.join(',') === o.dims.join(','));
      const anyNhwc = op.inputs.some((i) => isValue(i) && val(i).layout === 'nhwc');
      if (same && op.inputs.filter(isValue).length === 2) {
        // same shapes: elementwise in whatever layout the first input has
        const want = val(op.inputs[0]).layout;
        op.inputs = op.inputs.map((i) => (isValue(i) ? as(i, want, 'bpu') : i));
        setOut(want);
      } else setOut(anyNhwc ? 'nhwc' : 'plain');
    } else if (op.int16Pattern) {
      setOut('plain');
    } else if (!nx && op.type === 'Transpose') {
      const x = op.inputs[0];
      const o = val(op.outputs[0]);
      const perm = (op.attrs.find((a) => a.name === 'perm')?.ints ?? Array.from({ length: o.dims.length }, (_, i) => o.dims.length - 1 - i));
      const inL = isValue(x) ? val(x).layout : 'plain';
      let out: Layout = o.dims.length === 4 ? 'nhwc' : 'plain';
      if (o.dims.length === 4 && !transposeIsRelabel(perm, val(x).dims, inL, out) && transposeIsRelabel(perm, val(x).dims, inL, 'plain')) out = 'plain';
      o.layout = out;
    } else {
      // Requant, ConvFloatAcc, LayoutConvert, ONNX ops on int8: any input layout, NHWC at rank 4
      setOut('nhwc');
    }
    ops.push(op);
    for (const o of op.outputs) if (o) producerDevice.set(o, op.device);
  }
  // model outputs in the logical order
  for (const out of p.outputs) if (val(out.value).layout !== 'plain') out.value = as(out.value, 'plain', 'cpu');
  p.ops = ops;
}

/**
 * Whether `op` writes exactly the bytes it reads (a Reshape/Flatten/… or Transpose that only
 * relabels, a LayoutConvert of a value whose size-1 axes are the only ones that move): the
 * memory plan lets its output share the input's storage at O1 and above.
 */
export function isRelabel(op: POp, p: Program): boolean {
  const x = p.values.get(op.inputs[0] ?? '');
  const o = p.values.get(op.outputs[0] ?? '');
  if (!x || !o || op.outputs.filter((v) => v).length !== 1 || x.dtype !== o.dtype) return false;
  if (op.domain === NX_DOMAIN) return op.type === 'LayoutConvert' && sameBytes(x.dims, x.layout, o.layout);
  if (op.domain !== '') return false;
  if (op.type === 'Transpose') {
    const perm = op.attrs.find((a) => a.name === 'perm')?.ints ?? Array.from({ length: x.dims.length }, (_, i) => x.dims.length - 1 - i);
    return x.dims.length === o.dims.length && transposeIsRelabel(perm, x.dims, x.layout, o.layout);
  }
  if (!RELABEL_OPS.has(op.type)) return false;
  return sameBytes(x.dims, x.layout, 'plain') && sameBytes(o.dims, o.layout, 'plain');
}
