import { computeBiasCorrections } from '../calibrate/bias-correction';
import { collectRanges, collectStatistics, Sample } from '../calibrate/collect';
import { equalizationScales, equalizationSites } from '../calibrate/equalize';
import { DEFAULT_HISTOGRAM_SAMPLE } from '../calibrate/sampled';
import { CalibrationType, PtqConfig } from '../config';
import { isPtqError, PtqError } from '../errors';
import { saveModel, writeFileAtomic } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { createProgress, ProgressReporter } from '../preprocess/progress';
import { activationScale, emitCalibratedModel, QuantizeSpec } from '../quantize';
import { ChannelScales, equalizedModel } from '../quantize/equalize';
import { Engine } from '../runtime/engine';
import { chooseEngine, pickEngine } from '../runtime/select';
import { readCheckOutputs } from './artifacts';
import { openCalibrationSet, sampleSource } from './calibration-data';
import {
  Candidate,
  CandidateThreshold,
  candidateLabel,
  candidateThresholds,
  calibrationTensors,
  DEFAULT_CANDIDATES,
  MIX_SENSITIVITY,
  mixChoice,
  OutputScorer,
  preprocessThresholds,
  SCORING_SAMPLES,
  skipThresholds,
  tensorSensitivity,
} from './calibration-search';
import { StageFn, stageOutputPaths } from './index';
import { hasQdq, stripQdq } from './qdq';

/**
 * The calibrate stage: activation thresholds for the optimized model (check stage) from the
 * calibration data (preprocess stage), by `calibration_type` (calibration-search.ts explains
 * default, mix and skip; qdq.ts explains load), written as
 *  - `***_calibrated_model.onnx`: the fake-quant (QDQ) model of those thresholds, and
 *  - `***_calibration.json`: per tensor threshold, scale and method; the chosen method, the
 *    candidates' scores, the sample counts, the hash of the optimized model they belong to.
 *
 * `per_channel: True`: activations are int8 per tensor in our numerics contract (DESIGN §3),
 * so per-channel thresholds cannot be used as such. Where the BPU can absorb it, the channels
 * are equalised first (calibrate/equalize.ts: an activation between two BPU Convs, through a
 * Relu at most, is rescaled per channel from the per-channel ranges of a first pass, the Convs'
 * weights compensate), the factors go to the JSON (`channel_scales`) and the equalised model
 * is calibrated. Statistics are collected per channel (axis 1), each channel gets min(its
 * absmax, the tensor's threshold by the method), the channel thresholds are recorded in the
 * JSON (`per_channel`) and the tensor's threshold is their maximum — which is the per-tensor
 * threshold again. A warning says so.
 *
 * Statistics (calibrate/README.md): by default one pass with the exact ranges and |x|
 * histograms of at most `histogram_sample` (an nx-ptq key, default 8192) values of each tensor
 * per sample; `histogram_sample: 0` counts every value in two passes.
 *
 * `bias_correction: True` (an nx-ptq key): after the thresholds, the mean output shift of each
 * BPU Conv/Gemm's int8 weights over the calibration data (calibrate/bias-correction.ts) goes
 * to the JSON (`bias_correction`) and into the biases of both models.
 *
 * Deterministic: onnxruntime runs with one thread, samples in file order, sums in a fixed
 * order (the counting worker takes the samples in order), seeded randomness (skip), no
 * timestamps: the same inputs give byte-identical files.
 */

export interface CalibrationJson {
  version: 1;
  calibration_type: CalibrationType;
  /** the method the thresholds come from: max, percentile, kl, mix, skip or load */
  method: string;
  /** for mix: the default winner it started from */
  base_method?: string;
  max_percentile?: number;
  per_channel: boolean;
  /** calibration samples used for the statistics */
  samples: number;
  /** `histogram_sample`: histogram values per tensor per sample (0: every value), for the data-driven methods */
  histogram_sample?: number;
  /** samples the candidates were scored on */
  scoring_samples: number;
  candidates: { method: string; max_percentile?: number; score: number }[];
  /** sha256 of `***_optimized_float_model.onnx` */
  model_sha256: string;
  tensors: Record<string, { threshold: number; scale: number; method: string; max_percentile?: number; per_channel?: number[] }>;
  /** `per_channel: True`: per equalised activation, the factor of each channel (QuantizeSpec.channelScales) */
  channel_scales?: Record<string, number[]>;
  /** `bias_correction: True`: per Conv/Gemm node, the value added to each output channel's bias (QuantizeSpec.biasCorrection) */
  bias_correction?: Record<string, number[]>;
}

type Entry = CalibrationJson['tensors'][string];

