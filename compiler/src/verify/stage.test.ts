/**
 * The verify stage end to end on small generated projects (featuremap input; rgb image fed as
 * nv12): preprocess → check → calibrate → quantize → compile → verify. verify.json and the
 * table; the failures (cosine below the threshold, a corrupted .bin) with their messages;
 * nx-ptq.verify.data_dir; byte-identical verify.json on a second run.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeBin, encodeBin } from '../compile/bin-format';
import { loadConfig } from '../config';
import { PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { saveModel } from '../onnx/encode';
import { runStage, StageName } from '../stages';
import { verifyStageWith } from '../stages/verify';
import { defaultBinEngine } from './bin-runtime';
import { plainCnn } from './fixtures.test.util';
import type { VerifyJson } from './report';

jest.setTimeout(180_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-verify-stage-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

interface Project {
  yaml: string;
  work: string;
  prefix: string;
}

function smoothBytes(rng: Rng, n: number): Uint8Array {
  const f = [rng.uniform(0.05, 0.3), rng.uniform(0, 6)];
  return Uint8Array.from({ length: n }, (_, i) => Math.round(128 + 90 * Math.sin(f[0] * i + f[1])));
}

function writeProject(name: string, input: 'featuremap' | 'nv12', extra = ''): Project {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, 'cal'), { recursive: true });
  saveModel(plainCnn(input === 'featuremap' ? 4 : 3, name), path.join(dir, 'model.onnx'));
  const rng = new Rng(name);
  for (let i = 0; i < 6; i++) {
    const bytes = input === 'featuremap'
      ? new Uint8Array(Float32Array.from({ length: 4 * 64 }, (_, k) => Math.sin(0.1 * k + i) * 1.5).buffer)
      : smoothBytes(rng, 3 * 64);
    fs.writeFileSync(path.join(dir, 'cal', `s${i}.bin`), bytes);
  }
  const inputParams = input === 'featuremap'
    ? "  input_type_train: 'featuremap'\n  input_layout_train: 'NCHW'\n  input_type_rt: 'featuremap'\n  input_layout_rt: 'NCHW'\n  norm_type: 'no_preprocess'"
    : "  input_type_train: 'rgb'\n  input_layout_train: 'NCHW'\n  input_type_rt: 'nv12'\n  norm_type: 'data_mean_and_scale'\n  mean_value: '123.7 116.3 103.5'\n  scale_value: '0.0171 0.0175 0.0174'";
  const yaml = path.join(dir, 'model.yaml');
  fs.writeFileSync(
    yaml,
    `model_parameters:
  onnx_model: 'model.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: '${name}'
input_parameters:
${inputParams}
calibration_parameters:
  cal_data_dir: 'cal'
  calibration_type: 'max'
compiler_parameters:
  optimize_level: 'O3'
${extra}`,
  );
  return { yaml, work: path.join(dir, 'model_output'), prefix: name };
}

async function build(p: Project): Promise<void> {
  for (const s of ['preprocess', 'check', 'calibrate', 'quantize', 'compile'] as StageName[]) await runStage(s, { configFile: p.yaml, log: () => undefined });
}

const verify = verifyStageWith({ binEngine: defaultBinEngine() });

async function runVerify(p: Project): Promise<{ lines: string[]; json: VerifyJson; error?: PtqError }> {
  const lines: string[] = [];
  let error: PtqError | undefined;
  try {
    await verify(loadConfig(p.yaml), { configFile: p.yaml, log: (l) => lines.push(l) });
  } catch (e) {
    if (!(e instanceof PtqError)) throw e;
    error = e;
  }
  const json = JSON.parse(fs.readFileSync(path.join(p.work, 'verify.json'), 'utf8')) as VerifyJson;
  return { lines, json, error };
}

describe('verify stage', () => {
  const fm = writeProject('vfm', 'featuremap');
  const img = writeProject('vimg', 'nv12');

  it('passes on a featuremap model: verify.json, the table, byte-identical on a second run', async () => {
    await build(fm);
    const r = await runVerify(fm);
    expect(r.error).toBeUndefined();
    expect(r.json).toMatchObject({ version: 1, model: 'vfm', samples: 6, sample_source: 'calibration_data', cosine_threshold: 0.99, passed: true, failures: [] });
    expect(r.json.engines).toEqual({ float: 'ort', quantized: 'reference', onnxruntime: 'ort', bin: 'bin' });
    expect(r.json.outputs.map((o) => o.name)).toEqual(['feat', 'prob']);
    for (const o of r.json.outputs) {
      expect(o.float!.cosine).toBeGreaterThan(0.99);
      expect(o.bin).toMatchObject({ exact: true, mismatched: 0 });
      expect(o.ort!.within_one_step).toBe(true);
    }
    const table = r.lines.find((l) => l.includes('Cosine Similarity'))!.split('\n');
    expect(table[3]).toMatch(/^feat\s+0\.99\d{4}\s+\d\.\d{6}\s+\d\.\d{6}\s+\d\.\d{6}\s+exact\s+\S.*PASSED$/);
    expect(r.lines[r.lines.length - 1]).toBe('INFO verify PASSED: 2 output(s)');
    const first = fs.readFileSync(path.join(fm.work, 'verify.json'));
    await runVerify(fm);
    expect(fs.readFileSync(path.join(fm.work, 'verify.json')).equals(first)).toBe(true);
  });

  it('passes on an nv12 image model (the .bin takes NV12 bytes)', async () => {
    await build(img);
    const r = await runVerify(img);
    expect(r.error).toBeUndefined();
    expect(r.json.passed).toBe(true);
    expect(r.json.outputs.every((o) => o.bin!.exact)).toBe(true);
  });

  it('fails below nx-ptq.verify.cosine_threshold, naming the output and the reference tuning order', async () => {
    fs.appendFileSync(fm.yaml, 'nx-ptq:\n  verify:\n    cosine_threshold: 0.9999999\n    samples: 2\n');
    try {
      const r = await runVerify(fm);
      expect(r.json).toMatchObject({ passed: false, samples: 2, cosine_threshold: 0.9999999 });
      expect(r.error!.code).toBe('E_VERIFY');
      const line = r.error!.oneLine();
      expect(line).toMatch(/^ERROR verification of 'vfm' failed: output 'feat': cosine similarity 0\.\d{6} \(float vs quantized\) is below the threshold 0\.9999999; /);
      expect(line).toMatch(/\(fix: try, in order: 1\) calibration_type: 'default' \(automatic search of max\/percentile\/kl\); 2\) calibration_type 'max' with max_percentile 0\.99999, 0\.99995, 0\.9999, 0\.9995, 0\.999; 3\) per_channel: True; 4\) more, or more representative, calibration data .*; 5\) run_on_cpu for 1-2 operators of the output layer \(lowest cosine: .*\); 6\) the accuracy debugger .*lower nx-ptq\.verify\.cosine_threshold/);
      expect(r.lines.some((l) => /FAILED$/m.test(l))).toBe(true);
    } finally {
      fs.writeFileSync(fm.yaml, fs.readFileSync(fm.yaml, 'utf8').replace(/nx-ptq:[\s\S]*$/, ''));
    }
  });

  it('fails when the .bin is not exact (a corrupted weight), naming the output and the first difference', async () => {
    const binFile = path.join(fm.work, 'vfm.bin');
    const good = fs.readFileSync(binFile);
    try {
      const m = decodeBin(good, binFile).models[0];
      const conv = m.segments.flatMap((s) => s.ops).filter((o) => o.type === 'Conv').pop()!;
      const w = m.tensors.find((t) => t.name === conv.inputs[1])!;
      const raw = Uint8Array.from(w.raw);
      raw[1] = (raw[1] + 77) & 0xff;
      fs.writeFileSync(binFile, encodeBin({ formatVersion: 1, packed: false, models: [{ ...m, tensors: m.tensors.map((t) => (t === w ? { ...t, raw } : t)) }] }));
      const r = await runVerify(fm);
      expect(r.json.passed).toBe(false);
      expect(r.json.outputs[0].bin!.exact).toBe(false);
      expect(r.error!.oneLine()).toMatch(/output 'feat': the \.bin differs from the quantized model in \d+ of \d+ values \(max \|diff\| [\d.e-]+; first at sample \d+, element \d+: quantized [-\d.e]+, \.bin [-\d.e]+\)/);
      expect(r.error!.oneLine()).toMatch(/a \.bin or onnxruntime mismatch is a defect of nx-ptq/);
    } finally {
      fs.writeFileSync(binFile, good);
    }
  });

  it('runs on nx-ptq.verify.data_dir instead of the calibration set', async () => {
    const dd = path.join(path.dirname(img.yaml), 'verify_images');
    fs.mkdirSync(dd, { recursive: true });
    const rng = new Rng(3);
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(dd, `v${i}.bin`), smoothBytes(rng, 3 * 64));
    fs.appendFileSync(img.yaml, "nx-ptq:\n  verify:\n    data_dir: './verify_images'\n");
    const r = await runVerify(img);
    expect(r.error).toBeUndefined();
    expect(r.json).toMatchObject({ samples: 3, sample_source: 'data_dir', passed: true });
  });

  it('a missing .bin names the compile stage', async () => {
    const p = writeProject('vnobin', 'featuremap');
    for (const s of ['preprocess', 'check', 'calibrate', 'quantize'] as StageName[]) await runStage(s, { configFile: p.yaml, log: () => undefined });
    await expect(verify(loadConfig(p.yaml), { configFile: p.yaml, log: () => undefined })).rejects.toThrow(/vnobin\.bin' is missing; it is written by the compile stage/);
  });
});
