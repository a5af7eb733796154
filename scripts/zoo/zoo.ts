/**
 * The example zoo: which model projects exist, what each one demonstrates, and every file the
 * generator writes (models and calibration sets), each made from fixed seeds so that
 * `scripts/zoo/generate.ts` rewrites the committed files byte for byte.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { convertCaffe } from '../../compiler/src/caffe';
import { encodeCaffemodel, NetSpec, writePrototxt } from '../../compiler/src/caffe/writer';
import { encodeModel, writeFileAtomic } from '../../compiler/src/onnx/encode';
import { Tensor } from '../../compiler/src/onnx/tensor';
import { encodeNpy } from '../../compiler/src/preprocess/npy';
import { mobileNetV1, mobileNetV2, resNet18 } from '../fixtures/architectures';
import { encodePng, fashionImage, radarCube, renderScene, toFloat32, toPlanar } from './data';
import { featureStats, standardiseBlobs, standardiseGemms } from './fit';
import { caffeMobileNet, caffeParams, grayClassifier, Net, radarGesture, rgbdClassifier, segmenter, tinyDetector } from './nets';

/** What a project of the zoo is there to show (the list). */
export type ZooKind =
  | 'mobilenetv1'
  | 'mobilenetv2'
  | 'resnet18'
  | 'detection'
  | 'featuremap'
  | 'multi-input'
  | 'gray'
  | 'bayes-int16'
  | 'trained'
  | 'caffe';

export interface ZooProject {
  /** folder under models/ (= Nx project name) */
  name: string;
  kinds: ZooKind[];
  /** one line for the zoo table */
  description: string;
  /** made by this generator (false: the trained fixtures of scripts/fixtures/train_fashion.py) */
  generated: boolean;
}

export const ZOO: readonly ZooProject[] = [
  { name: 'mobilenetv1', kinds: ['mobilenetv1'], generated: true, description: 'MobileNetV1 ×0.25, bgr 128x128, nv12 at run time' },
  { name: 'mobilenetv2', kinds: ['mobilenetv2'], generated: true, description: 'MobileNetV2 ×0.35, rgb 112x112, NCHW → NHWC at run time' },
  { name: 'resnet18', kinds: ['resnet18'], generated: true, description: 'ResNet18 ×0.25, bgr 112x112, yuv444 at run time, two outputs via output_nodes' },
  { name: 'tiny_detector', kinds: ['detection'], generated: true, description: 'two-scale detector, NHWC rgb 160x160, four outputs, a head on the CPU' },
  { name: 'radar_gesture', kinds: ['featuremap'], generated: true, description: 'radar gesture classifier, featuremap 1x4x32x32' },
  { name: 'rgbd_classifier', kinds: ['multi-input', 'featuremap'], generated: true, description: 'two inputs: rgb image + depth featuremap' },
  { name: 'gray_classifier', kinds: ['gray'], generated: true, description: 'grey 32x32 classifier calibrated from PNG images' },
  { name: 'seg_bayes_int16', kinds: ['bayes-int16'], generated: true, description: 'U-Net-like segmenter for bayes with int16 node_info' },
  { name: 'caffe_mobilenet', kinds: ['caffe'], generated: true, description: 'Caffe MobileNet (prototxt + caffemodel), bgr 96x96' },
  { name: 'fashion_resnet', kinds: ['trained', 'gray'], generated: false, description: 'trained Fashion-MNIST ResNet (accuracy fixture)' },
  { name: 'fashion_mbv2', kinds: ['trained'], generated: false, description: 'trained Fashion-MNIST MobileNetV2 (accuracy fixture)' },
];

/** A file the generator writes: repository-relative path and its bytes. */
export interface ZooFile {
  path: string;
  make: () => Promise<Uint8Array>;
}

/** What the generator reports per model. */
export interface ModelInfo {
  project: string;
  params: number;
  macs?: number;
}

const SCENE_PNG = { count: 16, width: 160, height: 120, seed: 1000 };
const sampleName = (i: number): string => String(i).padStart(2, '0');

/**
 * The input a network was "trained" on: the sample source, its format and layout, and the
 * normalisation `(x − mean) · scale` per channel. The model.yaml must say the same
 * (input_type_train, input_layout_train, norm_type, mean_value, scale_value): zoo.test.ts checks it.
 */