export const calibrateStage: StageFn = async (cfg, ctx) => {
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
    ctx.log(l);
  };
  const chk = readCheckOutputs(cfg);
  const type = cfg.calibration.calibrationType;
  let model = chk.model;
  let loaded: Record<string, number> = {};
  if (type === 'load') {
    const s = stripQdq(model);
    if (!s.pairs) {
      throw new PtqError('E_LOAD_QDQ', `calibration_type load: '${cfg.model.onnxModel ?? 'the model'}' has no QuantizeLinear → DequantizeLinear pairs to read thresholds from`, {
        subject: 'calibration_parameters.calibration_type',
        fix: 'give the QAT-exported QDQ model as onnx_model, or use calibration_type default with calibration data',
      });
    }
    log(`INFO calibration_type load: ${s.pairs} QuantizeLinear/DequantizeLinear pair(s) read, ${s.folded} quantized constant(s) folded to float`);
    model = s.model;
    loaded = s.thresholds;
  } else if (hasQdq(model)) {
    throw new PtqError('E_QUANT_INPUT', `the model holds QuantizeLinear/DequantizeLinear nodes; calibration_type ${type} calibrates float models`, {
      subject: 'calibration_parameters.calibration_type',
      fix: 'use calibration_type load to take the thresholds of a QAT model, or give the float model',
    });
  }
  const base: Omit<QuantizeSpec, 'activations'> = { cpuNodes: chk.cpuNodes, march: cfg.model.march, ...(chk.int16Nodes.size ? { int16Nodes: chk.int16Nodes } : {}) };
  const tensors = calibrationTensors(model, base);
  const withData = type !== 'skip' && type !== 'load';
  // per_channel: equalise the channels where the BPU can, then calibrate the equalised model
  const channelScales = withData && cfg.calibration.perChannel ? await equalize(cfg, model, chk.cpuNodes, log) : {};
  const equalized = Object.keys(channelScales).length ? equalizedModel(model, channelScales) : model;
  const out = withData ? await fromData(cfg, equalized, base, tensors, log, Object.keys(channelScales).length) : dataFree(type, model, tensors, loaded);
  const json: CalibrationJson = { version: 1, calibration_type: type, ...out.header, model_sha256: chk.modelHash, tensors: out.tensors } as CalibrationJson;
  if (Object.keys(channelScales).length) json.channel_scales = channelScales;
  const spec: QuantizeSpec = { ...base, activations: out.tensors, ...(json.channel_scales ? { channelScales: json.channel_scales } : {}) };
  if (cfg.calibration.biasCorrection) {
    if (!withData) log(`WARN bias_correction needs calibration data; calibration_type ${type} has none, so the biases stay as they are`);
    else json.bias_correction = spec.biasCorrection = await biasCorrection(cfg, model, spec, log);
  }

  let calibrated: Model;
  try {
    calibrated = emitCalibratedModel(model, spec);
  } catch (e) {
    if (type === 'load' && isPtqError(e) && e.code === 'E_QUANT_THRESHOLD') {
      throw new PtqError('E_LOAD_QDQ', `calibration_type load: ${e.message.replace(/^no calibration threshold/, 'no QuantizeLinear/DequantizeLinear pair')}`, {
        subject: e.subject,
        fix: 'export the QAT model with a QuantizeLinear → DequantizeLinear pair on every activation the BPU computes',
      });
    }
    throw e;
  }
  const [calFile, jsonFile] = stageOutputPaths('calibrate', cfg);
  saveModel(calibrated, calFile);
  writeFileAtomic(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  log(`INFO calibration: ${Object.keys(json.tensors).length} tensor threshold(s), method ${json.method}${json.samples ? `, ${json.samples} sample(s)` : ''}`);
  return { stage: 'calibrate', outputs: [calFile, jsonFile], lines };
};

interface Calibrated {
  header: Omit<CalibrationJson, 'version' | 'calibration_type' | 'model_sha256' | 'tensors'>;
  tensors: Record<string, Entry>;
}

function entry(threshold: number, method: string, extra: Partial<Entry> = {}): Entry {
  return { threshold, scale: activationScale(threshold), method, ...extra };
}

/**
 * skip and load: no calibration data. The HzPreprocess values take their exact range; skip
 * gives the others seeded random thresholds, load those of the model's QDQ pairs (which win
 * over the exact range where both exist).
 */
