import * as fs from 'fs';
import * as path from 'path';
import { OrtEngine } from '../../src/runtime/ort';
import { ReferenceEngine } from '../../src/runtime/reference';
import { compareTensors, hasNodeTests, listNodeTests, loadNodeTest, NodeTest, ATOL, RTOL } from './node-tests';
import { Expectations, readExpectations, runNodeTest, TestResult } from './runner';

/**
 * "Engines agree": ONNX's node tests on onnxruntime too. onnxruntime must pass every test
 * except those listed in ort-expectations.json, and wherever both engines pass, the
 * reference engine's outputs must match onnxruntime's within the ONNX tolerances.
 */
const ORT_EXPECTATIONS = path.join(__dirname, 'ort-expectations.json');

function readOrtExpectations(): Expectations {
  const e = JSON.parse(fs.readFileSync(ORT_EXPECTATIONS, 'utf8')) as Partial<Expectations>;
  return { failures: e.failures ?? {}, tolerances: e.tolerances ?? {} };
}

const maybe = hasNodeTests() ? describe : describe.skip;

maybe('ONNX node tests on onnxruntime', () => {
  jest.setTimeout(600_000);

  const tests: NodeTest[] = [];
  const ort = new Map<string, TestResult>();
  const ref = new Map<string, TestResult>();
  const refExp = readExpectations();
  const ortExp = readOrtExpectations();

  beforeAll(async () => {
    for (const name of listNodeTests()) {
      const t = loadNodeTest(name);
      tests.push(t);
      ort.set(name, await runNodeTest(t, (m) => OrtEngine.create(m, { source: name }), { failures: {}, tolerances: { ...refExp.tolerances, ...ortExp.tolerances } }));
      // the reference engine runs whatever our registry can run today
      if (t.registered) ref.set(name, await runNodeTest(t, (m) => new ReferenceEngine(m), refExp));
    }
  });

  it('onnxruntime passes every test but the listed ones (and the list is not stale)', () => {
    const failed = [...ort.values()].filter((r) => !r.ok);
    const unexpected = failed.filter((r) => !(r.name in ortExp.failures)).map((r) => `${r.name}: ${r.reason}`);
    const fixed = [...ort.values()].filter((r) => r.ok && r.name in ortExp.failures).map((r) => r.name);
    const unknown = Object.keys(ortExp.failures).filter((n) => !ort.has(n));
    expect(unexpected).toEqual([]);
    expect(fixed).toEqual([]);
    expect(unknown).toEqual([]);
    expect(ort.size).toBeGreaterThan(900);
  });

  it('onnxruntime errors are one-line PtqErrors naming the model', () => {
    for (const r of ort.values()) {
      if (r.ok || !/^onnxruntime /.test(r.reason ?? '')) continue;
      expect(r.reason).toContain(`'${r.name}'`);
      expect(r.reason).not.toMatch(/\n/);
      expect(r.reason).not.toMatch(/onnxruntime_src/);
    }
  });

  it('the reference engine agrees with onnxruntime wherever both pass', () => {
    let compared = 0;
    const disagree: string[] = [];
    for (const t of tests) {
      const a = ref.get(t.name);
      const b = ort.get(t.name);
      if (!a?.ok || !b?.ok || !a.outputs || !b.outputs) continue;
      const tol = refExp.tolerances[t.name] ?? ortExp.tolerances[t.name] ?? { rtol: RTOL, atol: ATOL };
      compared++;
      b.outputs.forEach((want, k) => {
        const why = compareTensors(a.outputs?.[k], want, tol.rtol, tol.atol);
        if (why) disagree.push(`${t.name} output ${k}: reference vs onnxruntime: ${why}`);
      });
    }
    expect(disagree).toEqual([]);
    // counts grow as operator modules land; with none registered there is nothing to compare
    if (ref.size > 0 && [...ref.values()].some((r) => r.ok && r.outputs)) expect(compared).toBeGreaterThan(0);
  });
});
