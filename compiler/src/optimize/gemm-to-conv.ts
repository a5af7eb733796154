import { intsOf } from '../kernels/op-args';
import { Dim, Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { ValueFacts } from '../ops/registry';
import { addInitializer, constantOf, describe, floatTensor, floatValues, freshName, isGraphOutput, onlyReadBy, PassResult, perChannel, readersOf, shapeFacts } from './pass';

export interface GemmToConvOptions {
  /** Largest H or W of the flattened map turned into a conv window (default 7, a VGG fc6 7×7 head). */
  maxKernel?: number;
}

/**
 * A fully connected layer applied to a flattened feature map becomes a convolution, which the
 * BPU runs natively (a Gemm/MatMul would run as a 1×1 conv on a reshaped tensor anyway):
 *
 *   x[N,C,H,W] → Flatten(axis 1) | Reshape([0,-1] / [N,-1] / [-1,CHW] / [0,CHW]) | Squeeze(axes 2,3; H=W=1)
 *     → Gemm(transA 0, constant B, constant per-column or absent C)   or   MatMul(constant B[CHW, M]) [→ Add(per-column constant)]
 *   ⇒ x → Conv(W[M,C,H,W] = alpha·B'ᵀ, bias = beta·C (+ added constant), kernel H×W, no pad) → Flatten(axis 1)
 *
 * The output keeps its name and shape [N, M]. C, H, W must be static and H, W ≤ maxKernel.
 * Not converted: 2-D inputs that do not come from such a flatten, transA = 1, non-constant
 * weights, C that varies per row, MatMul with a batched (rank > 2) weight.
 */
export function gemmToConv(model: Model, opts: GemmToConvOptions = {}): PassResult {
  const g = model.graph;
  const maxKernel = opts.maxKernel ?? 7;
  const notes: string[] = [];
  let changed = 0;
  let facts: Map<string, ValueFacts> | undefined | null;
  const shapeOf = (v: string): Dim[] | undefined => {
    const s = g.typeOf(v)?.shape;
    if (s && s.slice(1).every((d) => typeof d === 'number')) return s;
    if (facts === undefined) facts = shapeFacts(model);
    return facts?.get(v)?.shape ?? s;
  };
  for (const fc of g.nodes.slice()) {
    if (fc.domain || (fc.opType !== 'Gemm' && fc.opType !== 'MatMul')) continue;
    const flat = g.nodes.find((n) => n.outputs[0] === fc.inputs[0]);
    if (!flat || flat.domain) continue;
    const x = flat.inputs[0];
    const xs = shapeOf(x);
    if (!xs || xs.length !== 4 || !xs.slice(1).every((d) => typeof d === 'number')) continue;
    const [, c, h, w] = xs as [Dim, number, number, number];
    if (!flattensToBatch(model, flat, xs)) continue;
    const why = convert(model, fc, flat, x, c, h, w, maxKernel);
    if (why) notes.push(`kept ${describe(fc)}: ${why}`);
    else changed++;
  }
  if (changed) notes.unshift(`${changed} Gemm/MatMul on a flattened feature map became Conv + Flatten`);
  return { changed, notes };
}

/** `flat` maps x[N, C, H, W] to [N, C·H·W] (row-major, so Flatten's element order). */
function flattensToBatch(model: Model, flat: Node, xs: Dim[]): boolean {
  const chw = (xs[1] as number) * (xs[2] as number) * (xs[3] as number);
  if (flat.opType === 'Flatten') return flat.int('axis', 1) === 1 || flat.int('axis', 1) === -3;
  if (flat.opType === 'Squeeze') {
    const axesIn = flat.inputs[1] ? constantOf(model, flat.inputs[1]) : undefined;
    if (flat.inputs[1] && !axesIn) return false;
    const axes = (axesIn ? intsOf(axesIn) : flat.ints('axes'))?.map((a) => (a < 0 ? a + 4 : a)).sort();
    return xs[2] === 1 && xs[3] === 1 && axes?.length === 2 && axes[0] === 2 && axes[1] === 3;
  }
  if (flat.opType === 'Reshape') {
    const s = constantOf(model, flat.inputs[1]);
    const t = s && intsOf(s);
    if (!t || t.length !== 2) return false;
    const zeroIsLiteral = flat.int('allowzero', 0) !== 0;
    const keepsBatch = (t[0] === 0 && !zeroIsLiteral) || (typeof xs[0] === 'number' && t[0] === xs[0]) || (t[0] === -1 && t[1] === chw);
    return keepsBatch && (t[1] === chw || (t[1] === -1 && t[0] !== -1));
  }
  return false;
}

function convert(model: Model, fc: Node, flat: Node, x: string, c: number, h: number, w: number, maxKernel: number): string | undefined {
  const g = model.graph;
  if (h > maxKernel || w > maxKernel) return `the flattened map is ${h}×${w}, larger than a ${maxKernel}×${maxKernel} conv window`;
  const k = c * h * w;
  const b = constantOf(model, fc.inputs[1]);
  const bv = b && floatValues(b);
  if (!b || !bv) return 'its weight is not a float constant';
  if (b.rank !== 2) return `its weight [${b.dims}] is not a matrix`;
  let alpha = 1;
  let transB = false;
  let bias: Float64Array | undefined;
  let out = fc.outputs[0];
  let absorbed: Node | undefined;
  if (fc.opType === 'Gemm') {
    if (fc.int('transA', 0) !== 0) return 'transA = 1';
    alpha = fc.float('alpha', 1);
    transB = fc.int('transB', 0) !== 0;
    const beta = fc.float('beta', 1);
    if (fc.inputs[2] && beta !== 0) {
      const ct = constantOf(model, fc.inputs[2]);
      if (!ct) return 'its C is not a constant';
      bias = columnBias(ct, b, transB);
      if (!bias) return `its C [${ct.dims}] is not a per-column bias`;
      bias = bias.map((v) => v * beta);
    }
  } else {
    // MatMul [N, K] × [K, M], and an Add of a per-column constant right after it becomes the bias
    const readers = readersOf(g);
    const add = (readers.get(out) ?? [])[0];
    if (add && add.opType === 'Add' && !add.domain && onlyReadBy(g, readers, out, add)) {
      const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
      const ct = other !== out ? constantOf(model, other) : undefined;
      const v = ct && ct.dtype === b.dtype ? perChannel(ct, 2, 1, b.dims[1]) : undefined;
      if (v) {
        bias = v;
        absorbed = add;
        out = add.outputs[0];
      }
    }
  }
  const m = transB ? b.dims[0] : b.dims[1];
  if ((transB ? b.dims[1] : b.dims[0]) !== k) return `its weight [${b.dims}] does not take ${c}·${h}·${w} = ${k} features`;
  // W[o, j] over j = (ci·H + y)·W + x, Flatten's order
  const wv = new Float64Array(m * k);
  for (let o = 0; o < m; o++) for (let j = 0; j < k; j++) wv[o * k + j] = alpha * bv[transB ? o * k + j : j * m + o];
  const label = fc.name || fc.outputs[0];
  const wName = freshName(g, `${label}_conv_weight`);
  addInitializer(model, wName, floatTensor(b.dtype, [m, c, h, w], wv));
  const inputs = [x, wName];
  if (bias) {
    const bName = freshName(g, `${label}_conv_bias`);
    addInitializer(model, bName, floatTensor(b.dtype, [m], bias));
    inputs.push(bName);
  }
  const convOut = freshName(g, `${label}_conv_out`);
  const conv = new Node({
    opType: 'Conv', name: `${label}_conv`, inputs, outputs: [convOut],
    attrs: { kernel_shape: { type: 'ints', value: [h, w] }, pads: { type: 'ints', value: [0, 0, 0, 0] }, strides: { type: 'ints', value: [1, 1] } },
  });
  const flatten = new Node({ opType: 'Flatten', name: `${label}_flatten`, inputs: [convOut], outputs: [out], attrs: { axis: { type: 'int', value: 1 } } });
  if (absorbed) g.nodes.splice(g.nodes.indexOf(absorbed), 1);
  const readers = readersOf(g);
  g.replaceNode(fc, [conv, flatten]);
  if (onlyReadBy(g, readers, flat.outputs[0], fc) && !isGraphOutput(g, flat.outputs[0])) g.nodes.splice(g.nodes.indexOf(flat), 1);
  return undefined;
}

/** Gemm's C as a bias over the M output columns ([M], [1, M] or a scalar), or undefined. */
function columnBias(ct: Tensor, b: Tensor, transB: boolean): Float64Array | undefined {
  if (ct.dtype !== b.dtype) return undefined;
  const m = transB ? b.dims[0] : b.dims[1];
  return perChannel(ct, 2, 1, m);
}
