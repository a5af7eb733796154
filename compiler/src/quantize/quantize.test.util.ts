import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng } from '../kernels/random';
import { encodeModel } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { ReferenceEngine } from '../runtime/reference';

/** Test helpers for the quantize stage (not a test file: jest matches `*.test.ts` only). */

/** Seeded feeds for every real input: N(0, 1) floats, uniform int8 for image inputs. */
export function randomFeeds(model: Model, count: number, seed: number): Record<string, Tensor>[] {
  const rng = new Rng(seed);
  const out: Record<string, Tensor>[] = [];
  for (let k = 0; k < count; k++) {
    const feeds: Record<string, Tensor> = {};
    for (const v of model.graph.realInputs) {
      const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
      const n = dims.reduce((p, q) => p * q, 1);
      if (v.type?.dtype === 'int8') {
        const a = new Int8Array(n);
        for (let i = 0; i < n; i++) a[i] = Math.floor(rng.uniform(-128, 128));
        feeds[v.name] = new Tensor('int8', dims, a);
      } else {
        feeds[v.name] = new Tensor('float32', dims, rng.fillNormal(new Float32Array(n), 0, 1));
      }
    }
    out.push(feeds);
  }
  return out;
}

/** Calibration by absmax: threshold = max |x| over the feeds, for every float value the model computes or takes. */
export function maxThresholds(model: Model, feeds: Record<string, Tensor>[]): Record<string, { threshold: number }> {
  const g = model.graph;
  const names: string[] = [];
  for (const n of g.nodes) for (const o of n.outputs) if (o) names.push(o);
  for (const v of g.realInputs) if (v.type?.dtype === 'float32') names.push(v.name);
  const engine = new ReferenceEngine(model);
  const max = new Map<string, number>();
  for (const f of feeds) {
    const r = engine.runSync(f, { fetch: names.filter((n) => !g.realInputs.some((v) => v.name === n)) });
    for (const n of names) {
      const t = r[n] ?? f[n];
      if (!t || t.dtype !== 'float32') continue;
      const a = t.data as Float32Array;
      let m = max.get(n) ?? 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
      max.set(n, m);
    }
  }
  const out: Record<string, { threshold: number }> = {};
  for (const [k, v] of max) out[k] = { threshold: v };
  return out;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa === 0 && bb === 0) return 1;
  return ab / Math.sqrt(aa * bb);
}

/** Share of elements equal within `step` (one quantisation step), and how many were exactly equal. */
export function withinStep(a: Tensor, b: Tensor, step: number): { within: number; exact: number; n: number } {
  const x = a.toNumbers();
  const y = b.toNumbers();
  if (x.length !== y.length) throw new Error(`sizes differ: ${a.dims} vs ${b.dims}`);
  let within = 0;
  let exact = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (d === 0) exact++;
    if (d <= step * (1 + 1e-6)) within++;
  }
  return { within: within / Math.max(1, x.length), exact: exact / Math.max(1, x.length), n: x.length };
}

/**
 * Run onnx.checker (full check) and strict shape inference on the models in one
 * `/usr/bin/python3` process. Returns undefined when Python or onnx is missing, else the
 * checker's stderr ('' when every model passed).
 */
export function onnxCheck(models: Record<string, Model>): string | undefined {
  const py = '/usr/bin/python3';
  if (!fs.existsSync(py)) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantize-check-'));
  try {
    const files = Object.entries(models).map(([name, m]) => {
      const f = path.join(dir, `${name}.onnx`);
      fs.writeFileSync(f, encodeModel(m));
      return f;
    });
    const code = [
      'import onnx, sys',
      'for f in sys.argv[1:]:',
      '    m = onnx.load(f)',
      '    try:',
      '        onnx.checker.check_model(m, full_check=True)',
      '        onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)',
      '    except Exception as e:',
      "        sys.stderr.write(f.split('/')[-1] + ': ' + str(e).splitlines()[0] + '\\n')",
    ].join('\n');
    const r = spawnSync(py, ['-c', code, ...files], { encoding: 'utf8' });
    if (/No module named/.test(r.stderr)) return undefined;
    return r.stderr + (r.status !== 0 ? `exit ${r.status}` : '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** NCHW → NHWC copy of a 4-D tensor (image feeds of the quantized model on bernoulli2). */
export function toNhwc(t: Tensor): Tensor {
  const [n, c, h, w] = t.dims;
  const s = t.data as Int8Array;
  const o = new (s.constructor as Int8ArrayConstructor)(s.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) o[((b * h + y) * w + x) * c + k] = s[((b * c + k) * h + y) * w + x];
    }
  }
  return new Tensor(t.dtype, [n, h, w, c], o);
}

export interface EngineAgreement {
  /** int8 / int16 values compared (outputs and intermediates) */
  values: number;
  /** worst share of elements within one step over those values */
  worstWithin: number;
  /** worst share of elements exactly equal, over the integer values (float outputs may differ in the last bits) */
  worstExact: number;
  worstValue: string;
  /** the reference engine's results per feed (every value), for further checks without running again */
  ref: Record<string, Tensor>[];
}

/**
 * Run `q` in onnxruntime (default optimisation, once plainly and once fetching every integer
 * intermediate) and in the ReferenceEngine; compare every integer value within one step (1 LSB)
 * and every float output within one step of its scale (`outputSteps`).
 */
export async function compareEngines(
  q: Model,
  feeds: Record<string, Tensor>[],
  outputSteps: Record<string, number> = {},
): Promise<EngineAgreement> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { OrtEngine } = require('../runtime/ort') as typeof import('../runtime/ort');
  const ref = new ReferenceEngine(q);
  const all = q.graph.nodes.flatMap((n) => n.outputs).filter((o) => o);
  const ort = await OrtEngine.create(q);
  const res: EngineAgreement = { values: 0, worstWithin: 1, worstExact: 1, worstValue: '', ref: [] };
  try {
    for (const f of feeds) {
      const r = ref.runSync(f, { fetch: all });
      res.ref.push(r);
      const ints = all.filter((n) => r[n].dtype === 'int8' || r[n].dtype === 'int16');
      const o = await ort.run(f, { fetch: ints });
      const plain = await ort.run(f);
      const check = (name: string, a: Tensor, b: Tensor, step: number): void => {
        const w = withinStep(a, b, step);
        res.values++;
        if (w.within < res.worstWithin) res.worstValue = name;
        res.worstWithin = Math.min(res.worstWithin, w.within);
        if (a.dtype !== 'float32') res.worstExact = Math.min(res.worstExact, w.exact);
      };
      for (const n of ints) check(n, r[n], o[n], 1);
      for (const out of q.graph.outputs) {
        const t = r[out.name];
        check(`${out.name} (plain session)`, t, plain[out.name], t.dtype === 'float32' ? outputSteps[out.name] ?? 0 : 1);
      }
    }
  } finally {
    await ort.dispose();
  }
  return res;
}
