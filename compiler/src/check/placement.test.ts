import { ARCHITECTURES } from '../../../scripts/fixtures/architectures';
import { PtqError } from '../errors';
import { Model } from '../onnx/ir';
import {
  argMaxHead, bigKernelMidGraph, mlpHead, channelSoftmaxOutput, manyOutputs, opset9Model, passiveBetweenCpuOps, reduceMeanModel,
  reentrantBranch, reshapeSoftmaxTail, resizeModel, scaleByVector, shapeChainFlatten, singleOp, topKMidGraph, twoInputs, withNms, withPreprocessStage,
} from './fixtures.test.util';
import { overridesFromConfig } from './overrides';
import { NodePlacement, PlaceOptions, Placement, placeModel } from './placement';
import { formatCheckerLog, formatCheckerTable, formatCpuReasons, formatSummary, placementToJson } from './report';
import { March } from './table';

const node = (p: Placement, name: string): NodePlacement => {
  const n = p.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name} in ${p.nodes.map((x) => x.name).join(', ')}`);
  return n;
};
const cpuNodes = (p: Placement): string[] => p.nodes.filter((n) => n.on === 'CPU').map((n) => n.name);
const subgraphOf = (p: Placement, name: string): number | undefined => node(p, name).subgraph;

/** The PtqError `f` throws (fails the test when it throws anything else or nothing). */
function ptqError(f: () => unknown): PtqError {
  try {
    f();
  } catch (e) {
    if (e instanceof PtqError) return e;
    throw e;
  }
  throw new Error('expected a PtqError');
}

const place = (m: Model, march: March, extra: Omit<PlaceOptions, 'march'> = {}): Placement => placeModel(m, { march, ...extra });
const report = (p: Placement): string => [formatCheckerTable(p), formatCpuReasons(p)].filter(Boolean).join('\n');

describe('classic CNNs place entirely on the BPU in one subgraph', () => {
  const cases = [
    ['mobilenetv1', { inputSize: 32, width: 0.25, numClasses: 10 }],
    ['mobilenetv2', { inputSize: 32, width: 0.25, numClasses: 10 }],
    ['resnet18', { inputSize: 32, width: 0.25, numClasses: 10 }],
  ] as const;
  const built = new Map<string, Model>();
  const build = (arch: (typeof cases)[number][0], o: (typeof cases)[number][1]): Model => {
    let m = built.get(arch);
    if (!m) built.set(arch, (m = ARCHITECTURES[arch](o).model));
    return m;
  };
  for (const [arch, o] of cases) {
    for (const march of ['bernoulli2', 'bayes'] as const) {
      it(`${arch} on ${march}`, () => {
        const model = build(arch, o);
        const p = place(model, march);
        expect(cpuNodes(p)).toEqual([]);
        expect(p.subgraphs.length).toBe(1);
        expect(p.nodes.length).toBe(model.graph.nodes.length);
        expect(p.nodes.every((n) => n.subgraph === 0)).toBe(true);
        for (const n of p.nodes.filter((x) => x.op === 'Conv' || x.op === 'Gemm')) expect(n.type).toBe('HzSQuantizedConv');
        expect(node(p, 'avgpool').type).toBe('HzQuantizedGlobalAveragePool');
        // one Quantize at the input, one Dequantize at the output
        expect(p.boundaries.map((b) => `${b.kind}:${b.value}`)).toEqual(['quantize:input', 'dequantize:output']);
        expect(formatCheckerTable(p)).toMatchSnapshot();
      });
    }
  }

  it('MobileNetV2 residual adds map to HzSElementwiseAdd and ReLU6 clips stay on the BPU', () => {
    const p = place(build(...cases[1]), 'bernoulli2');
    const adds = p.nodes.filter((n) => n.op === 'Add');
    expect(adds.length).toBeGreaterThan(0);
    expect(adds.every((n) => n.type === 'HzSElementwiseAdd' && n.on === 'BPU')).toBe(true);
    expect(p.nodes.filter((n) => n.op === 'Clip').every((n) => n.on === 'BPU')).toBe(true);
  });
});

describe('hand-built models', () => {
  it('Reshape + Softmax tail on bernoulli2: both on the CPU, the convolutional part in id(0)', () => {
    const p = place(reshapeSoftmaxTail(), 'bernoulli2');
    expect(cpuNodes(p)).toEqual(['reshape', 'softmax']);
    expect(node(p, 'reshape').reason).toMatch(/^Reshape runs on the CPU on bernoulli2/);
    expect(node(p, 'reshape').type).toBe('Reshape');
    expect(node(p, 'softmax').reason).toMatch(/unless run_on_bpu names it/);
    expect(['conv1', 'relu1', 'gap'].map((n) => subgraphOf(p, n))).toEqual([0, 0, 0]);
    expect(p.subgraphs).toEqual([{ id: 0, nodes: ['conv1', 'relu1', 'gap'], inputs: ['data'], outputs: ['gap'] }]);
    expect(p.boundaries).toEqual([
      { value: 'data', kind: 'quantize', from: 'input', to: ['conv1'] },
      { value: 'gap', kind: 'dequantize', from: 'gap', to: ['reshape'] },
    ]);
    expect(report(p)).toMatchSnapshot();
  });

  it('Reshape + Softmax tail on bayes: Reshape runs on the BPU under its ONNX name, Softmax on the CPU', () => {
    const p = place(reshapeSoftmaxTail(), 'bayes');
    expect(cpuNodes(p)).toEqual(['softmax']);
    expect(node(p, 'reshape')).toMatchObject({ on: 'BPU', type: 'Reshape', subgraph: 0 });
    expect(report(p)).toMatchSnapshot();
  });

  it('Softmax goes to the X3 BPU only on request, and only as a 4-D axis-1 model output', () => {
    expect(node(place(channelSoftmaxOutput(), 'bernoulli2'), 'softmax').on).toBe('CPU');
    const forced = place(channelSoftmaxOutput(), 'bernoulli2', { runOnBpu: ['softmax'] });
    expect(node(forced, 'softmax')).toMatchObject({ on: 'BPU', subgraph: 0, reason: 'run_on_bpu' });
    const e = ptqError(() => place(reshapeSoftmaxTail(), 'bernoulli2', { runOnBpu: ['softmax'] }));
    expect(e.code).toBe('E_RUN_ON_BPU');
    expect(e.message).toMatch(/'softmax'.*input of rank 2.*4-D/);
  });

  it('two inputs on bernoulli2: one subgraph fed by both inputs, Sub on the CPU reading two BPU results', () => {
    const p = place(twoInputs(), 'bernoulli2');
    expect(cpuNodes(p)).toEqual(['diff']);
    expect(node(p, 'diff').reason).toBe('Sub runs on the CPU on bernoulli2 (the BPU adds and multiplies only)');
    expect(p.subgraphs.length).toBe(1);
    expect(p.subgraphs[0].inputs).toEqual(['left', 'right']);
    expect(p.subgraphs[0].outputs.sort()).toEqual(['conv_left', 'conv_right', 'fused']);
    expect(p.boundaries.filter((b) => b.kind === 'quantize').map((b) => b.value)).toEqual(['left', 'right']);
    expect(p.boundaries.filter((b) => b.kind === 'dequantize').map((b) => `${b.value}->${b.to.join(',')}`).sort()).toEqual([
      'conv_left->diff', 'conv_right->diff', 'fused->output',
    ]);
    expect(report(p)).toMatchSnapshot();
    expect(cpuNodes(place(twoInputs(), 'bayes'))).toEqual([]);
  });

  it('a 9x9 conv mid-graph on bernoulli2 goes to the CPU and splits the BPU part in two', () => {
    const p = place(bigKernelMidGraph(), 'bernoulli2');
    expect(cpuNodes(p)).toEqual(['conv_big']);
    expect(node(p, 'conv_big')).toMatchObject({ type: 'Conv', reason: 'kernel 9x9 > 7x7 (bernoulli2 Conv)' });
    expect(p.subgraphs.map((s) => s.nodes)).toEqual([['conv1', 'relu1'], ['relu2', 'conv3']]);
    expect(report(p)).toMatchSnapshot();
    const ultra = place(bigKernelMidGraph(), 'bayes');
    expect(cpuNodes(ultra)).toEqual([]);
    expect(ultra.subgraphs.length).toBe(1);
  });

  it('TopK mid-graph: CPU on bernoulli2 (two subgraphs), BPU on bayes (one)', () => {
    const x3 = place(topKMidGraph(), 'bernoulli2');
    expect(cpuNodes(x3)).toEqual(['topk']);
    expect(node(x3, 'topk').reason).toBe('TopK runs on the CPU on bernoulli2');
    expect(x3.subgraphs.map((s) => s.nodes)).toEqual([['conv1'], ['conv2']]);
    expect(report(x3)).toMatchSnapshot();
    const ultra = place(topKMidGraph(), 'bayes');
    expect(node(ultra, 'topk')).toMatchObject({ on: 'BPU', subgraph: 0, type: 'TopK' });
    expect(ultra.subgraphs.length).toBe(1);
  });

  it('a passive op between CPU ops moves to the CPU unless run_on_bpu keeps it', () => {
    for (const march of ['bernoulli2', 'bayes'] as const) {
      const p = place(passiveBetweenCpuOps(), march);
      expect(cpuNodes(p)).toEqual(['softmax1', 'pool', 'softmax2']);
      expect(node(p, 'pool').reason).toMatch(/^passive op between CPU ops/);
      expect(p.notes.some((n) => n.includes('pool'))).toBe(true);
      expect(p.subgraphs.map((s) => s.nodes)).toEqual([['conv1']]);
    }
    const kept = place(passiveBetweenCpuOps(), 'bernoulli2', { runOnBpu: ['pool'] });
    expect(node(kept, 'pool')).toMatchObject({ on: 'BPU', subgraph: 1, type: 'HzQuantizedMaxPool' });
    expect(report(kept)).toMatchSnapshot();
  });

  it('a model of one passive op ends up with no BPU subgraph', () => {
    const p = place(singleOp('Relu'), 'bernoulli2');
    expect(cpuNodes(p)).toEqual(['op']);
    expect(p.subgraphs).toEqual([]);
  });

  it('a BPU group that a CPU path leaves and re-enters is split so each subgraph can run as a unit', () => {
    const p = place(reentrantBranch(), 'bernoulli2');
    expect(cpuNodes(p)).toEqual(['t1', 't2']);
    expect(p.subgraphs.map((s) => s.nodes)).toEqual([['conv_a'], ['add', 'conv_b']]);
    expect(report(p)).toMatchSnapshot();
    expect(place(reentrantBranch(), 'bayes').subgraphs.length).toBe(1);
  });

  it('a PyTorch view() shape chain folds, and its Reshape folds into the Gemm on bernoulli2', () => {
    const p = place(shapeChainFlatten(), 'bernoulli2');
    expect(p.folded).toEqual(['shape', 'gather', 'unsqueeze', 'cat']);
    expect(p.nodes.map((n) => n.name)).toEqual(['conv', 'relu', 'view', 'fc']);
    expect(cpuNodes(p)).toEqual([]);
    expect(node(p, 'fc').type).toBe('HzSQuantizedConv');
    expect(p.subgraphs.length).toBe(1);
  });

  it('a fully connected head stays on the X3 BPU: Flatten folds into fc1, 2-D Relus fuse into their Gemm', () => {
    const p = place(mlpHead(), 'bernoulli2');
    expect(cpuNodes(p)).toEqual([]);
    expect(p.subgraphs.length).toBe(1);
    expect(['fc1', 'fc2', 'fc3'].map((n) => node(p, n).type)).toEqual(['HzSQuantizedConv', 'HzSQuantizedConv', 'HzSQuantizedConv']);
  });

  it('Resize: nearest needs power-of-2 factors, linear takes any', () => {
    expect(node(place(resizeModel(2, 'nearest'), 'bernoulli2'), 'resize')).toMatchObject({ on: 'BPU', type: 'HzQuantizedResizeUpsample' });
    expect(node(place(resizeModel(0.5, 'nearest'), 'bernoulli2'), 'resize').on).toBe('BPU');
    const odd = place(resizeModel(3, 'nearest'), 'bernoulli2');
    expect(node(odd, 'resize').reason).toBe('nearest scale factor 3x3 is not a power of 2 (bernoulli2 Resize)');
    expect(odd.subgraphs.length).toBe(2);
    expect(node(place(resizeModel(3, 'linear'), 'bernoulli2'), 'resize').on).toBe('BPU');
    expect(node(place(resizeModel(3, 'nearest'), 'bayes'), 'resize').on).toBe('CPU');
  });

  it('ArgMax over channels runs on the BPU up to 64 channels', () => {
    expect(node(place(argMaxHead(64), 'bernoulli2'), 'argmax')).toMatchObject({ on: 'BPU', type: 'HzArgMax' });
    expect(node(place(argMaxHead(65), 'bernoulli2'), 'argmax').reason).toBe('channels 65 > 64 (bernoulli2 ArgMax)');
    expect(node(place(argMaxHead(65), 'bayes'), 'argmax').on).toBe('CPU');
  });

  it('ReduceMean: H,W only on bernoulli2, one axis also on bayes', () => {
    expect(node(place(reduceMeanModel([2, 3]), 'bernoulli2'), 'mean').on).toBe('BPU');
    expect(node(place(reduceMeanModel([-2, -1]), 'bernoulli2'), 'mean').on).toBe('BPU');
    expect(node(place(reduceMeanModel([1]), 'bernoulli2'), 'mean').reason).toBe('axes [1] != [2, 3] (bernoulli2 ReduceMean)');
    expect(node(place(reduceMeanModel([1]), 'bayes'), 'mean').on).toBe('BPU');
    expect(node(place(reduceMeanModel([1, 2]), 'bayes'), 'mean').reason).toMatch(/^reduces axes \[1, 2\]: one axis, or H and W together/);
  });

  it('the HzPreprocess stage (tagged standard ops) is one BPU operator at the head of id(0)', () => {
    for (const march of ['bernoulli2', 'bayes'] as const) {
      const p = place(withPreprocessStage(), march);
      expect(p.nodes.map((n) => [n.name, n.on, n.subgraph, n.type])).toEqual([
        ['HzPreprocess_data_cast', 'BPU', 0, 'HzSQuantizedPreprocess'],
        ['HzPreprocess_data_affine', 'BPU', 0, 'HzSQuantizedPreprocess'],
        ['conv1', 'BPU', 0, 'HzSQuantizedConv'],
      ]);
      // the int8 image input needs no Quantize
      expect(p.boundaries.map((b) => `${b.kind}:${b.value}`)).toEqual(['dequantize:out']);
    }
    // untagged, the Cast is a CPU op
    const plain = withPreprocessStage();
    for (const n of plain.graph.nodes) n.docString = undefined;
    expect(node(place(plain, 'bernoulli2'), 'HzPreprocess_data_cast').on).toBe('CPU');
  });

  it('reports the constraints that fail, not the ones that cannot be evaluated because of them', () => {
    const p = place(scaleByVector(), 'bernoulli2');
    expect(node(p, 'mul').reason).toBe('inputs [1, 8, 8, 8] and [8]: the X3 BPU multiplies 4-D tensors only (bernoulli2 Mul)');
    expect(node(place(scaleByVector(), 'bayes'), 'mul').on).toBe('BPU');
  });

  it('an opset-9 model is read with its own semantics and the log says so', () => {
    const p = place(opset9Model(), 'bernoulli2');
    expect(p.opset).toBe(9);
    expect(p.notes[0]).toMatch(/ONNX opset 9.*Clip \(1\): min\/max read from attributes/);
    expect(cpuNodes(p)).toEqual([]);
    expect(node(p, 'up').type).toBe('HzQuantizedResizeUpsample');
  });
});

describe('run_on_cpu, run_on_bpu and node_info', () => {
  it('run_on_cpu forces a node to the CPU and splits the subgraph there', () => {
    const p = place(bigKernelMidGraph(), 'bayes', { runOnCpu: ['conv_big'] });
    expect(node(p, 'conv_big')).toMatchObject({ on: 'CPU', reason: 'run_on_cpu', forcedBy: 'run_on_cpu' });
    expect(p.subgraphs.map((s) => s.nodes)).toEqual([['conv1', 'relu1'], ['relu2', 'conv3']]);
  });

  it('refuses run_on_bpu for what the BPU cannot run, naming the failed constraint', () => {
    const e = ptqError(() => place(bigKernelMidGraph(), 'bernoulli2', { runOnBpu: ['conv_big'] }));
    expect(e.code).toBe('E_RUN_ON_BPU');
    expect(e.message).toBe("run_on_bpu puts node 'conv_big' (Conv) on the BPU, which bernoulli2 cannot do: kernel 9x9 > 7x7 (bernoulli2 Conv)");
    expect(e.subject).toBe('conv_big');
    expect(ptqError(() => place(topKMidGraph(), 'bernoulli2', { runOnBpu: ['topk'] })).message).toMatch(/TopK runs on the CPU on bernoulli2/);
  });

  it('unknown node names in the overrides are errors naming the key and the name', () => {
    const e = ptqError(() => place(bigKernelMidGraph(), 'bernoulli2', { runOnCpu: ['conv_1'] }));
    expect(e.code).toBe('E_NODE_NAME');
    expect(e.message).toBe("run_on_cpu names node 'conv_1', which is not in the model");
    expect(e.fix).toBe("did you mean 'conv1'?");
    expect(ptqError(() => place(bigKernelMidGraph(), 'bernoulli2', { runOnBpu: ['nowhere_near'] })).message).toMatch(/^run_on_bpu names node 'nowhere_near'/);
    expect(ptqError(() => place(bigKernelMidGraph(), 'bayes', { nodeInfo: { convv3: { ON: 'BPU' } } })).message).toMatch(/^node_info names node 'convv3'/);
  });

  it('a node in both lists, or node_info on bernoulli2, is an error', () => {
    expect(ptqError(() => place(bigKernelMidGraph(), 'bernoulli2', { runOnCpu: ['conv1'], runOnBpu: ['conv1'] })).code).toBe('E_NODE_PLACEMENT');
    expect(ptqError(() => place(bigKernelMidGraph(), 'bayes', { runOnCpu: ['conv1'], nodeInfo: { conv1: { ON: 'BPU' } } })).code).toBe('E_NODE_PLACEMENT');
    const e = ptqError(() => place(bigKernelMidGraph(), 'bernoulli2', { nodeInfo: { conv1: { OutputType: 'int16' } } }));
    expect(e.code).toBe('E_NODE_INFO');
    expect(e.message).toMatch(/only supported for march bayes/);
  });

  it('node_info (bayes) sets ON and int16 data types, falling back to int8 where the op has no int16', () => {
    const p = place(bigKernelMidGraph(), 'bayes', {
      nodeInfo: { conv1: { ON: 'CPU' }, conv3: { InputType: 'int16', OutputType: 'int16' }, conv_big: { InputType0: 'int16' } },
    });
    expect(node(p, 'conv1')).toMatchObject({ on: 'CPU', reason: 'node_info ON CPU', inputType: 'float32' });
    expect(node(p, 'conv3')).toMatchObject({ on: 'BPU', inputType: 'int16', outputType: 'int16' });
    expect(node(p, 'conv_big')).toMatchObject({ inputType: 'int8', outputType: 'int8', inputTypes: { 0: 'int16' } });
    expect(node(p, 'relu1').subgraph).toBe(0);
    const tail = place(reshapeSoftmaxTail(), 'bayes', { nodeInfo: { gap: { OutputType: 'int16' }, softmax: { OutputType: 'int16' } } });
    expect(node(tail, 'gap').outputType).toBe('int8');
    expect(tail.notes).toEqual(expect.arrayContaining([
      "node_info asks int16 for 'gap' (GlobalAveragePool), which bayes computes in int8 only here; falling back to int8",
      "node_info sets data types for 'softmax', which runs on the CPU in float; ignored",
    ]));
    expect(ptqError(() => place(bigKernelMidGraph(), 'bayes', { nodeInfo: { conv1: { OutputType: 'int32' } } })).message).toBe(
      "node_info 'conv1': OutputType is 'int32', expected int8 or int16",
    );
  });

  it('node_info ON BPU on bayes forces an on-request op onto the BPU', () => {
    const m = (): Model => singleOp('Softmax', { attrs: { axis: 3 } });
    expect(node(place(m(), 'bayes'), 'op').on).toBe('CPU');
    expect(node(place(m(), 'bayes', { nodeInfo: { op: { ON: 'BPU' } } }), 'op')).toMatchObject({ on: 'BPU', forcedBy: 'node_info', subgraph: 0 });
  });
});

describe('overridesFromConfig', () => {
  it('maps the config\'s merged per-node view onto run_on_cpu / run_on_bpu / node_info', () => {
    expect(overridesFromConfig({ a: { on: 'CPU' }, b: { on: 'BPU', outputType: 'int16', inputTypes: { 1: 'int16' } }, c: { inputType: 'int8' } })).toEqual({
      runOnCpu: ['a'],
      runOnBpu: ['b'],
      nodeInfo: { b: { OutputType: 'int16', InputType1: 'int16' }, c: { InputType: 'int8' } },
    });
  });
});

describe('model-level checks', () => {
  it('accepts opsets 7-21 only', () => {
    expect(ptqError(() => place(singleOp('Relu', { opset: 6 }), 'bernoulli2')).code).toBe('E_OPSET');
    expect(ptqError(() => place(singleOp('Relu', { opset: 22 }), 'bernoulli2')).message).toMatch(/opset 22 is not supported \(accepted: 7-21\)/);
    expect(place(singleOp('Relu', { opset: 7 }), 'bernoulli2').opset).toBe(7);
    expect(place(singleOp('Relu', { opset: 11 }), 'bernoulli2').notes).toEqual(['moved to the CPU (passive ops with no BPU neighbour): op']);
  });

  it('allows at most 32 outputs', () => {
    expect(place(manyOutputs(32), 'bayes').nodes.length).toBe(32);
    const e = ptqError(() => place(manyOutputs(33), 'bayes'));
    expect(e.code).toBe('E_MODEL_OUTPUTS');
    expect(e.message).toMatch(/33 outputs; at most 32/);
  });

  it('needs fixed 4-D inputs (input_shape fixes dynamic ones)', () => {
    const dyn = (): Model => singleOp('Relu', { shape: ['N', 3, 8, 8] });
    const e = ptqError(() => place(dyn(), 'bernoulli2'));
    expect(e.code).toBe('E_INPUT_SHAPE');
    expect(e.message).toBe("input 'data' has shape [N,3,8,8]: dynamic dimensions are not supported");
    expect(place(dyn(), 'bernoulli2', { inputShapes: { data: [1, 3, 8, 8] } }).nodes.length).toBe(1);
    expect(ptqError(() => place(singleOp('Relu', { shape: [1, 10] }), 'bernoulli2')).code).toBe('E_INPUT_RANK');
  });

  it('refuses post-processing operators, naming the node', () => {
    const e = ptqError(() => place(withNms(), 'bayes'));
    expect(e.code).toBe('E_POST_PROCESSING');
    expect(e.message).toMatch(/^node 'nms' \(NonMaxSuppression\) is a post-processing operator/);
  });

  it('refuses operators nothing can run, naming the node', () => {
    const e = ptqError(() => place(singleOp('Accuracy'), 'bernoulli2'));
    expect(e.code).toBe('E_UNSUPPORTED_OP');
    expect(e.message).toMatch(/^node 'op' \(Accuracy\): operator not supported/);
  });

  it('does not change the model (shape inference runs on the side)', () => {
    const m = bigKernelMidGraph();
    const before = [...m.graph.valueInfo.keys()];
    place(m, 'bernoulli2');
    expect([...m.graph.valueInfo.keys()]).toEqual(before);
  });
});

describe('report', () => {
  it('prints the reference table: aligned columns, `--` and the ONNX type on the CPU', () => {
    const text = formatCheckerTable(place(bigKernelMidGraph(), 'bernoulli2'));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^=+$/);
    expect(lines[1]).toMatch(/^Node\s+ON\s+Subgraph\s+Type$/);
    expect(lines[2]).toMatch(/^-+$/);
    expect(lines[0].length).toBe(lines[2].length);
    expect(Math.max(...lines.map((l) => l.length))).toBe(lines[0].length);
    const onCol = lines[1].indexOf('ON');
    const sgCol = lines[1].indexOf('Subgraph');
    for (const l of lines.slice(3)) {
      expect(['BPU', 'CPU']).toContain(l.slice(onCol, onCol + 3));
      expect(l.slice(sgCol)).toMatch(/^(id\(\d+\)|--)\s/);
    }
    expect(lines.find((l) => l.startsWith('conv_big'))).toMatch(/^conv_big\s+CPU\s+--\s+Conv$/);
    expect(lines.find((l) => l.startsWith('conv3'))).toMatch(/^conv3\s+BPU\s+id\(1\)\s+HzSQuantizedConv$/);
  });

  it('check.json carries nodes, subgraphs, boundaries and counts, and is stable', () => {
    const j = placementToJson(place(twoInputs(), 'bernoulli2'));
    expect(j.summary).toEqual({ nodes: 6, bpu: 5, cpu: 1, folded: 0, subgraphs: 1, quantize: 2, dequantize: 3 });
    expect(j.nodes.find((n) => n.name === 'diff')).toEqual({
      name: 'diff', op: 'Sub', on: 'CPU', subgraph: null, type: 'Sub', reason: 'Sub runs on the CPU on bernoulli2 (the BPU adds and multiplies only)', inputType: 'float32', outputType: 'float32',
    });
    expect(j.subgraphs[0]).toMatchObject({ id: 0, name: 'id(0)', nodes: ['conv_left', 'conv_right', 'add', 'relu', 'head'] });
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(JSON.stringify(placementToJson(place(twoInputs(), 'bernoulli2')))).toBe(JSON.stringify(j));
    expect(j).toMatchSnapshot();
  });

  it('the log has the notes, the table, the reasons and a summary, without timestamps', () => {
    const log = formatCheckerLog(place(passiveBetweenCpuOps(), 'bernoulli2'));
    expect(log).toMatch(/^INFO Check of graph 'passive_island' for march bernoulli2 \(ONNX opset 13\)/);
    expect(log).toContain('INFO The converted model node information:');
    expect(log).toContain('CPU nodes and why they are not on the BPU:');
    expect(log).toMatch(/INFO 4 nodes: 1 on the BPU, 3 on the CPU; 1 BPU subgraph; 1 Quantize boundary, 1 Dequantize boundary\n$/);
    const none = { ...place(passiveBetweenCpuOps(), 'bernoulli2'), subgraphs: [], boundaries: [] };
    expect(formatSummary(none)).toMatch(/0 BPU subgraphs; 0 Quantize boundaries, 0 Dequantize boundaries$/);
    expect(log).not.toMatch(/\d{4}-\d\d-\d\d/);
    expect(log).toMatchSnapshot();
  });
});
