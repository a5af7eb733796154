import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../compiler/src/kernels/random';
import { floatAttr, GraphBuilder } from '../compiler/src/onnx/builder';
import { decodeModel } from '../compiler/src/onnx/decode';
import { encodeModel, writeFileAtomic } from '../compiler/src/onnx/encode';
import { Model } from '../compiler/src/onnx/ir';
import { Tensor } from '../compiler/src/onnx/tensor';

/**
 * decodeModel on a ~250 MB model: time, and memory before/after. Tensors should stay views
 * of the file buffer, so decoding should cost well under the file size.
 *
 *   node -r @swc-node/register bench/decode.ts [--keep] [--regenerate]
 *
 * The model (a 4-layer MLP of width 3968, weights as raw_data, seeded) is written once to
 * os.tmpdir() and deleted afterwards unless --keep. The measurement runs in a fresh child
 * process with --expose-gc so nothing from generation is on its heap. Prints one JSON line.
 */

const WIDTH = 3968;
const LAYERS = 4;
const SEED = 1;

function buildModel(): Model {
  const b = new GraphBuilder('decode_bench_mlp', { opset: 13, seed: SEED });
  const rng = new Rng(SEED);
  let x = b.input('input', 'float32', [1, WIDTH]);
  for (let i = 0; i < LAYERS; i++) {
    const bound = 1 / Math.sqrt(WIDTH);
    const w = b.initializer(new Tensor('float32', [WIDTH, WIDTH], rng.fillUniform(new Float32Array(WIDTH * WIDTH), -bound, bound)), `fc${i}.weight`);
    const bias = b.initializer(new Tensor('float32', [WIDTH], rng.fillUniform(new Float32Array(WIDTH), -bound, bound)), `fc${i}.bias`);
    x = b.node('Gemm', [x, w, bias], { transB: 1, alpha: floatAttr(1), beta: floatAttr(1) }, 1, { name: `fc${i}`, shapes: [[1, WIDTH]] })[0];
    if (i < LAYERS - 1) x = b.relu(x, `relu${i}`);
  }
  b.output(x, 'output');
  return b.build();
}

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

function mem(): Mem {
  (global as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

const MB = 1 << 20;

function delta(a: Mem, b: Mem): Record<keyof Mem, number> {
  const r = (k: keyof Mem): number => Math.round(((b[k] - a[k]) / MB) * 10) / 10;
  return { rss: r('rss'), heapUsed: r('heapUsed'), external: r('external'), arrayBuffers: r('arrayBuffers') };
}

/** Child: read, decode, then touch every initializer's data; report time and memory at each step. */
function measure(file: string): void {
  const gcOn = typeof (global as { gc?: unknown }).gc === 'function';
  const m0 = mem();
  const bytes = fs.readFileSync(file);
  const m1 = mem();
  const t0 = process.hrtime.bigint();
  const model = decodeModel(bytes, file);
  const decodeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const m2 = mem();
  // the first decode also loads and compiles onnx.proto; a second decode shows the steady cost
  const t2 = process.hrtime.bigint();
  decodeModel(bytes, file);
  const againMs = Number(process.hrtime.bigint() - t2) / 1e6;
  // Where does each initializer live? A view of `bytes` costs nothing; anything else is a copy.
  let views = 0;
  let copies = 0;
  let misaligned = 0;
  const t1 = process.hrtime.bigint();
  for (const t of model.graph.initializers.values()) {
    const raw = t.rawBytes();
    if (raw.buffer === bytes.buffer) views++;
    else copies++;
    const a = t.array; // first access builds the typed array (a copy when raw_data is misaligned)
    if (a.buffer !== bytes.buffer) misaligned++;
  }
  const touchMs = Number(process.hrtime.bigint() - t1) / 1e6;
  const m3 = mem();
  console.log(JSON.stringify({
    bench: 'decode',
    file_mb: Math.round((bytes.byteLength / MB) * 10) / 10,
    initializers: model.graph.initializers.size,
    decode_ms: Math.round(decodeMs * 10) / 10,
    decode_again_ms: Math.round(againMs * 10) / 10,
    data_access_ms: Math.round(touchMs * 10) / 10,
    raw_views_of_file: views,
    raw_copies: copies,
    typed_array_copies_on_access: misaligned,
    mem_read_file_mb: delta(m0, m1),
    mem_decode_mb: delta(m1, m2),
    mem_data_access_mb: delta(m2, m3),
    gc_exposed: gcOn,
  }));
}

function main(argv: string[]): number {
  if (argv[0] === '--measure') {
    measure(argv[1]);
    return 0;
  }
  const keep = argv.includes('--keep');
  const file = path.join(os.tmpdir(), `nx-ptq-bench-decode-${WIDTH}x${LAYERS}-s${SEED}.onnx`);
  const expected = LAYERS * (WIDTH * WIDTH + WIDTH) * 4;
  if (argv.includes('--regenerate') || !fs.existsSync(file) || fs.statSync(file).size < expected) {
    const t0 = Date.now();
    writeFileAtomic(file, encodeModel(buildModel()));
    console.error(`wrote ${file} (${(fs.statSync(file).size / MB).toFixed(1)} MB) in ${Date.now() - t0} ms`);
  }
  const child = spawnSync(process.execPath, ['--expose-gc', '-r', '@swc-node/register', __filename, '--measure', file], {
    stdio: ['ignore', 'inherit', 'inherit'],
    cwd: path.join(__dirname, '..'),
  });
  if (!keep) fs.rmSync(file, { force: true });
  return child.status ?? 1;
}

process.exitCode = main(process.argv.slice(2));
