/**
 * The generated networks of the example zoo (seeded random weights, He-scaled, each
 * convolution followed by an inference BatchNormalization whose statistics match the
 * activations that reach it, so the float outputs are neither exploding nor vanishing).
 * The classic classifiers come from scripts/fixtures/architectures.ts; the others are built
 * here: a two-scale detector, a radar (featuremap) classifier, an RGB-D two-input classifier,
 * a grey-image classifier, an encoder–decoder segmenter (for bayes int16) and a Caffe MobileNet.
 */
import { NetSpec } from '../../compiler/src/caffe/writer';
import { GraphBuilder, Value } from '../../compiler/src/onnx/builder';
import { Model } from '../../compiler/src/onnx/ir';
import { Tensor } from '../../compiler/src/onnx/tensor';
import { CaffeNetBuilder } from '../fixtures/caffe';

export interface Net {
  model: Model;
  params: number;
  macs: number;
}

/** Conv (no bias) → BatchNorm → Relu (or not). */
function convBn(b: GraphBuilder, x: Value, name: string, out: number, kernel: number, stride = 1, group = 1, relu = true, gain?: number): Value {
  let y = b.conv(x, { outChannels: out, kernel, stride, pad: (kernel - 1) >> 1, group, bias: false, name: `${name}.conv` });
  y = b.batchNorm(y, { name: `${name}.bn`, gain });
  return relu ? b.relu(y, `${name}.relu`) : y;
}

/** Depthwise 3x3 (+BN+Relu) then pointwise 1x1 (+BN+Relu). */
function dwSep(b: GraphBuilder, x: Value, name: string, out: number, stride: number): Value {
  const c = x.shape![1] as number;
  return convBn(b, convBn(b, x, `${name}.dw`, c, 3, stride, c), `${name}.pw`, out, 1);
}

