import { BinDeletedNode, BinModel, decodeBin, encodeBin } from '../compile/bin-format';
import { isPtqError, PtqError } from '../errors';
import { Rng } from '../kernels/random';
import { arr, Arr, boundaryModel, CONV_SCALE, dequantize, IN_SCALE, interpret, POOL_SCALE, quantize, softmax, transpose } from './fixtures.test.util';
import { deletableLine, deletableNames, modifiedName, modifyBin, modifyModel, ModifierAction } from './modifier';

const r = (name: string): ModifierAction => ({ kind: 'remove', name });
const a = (type: string): ModifierAction => ({ kind: 'all', type });

function feeds(seed: number): Record<string, Arr> {
  const rng = new Rng(seed);
  return { data: arr([1, 3, 4, 4], Array.from({ length: 48 }, () => rng.uniform(-3, 3))) };
}

/** What the application does for the deleted nodes: input records in deletion order, output records in reverse. */
function applyRecords(records: BinDeletedNode[], side: 'input' | 'output', io: string, x: Arr): Arr {
  const list = records.filter((d) => d.position === side && d.io.split(',').includes(io));
  if (side === 'output') list.reverse();
  let y = x;
  for (const d of list) {
    const at = (n: string): { f?: number; i?: number; ints?: number[] } => d.attrs.find((q) => q.name === n) ?? {};
    switch (d.opType) {
      case 'Transpose': y = transpose(y, at('perm').ints as number[]); break;
      case 'Quantize': y = quantize(y, at('scale').f as number, at('zero_point').i as number); break;
      case 'Dequantize':
      case 'DequantizeLinear': y = dequantize(y, at('scale').f as number, at('zero_point').i as number); break;
      case 'Reshape': y = { dims: at('shape').ints as number[], data: (d.attrs.some((q) => q.name === 'in_layout') ? transpose(y, [0, 3, 1, 2]) : y).data }; break;
      case 'Softmax': y = softmax(y, at('axis').i as number); break;
      default: throw new Error(d.opType);
    }
  }
  return y;
}

