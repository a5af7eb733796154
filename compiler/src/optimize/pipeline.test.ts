import { mobileNetV2, resNet18 } from '../../../scripts/fixtures/architectures';
import { GraphBuilder } from '../onnx/builder';
import { Model, Node } from '../onnx/ir';
import { tensorFrom } from '../onnx/tensor';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { cloneModel, opCounts, outputError, randomFeeds } from './optimize.test.util';
import { optimizationPasses, optimizeModel } from './pipeline';

/**
 * What an exporter writes for `normalize → conv → bn → relu → dropout → x.view(x.size(0), -1) → fc`:
 * Constant nodes, a Shape/Gather/Concat chain for the view, Identity and Dropout, a symbolic batch.
 */
function exportedModel(): Model {
  const b = new GraphBuilder('exported', { seed: 7, opset: 13 });
  const x = b.input('image', 'float32', ['batch', 3, 8, 8]);
  const mean = b.node('Constant', [], { value: tensorFrom('float32', [1, 3, 1, 1], [0.4, 0.5, 0.6]) }, 1, { shapes: [[1, 3, 1, 1]] })[0];
  const std = b.node('Constant', [], { value: tensorFrom('float32', [1, 3, 1, 1], [0.2, 0.25, 0.3]) }, 1, { shapes: [[1, 3, 1, 1]] })[0];
  const centred = b.node('Sub', [x, mean], {}, 1, { shapes: [['batch', 3, 8, 8]] })[0];
  const norm = b.node('Div', [centred, std], {}, 1, { shapes: [['batch', 3, 8, 8]] })[0];
  let y = b.relu(b.batchNorm(b.conv(norm, { outChannels: 6, kernel: 3, pad: 1, bias: false })));
  y = b.node('Identity', [y], {}, 1, { shapes: [y.shape] })[0];
  y = b.batchNorm(b.conv(y, { outChannels: 6, kernel: 1 }));
  y = b.node('Dropout', [y], {}, 1, { shapes: [y.shape] })[0];
  const s = b.node('Shape', [y], {}, 1, { dtype: 'int64', shapes: [[4]] })[0];
  const zero = b.node('Constant', [], { value: tensorFrom('int64', [], [0]) }, 1, { dtype: 'int64', shapes: [[]] })[0];
  const n = b.node('Gather', [s, zero], { axis: 0 }, 1, { shapes: [[]] })[0];
  const axes = b.node('Constant', [], { value_ints: [0] }, 1, { dtype: 'int64', shapes: [[1]] })[0];
  const n1 = b.node('Unsqueeze', [n, axes], {}, 1, { shapes: [[1]] })[0];
  const minus = b.node('Constant', [], { value_ints: [-1] }, 1, { dtype: 'int64', shapes: [[1]] })[0];
  const target = b.node('Concat', [n1, minus], { axis: 0 }, 1, { shapes: [[2]] })[0];
  const flat = b.node('Reshape', [y, target], {}, 1, { shapes: [['batch', 384]] })[0];
  b.output(b.batchNorm(b.gemm(flat, 5)), 'logits');
  return b.build();
}

