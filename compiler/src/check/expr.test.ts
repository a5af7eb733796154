import { ExprError, Scope, Value, evaluate, formatValue, isPow2, parseExpr } from './expr';

/** A scope of plain names; unknown names throw like a table scope does. */
function scope(names: Record<string, Value>): Scope {
  return {
    name: (n) => {
      if (!(n in names)) throw new ExprError(`no name ${n}`);
      return names[n];
    },
  };
}

const ev = (src: string, names: Record<string, Value> = {}): Value => evaluate(src, scope(names));

describe('expression language', () => {
  it('follows the usual precedence and associativity', () => {
    expect(ev('1 + 2 * 3')).toBe(7);
    expect(ev('(1 + 2) * 3')).toBe(9);
    expect(ev('10 - 4 - 3')).toBe(3);
    expect(ev('2 * 3 % 4')).toBe(2);
    expect(ev('-2 * -3')).toBe(6);
    expect(ev('1 + 1 == 2 && 3 < 4')).toBe(true);
    expect(ev('1 < 2 ? 10 : 20')).toBe(10);
    expect(ev('false ? 1 : true ? 2 : 3')).toBe(2);
    expect(ev("'nearest' == 'nearest'")).toBe(true);
  });

  it('indexes lists, negative indexes from the end, out of range is unknown', () => {
    const s = { k: [9, 7, 5] };
    expect(ev('k[0] * k[-1]', s)).toBe(45);
    expect(ev('k[3]', s)).toBeUndefined();
    expect(ev('[k[0], 1][1]', s)).toBe(1);
  });

  it('works element-wise on lists and compares whole lists with ==', () => {
    expect(ev('[3, 5] - 1')).toEqual([2, 4]);
    expect(ev('[3, 5] * [2, 2]')).toEqual([6, 10]);
    expect(ev('floor(([9, 4] - 1) / 2)')).toEqual([4, 1]);
    expect(ev('[2, 3] == [2, 3]')).toBe(true);
    expect(ev('[2, 3] == [3, 2]')).toBe(false);
    expect(ev('[2, 3] != [2]')).toBe(true);
  });

  it('propagates unknown values and uses three-valued logic', () => {
    const s = { u: undefined, d: [1, undefined, 3] };
    expect(ev('u + 1', s)).toBeUndefined();
    expect(ev('u == 1', s)).toBeUndefined();
    expect(ev('d == [1, 2, 3]', s)).toBeUndefined();
    expect(ev('false && u', s)).toBe(false);
    expect(ev('true || u', s)).toBe(true);
    expect(ev('true && u', s)).toBeUndefined();
    expect(ev('!u', s)).toBeUndefined();
    expect(ev('u ? 1 : 2', s)).toBeUndefined();
    expect(ev('coalesce(u, 4)', s)).toBe(4);
    expect(ev('defined(d)', s)).toBe(false);
  });

  it('has the builtins the tables use', () => {
    expect(ev('prod([2, 3, 4])')).toBe(24);
    expect(ev('prod([])')).toBe(1);
    expect(ev('max(3, [7, 1])')).toBe(7);
    expect(ev('min([4, 2])')).toBe(2);
    expect(ev('align(13, 8)')).toBe(16);
    expect(ev('slice([1, 2, 3, 4], 2)')).toEqual([3, 4]);
    expect(ev('slice([1, 2, 3, 4], 0, -2)')).toEqual([1, 2]);
    expect(ev('norm_axes([-1, 2], 4)')).toEqual([2, 3]);
    expect(ev('norm_axes(u, 3)', { u: undefined })).toEqual([0, 1, 2]);
    expect(ev("all_in(['Gemm', 'Gemm'], 'Gemm')")).toBe(true);
    expect(ev("all_in(['Gemm', 'Relu'], 'Gemm')")).toBe(false);
    expect(ev("all_in([], 'Gemm')")).toBe(false);
    expect(ev('ndiff([1, 3, 1, 8], [1, 3, 4, 8])')).toBe(1);
    expect(ev('ndiff([3, 8], [2, 3, 8])')).toBe(1);
    expect(ev('includes([[2, 3]], [2, 3])')).toBe(true);
  });

  it('rejects bad syntax and unknown functions with ExprError', () => {
    expect(() => parseExpr('1 +')).toThrow(ExprError);
    expect(() => parseExpr('(1')).toThrow(ExprError);
    expect(() => parseExpr('a b')).toThrow(ExprError);
    expect(() => parseExpr("'open")).toThrow(ExprError);
    expect(() => parseExpr('1 # 2')).toThrow(ExprError);
    expect(() => ev('nosuch(1)')).toThrow(/unknown function nosuch/);
  });

  it('recognises powers of two, including 2^-k and 1', () => {
    expect([1, 2, 4, 64, 0.5, 0.25].every(isPow2)).toBe(true);
    expect([0, -2, 3, 6, 1.5, NaN, Infinity].some(isPow2)).toBe(false);
  });

  it('formats values for messages', () => {
    expect(formatValue([9, 9], true)).toBe('9x9');
    expect(formatValue([2, 3])).toBe('[2, 3]');
    expect(formatValue(1 / 3)).toBe('0.333333');
    expect(formatValue(undefined)).toBe('unknown');
  });
});
