import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { readNpy } from '../../preprocess/npy';

const PTQ = path.resolve(__dirname, '../../../bin/ptq.js');

function ptq(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [PTQ, 'eval-preprocess', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const COLOUR = [200, 80, 30];
// BT.601 full range, truncated like the reference's astype(uint8): Y 110.18, U 82.72, V 192.05
const [Y, U, V] = [110, 82, 192];

async function solid(file: string, w: number, h: number, rgb = COLOUR): Promise<void> {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < px.length; i += 3) px.set(rgb, i);
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

describe('ptq eval-preprocess', () => {
  let root: string;
  let images: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-evalpre-'));
    images = path.join(root, 'images');
    fs.mkdirSync(images);
    await solid(path.join(images, 'a.png'), 300, 200);
    await solid(path.join(images, 'b.png'), 256, 256);
    await solid(path.join(images, 'small.png'), 100, 100);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('-m resnet50: ShortSideResize 256, CenterCrop 224, NV12 bytes per image', () => {
    const out = path.join(root, 'out-resnet');
    const r = ptq('-m', 'resnet50', '-i', images, '-o', out, '-v', writeVal('a.png 65\nb.png 3\n'));
    expect(r.err).toMatch(/eval-preprocess: 2\/2 \(100%\) done/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote 2 file\(s\) to .*out-resnet: uint8\[336,224\] NV12 each, chain ShortSideResize\(short_size=256\); CenterCrop\(crop_size=224\); RGB2NV12/);
    expect(fs.readdirSync(out).sort()).toEqual(['a.bin', 'b.bin']);
    for (const f of ['a.bin', 'b.bin']) {
      const b = fs.readFileSync(path.join(out, f));
      expect(b.length).toBe(224 * 224 * 1.5);
      expect(b.subarray(0, 224 * 224).every((v) => v === Y)).toBe(true);
      const uv = b.subarray(224 * 224);
      expect(uv.length).toBe(112 * 224);
      expect(uv.every((v, i) => v === (i % 2 ? V : U))).toBe(true);
    }
  });

  it('--transformers from a JSON file, --format npy, images in val_txt order', () => {
    const spec = path.join(root, 'chain.json');
    fs.writeFileSync(spec, JSON.stringify([{ type: 'Resize', target_size: [4, 6], mode: 'opencv' }, 'HWC2CHW', 'RGB2BGR', { type: 'Scale', scale_value: 0.5 }]));
    const out = path.join(root, 'out-npy');
    const r = ptq('--transformers', spec, '--image_dir', images, '--output_dir', out, '--format', 'npy', '--val_txt', writeVal('# comment\nsmall.png\n\na.png\n'));
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['a.npy', 'small.npy']);
    const t = readNpy(path.join(out, 'small.npy'));
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([3, 4, 6]);
    const a = t.toNumbers();
    expect(a.slice(0, 24).every((v) => v === COLOUR[2] / 2)).toBe(true);
    expect(a.slice(48).every((v) => v === COLOUR[0] / 2)).toBe(true);
  });

  it('a text chain on all images of the folder, sorted', () => {
    const out = path.join(root, 'out-text');
    const r = ptq('-t', 'ShortSideResize(64); CenterCrop(64); RGB2GRAY', '-i', images, '-o', out);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['a.bin', 'b.bin', 'small.bin']);
    const g = new Float32Array(new Uint8Array(fs.readFileSync(path.join(out, 'small.bin'))).buffer);
    expect(g.length).toBe(64 * 64);
    expect(g[0]).toBeCloseTo(0.299 * 200 + 0.587 * 80 + 0.114 * 30, 3);
  });

  it.each([
    [['-m', 'resnet50', '-t', 'HWC2CHW'], /give exactly one of --model_name and --transformers/],
    [['-m', 'resnet51'], /option '--model_name' must be one of .*resnet50/],
    [['-t', 'Blur(3)'], /unknown transformer 'Blur'/],
    [['-m', 'resnet50', '-v', '@missing'], /--val_txt '.*' line 1 names 'ghost\.png', which is not in --image_dir/],
  ])('%j fails with one ERROR line, exit 2, and writes nothing', (args, msg) => {
    const out = path.join(root, 'out-bad');
    const argv = (args as string[]).map((a) => (a === '@missing' ? writeVal('ghost.png 1\n') : a));
    const r = ptq(...argv, '-i', images, '-o', out);
    expect(r.code).toBe(2);
    const lines = r.err.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^ERROR /);
    expect(r.err).toMatch(msg);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a chain failing on one image leaves no output (a new folder is removed, an existing one untouched)', () => {
    const fresh = path.join(root, 'out-fail');
    const r = ptq('-t', 'CenterCrop(150)', '-i', images, '-o', fresh);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/ERROR image '.*small\.png': transformer CenterCrop: crop 150x150 is larger than the 100x100 image/);
    expect(fs.existsSync(fresh)).toBe(false);
    const existing = path.join(root, 'out-existing');
    fs.mkdirSync(existing);
    fs.writeFileSync(path.join(existing, 'keep.txt'), 'x');
    expect(ptq('-t', 'CenterCrop(150)', '-i', images, '-o', existing).code).toBe(2);
    expect(fs.readdirSync(existing)).toEqual(['keep.txt']);
  });

  it('--help lists the model names and their chains', () => {
    const r = spawnSync(process.execPath, [PTQ, 'eval-preprocess', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/efficientnet_lite0\s+PaddedCenterCrop\(224, 32\)/);
    expect(r.stdout).toMatch(/-v, --val_txt FILE/);
  });

  function writeVal(text: string): string {
    const f = path.join(root, `val-${Math.random().toString(36).slice(2)}.txt`);
    fs.writeFileSync(f, text);
    return f;
  }
});
