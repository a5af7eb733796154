/**
 * ONNX operator conformance: runs ONNX's own node tests (Debian libonnx-testdata) on an engine.
 *   npx ts-node compiler/test/conformance/run.ts [--engine reference|ort] [--filter REGEX]
 */
import { ReferenceEngine } from '../../src/runtime/reference';
import { formatSummary, readExpectations, runAll, EngineFactory } from './runner';
import { hasNodeTests, NODE_TEST_DIR } from './node-tests';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const engine = args.includes('--engine') ? args[args.indexOf('--engine') + 1] : 'reference';
  const filter = args.includes('--filter') ? new RegExp(args[args.indexOf('--filter') + 1]) : undefined;
  if (!hasNodeTests()) {
    console.error(`ONNX node tests not found at ${NODE_TEST_DIR} (apt-get install libonnx-testdata)`);
    process.exit(2);
  }
  let make: EngineFactory = (m) => new ReferenceEngine(m);
  if (engine === 'ort') {
    const { OrtEngine } = await import('../../src/runtime/ort');
    make = (m) => OrtEngine.create(m);
  }
  const summary = await runAll(make, filter, readExpectations());
  console.log(formatSummary(summary));
}

void main();
