/**
 * The small expression language of the operator support tables (support/*.json).
 *
 *   expr    := ternary
 *   ternary := or ('?' expr ':' expr)?
 *   or      := and ('||' and)*          and := equal ('&&' equal)*
 *   equal   := compare (('=='|'!=') compare)*
 *   compare := sum (('<'|'<='|'>'|'>=') sum)*
 *   sum     := product (('+'|'-') product)*
 *   product := unary (('*'|'/'|'%') unary)*
 *   unary   := ('!'|'-') unary | postfix
 *   postfix := primary ('[' expr ']')*
 *   primary := number | 'string' | name | name '(' args ')' | '(' expr ')' | '[' args ']'
 *
 * Values are numbers, strings, booleans, lists, or `undefined` ("unknown": an absent attribute
 * or a shape inference could not fix). Unknown is contagious (1 + unknown = unknown) and logic
 * is three-valued (false && unknown = false), so a constraint can tell "fails" from "cannot be
 * checked". Arithmetic and comparisons on lists work element-wise against a scalar or a list
 * of the same length; `==` on lists is whole-list equality. Indexes may be negative (from the end).
 */

export type Value = number | string | boolean | undefined | Value[];

export type Expr =
  | { k: 'lit'; v: Value }
  | { k: 'name'; name: string }
  | { k: 'call'; fn: string; args: Expr[] }
  | { k: 'list'; items: Expr[] }
  | { k: 'index'; of: Expr; at: Expr }
  | { k: 'unary'; op: '!' | '-'; x: Expr }
  | { k: 'binary'; op: string; a: Expr; b: Expr }
  | { k: 'cond'; c: Expr; t: Expr; f: Expr };

/** Names and functions an expression is evaluated against. */
export interface Scope {
  /** Value of a name; `undefined` for unknown. Throws for a name the scope does not define. */
  name(name: string): Value;
  /** Node-context functions (shape(i), isconst(i), …); undefined when `fn` is not one of them. */
  call?(fn: string, args: Value[]): Value | typeof NOT_A_FUNCTION;
}

export const NOT_A_FUNCTION = Symbol('not a function');

export class ExprError extends Error {}

// ---------------------------------------------------------------- parsing

type Tok = { t: 'num'; v: number } | { t: 'str'; v: string } | { t: 'id'; v: string } | { t: 'op'; v: string };

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '+', '-', '*', '/', '%', '!', '?', ':', '(', ')', '[', ']', ','];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
    } else if (/[0-9.]/.test(c)) {
      const m = /^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?/i.exec(src.slice(i));
      if (!m) throw new ExprError(`bad number at ${i} in "${src}"`);
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else if (c === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) throw new ExprError(`unterminated string in "${src}"`);
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
    } else {
      const op = OPS.find((o) => src.startsWith(o, i));
      if (!op) throw new ExprError(`unexpected '${c}' at ${i} in "${src}"`);
      out.push({ t: 'op', v: op });
      i += op.length;
    }
  }
  return out;
}

const cache = new Map<string, Expr>();

/** Parse (memoised: the tables' expressions are parsed once). Throws ExprError on bad syntax. */
export function parseExpr(src: string): Expr {
  const hit = cache.get(src);
  if (hit) return hit;
  const toks = tokenize(src);
  let p = 0;
  const peek = (v: string): boolean => p < toks.length && toks[p].t === 'op' && toks[p].v === v;
  const eat = (v: string): void => {
    if (!peek(v)) throw new ExprError(`expected '${v}' at token ${p} in "${src}"`);
    p++;
  };
  const binary = (ops: string[], next: () => Expr) => (): Expr => {
    let a = next();
    for (;;) {
      const op = ops.find(peek);
      if (!op) return a;
      p++;
      a = { k: 'binary', op, a, b: next() };
    }
  };
  const args = (close: string): Expr[] => {
    const xs: Expr[] = [];
    if (peek(close)) {
      p++;
      return xs;
    }
    for (;;) {
      xs.push(expr());
      if (peek(',')) {
        p++;
        continue;
      }
      eat(close);
      return xs;
    }
  };
  const primary = (): Expr => {
    const tk = toks[p++];
    if (!tk) throw new ExprError(`unexpected end of "${src}"`);
    if (tk.t === 'num' || tk.t === 'str') return { k: 'lit', v: tk.v };
    if (tk.t === 'id') {
      if (tk.v === 'true' || tk.v === 'false') return { k: 'lit', v: tk.v === 'true' };
      if (peek('(')) {
        p++;
        return { k: 'call', fn: tk.v, args: args(')') };
      }
      return { k: 'name', name: tk.v };
    }
    if (tk.v === '(') {
      const e = expr();
      eat(')');
      return e;
    }
    if (tk.v === '[') return { k: 'list', items: args(']') };
    throw new ExprError(`unexpected '${tk.v}' in "${src}"`);
  };
  const postfix = (): Expr => {
    let e = primary();
    while (peek('[')) {
      p++;
      const at = expr();
      eat(']');
      e = { k: 'index', of: e, at };
    }
    return e;
  };
  const unary = (): Expr => {
    if (peek('!') || peek('-')) {
      const op = toks[p++].v as '!' | '-';
      return { k: 'unary', op, x: unary() };
    }
    return postfix();
  };
  const product = binary(['*', '/', '%'], unary);
  const sum = binary(['+', '-'], product);
  const compare = binary(['<=', '>=', '<', '>'], sum);
  const equal = binary(['==', '!='], compare);
  const and = binary(['&&'], equal);
  const or = binary(['||'], and);
  function expr(): Expr {
    const c = or();
    if (!peek('?')) return c;
    p++;
    const t = expr();
    eat(':');
    return { k: 'cond', c, t, f: expr() };
  }
  const e = expr();
  if (p !== toks.length) throw new ExprError(`unexpected '${toks[p].t === 'op' ? toks[p].v : String((toks[p] as { v: unknown }).v)}' in "${src}"`);
  cache.set(src, e);
  return e;
}

