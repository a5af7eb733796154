/**
 * Caffe models through the same front end as ONNX: `ptq checker --model-type caffe` and the
 * check stage with a Caffe YAML (prototxt + caffe_model), and the reference's Accuracy example.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mobilenetNet, resnetNet } from '../../../scripts/fixtures/caffe';
import { writeCaffeFiles } from '../../src/caffe/writer';
import { main } from '../../src/cli/main';
import { loadAndValidate } from '../../src/onnx/load';
import { runStage } from '../../src/stages';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-caffe-stage-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function cli(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const prev = process.cwd();
  process.chdir(cwd);
  try {
    const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err };
  } finally {
    process.chdir(prev);
  }
}

it('ptq checker --model-type caffe places a MobileNet-style Caffe net', async () => {
  const dir = path.join(root, 'checker');
  const f = writeCaffeFiles(mobilenetNet(), dir, 'mobilenet');
  const r = await cli(['checker', '--model-type', 'caffe', '--march', 'bernoulli2', '--proto', f.prototxt, '--model', f.caffemodel], dir);
  expect(r.err).toEqual([]);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/Node\s+ON\s+Subgraph\s+Type/);
  expect(r.out).toMatch(/HzSQuantizedConv/);
  const noProto = await cli(['checker', '--model-type', 'caffe', '--march', 'bernoulli2', '--model', f.caffemodel], dir);
  expect(noProto.code).toBe(2);
  expect(noProto.err[0]).toMatch(/^ERROR .*--proto/);
});

it("the reference's Accuracy example: `Not support layer name=accuracy type=Accuracy`, exit 2", async () => {
  const dir = path.join(root, 'accuracy');
  const f = writeCaffeFiles(resnetNet(), dir, 'net');
  // the reference's example layer, in the TEST phase (kept by Caffe for TEST, so refused)
  const text = `${fs.readFileSync(f.prototxt, 'utf8')}
layer {
  name: "accuracy"
  type: "Accuracy"
  bottom: "prob"
  top: "accuracy"
  include {
    phase: TEST
  }
}
`;
  fs.writeFileSync(f.prototxt, text);
  const r = await cli(['checker', '--model-type', 'caffe', '--march', 'bernoulli2', '--proto', f.prototxt, '--model', f.caffemodel], dir);
  expect(r.code).toBe(2);
  expect(r.err).toHaveLength(1);
  expect(r.err[0]).toContain('Not support layer name=accuracy type=Accuracy');
});

it('the check stage takes a Caffe YAML and writes the float ONNX models', async () => {
  const dir = path.join(root, 'yaml');
  const f = writeCaffeFiles(resnetNet(), dir, 'resnet');
  fs.writeFileSync(
    path.join(dir, 'model.yaml'),
    `model_parameters:
  prototxt: '${path.basename(f.prototxt)}'
  caffe_model: '${path.basename(f.caffemodel)}'
  march: 'bernoulli2'
  output_model_file_prefix: 'resnet_caffe'
input_parameters:
  input_type_train: 'bgr'
  input_layout_train: 'NCHW'
  input_type_rt: 'bgr'
  input_layout_rt: 'NHWC'
  norm_type: 'data_mean_and_scale'
  mean_value: '104 117 123'
  scale_value: '0.017'
calibration_parameters:
  calibration_type: 'skip'
compiler_parameters:
  optimize_level: 'O3'
`,
  );
  const r = await runStage('check', { configFile: path.join(dir, 'model.yaml'), modelType: 'caffe', log: () => undefined });
  expect(r.outputs.map((o) => path.basename(o))).toContain('resnet_caffe_original_float_model.onnx');
  const opt = loadAndValidate(path.join(dir, 'model_output', 'resnet_caffe_optimized_float_model.onnx'));
  expect(opt.graph.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(false);
  const check = JSON.parse(fs.readFileSync(path.join(dir, 'model_output', 'check.json'), 'utf8')) as { nodes: { name: string; on: string }[] };
  expect(check.nodes.find((n) => n.name === 'conv1')?.on).toBe('BPU');
});
