import * as fs from 'fs';
import * as path from 'path';
import { readBinFile } from '../../src/compile/bin-format';
import { expectUserError, runPtq } from './run-cli';
import { ptq, tempDir, writeFixtureBin } from './tool-fixtures';

/** `ptq pack` (hb_pack) on hand-built .bin files; model-info and perf read the packed file with -m. */
const dir = tempDir('ptq-pack-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ptq pack', () => {
  jest.setTimeout(60_000);

  it('packs models in order; the packed file decodes, and -m selects a model', async () => {
    const files = ['m1', 'm2', 'm3'].map((n) => writeFixtureBin(dir, n));
    const comb = path.join(dir, 'comb.bin');
    const r = await ptq(['pack', ...files, '-o', comb]);
    expect(r).toEqual({ code: 0, out: [`INFO packed 3 models (m1, m2, m3) into ${comb}`], err: [] });
    const bin = readBinFile(comb);
    expect(bin.packed).toBe(true);
    expect(bin.models.map((m) => m.name)).toEqual(['m1', 'm2', 'm3']);
    const info = await ptq(['model-info', comb, '-m', 'm2']);
    expect(info.code).toBe(0);
    expect(info.out).toContain('********* m2 info *********');
  });

  it('refuses to pack a packed model again (the reference message), exit 2', async () => {
    const a = writeFixtureBin(dir, 'pa');
    const b = writeFixtureBin(dir, 'pb');
    const c = writeFixtureBin(dir, 'pc');
    const comb = path.join(dir, 'ab.bin');
    expect((await ptq(['pack', a, b, '-o', comb])).code).toBe(0);
    const r = runPtq(['pack', comb, c, '-o', path.join(dir, 'again.bin')]);
    expectUserError(r, new RegExp(`^ERROR model: ${comb.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is a packed model, it can not be packed again! \\(fix: `));
    expect(fs.existsSync(path.join(dir, 'again.bin'))).toBe(false);
  });

  it('other refusals: same name twice, missing -o, one file, unreadable file', async () => {
    const a = writeFixtureBin(dir, 'same');
    const out = path.join(dir, 'x.bin');
    expect((await ptq(['pack', a, a, '-o', out])).err[0]).toMatch(/are both named 'same'/);
    expect((await ptq(['pack', a, writeFixtureBin(dir, 'other')])).err).toEqual(["ERROR pack: missing required option '--output_name' (fix: see `ptq pack --help`)"]);
    expect((await ptq(['pack', a, '-o', out])).err[0]).toMatch(/^ERROR pack: one BIN_FILE given; packing needs at least two/);
    expect((await ptq(['pack', a, path.join(dir, 'nope.bin'), '-o', out])).err[0]).toMatch(/^ERROR cannot read model file '.*nope\.bin': ENOENT/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
