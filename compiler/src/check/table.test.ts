import { findOp } from '../ops/registry';
import { checkConstraint } from './constraints';
import { ExprError, Scope, Value } from './expr';
import { Constraint, MARCHES, SupportTable, supportTable, validateTable } from './table';

function scope(names: Record<string, Value>): Scope {
  return {
    name: (n) => {
      if (!(n in names)) throw new ExprError(`no name ${n}`);
      return names[n];
    },
  };
}

const check = (c: Constraint, names: Record<string, Value>): string | undefined => checkConstraint(c, scope(names))?.message;

describe('constraint interpreter', () => {
  it('max/min compare every element and name the actual value', () => {
    const c: Constraint = { attr: 'kernel_shape', max: 7, label: 'kernel' };
    expect(check(c, { kernel_shape: [7, 7] })).toBeUndefined();
    expect(check(c, { kernel_shape: [9, 9] })).toBe('kernel 9x9 > 7x7');
    expect(check(c, { kernel_shape: [3, 9] })).toBe('kernel 3x9 > 7x7');
    expect(check({ attr: 'k', min: 2 }, { k: [1, 3] })).toBe('k 1x3 < 2x2');
  });

  it('evaluates expression subjects and expression limits', () => {
    const c: Constraint = { expr: 'kh*kw*cin_per_group', max: 32768 };
    expect(check(c, { kh: 7, kw: 7, cin_per_group: 512 })).toBeUndefined();
    expect(check(c, { kh: 9, kw: 9, cin_per_group: 512 })).toBe('kh*kw*cin_per_group 41472 > 32768');
    const limited: Constraint = { expr: 'c', max: 'plain ? 4096 : 2048', label: 'channels' };
    expect(check(limited, { c: 3000, plain: true })).toBeUndefined();
    expect(check(limited, { c: 3000, plain: false })).toBe('channels 3000 > 2048');
  });

  it('pow2 (shorthand and test), oneOf and eq', () => {
    expect(check({ pow2: 'dilations' }, { dilations: [1, 4] })).toBeUndefined();
    expect(check({ pow2: 'dilations', label: 'dilation' }, { dilations: [3, 3] })).toBe('dilation 3x3 is not a power of 2');
    expect(check({ expr: '[fh, fw]', pow2: true, label: 'factor' }, { fh: 2, fw: 1.5 })).toBe('factor 2x1.5 is not a power of 2');
    expect(check({ attr: 'strides', oneOf: [2, 4], label: 'stride' }, { strides: [2, 3] })).toBe('stride 2x3 not in {2, 4}');
    expect(check({ attr: 'mode', oneOf: ['nearest', 'linear'] }, { mode: 'cubic' })).toBe('mode cubic not in {nearest, linear}');
    expect(check({ attr: 'ax', eq: [2, 3], label: 'axes' }, { ax: [1] })).toBe('axes [1] != [2, 3]');
    expect(check({ attr: 'ax', eq: [2, 3] }, { ax: [2, 3] })).toBeUndefined();
  });

  it('require uses its say template; when guards; unknown subjects fail', () => {
    const req: Constraint = { require: 'a <= b', say: 'H factor {a} > W factor {b}' };
    expect(check(req, { a: 2, b: 4 })).toBeUndefined();
    expect(check(req, { a: 4, b: 2 })).toBe('H factor 4 > W factor 2');
    expect(check(req, { a: undefined, b: 2 })).toMatch(/^cannot check H factor unknown > W factor 2/);
    const guarded: Constraint = { expr: 'f', pow2: true, when: "mode == 'nearest'" };
    expect(check(guarded, { f: 3, mode: 'linear' })).toBeUndefined();
    expect(check(guarded, { f: 3, mode: 'nearest' })).toMatch(/not a power of 2/);
    expect(check({ expr: 'c', max: 64, label: 'channels' }, { c: undefined })).toMatch(/channels is unknown/);
  });
});

