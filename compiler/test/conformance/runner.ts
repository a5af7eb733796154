import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../../src/errors';
import { Model } from '../../src/onnx/ir';
import { Tensor } from '../../src/onnx/tensor';
import { Engine } from '../../src/runtime/engine';
import { compareTensors, listNodeTests, loadNodeTest, NodeTest, ATOL, RTOL } from './node-tests';

export interface Expectations {
  /** test name → why it fails (each failure of the conformance run must be listed here) */
  failures: Record<string, string>;
  /** test name → looser tolerance and why the test needs it */
  tolerances: Record<string, { rtol: number; atol: number; why: string }>;
}

/** One JSON file per operator family, so each can be kept next to its work. */
export const EXPECTATIONS_DIR = path.join(__dirname, 'expectations');

export function readExpectations(): Expectations {
  const all: Expectations = { failures: {}, tolerances: {} };
  for (const f of fs.readdirSync(EXPECTATIONS_DIR).filter((x) => x.endsWith('.json')).sort()) {
    const e = JSON.parse(fs.readFileSync(path.join(EXPECTATIONS_DIR, f), 'utf8')) as Partial<Expectations>;
    Object.assign(all.failures, e.failures ?? {});
    Object.assign(all.tolerances, e.tolerances ?? {});
  }
  return all;
}

export interface TestResult {
  name: string;
  ops: string[];
  ok: boolean;
  reason?: string;
  /** outputs of the first data set (for engine-vs-engine comparison) */
  outputs?: Tensor[];
}

export type EngineFactory = (model: Model) => Promise<Engine> | Engine;

/** Run one node test on an engine; every data set must match. */
export async function runNodeTest(t: NodeTest, make: EngineFactory, exp?: Expectations): Promise<TestResult> {
  const tol = exp?.tolerances[t.name] ?? { rtol: RTOL, atol: ATOL };
  const res: TestResult = { name: t.name, ops: t.ops, ok: true };
  let engine: Engine | undefined;
  try {
    engine = await make(t.model);
    const inputs = t.model.graph.realInputs;
    for (const [si, set] of t.sets.entries()) {
      const feeds: Record<string, Tensor> = {};
      // test data lists inputs in graph-input order (optional trailing inputs may be absent)
      set.inputs.forEach((tensor, k) => (feeds[inputs[k].name] = asDeclared(tensor, inputs[k].type?.dtype)));
      const got = await engine.run(feeds);
      const outs = t.model.graph.outputs.map((o) => got[o.name]);
      if (si === 0) res.outputs = outs;
      for (const [k, want] of set.outputs.entries()) {
        const why = compareTensors(outs[k], asDeclared(want, outs[k]?.dtype), tol.rtol, tol.atol);
        if (why) return { ...res, ok: false, reason: `set ${si} output '${t.model.graph.outputs[k].name}': ${why}` };
      }
    }
  } catch (e) {
    const msg = e instanceof PtqError ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    return { ...res, ok: false, reason: msg.split('\n')[0] };
  } finally {
    await engine?.dispose();
  }
  return res;
}

/**
 * ONNX 1.12's test data stores bfloat16 tensors as their uint16 bit patterns (numpy has no
 * bfloat16): read such a tensor as the bfloat16 the model declares.
 */
function asDeclared(t: Tensor, dtype: string | undefined): Tensor {
  if (t.dtype === 'uint16' && dtype === 'bfloat16') return new Tensor('bfloat16', t.dims, t.data);
  return t;
}

export interface Summary {
  results: TestResult[];
  /** tests skipped because an op is not registered, by missing op */
  unregistered: Map<string, number>;
}

/** Run every node test whose ops are all registered. */
export async function runAll(make: EngineFactory, filter?: RegExp, exp?: Expectations): Promise<Summary> {
  const results: TestResult[] = [];
  const unregistered = new Map<string, number>();
  for (const name of listNodeTests()) {
    if (filter && !filter.test(name)) continue;
    let t: NodeTest;
    try {
      t = loadNodeTest(name);
    } catch (e) {
      results.push({ name, ops: [], ok: false, reason: `cannot load: ${(e as Error).message}` });
      continue;
    }
    if (!t.registered) {
      for (const op of t.missing) unregistered.set(op, (unregistered.get(op) ?? 0) + 1);
      continue;
    }
    if (t.sets.length === 0) {
      // sequence/optional test data we cannot read: not run, so not counted as passed
      unregistered.set('(non-tensor test data)', (unregistered.get('(non-tensor test data)') ?? 0) + 1);
      continue;
    }
    results.push(await runNodeTest(t, make, exp));
  }
  return { results, unregistered };
}

/** Per-op table and the closing `N passed, N failed` line. */
export function formatSummary(s: Summary): string {
  const byOp = new Map<string, { pass: number; fail: number }>();
  for (const r of s.results) {
    const op = r.ops.length === 1 ? r.ops[0] : r.ops.length ? `${r.ops.join('+')}` : '?';
    const e = byOp.get(op) ?? { pass: 0, fail: 0 };
    if (r.ok) e.pass++;
    else e.fail++;
    byOp.set(op, e);
  }
  const lines: string[] = [];
  for (const [op, e] of [...byOp].sort((a, b) => a[0].localeCompare(b[0]))) lines.push(`${op.padEnd(48)} ${String(e.pass).padStart(4)} passed ${String(e.fail).padStart(4)} failed`);
  const fails = s.results.filter((r) => !r.ok);
  if (fails.length) {
    lines.push('', 'failures:');
    for (const r of fails) lines.push(`  ${r.name}: ${r.reason}`);
  }
  const skipped = [...s.unregistered].sort((a, b) => a[0].localeCompare(b[0]));
  lines.push('', `tests not counted because an op is not registered (missing op: tests): ${skipped.map(([op, n]) => `${op}: ${n}`).join(', ')}`);
  const passed = s.results.length - fails.length;
  lines.push(`pass rate ${((100 * passed) / Math.max(1, s.results.length)).toFixed(2)} %`);
  lines.push(`${passed} passed, ${fails.length} failed`);
  return lines.join('\n');
}