/** Every name and function an expression refers to (for validating the tables). */
export function referencedNames(e: Expr, names = new Set<string>(), fns = new Set<string>()): { names: Set<string>; fns: Set<string> } {
  switch (e.k) {
    case 'name':
      names.add(e.name);
      break;
    case 'call':
      fns.add(e.fn);
      e.args.forEach((a) => referencedNames(a, names, fns));
      break;
    case 'list':
      e.items.forEach((a) => referencedNames(a, names, fns));
      break;
    case 'index':
      referencedNames(e.of, names, fns);
      referencedNames(e.at, names, fns);
      break;
    case 'unary':
      referencedNames(e.x, names, fns);
      break;
    case 'binary':
      referencedNames(e.a, names, fns);
      referencedNames(e.b, names, fns);
      break;
    case 'cond':
      referencedNames(e.c, names, fns);
      referencedNames(e.t, names, fns);
      referencedNames(e.f, names, fns);
      break;
    default:
      break;
  }
  return { names, fns };
}

// ---------------------------------------------------------------- evaluation

export function evaluate(src: string | Expr, scope: Scope): Value {
  return ev(typeof src === 'string' ? parseExpr(src) : src, scope);
}

function ev(e: Expr, s: Scope): Value {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'name':
      return s.name(e.name);
    case 'list':
      return e.items.map((x) => ev(x, s));
    case 'index': {
      const of = ev(e.of, s);
      const at = ev(e.at, s);
      if (!Array.isArray(of) || typeof at !== 'number') return undefined;
      const i = at < 0 ? of.length + at : at;
      return i >= 0 && i < of.length ? of[i] : undefined;
    }
    case 'unary': {
      const x = ev(e.x, s);
      if (e.op === '!') return typeof x === 'boolean' ? !x : undefined;
      return lift1(x, (v) => -v);
    }
    case 'cond': {
      const c = ev(e.c, s);
      if (typeof c !== 'boolean') return undefined;
      return c ? ev(e.t, s) : ev(e.f, s);
    }
    case 'binary':
      return binaryOp(e.op, e.a, e.b, s);
    case 'call': {
      const args = e.args.map((a) => ev(a, s));
      if (s.call) {
        const r = s.call(e.fn, args);
        if (r !== NOT_A_FUNCTION) return r;
      }
      const f = BUILTINS[e.fn];
      if (!f) throw new ExprError(`unknown function ${e.fn}()`);
      return f(args);
    }
    default:
      return undefined;
  }
}

function binaryOp(op: string, ea: Expr, eb: Expr, s: Scope): Value {
  if (op === '&&' || op === '||') {
    const a = ev(ea, s);
    if (op === '&&' && a === false) return false;
    if (op === '||' && a === true) return true;
    const b = ev(eb, s);
    if (op === '&&') return b === false ? false : a === true && b === true ? true : undefined;
    return b === true ? true : a === false && b === false ? false : undefined;
  }
  const a = ev(ea, s);
  const b = ev(eb, s);
  if (op === '==' || op === '!=') {
    if (a === undefined || b === undefined || containsUnknown(a) || containsUnknown(b)) return undefined;
    const eq = deepEqual(a, b);
    return op === '==' ? eq : !eq;
  }
  const f = ARITH[op];
  return lift2(a, b, f);
}

const ARITH: Record<string, (x: number, y: number) => number | boolean> = {
  '+': (x, y) => x + y,
  '-': (x, y) => x - y,
  '*': (x, y) => x * y,
  '/': (x, y) => x / y,
  '%': (x, y) => x % y,
  '<': (x, y) => x < y,
  '<=': (x, y) => x <= y,
  '>': (x, y) => x > y,
  '>=': (x, y) => x >= y,
};

