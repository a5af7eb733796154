/**
 * Determinism end to end: the same models built in two fresh clones (different folders, each
 * with its own empty cache) through `nx run-many` give byte-identical artifacts. Three small
 * models cover the conv / depthwise / residual / Gemm paths and the max, per-channel and
 * default (searched) calibrations. The stages run as far as this build implements them.
 * The one measured (so run-dependent) part, the perf report's host-simulator section, is left
 * out of the comparison (test-support/workspace.ts `comparable`), and only it.
 */
import * as path from 'path';
import { createWorkspace, expectStatus, hashTree, leafStages, MBV2_YAML, nxAsync, removeWorkspace, runnableStages, taskLines, TINY_YAML } from './test-support/workspace';

jest.setTimeout(150_000);

const STAGES = runnableStages();
const MODELS = {
  m1: TINY_YAML,
  m2: TINY_YAML.replace("calibration_type: 'max'", "calibration_type: 'default'").replace("output_model_file_prefix: 'tiny'", "output_model_file_prefix: 'tiny_default'"),
  mbv2: MBV2_YAML,
};
const clones: string[] = [];
afterAll(() => clones.forEach(removeWorkspace));

/** A fresh clone, built; returns every artifact's sha256 keyed by `model/file`. */
async function buildClone(): Promise<Record<string, string>> {
  const ws = createWorkspace('nx-ptq-determinism-', { models: MODELS });
  clones.push(ws);
  const r = await nxAsync(ws, ['run-many', '-t', leafStages(STAGES).join(',')]);
  expectStatus(r, 0);
  expect(taskLines(r.all).ran).toHaveLength(STAGES.length * Object.keys(MODELS).length);
  const out: Record<string, string> = {};
  for (const m of Object.keys(MODELS)) {
    for (const [f, h] of Object.entries(hashTree(path.join(ws, 'models', m, 'model_output')))) out[`${m}/${f}`] = h;
  }
  return out;
}

describe('determinism', () => {
  it('two fresh clones build byte-identical artifacts', async () => {
    // both at once: the clones share nothing (folders, caches), and it halves the wall time
    const [a, b] = await Promise.all([buildClone(), buildClone()]);
    // every stage wrote something for every model
    const expected = ['calibration_data/', '_original_float_model.onnx', 'check.json', '_calibrated_model.onnx', '_quantized_model.onnx', '.bin', 'hb_perf_result/', 'verify.json'];
    const byStage: Record<string, string> = {
      'calibration_data/': 'preprocess',
      '_original_float_model.onnx': 'check',
      'check.json': 'check',
      '_calibrated_model.onnx': 'calibrate',
      '_quantized_model.onnx': 'quantize',
      '.bin': 'compile',
      'hb_perf_result/': 'perf',
      'verify.json': 'verify',
    };
    for (const m of Object.keys(MODELS)) {
      for (const part of expected.filter((p) => (STAGES as string[]).includes(byStage[p]))) {
        expect(Object.keys(a).some((f) => f.startsWith(`${m}/`) && f.includes(part))).toBe(true);
      }
    }
    const differ = Object.keys({ ...a, ...b }).filter((f) => a[f] !== b[f]);
    expect(differ).toEqual([]);
  });
});
