import { PtqError } from '../errors';
import { caffeType } from './schema';
import { readCaffemodel } from './weights';
import { encodeCaffemodel, NetSpec } from './writer';

const values = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed) * 3);

/** Bitwise equality of float arrays (jest's deep equality is slow on large typed arrays). */
function sameFloats(a: Float32Array | undefined, b: Float32Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** A buffer whose bytes start at `offset` inside their ArrayBuffer (like a pooled Buffer). */
function at(bytes: Uint8Array, offset: number): Uint8Array {
  const b = new Uint8Array(new ArrayBuffer(bytes.length + offset), offset, bytes.length);
  b.set(bytes);
  return b;
}

describe('caffemodel reader', () => {
  const spec = (nameLen: number): NetSpec => ({
    name: 'n',
    layer: [
      { name: 'c'.repeat(nameLen), type: 'Convolution', blobs: [{ shape: [4, 3, 3, 3], data: values(108, 1) }, { shape: [4], data: values(4, 2) }] },
      { name: 'fc', type: 'InnerProduct', blobs: [{ shape: [10, 5000], data: values(50000, 3) }] },
      { name: 'relu', type: 'ReLU' },
    ],
  });

  it.each([0, 1, 2, 3])('reads every blob exactly whatever the alignment (buffer offset %d)', (offset) => {
    for (let nameLen = 1; nameLen <= 4; nameLen++) {
      const buf = at(encodeCaffemodel(spec(nameLen)), offset);
      const m = readCaffemodel(buf);
      const conv = m.get('c'.repeat(nameLen));
      expect(conv?.map((b) => b.shape)).toEqual([[4, 3, 3, 3], [4]]);
      expect(sameFloats(conv?.[0].data, values(108, 1))).toBe(true);
      expect(sameFloats(conv?.[1].data, values(4, 2))).toBe(true);
      const fc = m.get('fc')?.[0];
      expect(fc?.shape).toEqual([10, 5000]);
      expect(sameFloats(fc?.data, values(50000, 3))).toBe(true);
      // large runs are views of the file buffer, never copies
      expect(fc?.data.buffer).toBe(buf.buffer);
      expect(m.get('relu')).toEqual([]);
    }
  });

  it('reads V1 layers with legacy 4-D blob shapes', () => {
    const m = readCaffemodel(
      encodeCaffemodel({ v1: true, layer: [{ name: 'ip', type: 'InnerProduct', blobs: [{ shape: [3, 2], data: values(6, 4) }, { shape: [3], data: values(3, 5) }] }] }),
    );
    expect(m.get('ip')?.map((b) => b.shape)).toEqual([
      [1, 1, 3, 2],
      [1, 1, 1, 3],
    ]);
    expect(sameFloats(m.get('ip')?.[0].data, values(6, 4))).toBe(true);
  });

  it('reads unpacked floats and double_data written by other encoders', () => {
    const blob = caffeType('BlobProto');
    const layer = caffeType('LayerParameter');
    const net = caffeType('NetParameter');
    // protobufjs writes double_data packed; hand-write `data` unpacked (one tag per float)
    const unpacked = [0x2d, ...new Uint8Array(Float32Array.of(1.5).buffer), 0x2d, ...new Uint8Array(Float32Array.of(-2).buffer)];
    const shape = blob.encode(blob.fromObject({ shape: { dim: [2] } })).finish();
    const b1 = Uint8Array.from([...shape, ...unpacked]);
    const b2 = blob.encode(blob.fromObject({ shape: { dim: [1, 2] }, double_data: [0.25, 1e-3] })).finish();
    const l = layer.encode(layer.fromObject({ name: 'x' })).finish();
    const layerBytes = Uint8Array.from([...l, 0x3a, b1.length, ...b1, 0x3a, b2.length, ...b2]);
    const bytes = Uint8Array.from([...net.encode(net.fromObject({ name: 'n' })).finish(), 0xa2, 0x06, layerBytes.length, ...layerBytes]);
    const m = readCaffemodel(bytes);
    expect(Array.from(m.get('x')?.[0].data ?? [])).toEqual([1.5, -2]);
    expect(m.get('x')?.[1].shape).toEqual([1, 2]);
    expect(Array.from(m.get('x')?.[1].data ?? [])).toEqual([0.25, Math.fround(1e-3)]);
  });

  it.each([
    ['a truncated file', (b: Uint8Array) => b.subarray(0, b.length - 7), /truncated|overruns/],
    ['a prototxt', () => new TextEncoder().encode('layer { name: "a" type: "ReLU" }\n'), /not a valid Caffe model/],
    ['a file with no layers', () => Uint8Array.of(0x0a, 0x01, 0x61), /contains no layers/],
  ])('rejects %s with a PtqError', (_what, make, msg) => {
    const good = encodeCaffemodel({ name: 'n', layer: [{ name: 'fc', type: 'InnerProduct', blobs: [{ shape: [4, 4], data: values(16, 1) }] }] });
    try {
      readCaffemodel(make(good), 'm.caffemodel');
    } catch (e) {
      expect(e).toBeInstanceOf(PtqError);
      expect((e as PtqError).message).toMatch(msg);
      return;
    }
    throw new Error('expected an error');
  });
});