function lift1(x: Value, f: (v: number) => number): Value {
  if (Array.isArray(x)) return x.map((v) => lift1(v, f));
  return typeof x === 'number' ? f(x) : undefined;
}

function lift2(a: Value, b: Value, f: (x: number, y: number) => number | boolean): Value {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length ? a.map((v, i) => lift2(v, b[i], f)) : undefined;
  if (Array.isArray(a)) return a.map((v) => lift2(v, b, f));
  if (Array.isArray(b)) return b.map((v) => lift2(a, v, f));
  return typeof a === 'number' && typeof b === 'number' ? f(a, b) : undefined;
}

export function containsUnknown(v: Value): boolean {
  return v === undefined || (Array.isArray(v) && v.some(containsUnknown));
}

export function deepEqual(a: Value, b: Value): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => deepEqual(v, b[i]));
  }
  return a === b;
}

const nums = (v: Value): number[] | undefined => {
  if (!Array.isArray(v)) return typeof v === 'number' ? [v] : undefined;
  return v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
};

/** Spread `max(a, b)` / `max(list)` arguments into numbers (undefined when any is unknown). */
const spread = (args: Value[]): number[] | undefined => {
  const out: number[] = [];
  for (const a of args) {
    const n = nums(a);
    if (!n) return undefined;
    out.push(...n);
  }
  return out;
};

/** Pure functions, usable in every table expression. */
export const BUILTINS: Record<string, (args: Value[]) => Value> = {
  /** number of elements of a list (rank of a shape) */
  rank: ([a]) => (Array.isArray(a) ? a.length : undefined),
  len: ([a]) => (Array.isArray(a) ? a.length : typeof a === 'string' ? a.length : undefined),
  prod: (args) => spread(args)?.reduce((p, q) => p * q, 1),
  sum: (args) => spread(args)?.reduce((p, q) => p + q, 0),
  max: (args) => {
    const n = spread(args);
    return n && n.length ? Math.max(...n) : undefined;
  },
  min: (args) => {
    const n = spread(args);
    return n && n.length ? Math.min(...n) : undefined;
  },
  floor: ([a]) => lift1(a, Math.floor),
  ceil: ([a]) => lift1(a, Math.ceil),
  /** `align(x, m)`: x rounded up to a multiple of m */
  align: ([a, m]) => (typeof m === 'number' ? lift1(a, (v) => Math.ceil(v / m) * m) : undefined),
  /** `slice(list, start, end?)`, negative indexes from the end (as in Python) */
  slice: ([a, s, e]) => (Array.isArray(a) && typeof s === 'number' && (e === undefined || typeof e === 'number') ? a.slice(s, e) : undefined),
  /** whether a value is known (an attribute present, a dim fixed) */
  defined: ([a]) => !containsUnknown(a),
  /** the first known argument */
  coalesce: (args) => args.find((a) => !containsUnknown(a)),
  includes: ([list, v]) => (Array.isArray(list) ? list.some((x) => deepEqual(x, v)) : undefined),
  /** true when every element of the list is one of the other arguments (false for an empty list) */
  all_in: ([list, ...vs]) => (Array.isArray(list) ? list.length > 0 && list.every((x) => vs.some((v) => deepEqual(x, v))) : undefined),
  /** axes normalised against a rank (negative → from the end) and sorted; every axis when the list is empty/absent */
  norm_axes: ([axes, rank]) => {
    if (typeof rank !== 'number') return undefined;
    if (axes === undefined || (Array.isArray(axes) && axes.length === 0)) return Array.from({ length: rank }, (_, i) => i);
    const n = nums(axes);
    return n ? [...new Set(n.map((a) => (a < 0 ? a + rank : a)))].sort((x, y) => x - y) : undefined;
  },
  /** number of positions where two shapes differ (right-aligned, missing leading dims count as 1) */
  ndiff: ([a, b]) => {
    const x = nums(a);
    const y = nums(b);
    if (!x || !y) return undefined;
    const r = Math.max(x.length, y.length);
    let d = 0;
    for (let i = 1; i <= r; i++) if ((x[x.length - i] ?? 1) !== (y[y.length - i] ?? 1)) d++;
    return d;
  },
};

/** An exact power of two (2^k for an integer k, so 0.5 and 1 count). */
export function isPow2(v: number): boolean {
  if (!(v > 0) || !Number.isFinite(v)) return false;
  const k = Math.round(Math.log2(v));
  return 2 ** k === v;
}

/** Values as messages show them: `9x9` for number lists (joinX), `[0, 2]` otherwise. */
export function formatValue(v: Value, joinX = false): string {
  if (v === undefined) return 'unknown';
  if (Array.isArray(v)) return joinX && v.length > 0 && v.every((x) => typeof x === 'number') ? v.join('x') : `[${v.map((x) => formatValue(x)).join(', ')}]`;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  return String(v);
}
