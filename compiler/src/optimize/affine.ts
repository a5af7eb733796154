import { Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { constantOf, floatTensor, floatValues, setConstantInput } from './pass';

/**
 * Folding y' = y · scale[c] + shift[c] (c = output channel, axis 1) into the weights and bias
 * of the node producing y. Shared by BatchNormalization folding and Mul/Add folding.
 */

/** Node types whose output channels are a weight axis: Conv, ConvTranspose, Gemm. */
export const AFFINE_PRODUCERS = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/** Output channels of a Conv / ConvTranspose / Gemm with constant float weights, or a reason it cannot absorb an affine map. */
export function outputChannels(model: Model, node: Node): number | string {
  if (node.domain || !AFFINE_PRODUCERS.has(node.opType)) return `${node.opType} does not have per-channel weights`;
  const w = constantOf(model, node.inputs[1]);
  if (!w) return 'its weight is not a constant';
  if (!floatValues(w)) return `its weight is ${w.dtype}`;
  const b = node.inputs[2] ? constantOf(model, node.inputs[2]) : undefined;
  if (node.inputs[2] && !b) return 'its bias is not a constant';
  if (b && b.dtype !== w.dtype) return 'its bias and weight types differ';
  if (node.opType === 'Conv') return w.dims[0];
  if (node.opType === 'ConvTranspose') {
    const group = node.int('group', 1);
    return w.dims[1] * group;
  }
  // Gemm
  if (w.rank !== 2) return 'its B is not a matrix';
  return node.int('transB', 0) ? w.dims[0] : w.dims[1];
}

/**
 * Rewrite the weights/bias of `node` (checked with `outputChannels`) so it computes
 * y · scale + shift per output channel; `scale`/`shift` undefined mean 1 and 0.
 * Arithmetic is float64; results are stored in the weight's type. Returns a reason on refusal.
 */
export function foldAffineIntoProducer(model: Model, node: Node, scale: Float64Array | undefined, shift: Float64Array | undefined): string | undefined {
  const m = outputChannels(model, node);
  if (typeof m === 'string') return m;
  if ((scale && scale.length !== m) || (shift && shift.length !== m)) return `it has ${m} output channels, the constant has ${scale?.length ?? shift?.length}`;
  const w = constantOf(model, node.inputs[1]) as Tensor;
  const label = node.name || node.outputs[0];
  if (node.opType === 'Gemm') return foldIntoGemm(model, node, w, m, scale, shift, label);
  const b = node.inputs[2] ? constantOf(model, node.inputs[2]) : undefined;
  if (scale) {
    const wv = floatValues(w) as Float64Array;
    scaleWeightRows(node, w, wv, scale);
    setConstantInput(model, node, 1, floatTensor(w.dtype, w.dims, wv), `${label}_weight_folded`);
  }
  const bv = b ? floatValues(b) as Float64Array : new Float64Array(m);
  if (!b && !shift) return undefined;
  for (let c = 0; c < m; c++) bv[c] = bv[c] * (scale ? scale[c] : 1) + (shift ? shift[c] : 0);
  setConstantInput(model, node, 2, floatTensor(w.dtype, [m], bv), `${label}_bias_folded`);
  return undefined;
}

/** wv · scale[output channel], over the weight laid out as Conv [M, C/G, k…] or ConvTranspose [C, M/G, k…]. */
function scaleWeightRows(node: Node, w: Tensor, wv: Float64Array, scale: Float64Array): void {
  const inner = w.dims.slice(2).reduce((p, q) => p * q, 1);
  if (node.opType === 'Conv') {
    const per = w.size / w.dims[0];
    for (let o = 0, i = 0; o < w.dims[0]; o++) for (let t = 0; t < per; t++, i++) wv[i] *= scale[o];
    return;
  }
  // ConvTranspose: W[c, j, k…] feeds output channel g·(M/G) + j for c in group g
  const group = node.int('group', 1);
  const [cIn, mg] = w.dims;
  const cg = cIn / group;
  for (let c = 0, i = 0; c < cIn; c++) {
    const base = ((c / cg) | 0) * mg;
    for (let j = 0; j < mg; j++) {
      const s = scale[base + j];
      for (let t = 0; t < inner; t++, i++) wv[i] *= s;
    }
  }
}

/** Gemm: columns of B' scaled (alpha kept), C becomes beta·C·scale + shift with beta = 1. */
function foldIntoGemm(model: Model, node: Node, w: Tensor, m: number, scale: Float64Array | undefined, shift: Float64Array | undefined, label: string): string | undefined {
  const beta = node.float('beta', 1);
  const cName = node.inputs[2];
  const c = cName ? constantOf(model, cName) : undefined;
  // C must broadcast along columns only ([M], [1, M] or a scalar) to stay a per-channel bias
  let cv: Float64Array | undefined;
  if (c && beta !== 0) {
    const vals = floatValues(c) as Float64Array;
    const cols = c.rank === 0 ? 1 : c.dims[c.rank - 1];
    if (c.rank > 2 || (c.rank === 2 && c.dims[0] !== 1) || (cols !== 1 && cols !== m)) return `its C [${c.dims}] is not a per-column bias`;
    cv = new Float64Array(m);
    for (let k = 0; k < m; k++) cv[k] = beta * vals[cols === 1 ? 0 : k];
  }
  if (scale) {
    const wv = floatValues(w) as Float64Array;
    const transB = node.int('transB', 0) !== 0;
    const [rows, cols] = w.dims;
    for (let r = 0, i = 0; r < rows; r++) for (let k = 0; k < cols; k++, i++) wv[i] *= scale[transB ? r : k];
    setConstantInput(model, node, 1, floatTensor(w.dtype, w.dims, wv), `${label}_weight_folded`);
  }
  if (!cv && !shift) {
    if (c && beta === 0) node.inputs.length = 2; // beta·C was 0 anyway
    return undefined;
  }
  const out = cv ?? new Float64Array(m);
  for (let k = 0; k < m; k++) out[k] = out[k] * (scale ? scale[k] : 1) + (shift ? shift[k] : 0);
  setConstantInput(model, node, 2, floatTensor(w.dtype, [m], out), `${label}_bias_folded`);
  node.setAttr('beta', { type: 'float', value: 1 });
  return undefined;
}
