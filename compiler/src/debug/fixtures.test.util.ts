import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../kernels/random';
import { GraphBuilder } from '../onnx/builder';
import { saveModel } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { runStage } from '../stages';

/**
 * Test fixtures of the debugger (not a test file): small generated models taken through the
 * real preprocess → check → calibrate stages, so the tests see the calibrated model and the
 * calibration_data/ folder the toolchain writes.
 */

export interface DebugProject {
  dir: string;
  work: string;
  /** `<work>/<name>_calibrated_model.onnx` */
  calibrated: string;
  /** `<work>/calibration_data` */
  data: string;
}

export const OUTLIER_GAIN = 1000;

/**
 * The quantization-hostile net. `conv_outlier` gets one output channel OUTLIER_GAIN × larger
 * than the others (its weights and bias for channel 0 scaled up), and `conv_reader`, the only
 * node reading that tensor, compensates (its weights on input channel 0 scaled down), as BN
 * folding or a trained network would. Quantized per tensor (one threshold = the outlier's
 * range) the other seven channels round to zero: quantizing `conv_reader`'s input is what
 * breaks the model, so `conv_reader` (with the activation calibration node in front of it) is
 * the sensitive node.
 *
 *   data → conv1 → relu1 → conv_outlier → conv_reader → relu2 → conv_tail → relu3 → GAP → flatten → fc → output
 */
export function outlierNet(size = 12): Model {
  const b = new GraphBuilder('outlier', { seed: 11 });
  const x = b.input('data', 'float32', [1, 4, size, size]);
  let y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  y = b.conv(y, { outChannels: 8, kernel: 1, name: 'conv_outlier' });
  y = b.relu(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, name: 'conv_reader' }), 'relu2');
  y = b.relu(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, name: 'conv_tail' }), 'relu3');
  b.output(b.gemm(b.flatten(b.globalAvgPool(y, 'gap'), 1, 'flatten'), 10, { name: 'fc' }), 'output');
  const m = b.build();
  const g = m.graph;
  const scale = (name: string, f: (i: number, dims: readonly number[]) => number): void => {
    const t = g.initializers.get(name) as Tensor;
    const a = t.toFloat32().slice();
    for (let i = 0; i < a.length; i++) a[i] *= f(i, t.dims);
    g.initializers.set(name, new Tensor('float32', t.dims, a));
  };
  const per = (dims: readonly number[]): number => dims.slice(1).reduce((p, q) => p * q, 1);
  scale('conv_outlier.weight', (i, d) => (Math.floor(i / per(d)) === 0 ? OUTLIER_GAIN : 1));
  scale('conv_outlier.bias', (i) => (i === 0 ? OUTLIER_GAIN : 1));
  // input channel 0 of conv_reader: index i → (i / (kh·kw)) mod C_in
  scale('conv_reader.weight', (i, d) => (Math.floor(i / (d[2] * d[3])) % d[1] === 0 ? 1 / OUTLIER_GAIN : 1));
  return m;
}

/** A small benign net with a residual Add, a MaxPool and a Sigmoid (every kind of node). */
export function benignNet(channels = 3, size = 16): Model {
  const b = new GraphBuilder('benign', { seed: 5 });
  const x = b.input('data', 'float32', [1, channels, size, size]);
  let y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  y = b.maxPool(y, { kernel: 2, stride: 2, name: 'pool1' });
  const z = b.relu(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, name: 'conv2' }), 'relu2');
  y = b.add(y, z, 'add1');
  y = b.sigmoid(b.conv(y, { outChannels: 8, kernel: 1, name: 'conv3' }), 'sigmoid1');
  b.output(b.gemm(b.flatten(b.globalAvgPool(y, 'gap'), 1, 'flatten'), 10, { name: 'fc' }), 'output');
  return b.build();
}

