import { Dim, Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { ValueFacts } from '../ops/registry';
import { AFFINE_PRODUCERS, foldAffineIntoProducer, outputChannels } from './affine';
import { constantOf, describe, floatTensor, floatValues, isGraphOutput, onlyReadBy, PassResult, perChannel, readersOf, setConstantInput, shapeFacts } from './pass';

const ARITH = new Set(['Mul', 'Div', 'Add', 'Sub']);

/**
 * Elementwise arithmetic with a per-channel (or scalar) constant next to a convolution is
 * folded into its weights, exactly:
 * - after a Conv / ConvTranspose / Gemm whose output nothing else reads: y·k, y/k (k ≠ 0),
 *   y + k, y − k become weight and bias scaling / bias offsets;
 * - before Convs that are the only readers: x·k and x/k scale the weights per input channel
 *   (zero padding stays zero under scaling); x + k and x − k become a bias offset only when
 *   the Conv has no padding (a padded border would see 0 instead of k, so it is refused).
 * Refused: k − y and k / y, constants varying along any axis but the channel axis (or that
 * would broadcast the tensor to a bigger shape), non-float types, and per-channel constants
 * before a Conv whose input channel count is unknown.
 */
export function foldScaleIntoConv(model: Model): PassResult {
  const g = model.graph;
  const notes: string[] = [];
  let changed = 0;
  let facts: Map<string, ValueFacts> | undefined | null;
  const shapeOf = (v: string): Dim[] | undefined => {
    const s = g.typeOf(v)?.shape;
    if (s && typeof s[1] === 'number') return s;
    if (facts === undefined) facts = shapeFacts(model);
    return facts?.get(v)?.shape ?? s;
  };
  for (const node of g.nodes.slice()) {
    if (node.domain || !ARITH.has(node.opType) || node.inputs.length !== 2) continue;
    const [a, b] = node.inputs;
    const ka = constantOf(model, a);
    const kb = constantOf(model, b);
    if ((ka === undefined) === (kb === undefined)) continue; // needs exactly one constant operand
    const constFirst = ka !== undefined;
    const k = (ka ?? kb) as Tensor;
    const x = constFirst ? b : a;
    const after = foldAfter(model, node, x, k, constFirst);
    if (after === true) {
      changed++;
      continue;
    }
    const before = after === undefined ? foldBefore(model, node, x, k, constFirst, shapeOf) : after;
    if (before === true) changed++;
    else if (before) notes.push(`kept ${describe(node)}: ${before}`);
  }
  if (changed) notes.unshift(`${changed} Mul/Div/Add/Sub by a constant folded into Conv/Gemm weights`);
  return { changed, notes };
}

/** true when folded into the producer of x, a reason when it should have been but cannot, undefined when there is no such producer. */
function foldAfter(model: Model, node: Node, x: string, k: Tensor, constFirst: boolean): true | string | undefined {
  const g = model.graph;
  const producer = g.nodes.find((n) => n.outputs[0] === x);
  if (!producer || producer.domain || !AFFINE_PRODUCERS.has(producer.opType)) return undefined;
  if (!onlyReadBy(g, readersOf(g), x, node)) return undefined;
  const m = outputChannels(model, producer);
  if (typeof m === 'string') return undefined;
  const w = constantOf(model, producer.inputs[1]) as Tensor;
  if (k.dtype !== w.dtype) return `the constant is ${k.dtype}, ${describe(producer)} computes ${w.dtype}`;
  const rank = producer.opType === 'Gemm' ? 2 : w.rank;
  const v = perChannel(k, rank, 1, m);
  if (!v) return `the constant [${k.dims}] is not per output channel of ${describe(producer)}`;
  let scale: Float64Array | undefined;
  let shift: Float64Array | undefined;
  if (constFirst && (node.opType === 'Sub' || node.opType === 'Div')) return `${node.opType} has the constant first`;
  if (node.opType === 'Mul') scale = v;
  else if (node.opType === 'Div') {
    if (v.some((e) => e === 0)) return 'it divides by zero';
    scale = v.map((e) => 1 / e);
  } else if (node.opType === 'Add') shift = v;
  else shift = v.map((e) => -e);
  const why = foldAffineIntoProducer(model, producer, scale, shift);
  if (why) return `cannot fold into ${describe(producer)}: ${why}`;
  g.removeNode(node, x);
  return true;
}

/** true when folded into the Convs reading the result, a reason when refused, undefined when no Conv reads it. */
function foldBefore(model: Model, node: Node, x: string, k: Tensor, constFirst: boolean, shapeOf: (v: string) => Dim[] | undefined): true | string | undefined {
  const g = model.graph;
  const z = node.outputs[0];
  const readers = readersOf(g).get(z) ?? [];
  if (!readers.length || readers.some((r) => r.opType !== 'Conv' || r.domain)) return undefined;
  if (isGraphOutput(g, z)) return undefined;
  if (constFirst && (node.opType === 'Sub' || node.opType === 'Div')) return `${node.opType} has the constant first`;
  const plans: (() => void)[] = [];
  for (const conv of readers) {
    if (conv.inputs[0] !== z || conv.inputs.slice(1).includes(z)) return `${describe(conv)} reads it as a weight`;
    const w = constantOf(model, conv.inputs[1]);
    const wv = w && floatValues(w);
    if (!w || !wv) return `the weight of ${describe(conv)} is not a float constant`;
    const bias = conv.inputs[2] ? constantOf(model, conv.inputs[2]) : undefined;
    if (conv.inputs[2] && !bias) return `the bias of ${describe(conv)} is not a constant`;
    if (k.dtype !== w.dtype) return `the constant is ${k.dtype}, ${describe(conv)} computes ${w.dtype}`;
    const group = conv.int('group', 1);
    const cg = w.dims[1];
    const channels = cg * group;
    const v = perChannel(k, w.rank, 1, channels);
    if (!v) return `the constant [${k.dims}] is not per input channel of ${describe(conv)}`;
    // the constant must not broadcast x to more channels or a higher rank
    const perChannelConst = k.rank > 0 && k.dims[k.rank - w.rank + 1] === channels && channels > 1;
    const xs = perChannelConst || k.rank === w.rank ? shapeOf(x) : undefined;
    if (perChannelConst && xs?.[1] !== channels) return `the channel count of '${x}' is unknown or broadcast by the constant`;
    if (k.rank === w.rank && xs?.length !== w.rank) return `the rank of '${x}' is unknown or raised by the constant`;
    const isScale = node.opType === 'Mul' || node.opType === 'Div';
    if (node.opType === 'Div' && v.some((e) => e === 0)) return 'it divides by zero';
    if (!isScale && hasPadding(conv)) return `${describe(conv)} pads its input, and padding sees 0, not the added constant`;
    const c = node.opType === 'Div' ? v.map((e) => 1 / e) : node.opType === 'Sub' ? v.map((e) => -e) : v;
    const label = conv.name || conv.outputs[0];
    plans.push(() => {
      const m = w.dims[0];
      const inner = w.size / (m * cg);
      const mg = m / group;
      if (isScale) {
        const out = new Float64Array(wv);
        for (let o = 0; o < m; o++) {
          const base = Math.floor(o / mg) * cg;
          for (let j = 0; j < cg; j++) {
            const s = c[base + j];
            const off = (o * cg + j) * inner;
            for (let t = 0; t < inner; t++) out[off + t] *= s;
          }
        }
        setConstantInput(model, conv, 1, floatTensor(w.dtype, w.dims, out), `${label}_weight_folded`);
      } else {
        const out = bias ? floatValues(bias) as Float64Array : new Float64Array(m);
        for (let o = 0; o < m; o++) {
          const base = Math.floor(o / mg) * cg;
          let acc = 0;
          for (let j = 0; j < cg; j++) {
            const off = (o * cg + j) * inner;
            let sw = 0;
            for (let t = 0; t < inner; t++) sw += wv[off + t];
            acc += sw * c[base + j];
          }
          out[o] += acc;
        }
        setConstantInput(model, conv, 2, floatTensor(w.dtype, [m], out), `${label}_bias_folded`);
      }
      conv.inputs[0] = x;
    });
  }
  for (const p of plans) p();
  g.nodes.splice(g.nodes.indexOf(node), 1); // readers now read x directly
  return true;
}

/** Explicit or automatic padding on any side. */
function hasPadding(conv: Node): boolean {
  const ap = conv.str('auto_pad', 'NOTSET');
  if (ap === 'SAME_UPPER' || ap === 'SAME_LOWER') {
    // SAME pads only when the window overhangs; a 1×1 stride-1 kernel never does
    const ks = conv.ints('kernel_shape');
    const st = conv.ints('strides');
    return !(ks && ks.every((d) => d === 1) && (!st || st.every((s) => s === 1)));
  }
  return (conv.ints('pads') ?? []).some((p) => p !== 0);
}
