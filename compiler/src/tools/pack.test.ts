import { BinFile, decodeBin, encodeBin, selectModel } from '../compile/bin-format';
import { isPtqError } from '../errors';
import { boundaryModel } from './fixtures.test.util';
import { packBins } from './pack';

const one = (name: string, march = 'bernoulli2'): BinFile => ({ formatVersion: 1, packed: false, models: [boundaryModel(name, march)] });

describe('pack', () => {
  it('joins the models in order into a packed file that decodes and selects by name', () => {
    const p = packBins([{ file: 'a.bin', bin: one('a') }, { file: 'b.bin', bin: one('b') }, { file: 'c.bin', bin: one('c') }]);
    expect(p.packed).toBe(true);
    const back = decodeBin(encodeBin(p), 'comb.bin');
    expect(back.models.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    expect(selectModel(back, 'b', 'comb.bin').segments).toHaveLength(3);
    // the packed model's bytes are those of the original model
    expect(Buffer.from(encodeBin({ formatVersion: 1, packed: false, models: [selectModel(back, 'c', 'comb.bin')] })).equals(Buffer.from(encodeBin(one('c'))))).toBe(true);
  });

  it('refuses to pack a packed model again, with the reference message', () => {
    const p = packBins([{ file: 'a.bin', bin: one('a') }, { file: 'b.bin', bin: one('b') }]);
    let msg = '';
    try {
      packBins([{ file: 'comb.bin', bin: p }, { file: 'c.bin', bin: one('c') }]);
    } catch (e) {
      expect(isPtqError(e)).toBe(true);
      msg = (e as Error).message;
    }
    expect(msg).toBe('model: comb.bin is a packed model, it can not be packed again!');
  });

  it('refuses repeated model names, mixed marches and fewer than two models', () => {
    expect(() => packBins([{ file: 'a.bin', bin: one('a') }, { file: 'a2.bin', bin: one('a') }])).toThrow("the models of 'a.bin' and 'a2.bin' are both named 'a'");
    expect(() => packBins([{ file: 'a.bin', bin: one('a') }, { file: 'b.bin', bin: one('b', 'bayes') }])).toThrow("'b.bin' is compiled for march 'bayes', 'a.bin' for 'bernoulli2'");
    expect(() => packBins([{ file: 'a.bin', bin: one('a') }])).toThrow(/at least two/);
  });
});
