import { isPtqError, PtqError } from '../errors';
import { parseNameList, parseNodeList, unbalanced } from './lists';

describe('node lists', () => {
  it.each([
    ["['Conv_2','Conv_90']", ['Conv_2', 'Conv_90']],
    ['[Conv_2,Conv_90]', ['Conv_2', 'Conv_90']],
    ['Conv_2,Conv_90', ['Conv_2', 'Conv_90']],
    ['Conv_2', ['Conv_2']],
    ["[['Conv_2'],['Conv_2','Conv_90']]", [['Conv_2'], ['Conv_2', 'Conv_90']]],
    ['[[Conv_2],[Conv_2,Conv_90]]', [['Conv_2'], ['Conv_2', 'Conv_90']]],
    ['[weight, activation]', ['weight', 'activation']],
    ["[ 'a b' , \"c,d\" ]", ['a b', 'c,d']],
    ["['it\\'s']", ["it's"]],
    ['[/features/0/Conv, 317_HzCalibration]', ['/features/0/Conv', '317_HzCalibration']],
    ['[a,[b,c]]', ['a', ['b', 'c']]],
  ])('%s', (text, want) => {
    expect(parseNodeList(text, '-q')).toEqual(want);
  });

  it.each([
    ['[[Conv_2],[Conv_90]', /a '\]' is missing at the end/],
    ['[Conv_2,,Conv_90]', /a name is missing before ','/],
    ['[Conv_2,]', /an item is missing before '\]'/],
    ['[[[a]]]', /lists nest one level at most/],
    ["['Conv_2]", /quote ' is not closed/],
    ['[a] b', /unexpected 'b' after the closing/],
    ['[]', /it is empty/],
    ['[[],[a]]', /an empty inner list/],
    ['', /it is empty/],
    ['[a]]', /unexpected '\]'/],
  ])('%s is a one-line error', (text, msg) => {
    let err: unknown;
    try {
      parseNodeList(text, '-q');
    } catch (e) {
      err = e;
    }
    expect(isPtqError(err)).toBe(true);
    const e = err as PtqError;
    expect(e.code).toBe('E_DEBUG_LIST');
    expect(e.message).toMatch(msg);
    expect(e.oneLine()).not.toMatch(/\n/);
    expect(e.oneLine()).toMatch(/^ERROR -q: cannot read the node list .* \(fix: write a list like/);
  });

  it('flat lists refuse nesting', () => {
    expect(parseNameList('[cosine-similarity,mse]', '-m')).toEqual(['cosine-similarity', 'mse']);
    expect(() => parseNameList('[[mse]]', '-m')).toThrow(/nested lists are not allowed here/);
  });

  it('tell when the shell split a bracketed value', () => {
    expect(unbalanced('[weight,')).toBe(true);
    expect(unbalanced('[weight, activation]')).toBe(false);
    expect(unbalanced("['a]")).toBe(true);
    expect(unbalanced('a,b')).toBe(false);
  });
});
