import { BinFile, BinModel, decodeBin, encodeBin, selectModel } from './bin-format';
import { isPtqError } from '../errors';

function tiny(name = 'tiny'): BinModel {
  const w = new Int8Array([1, -2, 3, -4]);
  return {
    name,
    march: 'bernoulli2',
    deps: { nxPtqVersion: '0.1.0', compilerVersion: '0.1.0', runtimeVersion: '0.1.0', formatVersion: 1 },
    params: [{ group: 'model_parameters', input: '', params: [{ key: 'BPU march', value: 'bernoulli2' }] }],
    inputs: [{ name: 'data', value: 'data', dtype: 'int8', shape: [1, 2, 2, 1], layout: 'NHWC', typeRt: 'rgb', typeTrain: 'rgb', spaceAndRange: 'regular', source: 'ddr', scale: 1, zeroPoint: 0 }],
    outputs: [{ name: 'out', value: 'out', dtype: 'float32', shape: [1, 4], layout: '', typeRt: '', typeTrain: '', spaceAndRange: '', source: '', scale: 0, zeroPoint: 0 }],
    values: [
      { name: 'data', dtype: 'int8', shape: [1, 2, 2, 1], layout: 'NHWC', scale: 1, offset: -1, bytes: 4, firstUse: 0, lastUse: 0 },
      { name: 'out', dtype: 'float32', shape: [1, 4], layout: '', scale: 0, offset: -1, bytes: 16, firstUse: 0, lastUse: 0 },
    ],
    tensors: [{ name: 'w', dtype: 'int8', dims: [4], raw: new Uint8Array(w.buffer) }],
    segments: [{
      name: 'tiny_subgraph_0', kind: 'bpu', inputs: ['data'], outputs: ['out'],
      ops: [{ name: 'op0', type: 'Dequantize', domain: '', inputs: ['data', 'w'], outputs: ['out'], attrs: [{ name: 'scale', f: 0.5 }, { name: 'perm', ints: [0, 3, 1, 2] }, { name: 'mode', s: 'x' }], sourceNodes: ['n0'], functionCall: 0 }],
      perf: { latencyMs: 0.25, ops: 8, loadedBytes: 4, storedBytes: 16, functionCalls: 1 },
    }],
    arenaBytes: 0,
    deletedNodes: [{ name: 'q', opType: 'Quantize', position: 'input', io: 'data', attrs: [{ name: 'scale', f: 0.125 }], info: 'q scale 0.125' }],
    perfJson: '{"a":1}',
    debug: true,
    graphName: 'g',
  };
}

describe('.bin format', () => {
  it('round-trips every field and encodes deterministically', () => {
    const file: BinFile = { formatVersion: 1, packed: false, models: [tiny()] };
    const bytes = encodeBin(file);
    expect(Buffer.from(encodeBin(file)).equals(Buffer.from(bytes))).toBe(true);
    const back = decodeBin(bytes);
    const m = back.models[0];
    expect({ ...m, tensors: [] }).toEqual({ ...tiny(), tensors: [] });
    expect(Array.from(new Int8Array(m.tensors[0].raw.buffer, m.tensors[0].raw.byteOffset, 4))).toEqual([1, -2, 3, -4]);
  });

  it('refuses garbage, truncation, dangling names and a newer version with one-line errors', () => {
    const bytes = encodeBin({ formatVersion: 1, packed: false, models: [tiny()] });
    const errs: string[] = [];
    for (const b of [new Uint8Array([1, 2, 3, 4, 5]), bytes.subarray(0, bytes.length - 7), new Uint8Array(0)]) {
      try {
        decodeBin(b, 'm.bin');
        errs.push('decoded');
      } catch (e) {
        expect(isPtqError(e)).toBe(true);
        errs.push((e as Error).message);
      }
    }
    expect(errs.every((e) => e.startsWith("'m.bin' is not a valid nx-ptq .bin model"))).toBe(true);
    const dangling = tiny();
    dangling.segments[0].ops[0].inputs = ['nope'];
    expect(() => encodeBin({ formatVersion: 1, packed: false, models: [dangling] })).toThrow(/reads 'nope' before/);
    const newer = encodeBin({ formatVersion: 99, packed: false, models: [tiny()] });
    expect(() => decodeBin(newer, 'n.bin')).toThrow(/format version 99/);
  });

  it('selects a model of a packed file by name', () => {
    const bin = decodeBin(encodeBin({ formatVersion: 1, packed: true, models: [tiny('a'), tiny('b')] }));
    expect(selectModel(bin, 'b', 'p.bin').name).toBe('b');
    expect(() => selectModel(bin, undefined, 'p.bin')).toThrow(/packed model with 2 models/);
    expect(() => selectModel(bin, 'c', 'p.bin')).toThrow(/no model named 'c'/);
  });
});
