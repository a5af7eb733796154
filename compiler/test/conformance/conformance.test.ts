import { ReferenceEngine } from '../../src/runtime/reference';
import { hasNodeTests } from './node-tests';
import { readExpectations, runAll } from './runner';

/**
 * ONNX's own operator tests on the ReferenceEngine. Every failure must be listed (with its
 * reason) in expectations.json, and a listed test that now passes must be removed from it.
 */
const maybe = hasNodeTests() ? describe : describe.skip;

maybe('ONNX node tests on the ReferenceEngine', () => {
  jest.setTimeout(600_000);
  it('pass, except the listed failures, at >= 97 %', async () => {
    const exp = readExpectations();
    const { results } = await runAll((m) => new ReferenceEngine(m), undefined, exp);
    const failed = results.filter((r) => !r.ok);
    const unexpected = failed.filter((r) => !(r.name in exp.failures)).map((r) => `${r.name}: ${r.reason}`);
    const fixed = results.filter((r) => r.ok && r.name in exp.failures).map((r) => r.name);
    expect(unexpected).toEqual([]);
    expect(fixed).toEqual([]);
    expect(results.length).toBeGreaterThan(0);
    expect((results.length - failed.length) / results.length).toBeGreaterThanOrEqual(0.97);
  });
});
