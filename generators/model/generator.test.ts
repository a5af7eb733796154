import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { mobilenetNet } from '../../scripts/fixtures/caffe';
import { readCaffeInputs } from '../../compiler/src/caffe';
import { writeCaffeFiles, writePrototxt, encodeCaffemodel } from '../../compiler/src/caffe/writer';
import { parseConfig, PtqConfig, validateAgainstModel } from '../../compiler/src/config';
import { GraphBuilder } from '../../compiler/src/onnx/builder';
import { decodeModel } from '../../compiler/src/onnx/decode';
import { encodeModel } from '../../compiler/src/onnx/encode';
import { Dim } from '../../compiler/src/onnx/ir';
import { modelGenerator } from './generator';

let tree: Tree;
let tmp: string;
beforeEach(() => {
  tree = createTreeWithEmptyWorkspace();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-gen-model-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A conv net with the given inputs (each conv'd, summed after a global pool). */
function onnxBytes(inputs: [string, Dim[]][], nchw = true): Uint8Array {
  const b = new GraphBuilder('net', { opset: 13, seed: 2 });
  const outs = inputs.map(([name, shape]) => {
    let x = b.input(name, 'float32', shape);
    if (!nchw) x = b.node('Transpose', [x], { perm: [0, 3, 1, 2] }, 1, { shapes: [[shape[0], shape[3], shape[1], shape[2]]] })[0];
    return b.globalAvgPool(b.conv(x, { outChannels: 4, kernel: 3, pad: 1 }));
  });
  b.output(outs.length === 1 ? outs[0] : outs.reduce((a, c) => b.add(a, c)));
  return encodeModel(b.build());
}

/** The generated YAML, loaded and matched to the model the way the stages do it (independently of the generator). */
function loadGenerated(configFile: string, modelInputs: { name: string; shape: readonly (number | string)[] }[]): { text: string; cfg: PtqConfig } {
  const text = tree.read(configFile, 'utf8')!;
  const cfg = parseConfig(text, { file: configFile, dir: path.join(tree.root, path.dirname(configFile)) });
  return { text, cfg: validateAgainstModel(cfg, modelInputs) };
}

function samples(dir: string, count: number, bytes: number, name = (i: number) => `s${i}.bin`): void {
  for (let i = 0; i < count; i++) tree.write(`${dir}/${name(i)}`, Buffer.alloc(bytes, i));
}

describe('model generator', () => {
  it('ONNX rgb model in the workspace + a float32 calibration set: the X3 template filled in, the model copied', () => {
    tree.write('incoming/resnet_tiny.onnx', Buffer.from(onnxBytes([['images', [1, 3, 32, 32]]])));
    samples('calibration/rgb_32', 3, 3 * 32 * 32 * 4);
    const r = modelGenerator(tree, { model: 'incoming/resnet_tiny.onnx', calibrationSet: 'calibration/rgb_32', mean: '123.7 116.3 103.5', scale: '0.0171 0.0175 0.0174', tags: 'zoo, vision' });
    expect(r.configFile).toBe('models/resnet_tiny/model.yaml');
    expect(tree.read('models/resnet_tiny/resnet_tiny.onnx')!.equals(tree.read('incoming/resnet_tiny.onnx')!)).toBe(true);
    const { text, cfg } = loadGenerated(r.configFile, [{ name: 'images', shape: [1, 3, 32, 32] }]);
    // the template's comments and order survive
    expect(text).toContain('# Target processor architecture: bernoulli2 for RDK X3, bayes for RDK Ultra\n  march: \'bernoulli2\'');
    expect(text.split('\n').slice(0, 3).join('\n')).toMatch(/^# resnet_tiny: ONNX model resnet_tiny\.onnx for RDK X3 \(march bernoulli2\)\.\n# Scaffolded .* x3_onnx\.yaml;/);
    expect(text).toContain("  onnx_model: './resnet_tiny.onnx'\n");
    expect(text).toContain("  input_name: 'images'\n");
    expect(text).toContain("  input_shape: '1x3x32x32'\n");
    expect(text).toContain("  input_type_rt: 'nv12'\n");
    expect(text).toMatch(/\n {2}# input_layout_rt: 'NHWC'\n/); // nv12 has no layout
    expect(text).toContain("  cal_data_dir: '../../calibration/rgb_32'\n");
    expect(text).toContain("  cal_data_type: 'float32'\n");
    expect(text).toContain('nx-ptq:\n  tags: [zoo, vision]\n');
    expect(cfg.model).toMatchObject({ kind: 'onnx', march: 'bernoulli2', outputModelFilePrefix: 'resnet_tiny', workingDir: path.join(tree.root, 'models/resnet_tiny/model_output') });
    expect(cfg.model.onnxModel).toBe(path.join(tree.root, 'models/resnet_tiny/resnet_tiny.onnx'));
    expect(cfg.inputs).toEqual([
      expect.objectContaining({ name: 'images', typeTrain: 'rgb', layoutTrain: 'NCHW', typeRt: 'nv12', shape: [1, 3, 32, 32], normType: 'data_mean_and_scale', mean: [123.7, 116.3, 103.5], scale: [0.0171, 0.0175, 0.0174], calDataType: 'float32' }),
    ]);
    expect(cfg.calibration.calibrationType).toBe('default');
    // deterministic: the same options give the same file
    const again = createTreeWithEmptyWorkspace();
    again.write('incoming/resnet_tiny.onnx', tree.read('incoming/resnet_tiny.onnx')!);
    for (const f of tree.children('calibration/rgb_32')) again.write(`calibration/rgb_32/${f}`, tree.read(`calibration/rgb_32/${f}`)!);
    modelGenerator(again, { model: 'incoming/resnet_tiny.onnx', calibrationSet: 'calibration/rgb_32', mean: '123.7 116.3 103.5', scale: '0.0171 0.0175 0.0174', tags: 'zoo, vision' });
    expect(again.read(r.configFile, 'utf8')).toBe(text);
  });

  it('Caffe model outside the workspace, march bayes: the Ultra Caffe template, prototxt + caffemodel copied', () => {
    const f = writeCaffeFiles(mobilenetNet(), tmp, 'mobilenet');
    samples('calibration/u8_32', 2, 3 * 32 * 32);
    const r = modelGenerator(tree, { model: f.prototxt, march: 'bayes', name: 'caffe_mbn', calibrationSet: 'calibration/u8_32', inputTypeTrain: 'bgr', inputTypeRt: 'rgb', scale: '0.0078' });
    expect(tree.read('models/caffe_mbn/mobilenet.prototxt', 'utf8')).toBe(fs.readFileSync(f.prototxt, 'utf8'));
    expect(tree.read('models/caffe_mbn/mobilenet.caffemodel')!.equals(fs.readFileSync(f.caffemodel))).toBe(true);
    const { text, cfg } = loadGenerated(r.configFile, readCaffeInputs(f.prototxt));
    expect(text).toMatch(/^# caffe_mbn: Caffe model mobilenet\.prototxt for RDK Ultra \(march bayes\)\./);
    expect(text).toContain("prototxt: './mobilenet.prototxt'");
    expect(text).toContain("caffe_model: './mobilenet.caffemodel'");
    expect(text).toContain('node_info'); // a line only the Ultra template has (commented)
    expect(cfg.model).toMatchObject({ kind: 'caffe', march: 'bayes' });
    expect(cfg.inputs[0]).toMatchObject({ name: 'data', typeTrain: 'bgr', typeRt: 'rgb', layoutRt: 'NHWC', normType: 'data_scale', scale: [0.0078], calDataType: 'uint8' });
  });

  it('two inputs (gray + featuremap), NHWC detection, a dynamic batch, no calibration set; per-input values', () => {
    const bytes = onnxBytes([['img', ['batch', 16, 16, 1]], ['feat', ['batch', 8, 8, 4]]], false);
    fs.writeFileSync(path.join(tmp, 'two.onnx'), bytes);
    const r = modelGenerator(tree, { model: path.join(tmp, 'two.onnx'), copyModel: false, scale: '0.5; 1' });
    const model = decodeModel(bytes);
    const { text, cfg } = loadGenerated(r.configFile, model.graph.realInputs.map((v) => ({ name: v.name, shape: v.type!.shape! })));
    expect(text).toContain(`  onnx_model: '${path.join(tmp, 'two.onnx')}'\n`); // outside the workspace, not copied: absolute
    expect(text).toContain("  input_name: 'img; feat'\n");
    expect(text).toContain("  input_shape: '1x16x16x1; 1x8x8x4'\n");
    expect(text).toContain("  input_type_train: 'gray; featuremap'\n");
    // img: C=1 last → NHWC; feat: 4 channels anywhere → no evidence, NCHW (featuremaps take any layout)
    expect(text).toContain("  input_layout_train: 'NHWC; NCHW'\n");
    expect(text).toContain("  input_type_rt: 'gray; featuremap'\n");
    expect(text).toContain("  input_layout_rt: 'NHWC; NCHW'\n");
    expect(text).toMatch(/\n {2}# cal_data_dir: /);
    expect(text).toContain("  calibration_type: 'skip'\n");
    expect(cfg.inputs.map((x) => x.normType)).toEqual(['data_scale', 'data_scale']);
    expect(cfg.inputs.map((x) => x.scale)).toEqual([[0.5], [1]]);
  });

  it('a model inside the workspace referenced in place (copyModel false), an image calibration set (preprocess_on)', () => {
    tree.write('zoo/a/net.onnx', Buffer.from(onnxBytes([['x', [1, 3, 20, 20]]])));
    tree.write('calibration/pics/a.jpg', 'not decoded here');
    tree.write('calibration/pics/b.png', 'not decoded here');
    const r = modelGenerator(tree, { model: 'zoo/a/net.onnx', copyModel: false, directory: 'projects', calibrationSet: 'calibration/pics', calibrationType: 'kl' });
    expect(r.configFile).toBe('projects/net/model.yaml');
    expect(tree.exists('projects/net/net.onnx')).toBe(false);
    const { text, cfg } = loadGenerated(r.configFile, [{ name: 'x', shape: [1, 3, 20, 20] }]);
    expect(text).toContain("  onnx_model: '../../zoo/a/net.onnx'\n");
    expect(text).toContain('  preprocess_on: True\n');
    expect(text).toMatch(/\n {2}# cal_data_type: /);
    expect(cfg.calibration).toMatchObject({ preprocessOn: true, calibrationType: 'kl' });
  });

  describe('user errors: one PtqError naming the option, nothing written', () => {
    const cases: [string, (t: Tree) => Parameters<typeof modelGenerator>[1], RegExp][] = [
      ['not a model file', () => ({ model: 'x.pb' }), /--model 'x\.pb' is neither an \.onnx file nor a Caffe \.prototxt/],
      ['a missing file', () => ({ model: 'nope.onnx' }), /--model 'nope\.onnx' does not exist/],
      ['a missing caffemodel', (t) => (t.write('n.prototxt', writePrototxt(mobilenetNet())), { model: 'n.prototxt' }), /the Caffe weights 'n\.caffemodel' do not exist/],
      ['a bad name', () => ({ model: 'm.onnx', name: 'my model' }), /--name 'my model' is not a valid project name/],
      ['an existing project', (t) => (t.write('models/m/model.yaml', 'x'), { model: 'm.onnx' }), /models\/m\/model\.yaml exists already.*--overwrite/],
      ['per-input count', () => ({ model: 'm.onnx', inputTypeTrain: 'rgb; gray' }), /--inputTypeTrain has 2 values, the model has 1 input/],
      ['an unknown format', () => ({ model: 'm.onnx', inputTypeRt: 'yuv420' }), /--inputTypeRt 'yuv420' is not allowed \(fix: use one of: nv12, yuv444/],
      ['a bad mean', () => ({ model: 'm.onnx', mean: '1,2,3' }), /--mean '1,2,3' is not a list of numbers/],
      ['calibration without data', () => ({ model: 'm.onnx', calibrationType: 'kl' }), /calibration_type kl needs calibration data/],
      ['a sample of the wrong size', (t) => (samples('calibration/bad', 2, 100), { model: 'm.onnx', calibrationSet: 'calibration/bad' }), /calibration sample 'calibration\/bad\/s0\.bin' is 100 bytes; input 'data' 1x3x8x8 needs 192 \(uint8\) or 768 \(float32\) bytes/],
      ['an empty calibration folder', (t) => (t.write('calibration/empty/.keep', ''), { model: 'm.onnx', calibrationSet: 'calibration/empty' }), /calibration set 'calibration\/empty' holds no sample files/],
      // the compiler's own rules, with the generated file and line
      ['an impossible format pair', () => ({ model: 'm.onnx', inputTypeTrain: 'rgb', inputTypeRt: 'gray' }), /models\/m\/model\.yaml:\d+ input_parameters\.input_type_rt: input 'data': input_type_rt gray cannot feed a model whose input_type_train is rgb/],
      ['channels that do not fit', () => ({ model: 'm.onnx', inputTypeTrain: 'gray', inputTypeRt: 'gray' }), /input_type_train: input 'data': gray has 1 channel\(s\), but input_shape 1x3x8x8/],
    ];
    it.each(cases)('%s', (_n, setup, re) => {
      tree.write('m.onnx', Buffer.from(onnxBytes([['data', [1, 3, 8, 8]]])));
      const opts = setup(tree);
      const before = tree.listChanges().length;
      let err: unknown;
      try {
        modelGenerator(tree, opts);
      } catch (e) {
        err = e;
      }
      expect((err as Error)?.name).toBe('PtqError');
      expect((err as Error).message + ` (fix: ${(err as { fix?: string }).fix})`).toMatch(re);
      expect(tree.listChanges().length).toBe(before);
    });

    it('a model with a dynamic spatial dim asks for --inputShape, and takes it', () => {
      tree.write('dyn.onnx', Buffer.from(onnxBytes([['data', [1, 3, 'h', 'w']]])));
      expect(() => modelGenerator(tree, { model: 'dyn.onnx' })).toThrow(/input 'data' has dynamic dims \(1x3xhxw\)/);
      const r = modelGenerator(tree, { model: 'dyn.onnx', inputShape: '1x3x64x48' });
      const { cfg } = loadGenerated(r.configFile, [{ name: 'data', shape: [1, 3, 'h', 'w'] }]);
      expect(cfg.inputs[0].shape).toEqual([1, 3, 64, 48]);
    });

    it('a Caffe model without inputs', () => {
      const spec = mobilenetNet();
      const noInput = writePrototxt({ ...spec, input: undefined, input_shape: undefined } as typeof spec);
      tree.write('n.prototxt', noInput);
      tree.write('n.caffemodel', Buffer.from(encodeCaffemodel(spec)));
      expect(() => modelGenerator(tree, { model: 'n.prototxt' })).toThrow(/declares no input|input/);
    });
  });
});
