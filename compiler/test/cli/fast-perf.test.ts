/**
 * `ptq makertbin --fast-perf` (the reference's fast-perf mode): from a bare model file to a
 * `.bin` with its boundary Quantize/Reshape/… deleted and an hb_perf report, in one command.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readBinFile } from '../../src/compile/bin-format';
import { mobileNetV2 } from '../../../scripts/fixtures/architectures';
import { saveModel } from '../../src/onnx/encode';
import { expectUserError, runPtq } from './run-cli';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-perf-'));
  saveModel(mobileNetV2({ inputSize: 32, width: 0.25, numClasses: 10 }).model, path.join(dir, 'mbv2.onnx'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ptq makertbin --fast-perf', () => {
  it('writes the YAML it used, a .bin without boundary Quantize/Dequantize, and the perf report', () => {
    const r = runPtq(['makertbin', '--fast-perf', '--model', 'mbv2.onnx', '--model-type', 'onnx', '--march', 'bernoulli2'], { cwd: dir, timeoutMs: 110_000 });
    expect({ code: r.code, stderr: r.stderr.split('\n').filter((l) => l.startsWith('ERROR')) }).toEqual({ code: 0, stderr: [] });
    const out = path.join(dir, 'model_output');
    const yaml = fs.readFileSync(path.join(out, 'fast_perf_config.yaml'), 'utf8');
    expect(yaml).toMatch(/calibration_type: 'skip'/);
    expect(yaml).toMatch(/optimize_level: 'O3'/);
    const bin = readBinFile(path.join(out, 'mbv2.bin'));
    const m = bin.models[0];
    expect(m.deletedNodes.map((d) => d.opType)).toContain('Quantize');
    // the input is now the int8 value the BPU reads: the application quantizes it itself
    expect(m.inputs[0].dtype).toBe('int8');
    expect(r.stdout).toMatch(/fast-perf: deleted boundary node '[^']+' \(Quantize\)/);
    expect(fs.existsSync(path.join(out, 'hb_perf_result', 'mbv2', 'mbv2.html'))).toBe(true);
  });

  it('names what is missing', () => {
    expectUserError(runPtq(['makertbin', '--fast-perf', '--model', 'mbv2.onnx', '--model-type', 'onnx'], { cwd: dir }), /--fast-perf needs --march/);
    expectUserError(runPtq(['makertbin', '--fast-perf', '--model', 'net.caffemodel', '--model-type', 'caffe', '--march', 'bayes'], { cwd: dir }), /needs --proto/);
    expectUserError(runPtq(['makertbin'], { cwd: dir }), /needs --config/);
  });
});
