import { PtqError } from '../errors';
import { fmt } from './similarity';
import type { OutputComparison } from './compare-models';

/**
 * verify.json and the verify stage's table: per model output, the float-vs-quantized
 * similarity (cosine, L1, L2, Chebyshev), whether the `.bin` reproduces the quantized model
 * exactly, and how close onnxruntime comes to our engine on the quantized model; then the
 * verdict. An output fails when its cosine is below the threshold, when the `.bin` differs
 * from the quantized model in any value, or when onnxruntime is more than one quantisation
 * step away.
 */

export const E_VERIFY = 'E_VERIFY';

export type SampleSource = 'calibration_data' | 'data_dir' | 'random';

export interface VerifyOutput extends OutputComparison {
  passed: boolean;
}

export interface VerifyJson {
  version: 1;
  /** the model (output_model_file_prefix) */
  model: string;
  samples: number;
  sample_source: SampleSource;
  cosine_threshold: number;
  engines: { float: string | null; quantized: string; onnxruntime: string | null; bin: string | null };
  outputs: VerifyOutput[];
  passed: boolean;
  failures: string[];
  notes: string[];
}

export interface Failure {
  output: string;
  kind: 'cosine' | 'bin' | 'ort';
  message: string;
}

/** Every failing check of every output, in output order. */
export function findFailures(outputs: readonly OutputComparison[], threshold: number): Failure[] {
  const out: Failure[] = [];
  for (const o of outputs) {
    if (o.float && !(o.float.cosine >= threshold)) {
      out.push({ output: o.name, kind: 'cosine', message: `output '${o.name}': cosine similarity ${fmt(o.float.cosine)} (float vs quantized) is below the threshold ${threshold}` });
    }
    if (o.bin && !o.bin.exact) {
      const f = o.bin.first;
      const where = f ? `; first at sample ${f.sample}, element ${f.index}: quantized ${f.quantized ?? 'missing'}, .bin ${f.bin ?? 'missing'}` : '';
      out.push({
        output: o.name,
        kind: 'bin',
        message: `output '${o.name}': the .bin differs from the quantized model in ${o.bin.mismatched} of ${o.bin.elements} values (max |diff| ${o.bin.max_abs_diff ?? 'inf'}${where})`,
      });
    }
    if (o.ort && !o.ort.within_one_step) {
      out.push({
        output: o.name,
        kind: 'ort',
        message: `output '${o.name}': onnxruntime differs from nx-ptq's engine on the quantized model by up to ${o.ort.max_steps === null ? 'inf' : fmt(o.ort.max_steps, 2)} quantisation steps in ${o.ort.beyond} of ${o.ort.elements} values`,
      });
    }
  }
  return out;
}

/** The one-line error of a failed verification; `advice` is the tuning order for cosine failures. */
export function verifyError(model: string, failures: readonly Failure[], advice: string): PtqError {
  const fixes: string[] = [];
  if (failures.some((f) => f.kind === 'cosine')) fixes.push(`${advice} (or lower nx-ptq.verify.cosine_threshold if this accuracy is acceptable)`);
  if (failures.some((f) => f.kind !== 'cosine')) {
    fixes.push('a .bin or onnxruntime mismatch is a defect of nx-ptq (compiler or runtime), not of the model: compile again and report it with the model if it persists');
  }
  return new PtqError(E_VERIFY, `verification of '${model}' failed: ${failures.map((f) => f.message).join('; ')}`, {
    subject: failures[0]?.output,
    fix: fixes.join('; also: '),
  });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] + 2))).join('').trimEnd());
  const width = widths.reduce((p, q) => p + q + 2, 0) - 2;
  return ['='.repeat(width), lines[0], '-'.repeat(width), ...lines.slice(1)].join('\n');
}

function binCell(o: OutputComparison): string {
  if (!o.bin) return '--';
  return o.bin.exact ? 'exact' : `${o.bin.mismatched}/${o.bin.elements} differ`;
}

function ortCell(o: OutputComparison): string {
  if (!o.ort) return '--';
  if (!o.ort.within_one_step) return `${o.ort.max_steps === null ? 'inf' : fmt(o.ort.max_steps, 2)} steps`;
  if (o.ort.exact_share === 1) return 'exact';
  return `<=1 step (${(o.ort.exact_share * 100).toFixed(2)}% exact)`;
}

/** Output | Cosine Similarity | L1 | L2 | Chebyshev | .bin vs Quantized | ONNXRuntime vs Quantized | Result */
export function formatVerifyTable(j: Pick<VerifyJson, 'outputs'>): string {
  return table([
    ['Output', 'Cosine Similarity', 'L1 Distance', 'L2 Distance', 'Chebyshev Distance', '.bin vs Quantized', 'ONNXRuntime vs Quantized', 'Result'],
    ...j.outputs.map((o) => [
      o.name,
      fmt(o.float?.cosine),
      fmt(o.float?.l1),
      fmt(o.float?.l2),
      fmt(o.float?.chebyshev),
      binCell(o),
      ortCell(o),
      o.passed ? 'PASSED' : 'FAILED',
    ]),
  ]);
}

/** verify.json from the comparisons (outputs marked passed/failed, the failure messages). */
export function buildVerifyJson(base: Omit<VerifyJson, 'outputs' | 'passed' | 'failures' | 'version'>, outputs: readonly OutputComparison[]): { json: VerifyJson; failures: Failure[] } {
  const failures = findFailures(outputs, base.cosine_threshold);
  const failed = new Set(failures.map((f) => f.output));
  const json: VerifyJson = {
    version: 1,
    ...base,
    outputs: outputs.map((o) => ({ ...o, passed: !failed.has(o.name) })),
    passed: failures.length === 0,
    failures: failures.map((f) => f.message),
  };
  return { json, failures };
}
