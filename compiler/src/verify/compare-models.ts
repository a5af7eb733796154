import type { Sample } from '../calibrate/collect';
import { BinModel } from '../compile/bin-format';
import { isFloat } from '../onnx/dtype';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { Engine } from '../runtime/engine';
import { Similarity } from './similarity';
import { ExactCompare, StepCompare } from './compare';
import { fromBinOutputs, quantizedInfo, toBinFeeds, toQuantizedFeeds } from './feeds';

/**
 * Runs up to four models on the same samples and compares every output of the quantized
 * model, streaming (one sample in memory at a time):
 *  - float model vs quantized model (ours): cosine similarity, L1, L2, Chebyshev;
 *  - `.bin` (host runtime) vs quantized model (ours): bit for bit;
 *  - onnxruntime vs ours on the quantized model: within one quantisation step (the output's
 *    DequantizeLinear scale; 1 for integer outputs; for outputs computed in float on the CPU,
 *    1e-5 of the output's magnitude).
 */

export interface ModelsToCompare {
  /** the quantized model (its outputs are the ones compared) */
  quantized: Model;
  /** our engine on the quantized model: the reference every other result is compared with */
  quantizedEngine: Engine;
  /** the float model's engine (its inputs: the samples as given) */
  float?: Engine;
  /** onnxruntime on the quantized model */
  ort?: Engine;
  bin?: { engine: Engine; model: BinModel };
}

export interface FloatStats {
  cosine: number;
  l1: number;
  l2: number;
  chebyshev: number;
}

export interface BinStats {
  exact: boolean;
  mismatched: number;
  elements: number;
  max_abs_diff: number | null;
  /** the first differing element (sample, flat index, quantized value, .bin value) */
  first: { sample: number; index: number; quantized: number | null; bin: number | null } | null;
}

export interface OrtStats {
  within_one_step: boolean;
  /** elements farther apart than one step */
  beyond: number;
  elements: number;
  max_steps: number | null;
  exact_share: number;
  /** the step used (null: relative, for float CPU outputs) */
  step: number | null;
}

export interface OutputComparison {
  name: string;
  float: FloatStats | null;
  bin: BinStats | null;
  ort: OrtStats | null;
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** One quantisation step of quantized-model output `name`: 1 for integer outputs, the DequantizeLinear scale, else undefined. */
export function outputStep(q: Model, name: string): number | undefined {
  const v = q.graph.outputs.find((o) => o.name === name);
  if (v?.type?.dtype && !isFloat(v.type.dtype)) return 1;
  const producer = q.graph.nodes.find((n) => n.outputs.includes(name));
  if (producer?.opType !== 'DequantizeLinear') return undefined;
  const s = q.graph.initializers.get(producer.inputs[1]);
  if (!s) return undefined;
  const values = s.toNumbers();
  return values.length ? Math.max(...values.map(Math.abs)) : undefined;
}

function dequantized(t: Tensor, scale: number | undefined): Float32Array {
  const v = t.toFloat32();
  if (isFloat(t.dtype) || !scale) return v;
  const o = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) o[i] = v[i] * scale;
  return o;
}

/** max |a[i]| (0 for an empty array). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] < 0 ? -a[i] : a[i];
    if (x > m) m = x;
  }
  return m;
}

export interface CompareProgress {
  (done: number): void;
}

export async function compareModels(models: ModelsToCompare, samples: Iterable<Sample>, progress?: CompareProgress): Promise<{ outputs: OutputComparison[]; count: number }> {
  const q = models.quantized;
  const info = quantizedInfo(q);
  const names = q.graph.outputs.map((o) => o.name);
  const sims = new Map(names.map((n) => [n, new Similarity()]));
  const exact = new Map(names.map((n) => [n, new ExactCompare()]));
  const steps = new Map<string, StepCompare>();
  const relative = new Set<string>();
  const floatMissing = new Set<string>();
  let count = 0;
  for (const sample of samples) {
    const qFeeds = toQuantizedFeeds(sample, q);
    const qOut = await models.quantizedEngine.run(qFeeds);
    const fOut = models.float ? await models.float.run(sample) : undefined;
    const oOut = models.ort ? await models.ort.run(qFeeds) : undefined;
    const bOut = models.bin ? fromBinOutputs(await models.bin.engine.run(toBinFeeds(qFeeds, models.bin.model, info)), models.bin.model) : undefined;
    for (const n of names) {
      const ref = qOut[n];
      const refNums = ref.toNumbers();
      if (fOut) {
        const f = fOut[n];
        if (f && isFloat(f.dtype) && f.size === ref.size) sims.get(n)!.add(f.toFloat32(), dequantized(ref, info.outputs.find((x) => x.name === n)?.scale));
        else floatMissing.add(n);
      }
      if (bOut) {
        const b = bOut[n];
        exact.get(n)!.add(refNums, b ? b.toNumbers() : []);
      }
      if (oOut) {
        let sc = steps.get(n);
        if (!sc) {
          const step = outputStep(q, n);
          if (step === undefined) relative.add(n);
          sc = new StepCompare(step ?? 1e-5 * Math.max(1, maxAbs(refNums)));
          steps.set(n, sc);
        }
        const o = oOut[n];
        sc.add(refNums, o ? o.toNumbers() : []);
      }
    }
    count++;
    progress?.(count);
  }
  const outputs = names.map((n): OutputComparison => {
    const m = sims.get(n)!.metrics;
    const e = exact.get(n)!;
    const s = steps.get(n);
    return {
      name: n,
      float: models.float && !floatMissing.has(n) && count ? { cosine: m.cosine, l1: m.l1, l2: m.l2, chebyshev: m.chebyshev } : null,
      bin: models.bin
        ? {
            exact: e.exact,
            mismatched: e.mismatched,
            elements: e.elements,
            max_abs_diff: finite(e.maxAbsDiff),
            first: e.first ? { sample: e.first.sample, index: e.first.index, quantized: finite(e.first.ref), bin: finite(e.first.test) } : null,
          }
        : null,
      ort: s
        ? {
            within_one_step: s.withinOneStep,
            beyond: s.beyond,
            elements: s.elements,
            max_steps: finite(s.maxSteps),
            exact_share: s.exactShare,
            step: relative.has(n) ? null : s.step,
          }
        : null,
    };
  });
  return { outputs, count };
}
