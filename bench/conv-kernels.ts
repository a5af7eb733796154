import { isPtqError } from '../compiler/src/errors';
import { gemmBackend, GemmBackend, setGemmBackend, sgemm } from '../compiler/src/kernels/gemm';
import { Rng } from '../compiler/src/kernels/random';
import { GraphBuilder } from '../compiler/src/onnx/builder';
import { Tensor } from '../compiler/src/onnx/tensor';
import { OrtEngine } from '../compiler/src/runtime/ort';
import { ReferenceEngine } from '../compiler/src/runtime/reference';

/**
 * The float kernels behind Conv: square sgemm GFLOP/s, then single-Conv models (layer shapes
 * of ResNet18 and MobileNetV2) on the reference engine vs onnxruntime-node (1 thread).
 * Times are CPU time of the process (robust on a shared machine), best of three rounds.
 * One JSON line per measurement on stdout, a table on stderr.
 *
 *   node -r @swc-node/register bench/conv-kernels.ts [--backend wasm-simd|js] [--ms 400]
 */

interface Layer {
  name: string;
  x: number[];
  out: number;
  k: number;
  s: number;
  p: number;
  group?: number;
}

const LAYERS: Layer[] = [
  { name: '1x64x56x56 3x3 ->64', x: [1, 64, 56, 56], out: 64, k: 3, s: 1, p: 1 },
  { name: '1x3x224x224 3x3 s2 ->32', x: [1, 3, 224, 224], out: 32, k: 3, s: 2, p: 1 },
  { name: '1x3x224x224 7x7 s2 ->64', x: [1, 3, 224, 224], out: 64, k: 7, s: 2, p: 3 },
  { name: '1x128x28x28 3x3 ->128', x: [1, 128, 28, 28], out: 128, k: 3, s: 1, p: 1 },
  { name: '1x512x7x7 3x3 ->512', x: [1, 512, 7, 7], out: 512, k: 3, s: 1, p: 1 },
  { name: '1x24x56x56 1x1 ->144', x: [1, 24, 56, 56], out: 144, k: 1, s: 1, p: 0 },
  { name: '1x144x56x56 1x1 ->24', x: [1, 144, 56, 56], out: 24, k: 1, s: 1, p: 0 },
  { name: 'dw 1x144x56x56 3x3', x: [1, 144, 56, 56], out: 144, k: 3, s: 1, p: 1, group: 144 },
  { name: 'dw 1x96x112x112 3x3 s2', x: [1, 96, 112, 112], out: 96, k: 3, s: 2, p: 1, group: 96 },
];

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}

/** Best of three rounds of at least `minMs` each, after two untimed calls: ms per call. */
async function time(f: () => unknown, minMs: number): Promise<number> {
  await f();
  await f();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    let n = 0;
    const t0 = cpuMs();
    let t = 0;
    do {
      await f();
      n++;
      t = cpuMs() - t0;
    } while (t < minMs);
    best = Math.min(best, t / n);
  }
  return best;
}

const round = (x: number, d = 2): number => Number(x.toFixed(d));

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const be = opt('--backend') as GemmBackend | undefined;
  if (be) setGemmBackend(be);
  const minMs = Number(opt('--ms') ?? 400);
  const rng = new Rng(11);
  const table: string[][] = [['what', 'ours ms', 'ort ms', 'ratio', 'ours GFLOP/s']];
  for (const n of [256, 512, 1024]) {
    const A = rng.fillNormal(new Float32Array(n * n)), B = rng.fillNormal(new Float32Array(n * n)), C = new Float32Array(n * n);
    const ms = await time(() => sgemm(false, false, n, n, n, 1, A, 0, n, B, 0, n, 0, C, 0, n), minMs);
    const row = { bench: 'sgemm', backend: gemmBackend(), n, ms: round(ms), gflops: round((2 * n ** 3) / ms / 1e6) };
    console.log(JSON.stringify(row));
    table.push([`sgemm ${n}³`, String(row.ms), '-', '-', String(row.gflops)]);
  }
  for (const L of LAYERS) {
    const b = new GraphBuilder('conv', { opset: 13, seed: 3 });
    const x = b.input('x', 'float32', L.x);
    b.output(b.conv(x, { outChannels: L.out, kernel: L.k, stride: L.s, pad: L.p, group: L.group ?? 1 }), 'y');
    const model = b.build();
    const feeds = { x: new Tensor('float32', L.x, rng.fillNormal(new Float32Array(L.x.reduce((p, q) => p * q, 1)))) };
    const ref = new ReferenceEngine(model);
    const ort = await OrtEngine.create(model, { threads: 1 });
    const ours = await time(() => ref.runSync(feeds), minMs);
    const theirs = await time(() => ort.run(feeds), minMs);
    const yo = ref.runSync(feeds).y.array as Float32Array;
    const yt = (await ort.run(feeds)).y.array as Float32Array;
    await ort.dispose();
    let diff = 0;
    for (let i = 0; i < yo.length; i++) diff = Math.max(diff, Math.abs(yo[i] - yt[i]));
    const macs = yo.length * (L.x[1] / (L.group ?? 1)) * L.k * L.k;
    const row = { bench: 'conv', backend: gemmBackend(), layer: L.name, ours_ms: round(ours), ort_ms: round(theirs), ratio: round(ours / theirs), ours_gflops: round((2 * macs) / ours / 1e6), max_abs_diff: Number(diff.toPrecision(3)) };
    console.log(JSON.stringify(row));
    table.push([L.name, String(row.ours_ms), String(row.ort_ms), `${row.ratio}x`, String(row.ours_gflops)]);
  }
  const w = table[0].map((_, c) => Math.max(...table.map((l) => l[c].length)));
  for (const l of table) console.error(l.map((s, c) => s.padEnd(w[c])).join('  '));
}

main().catch((e: unknown) => {
  console.error(isPtqError(e) ? e.oneLine() : e);
  process.exitCode = 1;
});