export interface TrainInput {
  name: string;
  source: 'scene' | 'depth' | 'radar' | 'fashion';
  format: 'rgb' | 'bgr' | 'gray' | 'featuremap';
  layout: 'NCHW' | 'NHWC';
  shape: number[];
  mean?: number[];
  scale?: number[];
}

interface OnnxEntry {
  build: () => Net;
  inputs: TrainInput[];
  /** Gemm nodes whose inputs are standardised (fit.ts), in order */
  heads: string[];
  /** the standardisation's floor, relative to the largest feature (fit.ts foldStandardisation) */
  alpha?: number;
}

const IMAGENET_BGR = { mean: [103.94, 116.78, 123.68], scale: [0.017] };
const TORCHVISION_RGB = { mean: [123.675, 116.28, 103.53], scale: [0.01712, 0.01751, 0.01743] };
const image = (name: string, format: 'rgb' | 'bgr', shape: number[], layout: 'NCHW' | 'NHWC', norm: { mean?: number[]; scale?: number[] }): TrainInput => ({
  name,
  source: 'scene',
  format,
  layout,
  shape,
  ...norm,
});

/** The ONNX networks, by project. */
export const ONNX_NETS: Readonly<Record<string, OnnxEntry>> = {
  mobilenetv1: {
    build: () => fromArch(mobileNetV1({ width: 0.25, inputSize: 128, numClasses: 1000, seed: 101, opset: 11 })),
    inputs: [image('input', 'bgr', [1, 3, 128, 128], 'NCHW', IMAGENET_BGR)],
    // no head fitting: the random depthwise features vary too little from image to image
    // compared with their int8 noise (a fitted head would amplify mostly noise)
    heads: [],
  },
  mobilenetv2: {
    build: () => fromArch(mobileNetV2({ width: 0.35, inputSize: 112, numClasses: 100, seed: 102, opset: 11 })),
    inputs: [image('input', 'rgb', [1, 3, 112, 112], 'NCHW', TORCHVISION_RGB)],
    heads: [], // as mobilenetv1
  },
  resnet18: {
    build: () => fromArch(resNet18({ width: 0.25, inputSize: 112, numClasses: 100, seed: 103, opset: 10 })),
    inputs: [image('input', 'bgr', [1, 3, 112, 112], 'NCHW', { mean: [127.5], scale: [0.0078431] })],
    heads: ['fc'],
  },
  tiny_detector: {
    build: () => tinyDetector(),
    inputs: [image('images', 'rgb', [1, 160, 160, 3], 'NHWC', { mean: [127.5, 127.5, 127.5], scale: [0.0078125, 0.0078125, 0.0078125] })],
    heads: [],
  },
  radar_gesture: {
    build: () => radarGesture(),
    inputs: [{ name: 'cube', source: 'radar', format: 'featuremap', layout: 'NCHW', shape: [1, 4, 32, 32] }],
    heads: ['embed', 'classifier'],
    alpha: 0.5,
  },
  rgbd_classifier: {
    build: () => rgbdClassifier(),
    inputs: [
      image('image', 'rgb', [1, 3, 64, 64], 'NCHW', TORCHVISION_RGB),
      { name: 'depth', source: 'depth', format: 'featuremap', layout: 'NCHW', shape: [1, 1, 64, 64] },
    ],
    heads: ['fc'],
  },
  gray_classifier: {
    build: () => grayClassifier(),
    inputs: [{ name: 'image', source: 'fashion', format: 'gray', layout: 'NCHW', shape: [1, 1, 32, 32], scale: [0.00392157] }],
    heads: ['fc1', 'fc2'],
  },
  seg_bayes_int16: {
    build: () => segmenter(),
    inputs: [image('image', 'rgb', [1, 3, 64, 64], 'NCHW', TORCHVISION_RGB)],
    heads: [],
  },
};

interface CaffeEntry {
  build: () => NetSpec;
  inputs: TrainInput[];
  /** layer whose input (`bottom`) is standardised */
  head: string;
  alpha?: number;
}

export const CAFFE_NETS: Readonly<Record<string, CaffeEntry>> = {
  caffe_mobilenet: {
    build: () => caffeMobileNet(),
    inputs: [image('data', 'bgr', [1, 3, 96, 96], 'NCHW', { mean: IMAGENET_BGR.mean })],
    head: 'fc7',
  },
};

