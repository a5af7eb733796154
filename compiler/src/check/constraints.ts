import { Scope, Value, containsUnknown, deepEqual, evaluate, formatValue, isPow2 } from './expr';
import { Constraint, OpSupport, SupportTable, effectiveConstraints } from './table';

/** A constraint a node does not meet: the message names the subject and its actual value. */
export interface Failure {
  message: string;
  /** key of the table's `sources` the limit comes from */
  source?: string;
  /** the constraint could not be evaluated (an unknown shape or value) rather than failed */
  unknown?: boolean;
}

/** The subject expression of a constraint and the name messages give it. */
function subjectOf(c: Constraint): { src: string; label: string } {
  const src = (c.require ?? c.attr ?? c.expr ?? (typeof c.pow2 === 'string' ? c.pow2 : '')) as string;
  return { src, label: c.label ?? src };
}

/** `say` with its `{expr}` holes evaluated. */
function interpolate(say: string, scope: Scope): string {
  return say.replace(/\{([^{}]+)\}/g, (_, e: string) => formatValue(evaluate(e, scope)));
}

function limitOf(limit: number | string, scope: Scope): Value {
  return typeof limit === 'number' ? limit : evaluate(limit, scope);
}

const elements = (v: Value): Value[] => (Array.isArray(v) ? v : [v]);

/** The limit repeated to the subject's shape, so `kernel 9x9 > 7x7` reads naturally. */
const shaped = (v: Value, limit: Value): string => formatValue(Array.isArray(v) ? v.map(() => limit) : limit, true);

/**
 * Check one constraint in a node's scope: undefined when it holds (or its `when` is false),
 * else the failure. A subject that cannot be evaluated (unknown shape or value) fails: the
 * BPU placement is only claimed when it can be shown to hold.
 */
export function checkConstraint(c: Constraint, scope: Scope): Failure | undefined {
  if (c.when !== undefined && evaluate(c.when, scope) === false) return undefined;
  const { src, label } = subjectOf(c);
  const fail = (generated: string): Failure => ({ message: c.say ? interpolate(c.say, scope) : generated, source: c.source });
  const v = evaluate(src, scope);
  if (c.require !== undefined) {
    if (v === true) return undefined;
    if (v === false) return fail('');
    return { message: `cannot check ${interpolate(c.say ?? src, scope)}: a shape or value is unknown`, source: c.source, unknown: true };
  }
  if (containsUnknown(v)) return { message: `${label} is unknown (shape inference could not fix it)`, source: c.source, unknown: true };
  if (c.max !== undefined) {
    const lim = limitOf(c.max, scope);
    if (typeof lim !== 'number') return { message: `cannot check the limit of ${label}`, source: c.source, unknown: true };
    if (elements(v).some((x) => typeof x !== 'number' || x > lim)) return fail(`${label} ${formatValue(v, true)} > ${shaped(v, lim)}`);
  }
  if (c.min !== undefined) {
    const lim = limitOf(c.min, scope);
    if (typeof lim !== 'number') return { message: `cannot check the limit of ${label}`, source: c.source, unknown: true };
    if (elements(v).some((x) => typeof x !== 'number' || x < lim)) return fail(`${label} ${formatValue(v, true)} < ${shaped(v, lim)}`);
  }
  if (c.oneOf !== undefined) {
    const allowed = c.oneOf;
    if (elements(v).some((x) => !allowed.some((a) => deepEqual(a, x)))) return fail(`${label} ${formatValue(v, true)} not in {${allowed.map((a) => formatValue(a)).join(', ')}}`);
  }
  if (c.pow2 !== undefined) {
    if (elements(v).some((x) => typeof x !== 'number' || !isPow2(x))) return fail(`${label} ${formatValue(v, true)} is not a power of 2`);
  }
  if (c.eq !== undefined && !deepEqual(v, c.eq as Value)) return fail(`${label} ${formatValue(v)} != ${formatValue(c.eq as Value)}`);
  return undefined;
}

/**
 * Every constraint of an entry (its `always`/`use` sets, then its own) the node fails. When
 * some fail outright, the ones that could not be evaluated are left out: they are usually
 * consequences of the first (a rank-1 input has no channel dim to check).
 */
export function checkEntry(table: SupportTable, entry: OpSupport, scope: Scope): Failure[] {
  const out: Failure[] = [];
  for (const c of effectiveConstraints(table, entry)) {
    const f = checkConstraint(c, scope);
    if (f) out.push(f);
  }
  const definite = out.filter((f) => !f.unknown);
  return definite.length ? definite : out;
}

/** Whether the entry computes in int16 for this node (bayes node_info). */
export function supportsInt16(entry: OpSupport, scope: Scope): boolean {
  if (typeof entry.int16 === 'string') return evaluate(entry.int16, scope) === true;
  return entry.int16 === true;
}