/** Nearest-neighbour ×2 upsampling (Resize, opset ≥ 11 inputs X, roi, scales). */
function upsample2(b: GraphBuilder, x: Value, name: string): Value {
  const scales = b.initializer(new Tensor('float32', [4], new Float32Array([1, 1, 2, 2])), `${name}.scales`);
  const s = x.shape!;
  return b.node('Resize', [x, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, 1, {
    name,
    shapes: [[s[0], s[1], (s[2] as number) * 2, (s[3] as number) * 2]],
  })[0];
}

function done(b: GraphBuilder): Net {
  const model = b.build();
  return { model, ...b.stats };
}

/**
 * A two-scale single-shot detector (YOLO/SSD-like) trained in TensorFlow layout: NHWC input
 * 1x160x160x3, a Transpose to NCHW, a depthwise-separable backbone, a small FPN (nearest ×2
 * upsampling + Add) and, per scale (stride 8: 20x20, stride 16: 10x10), a class head with
 * Sigmoid (3 anchors × 5 classes) and a box head (3 anchors × 4). Four outputs.
 */
export function tinyDetector(seed = 201): Net {
  const b = new GraphBuilder('tiny_detector', { opset: 13, seed });
  const images = b.input('images', 'float32', [1, 160, 160, 3]);
  let x = b.node('Transpose', [images], { perm: [0, 3, 1, 2] }, 1, { name: 'input_nchw', shapes: [[1, 3, 160, 160]] })[0];
  x = convBn(b, x, 'stem', 16, 3, 2); // 80
  x = dwSep(b, x, 'stage1.0', 24, 2); // 40
  x = dwSep(b, x, 'stage2.0', 32, 2); // 20
  const c3 = dwSep(b, x, 'stage2.1', 32, 1);
  x = dwSep(b, c3, 'stage3.0', 64, 2); // 10
  const c4 = dwSep(b, x, 'stage3.1', 64, 1);
  const p4 = convBn(b, c4, 'fpn.lateral4', 48, 1, 1, 1, false);
  const l3 = convBn(b, c3, 'fpn.lateral3', 48, 1, 1, 1, false);
  const p3 = convBn(b, b.add(upsample2(b, p4, 'fpn.up4'), l3, 'fpn.merge3'), 'fpn.smooth3', 48, 3);
  const p4s = convBn(b, p4, 'fpn.smooth4', 48, 3);
  for (const [level, feat] of [['s8', p3], ['s16', p4s]] as const) {
    const h = convBn(b, feat, `head_${level}.stem`, 48, 3);
    const cls = b.conv(h, { outChannels: 15, kernel: 3, pad: 1, name: `head_${level}.cls` });
    b.output(b.sigmoid(cls, `head_${level}.cls_sigmoid`), `cls_${level}`);
    b.output(b.conv(h, { outChannels: 12, kernel: 3, pad: 1, name: `head_${level}.box` }), `box_${level}`);
  }
  return done(b);
}

/**
 * Gesture classifier on range–Doppler maps of a 4-antenna radar: a featuremap input
 * 1x4x32x32 (float32, no image preprocessing), a VGG-style CNN, 8 gesture classes, Softmax.
 * Exported at opset 11 (Clip-free; Softmax keeps axis 1 explicitly).
 */
export function radarGesture(seed = 301): Net {
  const b = new GraphBuilder('radar_gesture', { opset: 11, seed });
  let x = b.input('cube', 'float32', [1, 4, 32, 32]);
  x = convBn(b, x, 'block1.0', 16, 3);
  x = convBn(b, x, 'block1.1', 16, 3);
  x = b.maxPool(x, { kernel: 2, stride: 2, name: 'pool1' }); // 16
  x = convBn(b, x, 'block2.0', 32, 3);
  x = b.maxPool(x, { kernel: 2, stride: 2, name: 'pool2' }); // 8
  x = convBn(b, x, 'block3.0', 64, 3);
  x = b.flatten(b.globalAvgPool(x, 'gap'), 1, 'flatten');
  x = b.relu(b.gemm(x, 32, { name: 'embed' }), 'embed_relu');
  b.output(b.softmax(b.gemm(x, 8, { name: 'classifier' }), 1, 'prob'), 'gesture_prob');
  return done(b);
}

/**
 * RGB-D scene classifier with two inputs: `image` 1x3x64x64 (rgb) and `depth` 1x1x64x64
 * (metres, a featuremap: the toolchain does not preprocess featuremaps, so the model scales
 * it itself, Mul by 0.25); one stem per input, concatenated at 32x32, a shared trunk, 10 classes.
 */
export function rgbdClassifier(seed = 401): Net {
  const b = new GraphBuilder('rgbd_classifier', { opset: 11, seed });
  const image = b.input('image', 'float32', [1, 3, 64, 64]);
  const depth = b.input('depth', 'float32', [1, 1, 64, 64]);
  const i1 = convBn(b, image, 'rgb_stem', 16, 3, 2);
  const quarter = b.initializer(new Tensor('float32', [], new Float32Array([0.25])), 'depth_scale.factor');
  const scaled = b.node('Mul', [depth, quarter], {}, 1, { name: 'depth_scale', shapes: [depth.shape] })[0];
  const d1 = convBn(b, scaled, 'depth_stem', 8, 3, 2);
  let x = b.concat([i1, d1], 1, 'fuse');
  x = convBn(b, x, 'trunk.0', 32, 3);
  x = b.maxPool(x, { kernel: 2, stride: 2, name: 'trunk.pool' }); // 16
  x = convBn(b, x, 'trunk.1', 64, 3, 2); // 8
  x = convBn(b, x, 'trunk.2', 64, 3);
  b.output(b.gemm(b.flatten(b.globalAvgPool(x, 'gap'), 1, 'flatten'), 10, { name: 'fc' }), 'logits');
  return done(b);
}

/**
 * Grey-image classifier (LeNet/VGG-like, Fashion-MNIST-sized): 1x1x32x32, average pooling,
 * two fully connected layers, 10 classes.
 */
export function grayClassifier(seed = 501): Net {
  const b = new GraphBuilder('gray_classifier', { opset: 12, seed });
  let x = b.input('image', 'float32', [1, 1, 32, 32]);
  x = convBn(b, x, 'conv1', 16, 5);
  x = b.avgPool(x, { kernel: 2, stride: 2, name: 'pool1' }); // 16
  x = convBn(b, x, 'conv2', 32, 3);
  x = b.avgPool(x, { kernel: 2, stride: 2, name: 'pool2' }); // 8
  x = convBn(b, x, 'conv3', 64, 3, 2); // 4
  x = b.flatten(x, 1, 'flatten');
  x = b.relu(b.gemm(x, 64, { name: 'fc1' }), 'fc1_relu');
  b.output(b.gemm(x, 10, { name: 'fc2' }), 'logits');
  return done(b);
}

/**
 * Encoder–decoder semantic segmenter (U-Net-like) for RDK Ultra: 1x3x64x64 rgb → 4 class
 * logits per pixel (1x4x64x64); two nearest ×2 upsamplings with skip concatenations.
 */
export function segmenter(seed = 601): Net {
  const b = new GraphBuilder('seg_unet', { opset: 13, seed });
  const image = b.input('image', 'float32', [1, 3, 64, 64]);
  const e1 = convBn(b, convBn(b, image, 'enc1.0', 16, 3), 'enc1.1', 16, 3); // 64
  const e2 = convBn(b, b.maxPool(e1, { kernel: 2, stride: 2, name: 'down1' }), 'enc2.0', 32, 3); // 32
  let x = convBn(b, b.maxPool(e2, { kernel: 2, stride: 2, name: 'down2' }), 'mid.0', 64, 3); // 16
  x = convBn(b, x, 'mid.1', 64, 3);
  x = convBn(b, b.concat([upsample2(b, x, 'up2'), e2], 1, 'skip2'), 'dec2', 32, 3); // 32
  x = convBn(b, b.concat([upsample2(b, x, 'up1'), e1], 1, 'skip1'), 'dec1', 16, 3); // 64
  b.output(b.conv(x, { outChannels: 4, kernel: 1, name: 'head' }), 'seg_logits');
  return done(b);
}

/**
 * A Caffe MobileNet (depthwise + pointwise convolutions, each with BatchNorm + Scale + ReLU in
 * place, as Caffe MobileNets are written): input 1x3x96x96, 7 separable blocks, global
 * average pooling, a 1x1 convolution as classifier (100 classes) and a Softmax `prob`.
 * Trained the classic Caffe way on mean-subtracted pixels without scaling (x − mean, about
 * ±128): the first convolution's weights are `inputScale` times smaller to match.
 */
export function caffeMobileNet(seed = 701, inputScale = 0.017): NetSpec {
  const b = new CaffeNetBuilder('caffe_mobilenet', seed);
  b.convBnScale('conv0', 'data', 3, { num_output: 16, kernel_size: [3], stride: [2], pad: [1] }, true, 1); // 48
  const w0 = b.layers.find((l) => l.name === 'conv0')!.blobs![0].data as Float32Array;
  for (let i = 0; i < w0.length; i++) w0[i] *= inputScale;
  let c = 16;
  let x = 'conv0';
  const blocks: [number, number][] = [[32, 1], [64, 2], [64, 1], [128, 2], [128, 1], [256, 2], [256, 1]]; // 48 → 6
  blocks.forEach(([out, stride], i) => {
    b.convBnScale(`conv${i + 1}_dw`, x, c, { num_output: c, group: c, kernel_size: [3], stride: [stride], pad: [1] }, true, 1);
    b.convBnScale(`conv${i + 1}_pw`, `conv${i + 1}_dw`, c, { num_output: out, kernel_size: [1] }, true, 1);
    c = out;
    x = `conv${i + 1}_pw`;
  });
  b.add({ name: 'pool6', type: 'Pooling', bottom: [x], top: ['pool6'], pooling_param: { pool: 'AVE', global_pooling: true } });
  b.conv('fc7', 'pool6', 'fc7', c, { num_output: 100, kernel_size: [1] });
  b.add({ name: 'prob', type: 'Softmax', bottom: ['fc7'], top: ['prob'] });
  return b.spec({ input: ['data'], input_shape: [{ dim: [1, 3, 96, 96] }] });
}

/** Number of float parameters of a Caffe net (every blob). */
export function caffeParams(spec: NetSpec): number {
  let n = 0;
  for (const l of spec.layer) for (const blob of l.blobs ?? []) n += blob.shape.reduce((p, q) => p * q, 1);
  return n;
}