/** Inputs that fit the heads: 16 per model, from seeds the calibration sets do not use. */
const FIT_SAMPLES = 16;
const FIT_SEED = 9000;

/** Sample k of a training input, normalised: what the float network takes. */
export function trainingSample(inp: TrainInput, k: number): Tensor {
  const nhwc = inp.layout === 'NHWC';
  const [h, w] = nhwc ? [inp.shape[1], inp.shape[2]] : [inp.shape[2], inp.shape[3]];
  let raw: Float32Array;
  if (inp.source === 'scene') {
    const img = renderScene(FIT_SEED + k, w, h);
    if (nhwc) raw = inp.format === 'bgr' ? toFloat32(swapHwc(img.rgb)) : toFloat32(img.rgb);
    else raw = toFloat32(toPlanar(img, inp.format === 'bgr'));
  } else if (inp.source === 'depth') {
    raw = renderScene(FIT_SEED + k, w, h).depth;
  } else if (inp.source === 'radar') {
    raw = radarCube(FIT_SEED + k, inp.shape[1], inp.shape[2], inp.shape[3]);
  } else {
    // Fashion-MNIST images the calibration PNGs do not use (k-th of those with index % 6 != 1), zero-padded to h x w
    const idx = Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 6 !== 1)[k];
    const src = fashionImage(idx);
    raw = new Float32Array(h * w);
    const oy = (h - 28) >> 1;
    const ox = (w - 28) >> 1;
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) raw[(y + oy) * w + x + ox] = src[y * 28 + x];
  }
  const channels = nhwc ? inp.shape[3] : inp.shape[1];
  const inner = nhwc ? 1 : h * w;
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const m = inp.mean ? inp.mean[inp.mean.length === 1 ? 0 : c] : 0;
    const s = inp.scale ? inp.scale[inp.scale.length === 1 ? 0 : c] : 1;
    out[i] = Math.fround(Math.fround(raw[i] - m) * s);
  }
  return new Tensor('float32', inp.shape.slice(), out);
}

function swapHwc(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    out[i] = rgb[i + 2];
    out[i + 1] = rgb[i + 1];
    out[i + 2] = rgb[i];
  }
  return out;
}

function fitFeeds(inputs: TrainInput[]): Record<string, Tensor>[] {
  return Array.from({ length: FIT_SAMPLES }, (_, k) => Object.fromEntries(inputs.map((inp) => [inp.name, trainingSample(inp, k)])));
}

/** Default floor of the head standardisation (fit.ts). */
const HEAD_ALPHA = 0.1;

const built = new Map<string, Net | NetSpec>();

/** The finished ONNX network of a project (built once per process). */
export function onnxNet(project: string): Net {
  let n = built.get(project) as Net | undefined;
  if (!n) {
    const e = ONNX_NETS[project];
    n = e.build();
    if (e.heads.length) standardiseGemms(n.model, e.heads, fitFeeds(e.inputs), e.alpha ?? HEAD_ALPHA);
    built.set(project, n);
  }
  return n;
}

/** The finished Caffe network of a project (built once per process). */
export function caffeNet(project: string): NetSpec {
  let spec = built.get(project) as NetSpec | undefined;
  if (!spec) {
    const e = CAFFE_NETS[project];
    spec = e.build();
    const layer = spec.layer.find((l) => l.name === e.head);
    if (!layer?.blobs || !layer.bottom) throw new Error(`caffe head '${e.head}' not found`);
    const model = convertCaffe(writePrototxt(spec), encodeCaffemodel(spec));
    standardiseBlobs(layer.blobs, featureStats(model, layer.bottom[0], fitFeeds(e.inputs)), e.alpha ?? HEAD_ALPHA);
    built.set(project, spec);
  }
  return spec;
}

function fromArch(a: ReturnType<typeof mobileNetV1>): Net {
  return { model: a.model, params: a.stats.params, macs: a.stats.macs };
}

/** Parameters and MACs of each generated model (builds them). */
export function modelInfo(): ModelInfo[] {
  return [
    ...Object.keys(ONNX_NETS).map((project) => {
      const n = onnxNet(project);
      return { project, params: n.params, macs: n.macs };
    }),
    ...Object.keys(CAFFE_NETS).map((project) => ({ project, params: caffeParams(caffeNet(project)) })),
  ];
}

