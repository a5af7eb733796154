import { BUILTINS, ExprError, parseExpr, referencedNames } from './expr';
import { GLOBAL_NAMES, NODE_FUNCTIONS } from './node-scope';
import bayesJson from './support/bayes.json';
import bernoulli2Json from './support/bernoulli2.json';

export type March = 'bernoulli2' | 'bayes';
export const MARCHES: readonly March[] = ['bernoulli2', 'bayes'];

/**
 * One declarative constraint. Its subject is one of `attr` (an attribute or var by name),
 * `expr` (an expression), `pow2` (shorthand: the named attribute/expression must be powers of
 * two) or `require` (a boolean expression that must hold; `say` gives the message). Tests on
 * a subject: `max`, `min` (numbers or expressions), `oneOf`, `eq` (whole-value equality),
 * `pow2: true`. List subjects are tested element by element (except `eq`). `when` guards the
 * constraint; `label` names the subject in messages; `say` replaces the generated message
 * (`{expr}` holes are evaluated); `source` names where the limit comes from (a key of the
 * table's `sources`).
 */
export interface Constraint {
  attr?: string;
  expr?: string;
  require?: string;
  pow2?: string | true;
  max?: number | string;
  min?: number | string;
  oneOf?: (number | string)[];
  eq?: number | string | boolean | (number | string)[];
  when?: string;
  label?: string;
  say?: string;
  source?: string;
}

/** A JSON default for an attribute the node may omit (null: no default, reads as unknown). */
export type AttrDefault = null | number | string | boolean | (number | string)[];

/** How one ONNX operator maps to the BPU of a march. */
export interface OpSupport {
  /** BPU operator type shown in the checker table (default: the ONNX op type). */
  type?: string;
  /** true: BPU when the constraints hold; false: always CPU; 'on-request': CPU unless run_on_bpu / node_info names it (then the constraints must hold). */
  bpu: boolean | 'on-request';
  /** Shown as the CPU reason (bpu false / on-request), or appended to a failed constraint. */
  why?: string;
  /** Also match this op type in any (custom) domain, e.g. HzPreprocess. */
  anyDomain?: boolean;
  source?: string;
  /** Attributes the expressions read, with their ONNX defaults. */
  attrs?: Record<string, AttrDefault>;
  /** Derived values, in order; a var may use attrs, earlier vars and the functions. */
  vars?: Record<string, string>;
  /** Named constraint sets of the table to apply. */
  use?: string[];
  constraints?: Constraint[];
  /** bayes: the op computes in int16 when node_info asks (true, or an expression). */
  int16?: boolean | string;
}

export interface SupportTable {
  march: March;
  /** The header: what the table is, how to read it, where its numbers come from. */
  about: string[];
  sources: Record<string, string>;
  sets: Record<string, Constraint[]>;
  /** Sets applied to every op placed on the BPU. */
  always: string[];
  ops: Record<string, OpSupport>;
}

/** The constraints that apply to an entry: `always` sets, then `use` sets, then its own. */
export function effectiveConstraints(table: SupportTable, entry: OpSupport): Constraint[] {
  const fromSets = [...table.always, ...(entry.use ?? [])].flatMap((s) => table.sets[s] ?? []);
  return [...fromSets, ...(entry.constraints ?? [])];
}

/** Expressions of a constraint, with the role each plays (for validation). */
function constraintExprs(c: Constraint): string[] {
  const xs: string[] = [];
  for (const k of ['attr', 'expr', 'require', 'when'] as const) if (typeof c[k] === 'string') xs.push(c[k] as string);
  if (typeof c.pow2 === 'string') xs.push(c.pow2);
  if (typeof c.max === 'string') xs.push(c.max);
  if (typeof c.min === 'string') xs.push(c.min);
  if (c.say) for (const m of c.say.matchAll(/\{([^{}]+)\}/g)) xs.push(m[1]);
  return xs;
}

/**
 * Everything wrong with a table (empty when it is sound): bad expressions, names that are
 * neither attrs nor earlier vars, unknown functions, sets or sources, malformed constraints.
 */
