import { Rng } from '../kernels/random';
import { decodeModel } from '../onnx/decode';
import { encodeModel } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { ReferenceEngine } from '../runtime/reference';

/** Test helpers for the graph passes: deep copies, seeded inputs, output comparison. */

/** A deep copy through the ONNX encoder (so the optimized model is also known to serialise). */
export function cloneModel(m: Model): Model {
  return decodeModel(encodeModel(m));
}

/** Normal(0, 1) float inputs of the declared shapes (symbolic dims → `dimDefault`). */
export function randomFeeds(m: Model, seed: number, dimDefault = 1): Record<string, Tensor> {
  const rng = new Rng(seed);
  const feeds: Record<string, Tensor> = {};
  for (const v of m.graph.realInputs) {
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : dimDefault));
    const n = dims.reduce((p, q) => p * q, 1);
    feeds[v.name] = new Tensor('float32', dims, rng.fillNormal(new Float32Array(n)));
  }
  return feeds;
}

/** max |a − b| / max |a| over all outputs of both models on the same seeded inputs (the worst seed). */
export function outputError(original: Model, optimized: Model, seeds: number[] = [1, 2]): number {
  const e0 = new ReferenceEngine(original);
  const e1 = new ReferenceEngine(optimized);
  let worst = 0;
  for (const seed of seeds) {
    const feeds = randomFeeds(original, seed);
    const a = e0.runSync(feeds);
    const b = e1.runSync(feeds);
    for (const name of e0.outputNames) {
      const x = a[name];
      const y = b[name];
      if (!y) throw new Error(`optimized model lost output '${name}'`);
      if (x.dims.join(',') !== y.dims.join(',')) throw new Error(`output '${name}' changed shape: [${x.dims}] → [${y.dims}]`);
      const xs = x.toNumbers();
      const ys = y.toNumbers();
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < xs.length; i++) {
        scale = Math.max(scale, Math.abs(xs[i]));
        diff = Math.max(diff, Math.abs(xs[i] - ys[i]));
        if (Number.isNaN(ys[i]) !== Number.isNaN(xs[i])) return Infinity;
      }
      worst = Math.max(worst, scale > 0 ? diff / scale : diff);
    }
  }
  return worst;
}

/** op_type → count. */
export function opCounts(m: Model): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of m.graph.nodes) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
}

export function opTypes(m: Model): string[] {
  return m.graph.nodes.map((n) => n.opType);
}