function dataFree(type: 'skip' | 'load', model: Model, tensors: string[], loaded: Record<string, number>): Calibrated {
  const pre = preprocessThresholds(model);
  const rnd = type === 'skip' ? skipThresholds(tensors) : {};
  const tensorsOut: Record<string, Entry> = {};
  // every pair read counts, also on a tensor the quantizer reads only when another has none
  // (a Conv output whose fused Relu has no pair)
  for (const t of [...tensors, ...Object.keys(loaded).filter((k) => !tensors.includes(k))]) {
    if (loaded[t] !== undefined) tensorsOut[t] = entry(loaded[t], 'load');
    else if (pre[t] !== undefined) tensorsOut[t] = entry(pre[t], 'preprocess-range');
    else if (rnd[t] !== undefined) tensorsOut[t] = entry(rnd[t], 'skip');
  }
  return { header: { method: type, per_channel: false, samples: 0, scoring_samples: 0, candidates: [] }, tensors: tensorsOut };
}

/** max, kl, default, mix: statistics over calibration_data, then the method's search. */
async function fromData(cfg: PtqConfig, model: Model, base: Omit<QuantizeSpec, 'activations'>, tensors: string[], log: (l: string) => void, equalized = 0): Promise<Calibrated> {
  const type = cfg.calibration.calibrationType;
  const perChannel = cfg.calibration.perChannel;
  const set = openCalibrationSet(cfg, model);
  const inputs = new Set(model.graph.realInputs.map((v) => v.name));
  const { engine: engineName } = chooseEngine(model);
  log(`INFO calibration_type ${type}: ${set.count} sample(s), ${tensors.length} tensor(s), engine ${engineName}`);
  // the statistics open their own sessions (see collectStatistics); the searches open one after
  let engine: Engine | undefined;
  try {
    if (perChannel) {
      log(
        `WARN per_channel: activations are int8 per tensor (one scale each); ${equalized} activation(s) were equalised across channels (channel_scales in the calibration JSON), ` +
          'per-channel thresholds are recorded in the calibration JSON and each tensor takes the largest of its channels',
      );
    }
    const bars: ProgressReporter[] = [];
    const exact = preprocessThresholds(model);
    const sample = cfg.calibration.histogramSample ?? DEFAULT_HISTOGRAM_SAMPLE;
    log(
      sample > 0
        ? `INFO calibration statistics: one pass, exact ranges, |x| histograms of at most ${sample} value(s) per tensor per sample (histogram_sample)`
        : 'INFO calibration statistics: two passes, ranges then |x| histograms of every value (histogram_sample: 0)',
    );
    const stats = await collectStatistics(model, sampleSource(set), tensors.filter((t) => exact[t] === undefined), {
      engine: engineName,
      perChannel,
      ...(sample > 0 ? { sample } : {}),
      onProgress: (p) => {
        bars[p.pass - 1] ??= createProgress(`calibration pass ${p.pass} (${p.what})`, set.count, { stream: logStream(log) });
        if (p.pass === 2) bars[0]?.finish();
        bars[p.pass - 1].update(p.samples, set.count);
      },
    });
    bars.forEach((b) => b.finish());

    const maxPercentile = cfg.calibration.maxPercentile ?? 1;
    if (type === 'max' || type === 'kl') {
      const c: Candidate = type === 'kl' ? { method: 'kl' } : maxPercentile < 1 ? { method: 'percentile', maxPercentile } : { method: 'max' };
      const th = candidateThresholds(stats.tensors, c, perChannel, exact, tensors);
      return {
        header: { method: c.method, ...(c.maxPercentile !== undefined ? { max_percentile: c.maxPercentile } : {}), per_channel: perChannel, samples: stats.samples, histogram_sample: sample, scoring_samples: 0, candidates: [] },
        tensors: entries(th),
      };
    }

    // default and mix: score the candidates on the first samples
    const scoring: Sample[] = [...sampleSource(set, SCORING_SAMPLES)()];
    engine = await pickEngine(model, 'auto', { threads: 1, ...(type === 'mix' ? { fetchable: tensors.filter((t) => !inputs.has(t)) } : {}) });
    const scorer = await OutputScorer.create(model, base, scoring, engine);
    const cands = DEFAULT_CANDIDATES.map((c) => ({ c, th: candidateThresholds(stats.tensors, c, perChannel, exact, tensors) }));
    const scores: number[] = [];
    for (const { c, th } of cands) {
      scores.push(await scorer.score(plain(th)));
      log(`INFO calibration method ${candidateLabel(c)}: output cosine similarity ${scores[scores.length - 1].toFixed(6)} (${scorer.sampleCount} sample(s))`);
    }
    let best = 0;
    for (let k = 1; k < scores.length; k++) if (scores[k] > scores[best]) best = k;
    const winner = cands[best];
    log(`INFO Select ${winner.c.method === 'percentile' ? `max-percentile ${winner.c.maxPercentile}` : winner.c.method} method.`);
    const candidates: CalibrationJson['candidates'] = cands.map(({ c }, k) => ({ method: c.method, ...(c.maxPercentile !== undefined ? { max_percentile: c.maxPercentile } : {}), score: scores[k] }));
    const header = { per_channel: perChannel, samples: stats.samples, histogram_sample: sample, scoring_samples: scorer.sampleCount, candidates };
    if (type === 'default') {
      return { header: { method: winner.c.method, ...(winner.c.maxPercentile !== undefined ? { max_percentile: winner.c.maxPercentile } : {}), ...header }, tensors: entries(winner.th) };
    }

    // mix: revisit the tensors whose own quantization error is large
    const sens = await tensorSensitivity(engine, scoring, cands.map(({ th }) => plain(th)), tensors);
    const mixed = entries(winner.th);
    const { switched: choice, weak } = mixChoice(tensors, sens, best);
    for (const [t, k] of choice) if (cands[k].th[t]) mixed[t] = entries({ [t]: cands[k].th[t] })[t];
    const switched = choice.size;
    let mixScore = scores[best];
    let useMix = false;
    if (switched) {
      mixScore = await scorer.score(plain(mixed));
      useMix = mixScore >= scores[best];
    }
    log(
      `INFO mix: ${weak} of ${tensors.length} tensor(s) below cosine ${MIX_SENSITIVITY} with ${candidateLabel(winner.c)}, ${switched} switched method` +
        (switched ? `; output cosine similarity ${mixScore.toFixed(6)}${useMix ? '' : `, below ${scores[best].toFixed(6)}: keeping ${candidateLabel(winner.c)}`}` : ''),
    );
    candidates.push({ method: 'mix', score: mixScore });
    return {
      header: { method: useMix ? 'mix' : winner.c.method, base_method: winner.c.method, ...(winner.c.maxPercentile !== undefined ? { max_percentile: winner.c.maxPercentile } : {}), ...header },
      tensors: useMix ? mixed : entries(winner.th),
    };
  } finally {
    await engine?.dispose();
  }
}