export function validateTable(table: SupportTable): string[] {
  const problems: string[] = [];
  const fns = new Set([...Object.keys(BUILTINS), ...Object.keys(NODE_FUNCTIONS)]);
  const sourceOk = (s: string | undefined, where: string): void => {
    if (s !== undefined && !(s in table.sources)) problems.push(`${where}: unknown source '${s}'`);
  };
  if (!MARCHES.includes(table.march)) problems.push(`unknown march '${table.march}'`);
  for (const s of table.always) if (!table.sets[s]) problems.push(`always: unknown set '${s}'`);
  for (const [op, e] of Object.entries(table.ops)) {
    const where = `${table.march} ${op}`;
    if (e.bpu !== true && e.bpu !== false && e.bpu !== 'on-request') problems.push(`${where}: bpu must be true, false or "on-request"`);
    sourceOk(e.source, where);
    for (const s of e.use ?? []) if (!table.sets[s]) problems.push(`${where}: unknown set '${s}'`);
    const known = new Set<string>([...GLOBAL_NAMES, ...Object.keys(e.attrs ?? {})]);
    const check = (src: string, what: string): void => {
      try {
        const refs = referencedNames(parseExpr(src));
        for (const n of refs.names) if (!known.has(n)) problems.push(`${where}: ${what} "${src}" uses '${n}', which is not an attr, an earlier var or opset`);
        for (const f of refs.fns) if (!fns.has(f)) problems.push(`${where}: ${what} "${src}" calls unknown function ${f}()`);
      } catch (err) {
        problems.push(`${where}: ${what}: ${err instanceof ExprError ? err.message : String(err)}`);
      }
    };
    for (const [name, src] of Object.entries(e.vars ?? {})) {
      check(src, `var ${name}`);
      known.add(name);
    }
    if (typeof e.int16 === 'string') check(e.int16, 'int16');
    if (e.bpu === false) continue;
    effectiveConstraints(table, e).forEach((c, i) => {
      const at = `constraint ${i + 1}`;
      sourceOk(c.source, `${where} ${at}`);
      const subjects = [c.attr, c.expr, c.require, typeof c.pow2 === 'string' ? c.pow2 : undefined].filter((s) => s !== undefined);
      if (subjects.length !== 1) problems.push(`${where} ${at}: needs exactly one of attr, expr, require, pow2 (a name)`);
      const tests = [c.max, c.min, c.oneOf, c.eq, c.pow2].filter((t) => t !== undefined).length;
      if (c.require !== undefined && (tests > 0 || !c.say)) problems.push(`${where} ${at}: require takes no test and needs a say message`);
      if (c.require === undefined && tests === 0) problems.push(`${where} ${at}: no test (max, min, oneOf, eq, pow2)`);
      if (c.attr !== undefined && !known.has(c.attr)) problems.push(`${where} ${at}: attr '${c.attr}' is not declared in attrs or vars`);
      for (const src of constraintExprs(c)) check(src, at);
    });
  }
  return problems;
}

function load(json: unknown, march: March): SupportTable {
  const t = json as SupportTable;
  const problems = validateTable(t);
  if (t.march !== march) problems.unshift(`support/${march}.json declares march '${t.march}'`);
  if (problems.length) throw new Error(`operator support table ${march} is invalid:\n  ${problems.join('\n  ')}`);
  return t;
}

const tables = new Map<March, SupportTable>();

/** The operator support table of a march (validated once). */
export function supportTable(march: March): SupportTable {
  let t = tables.get(march);
  if (!t) {
    t = load(march === 'bernoulli2' ? bernoulli2Json : bayesJson, march);
    tables.set(march, t);
  }
  return t;
}

/** The entry for an op type in a domain ('' / ai.onnx: the ONNX ops; others only match `anyDomain` entries). */
export function findSupport(table: SupportTable, domain: string, opType: string): OpSupport | undefined {
  const e = Object.prototype.hasOwnProperty.call(table.ops, opType) ? table.ops[opType] : undefined;
  if (!e) return undefined;
  const onnx = domain === '' || domain === 'ai.onnx';
  return onnx || e.anyDomain ? e : undefined;
}
