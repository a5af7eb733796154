/**
 * The generators through the real Nx CLI, in a temp workspace holding this repository's
 * plugin and (symlinked) generators folder: `nx g ./generators:calibration-set` from PNG
 * images, `nx g ./generators:model` on an ONNX file with that set, then the new project is in
 * the graph and converts (preprocess → check → calibrate → quantize). A user error is one line.
 */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { createWorkspace, expectStatus, nx, REPO, removeWorkspace } from '../plugins/nx-ptq/test-support/workspace';

let ws: string;

beforeAll(async () => {
  ws = createWorkspace('nx-ptq-gen-e2e-', { models: {} });
  fs.symlinkSync(path.join(REPO, 'generators'), path.join(ws, 'generators'), 'dir');
  fs.mkdirSync(path.join(ws, 'raw'));
  for (let i = 0; i < 4; i++) {
    const w = 12 + i;
    const raw = Buffer.alloc(w * 10 * 3);
    for (let p = 0; p < raw.length; p++) raw[p] = (p * (7 + i) + i * 31) % 256;
    fs.writeFileSync(path.join(ws, 'raw', `scene${i}.png`), await sharp(raw, { raw: { width: w, height: 10, channels: 3 } }).png().toBuffer());
  }
});

afterAll(() => removeWorkspace(ws));

describe('nx g with the nx-ptq generators', () => {
  it('calibration-set, then model: a project that Nx lists and converts', () => {
    const cal = nx(ws, ['g', './generators:calibration-set', 'raw', '--name=scenes', '--shape=1x3x8x8', '--no-interactive']);
    expectStatus(cal, 0);
    expect(cal.all).toMatch(/CREATE calibration\/scenes\/rgb_8x8\/scene0\.npy/);
    expect(fs.readdirSync(path.join(ws, 'calibration', 'scenes', 'rgb_8x8'))).toEqual(['scene0.npy', 'scene1.npy', 'scene2.npy', 'scene3.npy']);

    const gen = nx(ws, ['g', './generators:model', 'shared/tiny.onnx', '--name=tinygen', '--calibrationSet=calibration/scenes/rgb_8x8', '--scale=0.0039', '--inputTypeRt=rgb', '--calibrationType=max', '--no-interactive']);
    expectStatus(gen, 0);
    expect(gen.all).toMatch(/CREATE models\/tinygen\/model\.yaml/);
    expect(gen.all).toMatch(/CREATE models\/tinygen\/tiny\.onnx/);
    const yaml = fs.readFileSync(path.join(ws, 'models', 'tinygen', 'model.yaml'), 'utf8');
    expect(yaml).toContain("cal_data_dir: '../../calibration/scenes/rgb_8x8'");

    const show = nx(ws, ['show', 'project', 'tinygen', '--json']);
    expectStatus(show, 0);
    expect(Object.keys((JSON.parse(show.stdout) as { targets: object }).targets)).toEqual(expect.arrayContaining(['preprocess', 'check', 'calibrate', 'quantize']));

    const run = nx(ws, ['run', 'tinygen:quantize']);
    expectStatus(run, 0);
    expect(fs.existsSync(path.join(ws, 'models', 'tinygen', 'model_output', 'tinygen_quantized_model.onnx'))).toBe(true);
    expect(fs.readdirSync(path.join(ws, 'models', 'tinygen', 'model_output', 'calibration_data', 'data'))).toHaveLength(4);
  });

  it('a user error: one line with the fix, exit code 1, nothing written', () => {
    const r = nx(ws, ['g', './generators:model', 'shared/tiny.onnx', '--name=tinygen', '--no-interactive']);
    expectStatus(r, 1);
    expect(r.all).toContain('models/tinygen/model.yaml exists already (fix: pick another --name, or pass --overwrite to replace it)');
    expect(r.all).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });
});
