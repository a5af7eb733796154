import * as fs from 'fs';
import * as path from 'path';
import { BinModel, decodeBin } from '../compile/bin-format';
import { PtqConfig } from '../config';
import { PtqError } from '../errors';
import { writeFileAtomic } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { decodeAndValidate } from '../onnx/load';
import { createProgress } from '../preprocess/progress';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { customDomains, pickEngine } from '../runtime/select';
import { missingOutput, readStageFile, readStageJson } from '../stages/artifacts';
import { StageResult, stageOutputPaths } from '../stages/index';
import { hasQdq, stripQdq } from '../stages/qdq';
import type { QuantInfoJson } from '../stages/quantize';
import { tuningAdvice } from './advice';
import { compareModels } from './compare-models';
import { buildVerifyJson, formatVerifyTable, verifyError, VerifyJson } from './report';
import { verifySamples } from './samples';
import { readVerifySettings } from './settings';

/**
 * The verify stage: the float model (`***_optimized_float_model.onnx`, else the original),
 * `***_quantized_model.onnx` and `***.bin` on the same samples (verify/samples.ts), compared
 * output by output (verify/compare-models.ts); verify.json (written whether or not the checks
 * pass) and a table in the log. Fails — one E_VERIFY error naming the outputs and what to try
 * — when an output's cosine is below `nx-ptq.verify.cosine_threshold` (default 0.99), when the
 * `.bin` is not bit-exact against the quantized model, or when onnxruntime is more than one
 * quantisation step away from it.
 */

/** Loads a `.bin` model into the host runtime. */
export type BinEngineFactory = (model: BinModel, source: string) => Promise<Engine>;

export interface VerifyDeps {
  /** the `.bin` host runtime; undefined: the `.bin` is decoded and checked against the quantized model's inputs/outputs only */
  binEngine?: BinEngineFactory;
}

function readModel(cfg: PtqConfig, stage: 'check' | 'quantize', file: string): Model {
  return decodeAndValidate(readStageFile(cfg, stage, file), file);
}

/** The float model: the optimized one, else the original (QAT pairs stripped, as the quantize stage does). */
function floatModel(cfg: PtqConfig): { model: Model; file: string } {
  const [original, optimized] = stageOutputPaths('check', cfg);
  const file = fs.existsSync(optimized) || !fs.existsSync(original) ? optimized : original;
  const m = readModel(cfg, 'check', file);
  return { model: hasQdq(m) ? stripQdq(m).model : m, file };
}

/** The two nodes of the quantize stage's table with the lowest cosine (run_on_cpu candidates). */
function weakNodes(cfg: PtqConfig): string[] {
  try {
    const j = readStageJson<QuantInfoJson>(cfg, 'quantize', stageOutputPaths('quantize', cfg)[1]);
    return (j.nodes ?? [])
      .filter((n) => typeof n.cosine === 'number' && n.on !== 'CPU')
      .sort((a, b) => (a.cosine as number) - (b.cosine as number) || a.node.localeCompare(b.node))
      .slice(0, 2)
      .map((n) => `${n.node} (${(n.cosine as number).toFixed(4)})`);
  } catch {
    return [];
  }
}

export async function runVerify(cfg: PtqConfig, log: (line: string) => void, deps: VerifyDeps): Promise<StageResult> {
  const lines: string[] = [];
  const say = (l: string): void => {
    lines.push(l);
    log(l);
  };
  const settings = readVerifySettings(cfg);
  const prefix = cfg.model.outputModelFilePrefix;
  const { model: fModel } = floatModel(cfg);
  const [qFile] = stageOutputPaths('quantize', cfg);
  const qModel = readModel(cfg, 'quantize', qFile);
  const [binFile] = stageOutputPaths('compile', cfg);
  const bin = decodeBin(readStageFile(cfg, 'compile', binFile), binFile);
  const binModel = bin.models.find((m) => m.name === prefix) ?? bin.models[0];
  // the .bin has every output of the quantized model (and may have more: layer_out_dump)
  const bOutputs = new Set(binModel.outputs.map((o) => o.name));
  const lost = qModel.graph.outputs.map((o) => o.name).filter((o) => !bOutputs.has(o));
  if (lost.length) {
    throw missingOutput(cfg, 'compile', binFile, `does not belong to '${path.basename(qFile)}' (it has no output ${lost.map((o) => `'${o}'`).join(', ')})`);
  }

  const { samples, source } = await verifySamples(cfg, fModel, settings);
  if (!samples.length) throw new PtqError('E_VERIFY_DATA', 'no samples to verify with', { fix: 'give calibration data or nx-ptq.verify.data_dir' });
  const notes: string[] = [];
  if (source === 'random') notes.push(`calibration_type ${cfg.calibration.calibrationType} without calibration data: ${samples.length} seeded random sample(s)`);

  const engines: Engine[] = [];
  try {
    const float = await pickEngine(fModel, 'auto', { threads: 1 });
    engines.push(float);
    const quantizedEngine = new ReferenceEngine(qModel);
    let ort: Engine | undefined;
    const custom = customDomains(qModel);
    if (custom.length) notes.push(`onnxruntime cannot run the quantized model (custom operator domain ${custom.join(', ')}): not compared`);
    else {
      ort = await OrtEngine.create(qModel, { threads: 1, source: qFile });
      engines.push(ort);
    }
    let binEngine: Engine | undefined;
    if (deps.binEngine) {
      binEngine = await deps.binEngine(binModel, binFile);
      engines.push(binEngine);
    } else notes.push('no .bin host runtime in this build: the .bin was not executed');
    for (const n of notes) say(`INFO ${n}`);

    const bar = createProgress('verify', samples.length);
    const { outputs, count } = await compareModels(
      { quantized: qModel, quantizedEngine, float, ort, bin: binEngine ? { engine: binEngine, model: binModel } : undefined },
      samples,
      (d) => bar.update(d, samples.length),
    );
    bar.finish();
    const { json, failures } = buildVerifyJson(
      {
        model: prefix,
        samples: count,
        sample_source: source,
        cosine_threshold: settings.cosineThreshold,
        engines: { float: float.name, quantized: quantizedEngine.name, onnxruntime: ort ? ort.name : null, bin: binEngine ? binEngine.name : null },
        notes,
      },
      outputs,
    );
    const [out] = stageOutputPaths('verify', cfg);
    writeFileAtomic(out, `${JSON.stringify(json, jsonNumbers, 2)}\n`);
    say(`INFO verify: ${count} sample(s) from ${source === 'data_dir' ? 'nx-ptq.verify.data_dir' : source === 'random' ? 'seeded random inputs' : 'calibration_data'}; cosine threshold ${settings.cosineThreshold}`);
    say(formatVerifyTable(json));
    if (failures.length) throw verifyError(prefix, failures, tuningAdvice(cfg, { weakNodes: weakNodes(cfg) }));
    say(`INFO verify PASSED: ${json.outputs.length} output(s)`);
    return { stage: 'verify', outputs: [out], lines };
  } finally {
    for (const e of engines) await e.dispose();
  }
}

/** JSON.stringify replacer: non-finite numbers as null (JSON has none). */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

export type { VerifyJson };
