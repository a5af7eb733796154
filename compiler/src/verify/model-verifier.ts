import type { Sample } from '../calibrate/collect';
import { BinModel, readBinFile, selectModel } from '../compile/bin-format';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { Model } from '../onnx/ir';
import { loadAndValidate } from '../onnx/load';
import { Tensor } from '../onnx/tensor';
import { Engine } from '../runtime/engine';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { customDomains } from '../runtime/select';
import { packedNotSupported } from '../tools/modifier';
import { formatStrict, StepCompare, strictCompare } from './compare';
import { maxAbs, outputStep } from './compare-models';
import { fromBinOutputs, quantizedInfo, randomSample, toBinFeeds } from './feeds';
import { readInputFiles } from './inputs';
import type { BinEngineFactory } from './run-verify';

/**
 * `ptq model-verifier` (hb_model_verifier): the quantized model (nx-ptq's engine, "Quanti
 * onnx"), the `.bin` (host runtime, "Bin runtime") and onnxruntime on the quantized model
 * ("Onnxruntime") on one input — the files given, else seeded random data — compared pairwise
 * to `digits` decimals. Every input and every output (the reference: one input, the first
 * output). A packed file needs -m. Quanti onnx and Bin runtime must agree strictly;
 * onnxruntime may differ by one quantisation step (its float CPU kernels round differently),
 * which is reported and tolerated.
 */

export const QUANTI = 'Quanti onnx';
export const BIN = 'Bin runtime';
export const ORT = 'Onnxruntime';

export interface ModelVerifierOptions {
  quantizedFile: string;
  binFile: string;
  /** -m: the model of a packed file */
  modelName?: string;
  /** -i: one file per input */
  inputs: string[];
  /** -d (default 5) */
  digits: number;
  /** seed of the random inputs */
  seed?: string;
  binEngine?: BinEngineFactory;
  out: (line: string) => void;
}

function checkPair(q: Model, bin: BinModel, binFile: string): void {
  const qIn = q.graph.realInputs.map((v) => v.name).sort();
  const bIn = bin.inputs.map((i) => i.name).sort();
  const qOut = q.graph.outputs.map((v) => v.name).sort();
  const bOut = bin.outputs.map((o) => o.name).sort();
  // the .bin may have more outputs (layer_out_dump); the quantized model's must all be there
  if (qIn.join('\0') !== bIn.join('\0') || !qOut.every((o) => bOut.includes(o))) {
    throw new PtqError('E_VERIFY_PAIR', `'${binFile}' (inputs ${bIn.join(', ')}; outputs ${bOut.join(', ')}) was not compiled from this quantized model (inputs ${qIn.join(', ')}; outputs ${qOut.join(', ')})`, {
      subject: binFile,
      fix: 'give the ***_quantized_model.onnx and ***.bin of the same conversion',
    });
  }
}

/** Runs the check; returns whether it passed (the lines went to `out`). */
export async function modelVerifier(o: ModelVerifierOptions): Promise<boolean> {
  if (!Number.isInteger(o.digits) || o.digits < 0 || o.digits > 20) {
    throw new PtqError('E_CLI_ARGS', `model-verifier: --compare_digits must be a whole number 0…20, got ${o.digits}`, { fix: 'use e.g. -d 5' });
  }
  const q = loadAndValidate(o.quantizedFile);
  const file = readBinFile(o.binFile);
  if (file.packed && o.modelName === undefined) throw packedNotSupported(o.binFile);
  const bin = selectModel(file, o.modelName, o.binFile);
  checkPair(q, bin, o.binFile);
  if (!o.binEngine) {
    throw new PtqError('E_RUNTIME_MISSING', 'the .bin host runtime is not part of this build of nx-ptq', { fix: 'use a build with compiler/src/runtime/bin-engine.ts' });
  }
  const feeds: Sample = o.inputs.length ? await readInputFiles(q, o.inputs) : randomSample(q, new Rng(o.seed ?? 'model-verifier'));
  o.out(`INFO inputs: ${o.inputs.length ? o.inputs.join(', ') : `seeded random data (${Object.keys(feeds).join(', ')})`}`);

  const engines: Engine[] = [];
  try {
    const qe = new ReferenceEngine(q);
    const be = await o.binEngine(bin, o.binFile);
    engines.push(be);
    let ort: Engine | undefined;
    const custom = customDomains(q);
    if (custom.length) o.out(`INFO ${ORT} cannot run the quantized model (custom operator domain ${custom.join(', ')}): not compared`);
    else {
      ort = await OrtEngine.create(q, { threads: 1, source: o.quantizedFile });
      engines.push(ort);
    }
    const results: Record<string, Record<string, Tensor>> = {};
    results[QUANTI] = await qe.run(feeds);
    results[BIN] = fromBinOutputs(await be.run(toBinFeeds(feeds, bin, quantizedInfo(q))), bin);
    if (ort) results[ORT] = await ort.run(feeds);
    const outputs = q.graph.outputs.map((v) => v.name);
    const failed: string[] = [];
    for (const name of outputs) {
      if (outputs.length > 1) o.out(`INFO output '${name}':`);
      const nums = (who: string): number[] => results[who]?.[name]?.toNumbers() ?? [];
      const pairs: [string, string][] = [[QUANTI, BIN]];
      if (ort) pairs.push([QUANTI, ORT], [BIN, ORT]);
      for (const [a, b] of pairs) {
        const r = strictCompare(nums(a), nums(b), o.digits);
        for (const line of formatStrict(a, b, r)) o.out(line);
        if (r.mismatch === 0) continue;
        if (b === ORT) {
          const step = outputStep(q, name);
          const s = new StepCompare(step ?? 1e-5 * Math.max(1, maxAbs(nums(a)))).add(nums(a), nums(b));
          if (s.withinOneStep) {
            o.out(`INFO ${ORT} is within one quantisation step of ${a} on output '${name}': tolerated (onnxruntime's float kernels round differently)`);
            continue;
          }
        }
        failed.push(`${a} vs ${b} on output '${name}': ${r.mismatch} of ${r.total} values differ at ${o.digits} decimals`);
      }
    }
    if (failed.length) {
      throw new PtqError('E_VERIFY', `model-verifier: results differ: ${failed.join('; ')}`, {
        subject: o.binFile,
        fix: failed.some((f) => f.startsWith(`${QUANTI} vs ${BIN}`))
          ? `the .bin does not reproduce the quantized model: compile '${o.quantizedFile}' again (ptq makertbin); if it persists, report it with the model`
          : 'onnxruntime differs by more than one quantisation step from nx-ptq: report it with the model',
      });
    }
    return true;
  } finally {
    for (const e of engines) await e.dispose();
  }
}
