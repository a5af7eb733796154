import * as fs from 'fs';
import * as path from 'path';
import { expectUserError, runPtq } from './run-cli';
import { ptq, tempDir, writeFixtureBin } from './tool-fixtures';

/** `ptq model-info` (hb_model_info) on hand-built .bin files: the report, deleted nodes, packed files, errors. */
const dir = tempDir('ptq-model-info-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ptq model-info', () => {
  jest.setTimeout(60_000);

  it('prints the reference report of a .bin', async () => {
    const file = writeFixtureBin(dir, 'featnet');
    const r = await ptq(['model-info', file]);
    expect(r.code).toBe(0);
    expect(r.err).toEqual([]);
    expect(r.out[0]).toBe('Start ptq model-info....');
    expect(r.out[1]).toMatch(/^ptq model-info version \d+\.\d+\.\d+$/);
    expect(r.out).toContain('********* featnet info *********');
    expect(r.out).toContain('############# input_parameters info #############');
    expect(r.out).toContain('---------input info : data ---------');
    expect(r.out[r.out.length - 1]).toBe('model output types  : [<InputDataType.F32: 5>, <InputDataType.F32: 5>]');
    expect(fs.existsSync(path.join(dir, 'deleted_nodes_info.txt'))).toBe(false);
  });

  it('after model-modifier: deleted nodes at the end, and deleted_nodes_info.txt (in the current directory by default)', async () => {
    const file = writeFixtureBin(dir, 'mod');
    expect((await ptq(['model-modifier', file, '-a', 'Softmax', '-a', 'Transpose'])).code).toBe(0);
    const modified = path.join(dir, 'mod_modified.bin');
    const out = tempDir('ptq-model-info-out-');
    try {
      const r = runPtq(['model-info', modified], { cwd: out });
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.slice(-4)).toEqual([
        '--------- deleted nodes -',
        'deleted nodes: prob_softmax',
        'deleted nodes: data_NCHW2NHWC_LayoutConvert_Input0',
        'INFO deleted nodes info saved as deleted_nodes_info.txt',
      ]);
      const info = fs.readFileSync(path.join(out, 'deleted_nodes_info.txt'), 'utf8').split('\n');
      expect(info).toHaveLength(3);
      expect(info[1]).toMatch(/^data_NCHW2NHWC_LayoutConvert_Input0: Transpose at model input 'data' .* perm=\[0,2,3,1\]$/);
      expect(info[0]).toMatch(/^prob_softmax: Softmax at model output 'prob' .* apply Softmax over axis 1 to the output$/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('a packed model: all models, or one with -m', async () => {
    const a = writeFixtureBin(dir, 'pa');
    const b = writeFixtureBin(dir, 'pb');
    const comb = path.join(dir, 'comb.bin');
    expect((await ptq(['pack', a, b, '-o', comb])).code).toBe(0);
    const all = await ptq(['model-info', comb]);
    expect(all.out.filter((l) => l.endsWith(' info *********'))).toEqual(['********* pa info *********', '********* pb info *********']);
    const one = await ptq(['model-info', comb, '-m', 'pb']);
    expect(one.out.filter((l) => l.endsWith(' info *********'))).toEqual(['********* pb info *********']);
    const bad = await ptq(['model-info', comb, '-m', 'pc']);
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual([`ERROR '${comb}' has no model named 'pc' (fix: use -m with one of: pa, pb)`]);
  });

  it('user errors are one ERROR line and exit code 2', async () => {
    const missing = path.join(dir, 'missing.bin');
    expectUserError(runPtq(['model-info', missing]), new RegExp(`cannot read model file '${missing}': ENOENT`));
    const junk = path.join(dir, 'junk.bin');
    fs.writeFileSync(junk, 'not a model at all');
    const r = await ptq(['model-info', junk]);
    expect(r.code).toBe(2);
    expect(r.err[0]).toMatch(/^ERROR '.*junk\.bin' is not a valid nx-ptq \.bin model/);
    expect((await ptq(['model-info'])).err).toEqual(['ERROR model-info: missing BIN_FILE (fix: usage: ptq model-info [-m NAME] model.bin)']);
  });
});