describe('optimizeModel', () => {
  it('lists its passes in a fixed, readable order', () => {
    expect(optimizationPasses().map((p) => p.name)).toEqual([
      'constant-to-initializer', 'remove-identity', 'constant-folding', 'fold-batchnorm', 'fold-scale-into-conv', 'gemm-to-conv', 'prune',
    ]);
  });

  it('cleans an exported model to Sub → Conv → Relu → Conv → Reshape → Gemm and logs each step', () => {
    const m = exportedModel();
    const opt = cloneModel(m);
    const r = optimizeModel(opt, { inputShapes: { image: [2, 3, 8, 8] } });
    // Div by std folds into the first conv; Sub before it stays (the conv pads); the 8×8 map is too big for gemm-to-conv
    expect(opt.graph.nodes.map((x: Node) => x.opType)).toEqual(['Sub', 'Conv', 'Relu', 'Conv', 'Reshape', 'Gemm']);
    expect(opt.graph.inputs[0].type?.shape).toEqual([2, 3, 8, 8]);
    m.graph.inputs[0].type = { dtype: 'float32', shape: [2, 3, 8, 8] };
    expect(outputError(m, opt)).toBeLessThanOrEqual(1e-4);
    const log = r.lines.join('\n');
    for (const pass of ['constant-to-initializer', 'remove-identity', 'constant-folding', 'fold-batchnorm', 'fold-scale-into-conv', 'prune']) {
      expect(log).toMatch(new RegExp(`round 1 ${pass}: [1-9]`));
    }
    expect(log).toMatch(/kept Sub .*pads its input/);
    expect(log.match(/kept Sub/g)).toHaveLength(1); // a refusal is logged once, not every round
    expect(r.rounds).toBe(2);
    expect(r.nodesBefore).toBe(m.graph.nodes.length);
    expect(r.nodesAfter).toBe(6);
  });

  it('reaches a fixed point: a BN before an unpadded 1×1 Conv ends up in its weights, a Mul after a Gemm in the new Conv', () => {
    const b = new GraphBuilder('fixpoint', { seed: 8 });
    const x = b.input('x', 'float32', [2, 4, 5, 5]);
    const y = b.conv(b.batchNorm(b.relu(x)), { outChannels: 6, kernel: 1 });
    const g = b.gemm(b.flatten(b.globalAvgPool(y)), 3);
    const k = b.initializer(tensorFrom('float32', [3], [0.5, -2, 3]));
    b.output(b.node('Mul', [g, k], {}, 1, { shapes: [[2, 3]] })[0], 'out');
    const m = b.build();
    const opt = cloneModel(m);
    const r = optimizeModel(opt);
    expect(opt.graph.nodes.map((n: Node) => n.opType)).toEqual(['Relu', 'Conv', 'GlobalAveragePool', 'Conv', 'Flatten']);
    expect(r.rounds).toBe(3);
    expect(outputError(m, opt)).toBeLessThanOrEqual(1e-4);
  });

  it('is idempotent: a second run changes nothing', () => {
    const opt = exportedModel();
    optimizeModel(opt, { inputShapes: { image: [1, 3, 8, 8] } });
    const again = optimizeModel(opt);
    expect(again.entries.every((e) => e.changed === 0)).toBe(true);
    expect(again.rounds).toBe(1);
  });

  it('can skip passes by name', () => {
    const opt = exportedModel();
    optimizeModel(opt, { skip: ['fold-batchnorm'] });
    expect(opCounts(opt).BatchNormalization).toBe(3);
  });

  for (const [name, build] of [
    ['MobileNetV2', () => mobileNetV2({ inputSize: 64, width: 0.5, numClasses: 100 })],
    ['ResNet18', () => resNet18({ inputSize: 64, width: 0.5, numClasses: 100 })],
  ] as const) {
    it(`${name}: no BatchNormalization remains, the classifier is a Conv, outputs agree within 1e-4`, () => {
      const m = build().model;
      const before = opCounts(m);
      const opt = cloneModel(m);
      const r = optimizeModel(opt);
      const after = opCounts(opt);
      expect(after.BatchNormalization).toBeUndefined();
      expect(after.Mul).toBeUndefined();
      expect(after.Gemm).toBeUndefined();
      expect(after.Conv).toBe(before.Conv + 1);
      expect(opt.graph.nodes.length).toBe(m.graph.nodes.length - before.BatchNormalization);
      expect(outputError(m, opt, [1])).toBeLessThanOrEqual(1e-4);
      expect(r.lines.join('\n')).toMatch(new RegExp(`${before.BatchNormalization} BatchNormalization node\\(s\\) folded`));
    });
  }

  it('writes models onnxruntime loads and runs to the same outputs (exported model and MobileNetV2)', async () => {
    const models: Model[] = [exportedModel(), mobileNetV2({ inputSize: 32, width: 0.35, numClasses: 10 }).model];
    models[0].graph.inputs[0].type = { dtype: 'float32', shape: [2, 3, 8, 8] };
    for (const m of models) {
      const opt = cloneModel(m);
      optimizeModel(opt);
      const feeds = randomFeeds(m, 3);
      const want = new ReferenceEngine(m).runSync(feeds);
      const ort = await OrtEngine.create(opt);
      try {
        const got = await ort.run(feeds);
        for (const [name, t] of Object.entries(want)) {
          const a = t.toNumbers();
          const b = got[name].toNumbers();
          const scale = Math.max(...a.map(Math.abs));
          expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / scale).toBeLessThanOrEqual(1e-4);
        }
      } finally {
        await ort.dispose();
      }
    }
  });
});
