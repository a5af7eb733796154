/**
 * Are a zoo model's float outputs sensible? Runs the float model (ONNX, or Caffe converted)
 * under onnxruntime on its own calibration samples, normalised exactly as the YAML says
 * ((x − mean) · scale per channel, in input_layout_train), and summarises every output:
 * range, spread, and how much the output changes from sample to sample. Random weights that
 * explode or vanish, or a network that ignores its input, show up here.
 *   node -r @swc-node/register scripts/zoo/float-check.ts models/<project>/model.yaml...
 */
import { InputConfig, loadConfig } from '../../compiler/src/config';
import { Tensor } from '../../compiler/src/onnx/tensor';
import { calibrationSpec, readCalibrationSet } from '../../compiler/src/preprocess/caldata';
import { OrtEngine } from '../../compiler/src/runtime/ort';
import { loadFloatModel } from '../../compiler/src/stages/model';

export interface OutputStats {
  name: string;
  dims: number[];
  /** every value finite */
  finite: boolean;
  min: number;
  max: number;
  /** standard deviation over all values of all samples */
  std: number;
  /** mean over elements of the standard deviation across samples, divided by `std` (0: the output ignores the input) */
  sampleVariation: number;
  /** distinct argmax (over the last axis of a [1, K] output) among the samples */
  distinctArgmax?: number;
}

export interface FloatCheck {
  samples: number;
  outputs: OutputStats[];
}

/** `(x − mean) · scale` per channel of a train-format sample, as the float model takes it. */
export function normalise(t: Tensor, inp: InputConfig): Tensor {
  const x = t.toFloat32();
  const out = new Float32Array(x.length);
  const dims = t.dims;
  const cAxis = inp.layoutTrain === 'NHWC' ? 3 : 1;
  const channels = dims[cAxis];
  const inner = dims.slice(cAxis + 1).reduce((p, q) => p * q, 1);
  const useMean = inp.normType === 'data_mean_and_scale' || inp.normType === 'data_mean';
  const useScale = inp.normType === 'data_mean_and_scale' || inp.normType === 'data_scale';
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const m = useMean && inp.mean ? inp.mean[inp.mean.length === 1 ? 0 : c] : 0;
    const s = useScale && inp.scale ? inp.scale[inp.scale.length === 1 ? 0 : c] : 1;
    out[i] = Math.fround(Math.fround(x[i] - m) * s);
  }
  return new Tensor('float32', dims.slice(), out);
}

export async function floatCheck(configFile: string, maxSamples = 8): Promise<FloatCheck> {
  const { model, cfg } = loadFloatModel(loadConfig(configFile));
  const engine = await OrtEngine.create(model, { threads: 1 });
  const names = model.graph.outputs.map((o) => o.name);
  const values = new Map<string, Float32Array[]>(names.map((n) => [n, []]));
  const dims = new Map<string, number[]>();
  let samples = 0;
  try {
    for await (const s of readCalibrationSet(calibrationSpec(cfg))) {
      if (samples >= maxSamples) break;
      const feeds: Record<string, Tensor> = {};
      for (const inp of cfg.inputs) feeds[inp.name!] = normalise(s.feeds[inp.name!], inp);
      const out = await engine.run(feeds);
      for (const n of names) {
        values.get(n)!.push(out[n].toFloat32());
        dims.set(n, out[n].dims.slice());
      }
      samples++;
    }
  } finally {
    await engine.dispose();
  }
  return { samples, outputs: names.map((n) => stats(n, dims.get(n)!, values.get(n)!)) };
}

function stats(name: string, dims: number[], runs: Float32Array[]): OutputStats {
  const len = runs[0].length;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sum2 = 0;
  let finite = true;
  for (const r of runs) {
    for (let i = 0; i < len; i++) {
      const v = r[i];
      if (!Number.isFinite(v)) finite = false;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      sum2 += v * v;
    }
  }
  const n = len * runs.length;
  const std = Math.sqrt(Math.max(sum2 / n - (sum / n) ** 2, 0));
  let across = 0;
  for (let i = 0; i < len; i++) {
    let m = 0;
    for (const r of runs) m += r[i];
    m /= runs.length;
    let v = 0;
    for (const r of runs) v += (r[i] - m) ** 2;
    across += Math.sqrt(v / runs.length);
  }
  const result: OutputStats = { name, dims, finite, min, max, std, sampleVariation: std > 0 ? across / len / std : 0 };
  if (dims.length === 2 && dims[0] === 1) {
    const arg = new Set(runs.map((r) => r.indexOf(Math.max(...r))));
    result.distinctArgmax = arg.size;
  }
  return result;
}

if (require.main === module) {
  (async () => {
    for (const f of process.argv.slice(2)) {
      const r = await floatCheck(f);
      for (const o of r.outputs) {
        console.log(
          `${f}  ${o.name} [${o.dims.join('x')}]  samples ${r.samples}  range [${o.min.toFixed(3)}, ${o.max.toFixed(3)}]  std ${o.std.toFixed(4)}  ` +
            `sample variation ${o.sampleVariation.toFixed(3)}${o.distinctArgmax !== undefined ? `  distinct top-1 ${o.distinctArgmax}` : ''}${o.finite ? '' : '  NON-FINITE'}`,
        );
      }
    }
  })().catch((e: unknown) => {
    console.error(`ERROR ${(e as Error).message}`);
    process.exitCode = 2;
  });
}