/** data → conv1 → relu1 → conv_out = the model output (a BPU node's output, fake-quantized as a model output). */
export function convOutputNet(): Model {
  const b = new GraphBuilder('convout', { seed: 4 });
  const x = b.input('data', 'float32', [1, 4, 8, 8]);
  const y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'conv1' }), 'relu1');
  b.output(b.conv(y, { outChannels: 4, kernel: 1, name: 'conv_out' }), 'output');
  return b.build();
}

/** Smooth float feature maps (seeded). */
export function smoothFeatures(rng: Rng, n: number): Float32Array {
  const f = [rng.uniform(0.05, 0.5), rng.uniform(0, 6), rng.uniform(0.5, 1.5)];
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f[2] * Math.sin(f[0] * i + f[1]) + 0.3 * Math.cos(0.07 * i) + 0.2 * rng.normal();
  return a;
}

/** A smooth 0…255 image, channel-major (NCHW). */
export function smoothImage(rng: Rng, c: number, h: number, w: number): Uint8Array {
  const f = [rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0, 6), rng.uniform(0, 6)];
  const a = new Uint8Array(c * h * w);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = 128 + 70 * Math.sin(f[0] * x + f[1] * y + f[2] + k) + 40 * Math.cos(f[1] * x - f[0] * y + f[3] * k);
        a[(k * h + y) * w + x] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return a;
}

export interface ProjectOptions {
  samples?: number;
  /** 'featuremap' (float32 samples) or 'rgb' (uint8 images fed as nv12, with HzPreprocess) */
  input?: 'featuremap' | 'rgb';
  march?: 'bernoulli2' | 'bayes';
  calibrationType?: string;
  seed?: number;
}

/** Write model + YAML + raw samples under `root/name` and run preprocess, check and calibrate. */
export async function calibratedProject(root: string, name: string, model: Model, o: ProjectOptions = {}): Promise<DebugProject> {
  const dir = path.join(root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'cal'), { recursive: true });
  saveModel(model, path.join(dir, 'model.onnx'));
  const input = model.graph.realInputs[0];
  const dims = (input.type?.shape ?? []) as number[];
  const n = dims.reduce((p, q) => p * q, 1);
  const rng = new Rng(o.seed ?? 3);
  const kind = o.input ?? 'featuremap';
  for (let i = 0; i < (o.samples ?? 8); i++) {
    const bytes = kind === 'rgb' ? smoothImage(rng, dims[1], dims[2], dims[3]) : new Uint8Array(smoothFeatures(rng, n).buffer);
    fs.writeFileSync(path.join(dir, 'cal', `sample_${String(i).padStart(3, '0')}.bin`), bytes);
  }
  const inputYaml =
    kind === 'rgb'
      ? `  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_type_rt: 'nv12'
  norm_type: 'data_mean_and_scale'
  mean_value: '123.675 116.28 103.53'
  scale_value: '0.0171 0.0175 0.0174'`
      : `  input_type_train: 'featuremap'
  input_layout_train: 'NCHW'
  input_type_rt: 'featuremap'
  input_layout_rt: 'NCHW'
  norm_type: 'no_preprocess'`;
  const yaml = path.join(dir, 'model.yaml');
  fs.writeFileSync(
    yaml,
    `model_parameters:
  onnx_model: 'model.onnx'
  march: '${o.march ?? 'bernoulli2'}'
  output_model_file_prefix: '${name}'
input_parameters:
${inputYaml}
calibration_parameters:
  cal_data_dir: 'cal'
  cal_data_type: '${kind === 'rgb' ? 'uint8' : 'float32'}'
  calibration_type: '${o.calibrationType ?? 'max'}'
compiler_parameters:
  optimize_level: 'O3'
`,
  );
  const log = (): void => undefined;
  for (const s of ['preprocess', 'check', 'calibrate'] as const) await runStage(s, { configFile: yaml, log });
  const work = path.join(dir, 'model_output');
  return { dir, work, calibrated: path.join(work, `${name}_calibrated_model.onnx`), data: path.join(work, 'calibration_data') };
}

export function tempRoot(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ptq-debug-${tag}-`));
}
