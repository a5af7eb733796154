import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadCaffeModel } from '../compiler/src/caffe';
import { LayerSpec, NetSpec, writeCaffeFiles } from '../compiler/src/caffe/writer';
import { Rng } from '../compiler/src/kernels/random';

/**
 * loadCaffeModel on an AlexNet-size Caffe model (~244 MB caffemodel, 61 M weights): time and
 * memory. The weights should stay views of the file buffer, so the whole load should cost
 * little more than the file itself.
 *
 *   node -r @swc-node/register bench/caffe-load.ts [--keep] [--regenerate]
 *
 * The model (AlexNet's layers and shapes, seeded weights) is written once to os.tmpdir() and
 * deleted afterwards unless --keep. The measurement runs in a fresh child process with
 * --expose-gc so nothing from generation is on its heap. Prints one JSON line.
 */

const SEED = 1;
const NAME = 'alexnet_bench';

function alexnet(): NetSpec {
  const rng = new Rng(SEED);
  const blob = (shape: number[]): { shape: number[]; data: Float32Array } => {
    const n = shape.reduce((a, b) => a * b, 1);
    const fan = n / shape[0];
    const bound = Math.sqrt(3 / fan);
    return { shape, data: rng.fillUniform(new Float32Array(n), -bound, bound) };
  };
  const layers: LayerSpec[] = [{ name: 'data', type: 'Input', top: ['data'], input_param: { shape: [{ dim: [1, 3, 227, 227] }] } }];
  let x = 'data';
  let cin = 3;
  const conv = (name: string, cout: number, k: number, stride: number, pad: number, group: number): void => {
    layers.push({
      name, type: 'Convolution', bottom: [x], top: [name],
      convolution_param: { num_output: cout, kernel_size: [k], stride: [stride], pad: [pad], group },
      blobs: [blob([cout, cin / group, k, k]), blob([cout])],
    });
    layers.push({ name: `relu_${name}`, type: 'ReLU', bottom: [name], top: [name] });
    x = name;
    cin = cout;
  };
  const pool = (name: string): void => {
    layers.push({ name, type: 'Pooling', bottom: [x], top: [name], pooling_param: { pool: 'MAX', kernel_size: 3, stride: 2 } });
    x = name;
  };
  const lrn = (name: string): void => {
    layers.push({ name, type: 'LRN', bottom: [x], top: [name], lrn_param: { local_size: 5, alpha: 1e-4, beta: 0.75 } });
    x = name;
  };
  const fc = (name: string, k: number, n: number, relu: boolean): void => {
    layers.push({ name, type: 'InnerProduct', bottom: [x], top: [name], inner_product_param: { num_output: n }, blobs: [blob([n, k]), blob([n])] });
    if (relu) {
      layers.push({ name: `relu_${name}`, type: 'ReLU', bottom: [name], top: [name] });
      layers.push({ name: `drop_${name}`, type: 'Dropout', bottom: [name], top: [name], dropout_param: { dropout_ratio: 0.5 } });
    }
    x = name;
  };
  conv('conv1', 96, 11, 4, 0, 1);
  lrn('norm1');
  pool('pool1');
  conv('conv2', 256, 5, 1, 2, 2);
  lrn('norm2');
  pool('pool2');
  conv('conv3', 384, 3, 1, 1, 1);
  conv('conv4', 384, 3, 1, 1, 2);
  conv('conv5', 256, 3, 1, 1, 2);
  pool('pool5');
  fc('fc6', 256 * 6 * 6, 4096, true);
  fc('fc7', 4096, 4096, true);
  fc('fc8', 4096, 1000, false);
  layers.push({ name: 'prob', type: 'Softmax', bottom: ['fc8'], top: ['prob'] });
  return { name: NAME, layer: layers };
}

const MB = 1 << 20;
const round1 = (v: number): number => Math.round(v * 10) / 10;

function mem(): { rss: number; heapUsed: number; arrayBuffers: number } {
  (global as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: round1(m.rss / MB), heapUsed: round1(m.heapUsed / MB), arrayBuffers: round1(m.arrayBuffers / MB) };
}

/** Child: load the model; report time, memory, and where the weights live. */
function measure(prototxt: string, caffemodel: string): void {
  const before = mem();
  const t0 = process.hrtime.bigint();
  const model = loadCaffeModel(prototxt, caffemodel);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = mem();
  // Weights sharing one ArrayBuffer are views of the file buffer; anything else was copied.
  const buffers = new Map<ArrayBufferLike, number>();
  let weightBytes = 0;
  let checksum = 0;
  for (const t of model.graph.initializers.values()) {
    if (t.dtype !== 'float32') continue;
    const a = t.array as Float32Array;
    buffers.set(a.buffer, (buffers.get(a.buffer) ?? 0) + a.byteLength);
    weightBytes += a.byteLength;
    for (let i = 0; i < a.length; i += 4099) checksum += a[i];
  }
  const inFileBuffer = Math.max(...buffers.values());
  console.log(JSON.stringify({
    bench: 'caffe-load',
    file_mb: round1(fs.statSync(caffemodel).size / MB),
    nodes: model.graph.nodes.length,
    weights_mb: round1(weightBytes / MB),
    weights_in_file_buffer_mb: round1(inFileBuffer / MB),
    weights_copied_mb: round1((weightBytes - inFileBuffer) / MB),
    load_ms: round1(loadMs),
    rss_before_mb: before.rss,
    rss_after_mb: after.rss,
    max_rss_mb: round1(process.resourceUsage().maxRSS / 1024),
    heap_used_after_mb: after.heapUsed,
    array_buffers_after_mb: after.arrayBuffers,
    checksum: round1(checksum),
    gc_exposed: typeof (global as { gc?: unknown }).gc === 'function',
  }));
}

function main(argv: string[]): number {
  if (argv[0] === '--measure') {
    measure(argv[1], argv[2]);
    return 0;
  }
  const keep = argv.includes('--keep');
  const dir = path.join(os.tmpdir(), `nx-ptq-bench-caffe-s${SEED}`);
  const files = { prototxt: path.join(dir, `${NAME}.prototxt`), caffemodel: path.join(dir, `${NAME}.caffemodel`) };
  if (argv.includes('--regenerate') || !fs.existsSync(files.caffemodel) || fs.statSync(files.caffemodel).size < 200 * MB) {
    const t0 = Date.now();
    writeCaffeFiles(alexnet(), dir, NAME);
    console.error(`wrote ${files.caffemodel} (${(fs.statSync(files.caffemodel).size / MB).toFixed(1)} MB) in ${Date.now() - t0} ms`);
  }
  const child = spawnSync(process.execPath, ['--expose-gc', '-r', '@swc-node/register', __filename, '--measure', files.prototxt, files.caffemodel], {
    stdio: ['ignore', 'inherit', 'inherit'],
    cwd: path.join(__dirname, '..'),
  });
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return child.status ?? 1;
}

process.exitCode = main(process.argv.slice(2));