/** per_channel: the factors of every equalisation site (calibrate/equalize.ts), from the per-channel ranges of pass 1. */
async function equalize(cfg: PtqConfig, model: Model, cpuNodes: Set<string>, log: (l: string) => void): Promise<ChannelScales> {
  const sites = equalizationSites(model, cpuNodes);
  if (!sites.length) {
    log('INFO per_channel: no activation between two BPU Convs (optionally through a Relu) to equalise');
    return {};
  }
  const set = openCalibrationSet(cfg, model);
  const bar = createProgress('per-channel ranges', set.count, { stream: logStream(log) });
  const ranges = await collectRanges(model, sampleSource(set), sites.map((s) => s.tensor), {
    engine: chooseEngine(model).engine,
    perChannel: true,
    onProgress: (p) => bar.update(p.samples, set.count),
  });
  bar.finish();
  const absmax = Object.fromEntries(Object.entries(ranges.tensors).map(([k, r]) => [k, r.perChannelAbsmax ?? new Float64Array(0)]));
  const scales = equalizationScales(model, sites, absmax);
  log(`INFO per_channel: ${Object.keys(scales).length} of ${sites.length} activation(s) between BPU Convs equalised across channels`);
  return scales;
}

/** `bias_correction`: the mean output shift of each BPU Conv/Gemm's int8 weights, over the calibration data. */
async function biasCorrection(cfg: PtqConfig, model: Model, spec: QuantizeSpec, log: (l: string) => void): Promise<Record<string, number[]>> {
  const set = openCalibrationSet(cfg, model);
  const bar = createProgress('bias correction', set.count, { stream: logStream(log) });
  const corrections = await computeBiasCorrections(model, spec, sampleSource(set), { onProgress: (n) => bar.update(n, set.count) });
  bar.finish();
  let largest = 0;
  for (const d of Object.values(corrections)) for (const v of d) largest = Math.max(largest, Math.abs(v));
  log(`INFO bias_correction: ${Object.keys(corrections).length} Conv/Gemm bias(es) corrected, largest change ${largest.toPrecision(3)}`);
  return corrections;
}

function entries(th: Record<string, CandidateThreshold>): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  for (const [k, t] of Object.entries(th)) {
    out[k] = entry(t.threshold, t.method, {
      ...(t.maxPercentile !== undefined ? { max_percentile: t.maxPercentile } : {}),
      ...(t.perChannel ? { per_channel: t.perChannel } : {}),
    });
  }
  return out;
}

function plain(th: Record<string, { threshold: number }>): Record<string, number> {
  return Object.fromEntries(Object.entries(th).map(([k, v]) => [k, v.threshold]));
}

/** Progress lines into the stage log (one line per write, no TTY bar). */
function logStream(log: (l: string) => void): { write(text: string): void; isTTY: boolean } {
  return { write: (text) => text.split('\n').filter((l) => l.trim()).forEach((l) => log(`INFO ${l}`)), isTTY: false };
}
