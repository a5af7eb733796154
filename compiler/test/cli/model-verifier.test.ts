import * as fs from 'fs';
import * as path from 'path';
import { BinModel, encodeBin, readBinFile, writeBinFile } from '../../src/compile/bin-format';
import { saveModel } from '../../src/onnx/encode';
import { Tensor } from '../../src/onnx/tensor';
import { encodeNpy } from '../../src/preprocess/npy';
import { compiledFixture } from '../../src/verify/fixtures.test.util';
import { expectUserError, runPtq } from './run-cli';
import { ptq, tempDir } from './tool-fixtures';

/** `ptq model-verifier` (hb_model_verifier) on compiled fixtures: PASSED, inputs, a corrupted .bin, refusals. */
jest.setTimeout(120_000);
const dir = tempDir('ptq-model-verifier-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, input: 'featuremap' | 'nv12' | 'rgb', layerOutDump = false): { q: string; bin: string; model: BinModel } {
  const fx = compiledFixture(input, { name, layerOutDump });
  const q = path.join(dir, `${name}_quantized_model.onnx`);
  const bin = path.join(dir, `${name}.bin`);
  saveModel(fx.quantized, q);
  writeBinFile(bin, { formatVersion: 1, packed: false, models: [fx.bin] });
  return { q, bin, model: fx.bin };
}

const PASSED = (output: string): string[] => [
  `INFO output '${output}':`,
  'Quanti onnx and Bin runtime result Strict check PASSED',
  'Quanti onnx and Onnxruntime result Strict check PASSED',
  'Bin runtime and Onnxruntime result Strict check PASSED',
];

