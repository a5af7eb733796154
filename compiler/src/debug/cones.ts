import { Tensor } from '../onnx/tensor';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { chooseEngine, pickEngine } from '../runtime/select';
import { DebugData, readSample } from './data';
import { DebugModel } from './graph';
import { MetricAccumulator } from '../verify/metrics';
import { CommonOptions, progressFor } from './session';
import { Cone, CONE_ORT, coneModel, VARIANT_ORT, variantModel } from './variants';

/**
 * Many single-change variants against the float model, reusing the float activations: the
 * float model runs once per sample and keeps the values at the boundary of every variant's
 * cone (variants.ts); each variant then runs only its cone, fed from that cache, one session
 * per variant. Samples go in chunks whose cached values fit `cacheMb`, so memory stays bounded
 * on large models (each chunk opens the cone sessions again).
 */
/**
 * MobileNetV2 at 224 keeps 52 MB per sample (every activation is some cone's boundary): 1 GB
 * takes 19 samples per chunk; each further chunk reopens every cone session (~50 ms each).
 */
export const DEFAULT_CACHE_MB = 1024;

export interface MeasureOptions extends CommonOptions {
  /** for the log line */
  label?: string;
  /** memory for cached float values (default DEFAULT_CACHE_MB) */
  cacheMb?: number;
}

export async function measureVariants(
  dm: DebugModel,
  data: DebugData,
  sets: ReadonlySet<number>[],
  compared: string[],
  opts: MeasureOptions = {},
): Promise<{ metrics: MetricAccumulator[]; engine: string }> {
  const engineKind = chooseEngine(dm.model, opts.engine ?? 'auto').engine;
  const accs = sets.map(() => new MetricAccumulator());
  const types = new Map<string, Tensor>();
  const cones: (Cone | undefined)[] = sets.map((s) => (s.size ? coneModel(dm, s, compared, () => undefined) : undefined));
  const boundary = new Set<string>(compared);
  for (const c of cones) for (const v of c?.inputs ?? []) boundary.add(v);
  const inputs = new Set(dm.model.graph.realInputs.map((v) => v.name));
  const fetch = [...boundary].filter((v) => !inputs.has(v));
  const floatModel = variantModel(dm, new Set());
  const floatEngine = await pickEngine(floatModel, engineKind, { ...VARIANT_ORT, fetchable: fetch, source: dm.source });
  const runs = cones.filter((c) => c?.outputs.length).length;
  opts.log?.(`INFO sensitivity of ${sets.length} ${opts.label ?? 'node(s)'} on ${data.count} sample(s), engine ${floatEngine.name}, ${runs} cone model(s)`);
  const bar = progressFor(opts, 'sensitivity', data.count * (runs + 1));
  try {
    let chunk = 0;
    for (let start = 0; start < data.count; start += chunk) {
      // float values at every cone's boundary, for the samples of this chunk
      const cache: Record<string, Tensor>[] = [];
      for (let i = start; i < data.count && (chunk === 0 || i < start + chunk); i++) {
        const sample = readSample(data, i);
        const r = await floatEngine.run(sample, { fetch });
        const kept: Record<string, Tensor> = {};
        let bytes = 0;
        for (const v of boundary) {
          const t = r[v] ?? sample[v];
          kept[v] = t;
          if (!types.has(v)) types.set(v, t);
          bytes += t.array.byteLength;
        }
        cache.push(kept);
        bar.tick();
        if (chunk === 0) {
          chunk = Math.max(1, Math.floor(((opts.cacheMb ?? DEFAULT_CACHE_MB) * 1024 * 1024) / Math.max(1, bytes)));
          if (chunk < data.count) opts.log?.(`INFO float values cached: ${(bytes / 1048576).toFixed(1)} MB per sample, ${Math.ceil(data.count / chunk)} chunk(s) of ${chunk} sample(s)`);
        }
      }
      const refs = cache.map((c) => compared.map((v) => c[v].toFloat32()));
      for (let k = 0; k < sets.length; k++) {
        const cone = cones[k];
        if (!cone || !cone.outputs.length) {
          // nothing quantized, or nothing downstream of it is compared: the float result
          for (const ref of refs) for (const a of ref) accs[k].add(a, a);
          continue;
        }
        cone.model.graph.inputs = cone.inputs.map((name) => {
          const t = types.get(name) as Tensor;
          return { name, type: { dtype: t.dtype, shape: t.dims.slice() } };
        });
        const engine: Engine = engineKind === 'reference' ? new ReferenceEngine(cone.model) : await OrtEngine.create(cone.model, { ...CONE_ORT, source: `${dm.source} (cone)` });
        try {
          for (let s = 0; s < cache.length; s++) {
            const feeds: Record<string, Tensor> = {};
            for (const v of cone.inputs) feeds[v] = cache[s][v];
            const r = await engine.run(feeds);
            compared.forEach((v, j) => accs[k].add(refs[s][j], cone.outputs.includes(v) ? r[v].toFloat32() : refs[s][j]));
            bar.tick();
          }
        } finally {
          await engine.dispose();
        }
      }
    }
    bar.finish();
  } catch (e) {
    bar.abort();
    throw e;
  } finally {
    await floatEngine.dispose();
  }
  return { metrics: accs, engine: floatEngine.name };
}
