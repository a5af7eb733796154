import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import type { Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { Tensor } from '../../compiler/src/onnx/tensor';
import { CalInputSpec, imagePipeline, PlannedInput, readSample } from '../../compiler/src/preprocess/caldata';
import { encodeNpy, parseNpy } from '../../compiler/src/preprocess/npy';
import { modelGenerator } from '../model/generator';
import { GraphBuilder } from '../../compiler/src/onnx/builder';
import { encodeModel } from '../../compiler/src/onnx/encode';
import cliEntry, { calibrationSetGenerator } from './generator';

let tree: Tree;
let src: string;
beforeEach(() => {
  tree = createTreeWithEmptyWorkspace();
  src = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-gen-cal-'));
});
afterEach(() => fs.rmSync(src, { recursive: true, force: true }));

/** An RGB PNG from a pixel function. */
async function png(file: string, w: number, h: number, px: (x: number, y: number) => [number, number, number]): Promise<void> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(px(x, y), (y * w + x) * 3);
  fs.writeFileSync(file, await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
}

const npyOf = (t: Tree, f: string): Tensor => parseNpy(t.read(f)!, f);

describe('calibration-set generator', () => {
  it('images → the same uint8 samples as the preprocess stage with preprocess_on (default chain), NCHW rgb', async () => {
    for (let i = 0; i < 3; i++) await png(path.join(src, `img${i}.png`), 37, 23, (x, y) => [(x * 7 + i * 40) % 256, (y * 11) % 256, (x * y + i) % 256]);
    fs.writeFileSync(path.join(src, 'notes.txt'), 'not a sample');
    const r = await calibrationSetGenerator(tree, { source: src, name: 'rgb16', shape: '1x3x16x16' });
    expect(r.files).toEqual(['calibration/rgb16/rgb_16x16/img0.npy', 'calibration/rgb16/rgb_16x16/img1.npy', 'calibration/rgb16/rgb_16x16/img2.npy']);
    const spec: CalInputSpec = { name: 'data', typeTrain: 'rgb', layoutTrain: 'NCHW', shape: [1, 3, 16, 16], calDataDir: src, preprocessOn: true };
    const planned: PlannedInput = { spec, files: [], folder: 'data', skipped: 0 };
    for (let i = 0; i < 3; i++) {
      const got = npyOf(tree, r.files[i]);
      expect(got.dtype).toBe('uint8');
      expect(got.dims).toEqual([1, 3, 16, 16]);
      const want = await readSample(planned, path.join(src, `img${i}.png`), imagePipeline(spec));
      expect(Array.from(got.array as Uint8Array)).toEqual(Array.from(want.array as Uint8Array));
    }
    const readme = tree.read('calibration/rgb16/README.md', 'utf8')!;
    expect(readme).toContain('## rgb_16x16\n');
    expect(readme).toContain('| shape | 1x3x16x16 (NCHW) |');
    expect(readme).toContain("| image chain | `Resize(target_size=[16,16], mode='opencv'); HWC2CHW`");
    // a second input format of the same set: its own folder, one README with both
    await calibrationSetGenerator(tree, { source: src, name: 'rgb16', shape: '1x8x8x1', layout: 'NHWC' });
    const both = tree.read('calibration/rgb16/README.md', 'utf8')!;
    expect(both.match(/^## .*/gm)).toEqual(['## gray_8x8', '## rgb_16x16']);
    expect(both).toContain('| shape | 1x8x8x1 (NHWC) |');
    expect(both).toContain('| shape | 1x3x16x16 (NCHW) |');
  });

  it('a flat colour in gray NHWC: BT.601 luma, rounded (independent of the chain code)', async () => {
    await png(path.join(src, 'flat.png'), 20, 12, () => [200, 100, 50]);
    const r = await calibrationSetGenerator(tree, { source: src, shape: '1x8x8x1', layout: 'NHWC' });
    const t = npyOf(tree, r.files[0]);
    expect(t.dims).toEqual([1, 8, 8, 1]);
    const luma = Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50); // 124
    expect(new Set(t.array as Uint8Array)).toEqual(new Set([luma]));
    // bgr swaps the channels: plane 0 holds blue
    const bgr = await calibrationSetGenerator(tree, { source: src, name: 'bgr', shape: '1x3x4x4', inputTypeTrain: 'bgr' });
    const b = npyOf(tree, bgr.files[0]).array as Uint8Array;
    expect([b[0], b[16], b[32]]).toEqual([50, 100, 200]);
  });

  it('a custom chain (CenterCrop) keeps the centre pixels exactly; float32 .bin files named *_f32.bin', async () => {
    const px = (x: number, y: number): [number, number, number] => [x * 10, y * 10, (x + y) * 5];
    await png(path.join(src, 'a.png'), 24, 20, px);
    const r = await calibrationSetGenerator(tree, { source: src, name: 'crop', shape: '1x3x8x8', transformers: 'CenterCrop(8)', dtype: 'float32', format: 'bin' });
    expect(r.files).toEqual(['calibration/crop/rgb_8x8_f32/a.bin']);
    const bytes = tree.read(r.files[0])!;
    expect(bytes.length).toBe(3 * 8 * 8 * 4);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    // centre crop of 24x20 to 8x8 starts at x = 8, y = 6
    for (let c = 0; c < 3; c++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(f[c * 64 + y * 8 + x]).toBe(px(x + 8, y + 6)[c]);
    expect(tree.read('calibration/crop/README.md', 'utf8')).toContain("cal_data_type: 'float32'");
  });

  it('arrays: input-shaped .npy taken as they are (cast on request), H×W×3 arrays through the chain', async () => {
    const shaped = new Float32Array(3 * 4 * 4).map((_, i) => i / 3);
    fs.writeFileSync(path.join(src, 'a.npy'), encodeNpy(new Tensor('float32', [1, 3, 4, 4], shaped)));
    fs.writeFileSync(path.join(src, 'b.npy'), encodeNpy(new Tensor('float64', [3, 4, 4], Float64Array.from(shaped, (v) => v + 1))));
    let r = await calibrationSetGenerator(tree, { source: src, name: 'arr', shape: '1x3x4x4' });
    expect(r.dtype).toBe('float32');
    expect(Array.from(npyOf(tree, r.files[0]).array as Float32Array)).toEqual(Array.from(shaped));
    expect(Array.from(npyOf(tree, r.files[1]).array as Float32Array)).toEqual(Array.from(shaped, (v) => Math.fround(v + 1)));

    const img = new Uint8Array(6 * 6 * 3).map((_, i) => (i * 37) % 256);
    const dir2 = path.join(src, 'hwc');
    fs.mkdirSync(dir2);
    fs.writeFileSync(path.join(dir2, 'x.npy'), encodeNpy(new Tensor('uint8', [6, 6, 3], img)));
    r = await calibrationSetGenerator(tree, { source: dir2, shape: '1x3x6x6' });
    const chw = npyOf(tree, r.files[0]).array as Uint8Array;
    // same size: the resize is the identity, then HWC → CHW
    for (let c = 0; c < 3; c++) for (let i = 0; i < 36; i++) expect(chw[c * 36 + i]).toBe(img[i * 3 + c]);
  });

  it('a set the model generator then uses: its cal_data_type and folder land in the YAML', async () => {
    await png(path.join(src, 'p.png'), 10, 10, (x, y) => [x * 20, y * 20, 100]);
    const set = await calibrationSetGenerator(tree, { source: src, name: 'for_net', shape: '1x3x8x8', format: 'bin' });
    expect(set.dir).toBe('calibration/for_net/rgb_8x8');
    const b = new GraphBuilder('net', { opset: 13, seed: 1 });
    b.output(b.relu(b.conv(b.input('data', 'float32', [1, 3, 8, 8]), { outChannels: 2, kernel: 1 })));
    tree.write('net.onnx', Buffer.from(encodeModel(b.build())));
    let fix: string | undefined;
    try {
      modelGenerator(tree, { model: 'net.onnx', calibrationSet: 'calibration/for_net' }); // the set's root holds the README
    } catch (e) {
      fix = (e as { fix?: string }).fix;
    }
    expect(fix).toBe('point --calibrationSet at the sample folder inside it (calibration/for_net/rgb_8x8)');
    const m = modelGenerator(tree, { model: 'net.onnx', calibrationSet: set.dir });
    const yaml = tree.read(m.configFile, 'utf8')!;
    expect(yaml).toContain("cal_data_dir: '../../calibration/for_net/rgb_8x8'");
    expect(yaml).toContain("cal_data_type: 'uint8'");
  });

  describe('user errors', () => {
    const cases: [string, () => Promise<Parameters<typeof calibrationSetGenerator>[1]>, RegExp][] = [
      ['no source', async () => ({ source: '/nonexistent/x', shape: '1x3x8x8' }), /--source '\/nonexistent\/x' is not a folder/],
      ['a bad shape', async () => ({ source: src, shape: '3x8x8' }), /--shape '3x8x8' is not a 4-D shape/],
      ['a batch', async () => ({ source: src, shape: '2x3x8x8' }), /N must be 1/],
      ['channels vs type', async () => ({ source: src, shape: '1x3x8x8', inputTypeTrain: 'gray' }), /has 3 channel\(s\), but gray has 1/],
      ['no samples', async () => (fs.writeFileSync(path.join(src, 'a.txt'), 'x'), { source: src, shape: '1x3x8x8' }), /holds no images \(\.jpg\/\.jpeg\/\.png\/\.bmp\) or arrays \(\.npy\)/],
      [
        'an array of the wrong size',
        async () => (fs.writeFileSync(path.join(src, 'a.npy'), encodeNpy(new Tensor('float32', [5], new Float32Array(5)))), { source: src, shape: '1x3x8x8' }),
        /array '.*a\.npy' has shape \(5\) = 5 values; --shape 1x3x8x8 needs 192/,
      ],
      [
        'a chain that misses the size',
        async () => (await png(path.join(src, 'a.png'), 20, 20, () => [1, 2, 3]), { source: src, shape: '1x3x8x8', transformers: 'CenterCrop(10)' }),
        /the chain 'CenterCrop\(.*\).*' gives CHW 3x10x10, the input needs 3x8x8/,
      ],
      ['a bad chain', async () => (await png(path.join(src, 'a.png'), 20, 20, () => [1, 2, 3]), { source: src, shape: '1x3x8x8', transformers: 'Explode(3)' }), /--transformers: .*Explode/],
      [
        'an existing set',
        async () => (tree.write('calibration/s/rgb_8x8/x.npy', 'x'), await png(path.join(src, 'a.png'), 8, 8, () => [1, 2, 3]), { source: src, name: 's', shape: '1x3x8x8' }),
        /calibration\/s\/rgb_8x8 exists already/,
      ],
    ];
    it.each(cases)('%s', async (_n, setup, re) => {
      const opts = await setup();
      const before = tree.listChanges().length;
      await expect(calibrationSetGenerator(tree, opts)).rejects.toThrow(re);
      expect(tree.listChanges().length).toBe(before);
    });

    it('through the Nx entry point: one line with the fix', async () => {
      await expect(cliEntry(tree, { source: src, shape: 'big' })).rejects.toThrow(/^--shape 'big' is not a 4-D shape like 1x3x224x224 \(fix: give the model input's shape/);
    });
  });
});