function errorOf(f: () => unknown): PtqError {
  try {
    f();
  } catch (e) {
    if (isPtqError(e)) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('model-modifier', () => {
  it('lists the boundary nodes that can be deleted now, in execution order', () => {
    const m = boundaryModel();
    expect(deletableNames(m)).toEqual(['data_NCHW2NHWC_LayoutConvert_Input0', 'prob_softmax', 'pool_out_HzDequantize']);
    expect(deletableLine(m)).toBe("INFO Nodes that can be deleted: ['data_NCHW2NHWC_LayoutConvert_Input0', 'prob_softmax', 'pool_out_HzDequantize']");
  });

  it('deletes in order with the reference messages; the input binds to the inner value', () => {
    const m = boundaryModel();
    const before = JSON.stringify(encodeBin({ formatVersion: 1, packed: false, models: [m] }));
    const res = modifyModel(m, [r('data_NCHW2NHWC_LayoutConvert_Input0'), r('data_HzQuantize')], 'featnet.bin');
    expect(res.lines).toEqual([
      "Node 'data_NCHW2NHWC_LayoutConvert_Input0' found, its OP type is 'Transpose'",
      "Node 'data_NCHW2NHWC_LayoutConvert_Input0' info: data_NCHW2NHWC_LayoutConvert_Input0: Transpose at model input 'data' (float32[1,3,4,4] NCHW -> float32[1,4,4,3] NHWC); the application must feed the data transposed with perm=[0,2,3,1]",
      "Node 'data_NCHW2NHWC_LayoutConvert_Input0' is removed",
      "Node 'data_HzQuantize' found, its OP type is 'Quantize'",
      `Node 'data_HzQuantize' info: data_HzQuantize: Quantize at model input 'data' (float32[1,4,4,3] NHWC -> int8[1,4,4,3] NHWC); the application must feed int8 data quantized as qx = clamp(round(x / scale) + zero_point, -128, 127) with scale=${IN_SCALE} zero_point=0`,
      "Node 'data_HzQuantize' is removed",
    ]);
    const out = res.model;
    expect(out.inputs[0]).toMatchObject({ name: 'data', value: 'data_q', dtype: 'int8', shape: [1, 4, 4, 3], layout: 'NHWC', scale: IN_SCALE, zeroPoint: 0, typeRt: 'featuremap' });
    expect(out.segments.map((s) => s.name)).toEqual(['featnet_subgraph_0', 'featnet_cpu_1']);
    expect(out.values.map((v) => v.name)).not.toContain('data');
    expect(out.values.map((v) => v.name)).not.toContain('data_nhwc');
    const dq = out.values.find((v) => v.name === 'data_q');
    expect(dq).toMatchObject({ offset: -1, firstUse: -1 });
    expect(out.arenaBytes).toBe(2320); // still ends at logits (1296 + 1024)
    expect(out.values.find((v) => v.name === 'prob')).toMatchObject({ firstUse: 4, lastUse: 4 });
    expect(out.deletedNodes.map((d) => [d.name, d.opType, d.position, d.io])).toEqual([
      ['data_NCHW2NHWC_LayoutConvert_Input0', 'Transpose', 'input', 'data'],
      ['data_HzQuantize', 'Quantize', 'input', 'data'],
    ]);
    expect(out.deletedNodes[1].attrs).toEqual([{ name: 'scale', f: IN_SCALE }, { name: 'zero_point', i: 0 }]);
    // the original is untouched, the result is a valid .bin
    expect(JSON.stringify(encodeBin({ formatVersion: 1, packed: false, models: [m] }))).toBe(before);
    const back = decodeBin(encodeBin({ formatVersion: 1, packed: false, models: [out] }), 'modified.bin');
    expect(back.models[0].deletedNodes).toEqual(out.deletedNodes);
  });

  it('deletes every node of the given types (-a), inward from the outputs; constants nothing reads go', () => {
    expect(modifyModel(boundaryModel(), [a('Dequantize'), a('Reshape'), a('Softmax')], 'f.bin').removed.map((d) => d.name)).toEqual(['pool_out_HzDequantize', 'prob_softmax', 'fc_reshape_0', 'conv_out_HzDequantize']);
    const res = modifyModel(boundaryModel(), [a('Softmax'), a('Reshape'), a('Dequantize')], 'featnet.bin');
    expect(res.removed.map((d) => d.name)).toEqual(['prob_softmax', 'fc_reshape_0', 'conv_out_HzDequantize', 'pool_out_HzDequantize']);
    const m = res.model;
    expect(m.outputs.map((o) => [o.name, o.value, o.dtype, o.shape, o.layout, o.scale])).toEqual([
      ['prob', 'conv_out', 'int8', [1, 4, 4, 16], 'NHWC', CONV_SCALE],
      ['pool', 'pool_out', 'int8', [1, 1, 1, 16], 'NHWC', POOL_SCALE],
    ]);
    expect(m.segments.map((s) => [s.name, s.inputs, s.outputs])).toEqual([
      ['featnet_cpu_0', ['data'], ['data_q']],
      ['featnet_subgraph_0', ['data_q'], ['conv_out', 'pool_out']],
    ]);
    expect(m.tensors.map((t) => t.name)).toEqual(['conv0_w', 'conv0_b']);
    expect(m.values.filter((v) => v.offset === -1).map((v) => v.name).sort()).toEqual(['conv_out', 'data', 'pool_out']);
    expect(m.arenaBytes).toBe(256); // data_nhwc and data_q end at byte 240, aligned to 64
    expect(m.values.find((v) => v.name === 'conv_out')!.lastUse).toBe(4); // after the last of the 4 remaining steps
    // the records: the reference formula with the op's scale, from an attribute or a constant input
    const pool = res.removed[3];
    expect(pool.attrs).toEqual([{ name: 'scale', f: Math.fround(POOL_SCALE) }, { name: 'zero_point', i: 0 }]);
    expect(pool.info).toBe(
      `pool_out_HzDequantize: Dequantize at model output 'pool' (int8[1,1,1,16] NHWC -> float32[1,1,1,16] NHWC); the application must dequantize the output as deqx = (x - zero_point) * scale with scale=${Math.fround(POOL_SCALE)} zero_point=0`,
    );
    expect(res.removed[1].info).toMatch(/Reshape at model output 'prob' \(float32\[1,4,4,16\] NHWC -> float32\[1,256\]\); the application must reshape the output \(it is stored NHWC: take it to NCHW first\) to \[1,256\]$/);
    expect(res.removed[0].attrs).toEqual([{ name: 'axis', i: 1 }]);
  });

  it('the modified model, plus what the records tell the application to do, computes what the original did', () => {
    const orig = boundaryModel();
    const all = modifyModel(orig, [a('Transpose'), a('Quantize'), a('Softmax'), a('Reshape'), a('Dequantize')], 'featnet.bin');
    expect(all.removed).toHaveLength(6);
    for (const seed of [1, 2, 3]) {
      const x = feeds(seed);
      const want = interpret(orig, x);
      const fed = applyRecords(all.removed, 'input', 'data', x.data);
      const got = interpret(all.model, { data: fed });
      for (const o of ['prob', 'pool']) {
        const post = applyRecords(all.removed, 'output', o, got[o]);
        expect(post.dims).toEqual(want[o].dims);
        expect(Array.from(post.data)).toEqual(Array.from(want[o].data));
      }
    }
    // and the partly modified models too
    for (const k of [1, 3, 5]) {
      const part = modifyModel(orig, all.removed.slice(0, k).map((d) => r(d.name)), 'featnet.bin');
      const x = feeds(9);
      const got = interpret(part.model, { data: applyRecords(part.removed, 'input', 'data', x.data) });
      const want = interpret(orig, x);
      for (const o of ['prob', 'pool']) expect(Array.from(applyRecords(part.removed, 'output', o, got[o]).data)).toEqual(Array.from(want[o].data));
    }
  });

  it('refuses unknown nodes, nodes not at the boundary, unknown types and a run that deletes nothing', () => {
    const m = boundaryModel();
    const unknown = errorOf(() => modifyModel(m, [r('nope')], 'featnet.bin'));
    expect(unknown.oneLine()).toBe(
      "ERROR 'featnet.bin' has no node named 'nope' (fix: the deletable nodes now are ['data_NCHW2NHWC_LayoutConvert_Input0', 'prob_softmax', 'pool_out_HzDequantize'] (list them with: ptq model-modifier featnet.bin))",
    );
    const inner = errorOf(() => modifyModel(m, [r('data_HzQuantize')], 'featnet.bin'));
    expect(inner.code).toBe('E_NODE_NOT_DELETABLE');
    expect(inner.message).toBe("node 'data_HzQuantize' (Quantize) of 'featnet.bin' cannot be deleted: it is not next to a model input (other nodes sit between it and the model boundary, or read the same value)");
    const conv = errorOf(() => modifyModel(m, [r('conv0')], 'featnet.bin'));
    expect(conv.message).toMatch(/node 'conv0' \(Conv1x1\) .* only Quantize\/Transpose nodes at a model input and Transpose\/Dequantize\/Cast\/Reshape\/Softmax nodes at a model output can be deleted/);
    // the order matters: deleting the Softmax first makes the Reshape deletable
    expect(() => modifyModel(m, [r('fc_reshape_0')], 'featnet.bin')).toThrow(/fc_reshape_0.*not next to a model output/);
    expect(modifyModel(m, [r('prob_softmax'), r('fc_reshape_0')], 'featnet.bin').removed).toHaveLength(2);
    expect(errorOf(() => modifyModel(m, [a('Conv')], 'featnet.bin')).message).toBe("model-modifier: '-a Conv': only Transpose, Quantize, Dequantize, Cast, Reshape, Softmax nodes can be deleted");
    const nothing = errorOf(() => modifyModel(m, [a('Cast')], 'featnet.bin'));
    expect(nothing.code).toBe('E_MODIFIER_NOTHING');
    // a failing step anywhere means no result at all
    expect(() => modifyModel(m, [r('prob_softmax'), r('conv0')], 'featnet.bin')).toThrow(/conv0/);
  });

  it('refuses a packed file with the reference message, and names the output *_modified.bin', () => {
    const packed = { formatVersion: 1, packed: true, models: [boundaryModel('a'), boundaryModel('b')] };
    const e = errorOf(() => modifyBin(packed, [a('Softmax')], 'p.bin'));
    expect(e.message).toBe('pack model is not supported');
    expect(e.oneLine()).toMatch(/^ERROR pack model is not supported \(fix: /);
    expect(modifiedName('dir/x.bin')).toBe('dir/x_modified.bin');
    expect(modifiedName('x_modified.bin')).toBe('x_modified_modified.bin');
    expect(modifiedName('model')).toBe('model_modified.bin');
  });

  it('a node reading a model input that another node also reads is not deletable (one path only)', () => {
    const m: BinModel = boundaryModel();
    // a second reader of `data`
    m.values.push({ name: 'data_copy', dtype: 'float32', shape: [1, 4, 4, 3], layout: 'NHWC', scale: 0, offset: 0, bytes: 192, firstUse: 0, lastUse: 0 });
    m.segments[0].ops.splice(1, 0, { name: 'other', type: 'Transpose', domain: '', inputs: ['data'], outputs: ['data_copy'], attrs: [{ name: 'perm', ints: [0, 2, 3, 1] }], sourceNodes: [], functionCall: 0 });
    m.values.push({ name: 'copy', dtype: 'float32', shape: [1, 4, 4, 3], layout: 'NHWC', scale: 0, offset: -1, bytes: 192, firstUse: 0, lastUse: 0 });
    m.segments[0].ops.splice(2, 0, { name: 'other_relu', type: 'Relu', domain: '', inputs: ['data_copy'], outputs: ['copy'], attrs: [], sourceNodes: [], functionCall: 0 });
    m.outputs.push({ ...m.outputs[1], name: 'copy', value: 'copy', shape: [1, 4, 4, 3] });
    encodeBin({ formatVersion: 1, packed: false, models: [m] });
    expect(deletableNames(m)).toEqual(['prob_softmax', 'pool_out_HzDequantize']);
  });
});