const bytesOf = (a: Float32Array | Uint8Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const npy = (dtype: 'uint8' | 'float32', dims: number[], data: Uint8Array | Float32Array): Uint8Array => encodeNpy(new Tensor(dtype, dims, data));

/** Every file the generator writes, in a fixed order. */
export function zooFiles(): ZooFile[] {
  const files: ZooFile[] = [];
  const add = (p: string, make: () => Promise<Uint8Array> | Uint8Array): void => {
    files.push({ path: p, make: async () => make() });
  };

  // ---- models
  for (const project of Object.keys(ONNX_NETS)) add(`models/${project}/${project}.onnx`, () => encodeModel(onnxNet(project).model));
  for (const project of Object.keys(CAFFE_NETS)) {
    add(`models/${project}/${project}.prototxt`, () => new TextEncoder().encode(writePrototxt(caffeNet(project))));
    add(`models/${project}/${project}.caffemodel`, () => encodeCaffemodel(caffeNet(project)));
  }

  // ---- calibration/synth_scenes: one scene list rendered in several sample forms
  const S = 'calibration/synth_scenes';
  for (let i = 0; i < SCENE_PNG.count; i++) {
    add(`${S}/png_160x120/scene_${sampleName(i)}.png`, () => {
      const img = renderScene(SCENE_PNG.seed + i, SCENE_PNG.width, SCENE_PNG.height);
      return encodePng(img.rgb, img.width, img.height, 3);
    });
  }
  for (let i = 0; i < 12; i++) {
    // mobilenetv2: rgb, NCHW, uint8 .npy, already at 112x112
    add(`${S}/rgb_112_npy/scene_${sampleName(i)}.npy`, () => npy('uint8', [1, 3, 112, 112], toPlanar(renderScene(2000 + i, 112, 112))));
    // resnet18: bgr, NCHW, raw uint8 (numpy.tofile)
    add(`${S}/bgr_112_u8/scene_${sampleName(i)}.bgr`, () => toPlanar(renderScene(3000 + i, 112, 112), true));
  }
  for (let i = 0; i < 10; i++) {
    // seg_bayes_int16: rgb NCHW as float32 .npy (values 0..255)
    add(`${S}/rgb_64_f32_npy/scene_${sampleName(i)}.npy`, () => npy('float32', [1, 3, 64, 64], toFloat32(toPlanar(renderScene(4000 + i, 64, 64)))));
    // rgbd_classifier: the image as uint8 .npy and its depth map as raw float32, paired by file order
    add(`${S}/rgbd_64/image/scene_${sampleName(i)}.npy`, () => npy('uint8', [1, 3, 64, 64], toPlanar(renderScene(5000 + i, 64, 64))));
    add(`${S}/rgbd_64/depth/scene_${sampleName(i)}.f32`, () => bytesOf(renderScene(5000 + i, 64, 64).depth));
  }

  // ---- calibration/radar_cubes: featuremap samples, raw float32 in a folder named *_f32 (type inferred)
  for (let i = 0; i < 16; i++) add(`calibration/radar_cubes/cube_4x32x32_f32/cube_${sampleName(i)}.bin`, () => bytesOf(radarCube(6000 + i)));

  // ---- calibration/fashion_png: 16 of the committed Fashion-MNIST training images as grey PNGs
  for (let i = 0; i < 16; i++) {
    const k = i * 6 + 1; // every 6th of the 100 committed samples
    add(`calibration/fashion_png/gray_28/fashion_${String(k).padStart(3, '0')}.png`, () => encodePng(fashionImage(k), 28, 28, 1));
  }
  return files;
}

/** The folders whose whole content is generated (nothing else may be in them). */
export function generatedFolders(): string[] {
  const dirs = new Set(zooFiles().map((f) => path.posix.dirname(f.path)));
  return [...dirs].filter((d) => d.startsWith('calibration/')).sort();
}

export interface WrittenFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** Writes every zoo file under `root` (atomically); returns their sizes and hashes. */
export async function writeZoo(root: string, filter?: (p: string) => boolean): Promise<WrittenFile[]> {
  const out: WrittenFile[] = [];
  for (const f of zooFiles()) {
    if (filter && !filter(f.path)) continue;
    const data = await f.make();
    writeFileAtomic(path.join(root, f.path), data);
    out.push({ path: f.path, bytes: data.byteLength, sha256: sha256(data) });
  }
  return out;
}

export function sha256(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function fileSha256(file: string): string {
  return sha256(fs.readFileSync(file));
}
