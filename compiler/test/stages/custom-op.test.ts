/**
 * custom_op through the check stage: the YAML's op_register_files module is loaded, its
 * node is placed on the CPU (splitting the BPU work in two), and the custom node and its
 * domain survive into both float models, which the ReferenceEngine (not onnxruntime) runs.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/encode';
import { loadAndValidate } from '../../src/onnx/load';
import { tensorFrom } from '../../src/onnx/tensor';
import { chooseEngine } from '../../src/runtime/select';
import { ReferenceEngine } from '../../src/runtime/reference';
import { runStage } from '../../src/stages';

const OP = `'use strict';
// y = 2·x + 1 on the CPU
exports.ops = [{
  domain: 'com.stagetest',
  type: 'TwiceAddOne',
  infer(_ctx, [x]) { return [{ dtype: x && x.dtype, shape: x && x.shape }]; },
  run(_ctx, [x]) { return [{ dtype: 'float32', dims: x.dims, data: x.data.map((v) => 2 * v + 1) }]; },
}];
`;

it('a custom operator is placed on the CPU and kept in every written model', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-custom-stage-'));
  try {
    fs.mkdirSync(path.join(dir, 'ops'));
    fs.writeFileSync(path.join(dir, 'ops', 'twice.js'), OP);
    const b = new GraphBuilder('custom_mid', { opset: 13, seed: 5, opsetImports: [{ domain: 'com.stagetest', version: 1 }] });
    const x = b.input('data', 'float32', [1, 4, 8, 8]);
    const c1 = b.conv(x, { outChannels: 4, kernel: 3, pad: 1, name: 'conv1' });
    const t = b.node('TwiceAddOne', [c1], {}, 1, { name: 'twice', domain: 'com.stagetest', shapes: [[1, 4, 8, 8]] })[0];
    b.output(b.conv(t, { outChannels: 2, kernel: 1, name: 'conv2' }), 'out');
    saveModel(b.build(), path.join(dir, 'model.onnx'));
    fs.writeFileSync(
      path.join(dir, 'model.yaml'),
      `model_parameters:
  onnx_model: 'model.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'custom'
input_parameters:
  input_type_train: 'featuremap'
  input_layout_train: 'NCHW'
  input_type_rt: 'featuremap'
  input_layout_rt: 'NCHW'
  norm_type: 'no_preprocess'
calibration_parameters:
  calibration_type: 'skip'
compiler_parameters:
  optimize_level: 'O3'
custom_op:
  custom_op_method: 'register'
  custom_op_dir: './ops'
  op_register_files: 'twice.js'
`,
    );
    const lines: string[] = [];
    await runStage('check', { configFile: path.join(dir, 'model.yaml'), log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/custom operator com\.stagetest::TwiceAddOne registered/);
    const check = JSON.parse(fs.readFileSync(path.join(dir, 'model_output', 'check.json'), 'utf8')) as {
      nodes: { name: string; on: string }[];
      summary: { subgraphs: number };
    };
    expect(check.nodes.find((n) => n.name === 'twice')?.on).toBe('CPU');
    expect(check.nodes.find((n) => n.name === 'conv1')?.on).toBe('BPU');
    expect(check.summary.subgraphs).toBe(2);
    for (const f of ['custom_original_float_model.onnx', 'custom_optimized_float_model.onnx']) {
      const m = loadAndValidate(path.join(dir, 'model_output', f));
      expect(m.graph.nodes.some((n) => n.domain === 'com.stagetest' && n.opType === 'TwiceAddOne')).toBe(true);
      expect(m.opset('com.stagetest')).toBe(1);
      expect(chooseEngine(m, 'auto').engine).toBe('reference');
      const e = new ReferenceEngine(m);
      const feeds = { data: tensorFrom('float32', [1, 4, 8, 8], new Array(256).fill(0.5)) };
      const y = (await e.run(feeds)).out;
      expect(y.dims).toEqual([1, 2, 8, 8]);
      expect(Number.isFinite(y.toNumbers()[0])).toBe(true);
    }
    // ... and into the calibrated and quantized models (skip: no calibration data needed)
    await runStage('calibrate', { configFile: path.join(dir, 'model.yaml'), log: () => undefined });
    await runStage('quantize', { configFile: path.join(dir, 'model.yaml'), log: () => undefined });
    for (const f of ['custom_calibrated_model.onnx', 'custom_quantized_model.onnx']) {
      const m = loadAndValidate(path.join(dir, 'model_output', f));
      expect(m.graph.nodes.filter((n) => n.domain === 'com.stagetest' && n.opType === 'TwiceAddOne')).toHaveLength(1);
      const y = (await new ReferenceEngine(m).run({ data: tensorFrom('float32', [1, 4, 8, 8], new Array(256).fill(0.5)) })).out;
      expect(y.dims).toEqual([1, 2, 8, 8]);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
