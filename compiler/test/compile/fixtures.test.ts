/**
 * Every fixture model converts to a `.bin` that runs bit for bit like the ReferenceEngine on
 * `***_quantized_model.onnx`, on 100 random inputs each: the generated architectures
 * (scripts/fixtures/architectures.ts, small sizes, nv12 input, through the real pipeline) and
 * the trained Fashion-MNIST projects (models/fashion_*, copied, the real stages with
 * calibration_type max on their calibration set).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ArchName, ARCHITECTURES } from '../../../scripts/fixtures/architectures';
import { BinModel, readBinFile } from '../../src/compile/bin-format';
import { compileQuantizedModel } from '../../src/compile/compile';
import { compareWithReference, quantizeThroughPipeline } from '../../src/compile/compile.test.util';
import { loadAndValidate } from '../../src/onnx/load';
import { BinEngine } from '../../src/runtime/bin-engine';
import { runStage, StageName } from '../../src/stages';

jest.setTimeout(240_000);

const SAMPLES = 100;
const REPO = path.resolve(__dirname, '..', '..', '..');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-compile-fixtures-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const ARCHS: [ArchName, number, number][] = [
  ['mobilenetv1', 0.25, 32],
  ['mobilenetv2', 0.35, 32],
  ['resnet18', 0.25, 32],
  ['resnet50', 0.125, 32],
  ['googlenet', 0.25, 32],
];

describe.each(ARCHS)('%s (width %s, %spx)', (name, width, size) => {
  it(`compiles and runs bit-exactly on ${SAMPLES} random inputs`, () => {
    const float = ARCHITECTURES[name]({ width, inputSize: size, numClasses: 10 }).model;
    const m = quantizeThroughPipeline(float, {
      preprocess: [{ name: 'input', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174] }],
    });
    const { model } = compileQuantizedModel(m.quantized, { cpuNodes: m.cpuNodes, name, optimizeLevel: 'O3' });
    const engine = new BinEngine(model);
    const r = compareWithReference((f) => engine.runSync(f), model, m.quantized, SAMPLES, 7);
    expect(r.mismatch).toBeUndefined();
    expect(r.samples).toBe(SAMPLES);
  });
});

describe.each(['fashion_resnet', 'fashion_mbv2'])('models/%s', (name) => {
  it(`the real stages give a .bin that runs bit-exactly on ${SAMPLES} random inputs`, async () => {
    const src = path.join(REPO, 'models', name);
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(src, `${name}.onnx`), path.join(dir, `${name}.onnx`));
    const yaml = fs.readFileSync(path.join(src, 'model.yaml'), 'utf8')
      .replace(/cal_data_dir: '([^']+)'/, (_, p: string) => `cal_data_dir: '${path.resolve(src, p)}'`)
      .replace(/calibration_type: '\w+'/, "calibration_type: 'max'");
    fs.writeFileSync(path.join(dir, 'model.yaml'), yaml);
    const stages: StageName[] = ['preprocess', 'check', 'calibrate', 'quantize', 'compile'];
    for (const s of stages) await runStage(s, { configFile: path.join(dir, 'model.yaml'), log: () => undefined });
    const work = path.join(dir, 'model_output');
    const bin: BinModel = readBinFile(path.join(work, `${name}.bin`)).models[0];
    const q = loadAndValidate(path.join(work, `${name}_quantized_model.onnx`));
    const engine = new BinEngine(bin);
    const r = compareWithReference((f) => engine.runSync(f), bin, q, SAMPLES, 13);
    expect(r.mismatch).toBeUndefined();
    expect(bin.inputs[0].typeRt).toBe(name === 'fashion_resnet' ? 'gray' : 'rgb');
  });
});