describe('support tables', () => {
  it.each(MARCHES)('%s validates: expressions parse, names and sources resolve', (march) => {
    expect(validateTable(supportTable(march))).toEqual([]);
  });

  it.each(MARCHES)('%s only names operators the registry knows (or anyDomain ones)', (march) => {
    const t = supportTable(march);
    const unknown = Object.entries(t.ops).filter(([op, e]) => !e.anyDomain && !findOp('', op)).map(([op]) => op);
    expect(unknown).toEqual([]);
  });

  it.each(MARCHES)('%s cites a source for every BPU entry and constraint', (march) => {
    const t = supportTable(march);
    for (const [op, e] of Object.entries(t.ops)) {
      expect([op, e.source !== undefined]).toEqual([op, true]);
      for (const c of e.constraints ?? []) expect([op, c.source !== undefined]).toEqual([op, true]);
    }
    for (const [name, set] of Object.entries(t.sets)) for (const c of set) expect([name, c.source !== undefined]).toEqual([name, true]);
  });

  it('encodes the limits the issue names', () => {
    const x3 = supportTable('bernoulli2');
    const ultra = supportTable('bayes');
    const conv = [...x3.sets['conv-shape'], ...(x3.ops.Conv.constraints ?? [])];
    expect(conv.find((c) => c.attr === 'kernel')?.max).toBe(7);
    expect(conv.find((c) => c.expr === 'prod(kernel) * cin_per_group')?.max).toBe(32768);
    expect(conv.some((c) => c.pow2 === 'dilations')).toBe(true);
    expect(x3.ops.ConvTranspose.constraints?.find((c) => c.attr === 'strides')?.oneOf).toEqual([2, 4]);
    expect(x3.ops.ArgMax.constraints?.find((c) => c.label === 'channels')?.max).toBe(64);
    expect(x3.ops.Concat.constraints?.[0].max).toBe(2048);
    for (const op of ['Transpose', 'Gather', 'Sub']) expect(x3.ops[op].bpu).toBe(false);
    expect(x3.ops.Softmax.bpu).toBe('on-request');
    expect(ultra.ops.Conv.constraints?.find((c) => c.attr === 'kernel')?.max).toBe(31);
    expect(ultra.ops.Conv.constraints?.find((c) => c.attr === 'strides')?.max).toBe(256);
    expect(ultra.ops.MatMul.constraints?.find((c) => c.label === 'MxK')?.max).toBe(8192);
    expect(ultra.ops.Sigmoid.int16).toBe(true);
    expect(x3.ops.Sigmoid.int16).toBeUndefined();
  });

  it('reports what is wrong with a broken table', () => {
    const broken: SupportTable = {
      march: 'bernoulli2',
      about: [],
      sources: { s: 'somewhere' },
      sets: {},
      always: ['missing'],
      ops: {
        Conv: {
          bpu: true,
          source: 'nowhere',
          attrs: { group: 1 },
          vars: { later: 'earlier + 1', earlier: 'group' },
          use: ['nope'],
          constraints: [
            { expr: 'kernal', max: 7 },
            { expr: 'group +', max: 1 },
            { require: 'group == 1' },
            { expr: 'group' },
            { attr: 'group', expr: 'group', max: 2 },
            { expr: 'wat(group)', max: 1 },
          ],
        },
      },
    };
    const problems = validateTable(broken).join('\n');
    expect(problems).toMatch(/always: unknown set 'missing'/);
    expect(problems).toMatch(/unknown source 'nowhere'/);
    expect(problems).toMatch(/unknown set 'nope'/);
    expect(problems).toMatch(/var later "earlier \+ 1" uses 'earlier'/);
    expect(problems).toMatch(/uses 'kernal'/);
    expect(problems).toMatch(/unexpected end/);
    expect(problems).toMatch(/require takes no test and needs a say message/);
    expect(problems).toMatch(/no test/);
    expect(problems).toMatch(/exactly one of attr, expr, require, pow2/);
    expect(problems).toMatch(/unknown function wat\(\)/);
  });
});