describe('ptq model-verifier', () => {
  const fm = write('fm', 'featuremap');
  const img = write('img', 'nv12');

  it('prints Strict check PASSED for every pair and output on random data', async () => {
    for (const f of [fm, img]) {
      const r = await ptq(['model-verifier', '-q', f.q, '-b', f.bin]);
      expect(r.err).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.out).toEqual([`INFO inputs: seeded random data (data)`, ...PASSED('feat'), ...PASSED('prob')]);
    }
  });

  it('reads the input from a .npy, a raw .bin of pixels, or an image file', async () => {
    const npy = path.join(dir, 'x.npy');
    fs.writeFileSync(npy, encodeNpy(new Tensor('float32', [1, 4, 8, 8], Float32Array.from({ length: 256 }, (_, i) => Math.sin(i) * 2))));
    const a = await ptq(['model-verifier', '-q', fm.q, '-b', fm.bin, '-i', npy, '-d', '6']);
    expect(a.code).toBe(0);
    expect(a.out[0]).toBe(`INFO inputs: ${npy}`);
    expect(a.out.filter((l) => l.endsWith('PASSED'))).toHaveLength(6);
    const raw = path.join(dir, 'px.bin');
    fs.writeFileSync(raw, Uint8Array.from({ length: 3 * 64 }, (_, i) => (i * 37) % 256));
    expect((await ptq(['model-verifier', '-q', img.q, '-b', img.bin, '-i', raw])).code).toBe(0);
    // a BMP (24-bit, 8x8, bottom-up): decoded, resized and converted like a calibration image
    const bmp = path.join(dir, 'px.bmp');
    const row = 8 * 3;
    const header = Buffer.alloc(54);
    header.write('BM', 0);
    header.writeUInt32LE(54 + row * 8, 2);
    header.writeUInt32LE(54, 10);
    header.writeUInt32LE(40, 14);
    header.writeInt32LE(8, 18);
    header.writeInt32LE(8, 22);
    header.writeUInt16LE(1, 26);
    header.writeUInt16LE(24, 28);
    fs.writeFileSync(bmp, Buffer.concat([header, Buffer.from(Uint8Array.from({ length: row * 8 }, (_, i) => (i * 11) % 256))]));
    const c = await ptq(['model-verifier', '-q', img.q, '-b', img.bin, '-i', bmp]);
    expect(c.err).toEqual([]);
    expect(c.code).toBe(0);
  });

  it('reports the mismatch block on a deliberately corrupted .bin, exit 2', () => {
    const m = readBinFile(fm.bin).models[0];
    // one weight of the last convolution changed: the .bin no longer computes the quantized model
    const conv = m.segments.flatMap((s) => s.ops).filter((o) => o.type === 'Conv').pop()!;
    const w = m.tensors.find((t) => t.name === conv.inputs[1])!;
    const raw = Uint8Array.from(w.raw);
    raw[0] = (raw[0] + 64) & 0xff;
    const bad = path.join(dir, 'fm_corrupted.bin');
    fs.writeFileSync(bad, encodeBin({ formatVersion: 1, packed: false, models: [{ ...m, tensors: m.tensors.map((t) => (t === w ? { ...t, raw } : t)) }] }));
    const r = runPtq(['model-verifier', '-q', fm.q, '-b', bad], { timeoutMs: 90_000 });
    expectUserError(r, /^ERROR model-verifier: results differ: Quanti onnx vs Bin runtime on output 'feat': \d+ of 256 values differ at 5 decimals; /);
    const lines = r.stdout.trimEnd().split('\n');
    const at = lines.indexOf('INFO Quanti onnx and Bin runtime result Strict check FAILED');
    expect(at).toBeGreaterThan(0);
    const block = lines.slice(at + 1, at + 9);
    expect(block[0]).toMatch(/^INFO mismatch line num: (\d+)$/);
    const n = Number(/(\d+)$/.exec(block[0])![1]);
    expect(n).toBeGreaterThan(0);
    expect(block.slice(1)).toEqual([
      'INFO ****************************',
      'INFO mismatch.line_miss num: 0',
      `INFO mismatch.line_diff num: ${n}`,
      'INFO mismatch.line_nan num: 0',
      'INFO ****************************',
      'INFO total line num: 256',
      `INFO mismatch rate: ${n / 256}`,
    ]);
    // onnxruntime still agrees with the quantized model
    expect(lines).toContain('Quanti onnx and Onnxruntime result Strict check PASSED');
  });

  it('verifies a model-modifier output (the deleted nodes applied on the host) and a packed file with -m', async () => {
    const mod = path.join(dir, 'fm_mod.bin');
    expect((await ptq(['model-modifier', fm.bin, '-a', 'Quantize', '-a', 'Dequantize', '-a', 'Softmax', '-a', 'Reshape', '-a', 'Transpose', '-o', mod])).code).toBe(0);
    const r = await ptq(['model-verifier', '-q', fm.q, '-b', mod]);
    expect(r.err).toEqual([]);
    expect(r.out.filter((l) => l.endsWith('PASSED'))).toHaveLength(6);
    const other = write('other', 'featuremap');
    const comb = path.join(dir, 'comb.bin');
    expect((await ptq(['pack', fm.bin, other.bin, '-o', comb])).code).toBe(0);
    expect((await ptq(['model-verifier', '-q', fm.q, '-b', comb])).err).toEqual([
      `ERROR pack model is not supported (fix: modify the original .bin files, then pack them again (ptq pack); '${comb}' holds several models)`,
    ]);
    const p = await ptq(['model-verifier', '-q', other.q, '-b', comb, '-m', 'other']);
    expect(p.code).toBe(0);
  });

  it('a .bin with more outputs (layer_out_dump) is compared on the quantized model\'s outputs', async () => {
    const d = write('dump', 'featuremap', true);
    expect(readBinFile(d.bin).models[0].outputs.length).toBeGreaterThan(2);
    const r = await ptq(['model-verifier', '-q', d.q, '-b', d.bin]);
    expect(r.code).toBe(0);
    expect(r.out.filter((l) => l.endsWith('PASSED'))).toHaveLength(6);
  });

  it('refusals: a .bin of another model, bad digits, wrong input files, missing options', async () => {
    const wrong = await ptq(['model-verifier', '-q', img.q, '-b', path.join(dir, 'nope.bin')]);
    expect(wrong.err[0]).toMatch(/^ERROR cannot read model file '.*nope\.bin': ENOENT/);
    const odd = write('odd', 'rgb');
    // rgb and nv12 fixtures share names; a bin whose outputs differ is refused
    const m = readBinFile(odd.bin).models[0];
    const renamed = path.join(dir, 'renamed.bin');
    writeBinFile(renamed, { formatVersion: 1, packed: false, models: [{ ...m, outputs: m.outputs.map((o) => ({ ...o, name: `${o.name}_x` })) }] });
    expect((await ptq(['model-verifier', '-q', odd.q, '-b', renamed])).err[0]).toMatch(/^ERROR '.*renamed\.bin' \(inputs data; outputs feat_x, prob_x\) was not compiled from this quantized model/);
    expect((await ptq(['model-verifier', '-q', fm.q, '-b', fm.bin, '-d', 'x'])).err).toEqual(["ERROR model-verifier: --compare_digits must be a whole number 0…20, got 'x' (fix: use e.g. -d 5)"]);
    const small = path.join(dir, 'small.bin');
    fs.writeFileSync(small, Buffer.alloc(10));
    expect((await ptq(['model-verifier', '-q', fm.q, '-b', fm.bin, '-i', small])).err[0]).toMatch(/^ERROR input file '.*small\.bin': has 10 bytes; input 'data' takes 256 values \(1024 float32 bytes\)/);
    expect((await ptq(['model-verifier', '-q', fm.q, '-b', fm.bin, '-i', small, '-i', small])).err[0]).toMatch(/^ERROR 2 input file\(s\) given; the model has 1 input\(s\) \(data\)/);
    expect((await ptq(['model-verifier', '-b', fm.bin])).err).toEqual(["ERROR model-verifier: missing required option '--quanti_model' (fix: see `ptq model-verifier --help`)"]);
  });
});
