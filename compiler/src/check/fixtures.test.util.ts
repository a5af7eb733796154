import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { tensorFrom } from '../onnx/tensor';

/** Small hand-built models for the placement tests (seeded weights, named nodes). */

/** conv1 → relu1 → gap → reshape [1,16] → softmax → prob: the classifier tail exporters emit. */
export function reshapeSoftmaxTail(): Model {
  const b = new GraphBuilder('reshape_softmax_tail', { seed: 1 });
  const x = b.input('data', 'float32', [1, 3, 32, 32]);
  const c = b.relu(b.conv(x, { outChannels: 16, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  const r = b.reshape(b.globalAvgPool(c, 'gap'), [1, 16], 'reshape');
  b.output(b.softmax(r, 1, 'softmax'), 'prob');
  return b.build();
}

/** conv1 → softmax over channels (axis 1) as the model output: the only Softmax the X3 BPU takes, on request. */
export function channelSoftmaxOutput(): Model {
  const b = new GraphBuilder('channel_softmax', { seed: 1 });
  const x = b.input('data', 'float32', [1, 3, 16, 16]);
  const c = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' });
  b.output(b.softmax(c, 1, 'softmax'), 'prob');
  return b.build();
}

/**
 * Two inputs, each through a conv; their sum → relu → head (output `fused`), and their
 * difference (Sub) as a second output `difference`.
 */
export function twoInputs(): Model {
  const b = new GraphBuilder('two_inputs', { seed: 2 });
  const l = b.input('left', 'float32', [1, 3, 16, 16]);
  const r = b.input('right', 'float32', [1, 3, 16, 16]);
  const cl = b.conv(l, { outChannels: 8, kernel: 3, pad: 1, name: 'conv_left' });
  const cr = b.conv(r, { outChannels: 8, kernel: 3, pad: 1, name: 'conv_right' });
  const s = b.relu(b.add(cl, cr, 'add'), 'relu');
  b.output(b.conv(s, { outChannels: 4, kernel: 1, name: 'head' }), 'fused');
  b.output(b.node('Sub', [cl, cr], {}, 1, { name: 'diff' })[0], 'difference');
  return b.build();
}

/** conv1 (3x3) → relu1 → conv_big (9x9) → relu2 → conv3 (1x1): a layer the X3 BPU cannot run, mid-graph. */
export function bigKernelMidGraph(): Model {
  const b = new GraphBuilder('big_kernel', { seed: 3 });
  const x = b.input('data', 'float32', [1, 3, 32, 32]);
  let y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  y = b.relu(b.conv(y, { outChannels: 8, kernel: 9, pad: 4, name: 'conv_big' }), 'relu2');
  b.output(b.conv(y, { outChannels: 4, kernel: 1, name: 'conv3' }), 'out');
  return b.build();
}

/** conv1 → TopK (k = 4 along W) → conv2 on the values: TopK mid-graph. */
export function topKMidGraph(): Model {
  const b = new GraphBuilder('topk_mid', { seed: 4 });
  const x = b.input('data', 'float32', [1, 8, 16, 16]);
  const c = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' });
  const k = b.initializer(tensorFrom('int64', [1], [4]), 'k');
  const [values] = b.node('TopK', [c, k], { axis: 3 }, 2, { name: 'topk', shapes: [[1, 8, 16, 4], [1, 8, 16, 4]] });
  b.output(b.conv(values, { outChannels: 4, kernel: 1, name: 'conv2' }), 'out');
  return b.build();
}

/** conv1 → softmax1 (CPU) → pool (MaxPool, passive) → softmax2 (CPU) → prob. */
export function passiveBetweenCpuOps(): Model {
  const b = new GraphBuilder('passive_island', { seed: 5 });
  const x = b.input('data', 'float32', [1, 3, 16, 16]);
  const c = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' });
  const s = b.softmax(c, 1, 'softmax1');
  const p = b.maxPool(s, { kernel: 2, stride: 2, name: 'pool' });
  b.output(b.softmax(p, 1, 'softmax2'), 'prob');
  return b.build();
}

/**
 * conv_a feeds add both directly and through two CPU Transposes (on bernoulli2): {conv_a,
 * add} are connected but cannot run as one BPU unit.
 */
export function reentrantBranch(): Model {
  const b = new GraphBuilder('reentrant', { seed: 6 });
  const x = b.input('data', 'float32', [1, 4, 8, 8]);
  const a = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv_a' });
  const [t1] = b.node('Transpose', [a], { perm: [0, 1, 3, 2] }, 1, { name: 't1', shapes: [[1, 8, 8, 8]] });
  const [t2] = b.node('Transpose', [t1], { perm: [0, 1, 3, 2] }, 1, { name: 't2', shapes: [[1, 8, 8, 8]] });
  const s = b.add(a, t2, 'add');
  b.output(b.conv(s, { outChannels: 4, kernel: 1, name: 'conv_b' }), 'out');
  return b.build();
}

/**
 * conv → relu → x.view(x.size(0), -1) as PyTorch exports it (Shape → Gather → Unsqueeze →
 * Concat → Reshape) → Gemm: the shape chain folds, the Reshape is folded into the Gemm.
 */
export function shapeChainFlatten(): Model {
  const b = new GraphBuilder('shape_chain', { seed: 7 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const r = b.relu(b.conv(x, { outChannels: 4, kernel: 3, stride: 2, pad: 1, name: 'conv' }), 'relu');
  const [s] = b.node('Shape', [r], {}, 1, { name: 'shape', dtype: 'int64' });
  const [n] = b.node('Gather', [s, b.initializer(tensorFrom('int64', [], [0]), 'zero')], { axis: 0 }, 1, { name: 'gather' });
  const [n1] = b.node('Unsqueeze', [n, b.initializer(tensorFrom('int64', [1], [0]), 'ax0')], {}, 1, { name: 'unsqueeze' });
  const [target] = b.node('Concat', [n1, b.initializer(tensorFrom('int64', [1], [-1]), 'minus1')], { axis: 0 }, 1, { name: 'cat' });
  const [flat] = b.node('Reshape', [r, target], {}, 1, { name: 'view', shapes: [[1, 64]] });
  b.output(b.gemm(flat, 10, { name: 'fc' }), 'logits');
  return b.build();
}

/** conv → Resize (scale s, mode) → conv, opset 13 (scales as the third input). */
export function resizeModel(scale: number, mode: 'nearest' | 'linear'): Model {
  const b = new GraphBuilder(`resize_${mode}_${scale}`, { seed: 8 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const c = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' });
  const scales = b.initializer(tensorFrom('float32', [4], [1, 1, scale, scale]), 'scales');
  const side = Math.floor(8 * scale);
  const [u] = b.node('Resize', [c, '', scales], { mode }, 1, { name: 'resize', shapes: [[1, 8, side, side]] });
  b.output(b.conv(u, { outChannels: 4, kernel: 1, name: 'conv2' }), 'out');
  return b.build();
}

/** conv → Mul by a rank-1 per-channel constant (not one of the X3 BPU's 4-D patterns). */
export function scaleByVector(): Model {
  const b = new GraphBuilder('scale_by_vector', { seed: 15 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const c = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' });
  const scale = b.initializer(tensorFrom('float32', [8], [1, 2, 3, 4, 5, 6, 7, 8]), 'scale');
  b.output(b.node('Mul', [c, scale], {}, 1, { name: 'mul', shapes: [[1, 8, 8, 8]] })[0], 'out');
  return b.build();
}

/**
 * An int8 image input through the HzPreprocess stage as preprocess/hz-preprocess.ts emits it
 * (Cast → depthwise 1x1 Conv for mean/scale, doc_string `hz_preprocess: …`) → conv1.
 */
export function withPreprocessStage(): Model {
  const b = new GraphBuilder('with_preprocess', { seed: 16 });
  const x = b.input('data', 'int8', [1, 3, 8, 8]);
  const [f] = b.node('Cast', [x], { to: 1 }, 1, { name: 'HzPreprocess_data_cast', dtype: 'float32', shapes: [[1, 3, 8, 8]] });
  const norm = b.conv(f, { outChannels: 3, kernel: 1, group: 3, name: 'HzPreprocess_data_affine' });
  b.output(b.conv(norm, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'out');
  const m = b.build();
  for (const n of m.graph.nodes) if (n.name.startsWith('HzPreprocess_')) n.docString = 'hz_preprocess: data RGB_128 -> rgb (data_mean_and_scale)';
  return m;
}

/** conv → relu0 → flatten → fc1 → relu1 → fc2 → relu2 → fc3: a VGG-style fully connected head. */
export function mlpHead(): Model {
  const b = new GraphBuilder('mlp_head', { seed: 17 });
  const x = b.input('data', 'float32', [1, 8, 4, 4]);
  let y = b.flatten(b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv' }), 'relu0'), 1, 'flatten');
  y = b.relu(b.gemm(y, 64, { name: 'fc1' }), 'relu1');
  y = b.relu(b.gemm(y, 32, { name: 'fc2' }), 'relu2');
  b.output(b.gemm(y, 10, { name: 'fc3' }), 'out');
  return b.build();
}

/** conv (C channels) → ArgMax over channels (segmentation head). */
export function argMaxHead(channels: number): Model {
  const b = new GraphBuilder(`argmax_${channels}`, { seed: 9 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const c = b.conv(x, { outChannels: channels, kernel: 1, name: 'conv1' });
  b.output(b.node('ArgMax', [c], { axis: 1, keepdims: 1 }, 1, { name: 'argmax', dtype: 'int64' })[0], 'label');
  return b.build();
}

/** conv → ReduceMean over `axes` (keepdims) → conv when the result stays 4-D. */
export function reduceMeanModel(axes: number[]): Model {
  const b = new GraphBuilder('reduce_mean', { seed: 10 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const c = b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' });
  const reduced = [0, 1, 2, 3].map((d) => (axes.some((a) => (a + 4) % 4 === d) ? 1 : [1, 8, 8, 8][d]));
  const [m] = b.node('ReduceMean', [c], { axes, keepdims: 1 }, 1, { name: 'mean', shapes: [reduced] });
  b.output(b.conv(m, { outChannels: 4, kernel: 1, name: 'conv2' }), 'out');
  return b.build();
}

/** Opset-9 model: conv → Clip (attributes) → Upsample ×2 (scales input) → out. */
export function opset9Model(): Model {
  const b = new GraphBuilder('opset9', { seed: 11, opset: 9 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const c = b.clip(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 0, 6, 'relu6');
  const scales = b.initializer(tensorFrom('float32', [4], [1, 1, 2, 2]), 'scales');
  b.output(b.node('Upsample', [c, scales], { mode: 'nearest' }, 1, { name: 'up' })[0], 'out');
  return b.build();
}

/** A model whose only op is `opType` applied to a 4-D input (for model-level errors). */
export function singleOp(opType: string, opts: { opset?: number; shape?: (number | string)[]; attrs?: Record<string, number> } = {}): Model {
  const b = new GraphBuilder(`single_${opType}`, { seed: 12, opset: opts.opset ?? 13 });
  const x = b.input('data', 'float32', opts.shape ?? [1, 3, 8, 8]);
  b.output(b.node(opType, [x], opts.attrs ?? {}, 1, { name: 'op' })[0], 'out');
  return b.build();
}

/** 33 Relu outputs from one input. */
export function manyOutputs(n: number): Model {
  const b = new GraphBuilder('many_outputs', { seed: 13 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  for (let i = 0; i < n; i++) b.output(b.relu(x, `relu${i}`), `out${i}`);
  return b.build();
}

/** conv → NonMaxSuppression (post-processing inside the model). */
export function withNms(): Model {
  const b = new GraphBuilder('with_nms', { seed: 14, opset: 13 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  const c = b.conv(x, { outChannels: 4, kernel: 1, name: 'conv1' });
  const [boxes] = b.node('Reshape', [c, b.initializer(tensorFrom('int64', [3], [1, 64, 4]), 'shape')], {}, 1, { name: 'boxes' });
  const [scores] = b.node('Reshape', [c, b.initializer(tensorFrom('int64', [3], [1, 4, 64]), 'shape2')], {}, 1, { name: 'scores' });
  const [sel] = b.node('NonMaxSuppression', [boxes, scores], {}, 1, { name: 'nms', dtype: 'int64' });
  b.output(sel, 'selected');
  return b.build();
}
