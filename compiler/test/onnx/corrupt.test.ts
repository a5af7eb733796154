import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PtqError } from '../../src/errors';
import { encodeModel } from '../../src/onnx/encode';
import { Graph, Model, Node, ValueInfo } from '../../src/onnx/ir';
import { decodeAndValidate, loadAndValidate } from '../../src/onnx/load';
import { tensorFrom } from '../../src/onnx/tensor';
import { writeNpy } from '../../src/preprocess/npy';
import { expectUserError, runPtq } from '../cli/run-cli';
import { hasNodeTests, NODE_TEST_DIR } from '../conformance/node-tests';

/**
 * "Corrupt inputs": truncated files, random bytes and broken graphs never hang and never
 * leak a raw protobuf error or a stack: decodeAndValidate throws a one-line PtqError, and
 * the CLI prints one `ERROR …` line and exits 2.
 */
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'onnx');
const REAL = fs.readFileSync(path.join(FIXTURES, 'bigger_cnn.onnx'));

/** The PtqError `f` throws; anything else (or a multi-line message, or no error) fails. */
function ptqErrorOf(f: () => unknown): PtqError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  // plain checks, not expect(): these run tens of thousands of times
  if (!(err instanceof PtqError)) throw new Error(`expected a PtqError, got ${err === undefined ? 'no error' : String((err as Error).stack ?? err)}`);
  const line = err.oneLine();
  if (!line.startsWith('ERROR ') || line.includes('\n') || /\n\s+at /.test(err.message)) throw new Error(`not a one-line error: ${line}`);
  return err;
}

/** xorshift32: the same "random" files on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

function vi(name: string, shape: (number | string)[] = [1, 4]): ValueInfo {
  return { name, type: { dtype: 'float32', shape } };
}

function model(nodes: Node[], outputs = ['y'], opset = 13): Model {
  return new Model(new Graph({ name: 'broken', nodes, inputs: [vi('x')], outputs: outputs.map((o) => vi(o)) }), {
    opsetImports: [{ domain: '', version: opset }],
  });
}

/** Graphs that decode fine but are not valid models, with the error each must give. */
function brokenModels(): { name: string; model: Model; code: string; text: RegExp }[] {
  const relu = (name: string, i: string, o: string): Node => new Node({ opType: 'Relu', name, inputs: [i], outputs: [o] });
  const ifNode = new Node({
    opType: 'If',
    name: 'branch',
    inputs: ['cond'],
    outputs: ['y'],
    attrs: {
      then_branch: { type: 'graph', value: new Graph({ name: 'then', nodes: [relu('inner', 'ghost', 't')], outputs: [vi('t')] }) },
      else_branch: { type: 'graph', value: new Graph({ name: 'else', nodes: [relu('inner2', 'x', 'e')], outputs: [vi('e')] }) },
    },
  });
  return [
    { name: 'missing_value', model: model([relu('relu1', 'nope', 'y')]), code: 'E_MODEL_GRAPH', text: /node 'relu1'.*'nope'/ },
    {
      name: 'cycle',
      model: model([new Node({ opType: 'Add', name: 'add1', inputs: ['x', 'd'], outputs: ['c'] }), relu('relu2', 'c', 'd'), relu('relu3', 'c', 'y')]),
      code: 'E_MODEL_CYCLE',
      text: /cycle through node '(add1|relu2)'/,
    },
    { name: 'duplicate_producer', model: model([relu('first', 'x', 'y'), relu('second', 'x', 'y')]), code: 'E_MODEL_GRAPH', text: /'y' is produced twice.*'second'/ },
    { name: 'output_not_produced', model: model([relu('r', 'x', 'z')], ['y']), code: 'E_MODEL_GRAPH', text: /graph output 'y'/ },
    {
      name: 'domain_not_imported',
      model: model([new Node({ opType: 'Custom', name: 'c1', domain: 'com.example', inputs: ['x'], outputs: ['y'] })]),
      code: 'E_MODEL_OPSET',
      text: /node 'c1'.*'com\.example'/,
    },
    {
      name: 'subgraph_missing_value',
      model: (() => {
        const m = model([relu('pre', 'x', 'cond'), ifNode]);
        return m;
      })(),
      code: 'E_MODEL_GRAPH',
      text: /\(in a subgraph of node 'branch'\): node 'inner' \(Relu\) reads value 'ghost'/,
    },
    { name: 'no_outputs', model: model([relu('r', 'x', 'y')], []), code: 'E_MODEL_DECODE', text: /no outputs/ },
  ];
}

describe('corrupt models through decodeAndValidate', () => {
  jest.setTimeout(120_000);

  it('every truncation point of a real model gives a one-line PtqError', () => {
    const t0 = Date.now();
    const seen = new Set<string>();
    for (let n = 0; n < REAL.length; n++) {
      const e = ptqErrorOf(() => decodeAndValidate(REAL.subarray(0, n), 'cut.onnx'));
      if (e.code !== 'E_MODEL_DECODE' || !e.message.includes("'cut.onnx'")) throw new Error(`cut at ${n}: ${e.code} ${e.message}`);
      seen.add(e.message.replace(/\d+/g, 'N'));
    }
    expect(REAL.length).toBeGreaterThan(20_000);
    expect(Date.now() - t0).toBeLessThan(60_000);
    // a cut inside a field, a file without its graph, a file cut right after the graph
    expect([...seen].sort()).toEqual([
      "'cut.onnx' is not a valid ONNX model (it imports no opset; the file may be truncated)",
      "'cut.onnx' is not a valid ONNX model (it is cut short: a field at byte N needs N more byte(s), the data ends at N)",
      "'cut.onnx' is not a valid ONNX model (no graph)",
    ]);
    // the whole file is fine
    expect(decodeAndValidate(REAL, 'whole.onnx').graph.nodes.length).toBe(9);
  });

  it('every truncation of node-test models with subgraphs, strings and many attributes does too', () => {
    if (!hasNodeTests()) return;
    for (const name of ['test_if', 'test_loop11', 'test_lstm_with_peepholes', 'test_strnormalizer_nostopwords_nochangecase', 'test_resize_downsample_sizes_cubic']) {
      const bytes = fs.readFileSync(path.join(NODE_TEST_DIR, name, 'model.onnx'));
      for (let n = 0; n < bytes.length; n++) ptqErrorOf(() => decodeAndValidate(bytes.subarray(0, n), name));
      decodeAndValidate(bytes, name);
    }
  });

  it('random bytes (seeded) give one-line PtqErrors', () => {
    const next = prng(20240611);
    const t0 = Date.now();
    for (let k = 0; k < 3000; k++) {
      const bytes = randomBytes(next, next() % 2048);
      ptqErrorOf(() => decodeAndValidate(bytes, `random${k}.bin`));
    }
    // plausible starts: a real header followed by noise
    for (let k = 0; k < 1000; k++) {
      const cut = next() % 200;
      const noise = randomBytes(next, next() % 512);
      const bytes = Buffer.concat([REAL.subarray(0, cut), noise]);
      ptqErrorOf(() => decodeAndValidate(bytes, `noisy${k}.onnx`));
    }
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('bit flips in a real model decode to a valid model or give a PtqError, never a raw error', () => {
    const next = prng(7);
    let errors = 0;
    for (let k = 0; k < 3000; k++) {
      const bytes = Buffer.from(REAL);
      for (let f = 0; f < 1 + (k % 4); f++) bytes[next() % bytes.length] ^= 1 << (next() % 8);
      try {
        decodeAndValidate(bytes, 'flipped.onnx');
      } catch (e) {
        if (!(e instanceof PtqError)) throw new Error(`flip ${k}: raw ${(e as Error).stack}`);
        expect(e.oneLine()).not.toMatch(/\n/);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });

  it.each(brokenModels().map((b) => [b.name, b] as const))('%s gives a PtqError naming the node', (_n, b) => {
    const e = ptqErrorOf(() => decodeAndValidate(encodeModel(b.model), `${b.name}.onnx`));
    expect(e.code).toBe(b.code);
    expect(e.message).toMatch(b.text);
    expect(e.message).toContain(`'${b.name}.onnx'`);
  });

  it('unreadable paths give E_FILE', () => {
    expect(ptqErrorOf(() => loadAndValidate('/nonexistent/model.onnx')).code).toBe('E_FILE');
    expect(ptqErrorOf(() => loadAndValidate(FIXTURES)).code).toBe('E_FILE');
  });
});

describe('corrupt models through the CLI', () => {
  jest.setTimeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-corrupt-'));
  const input = path.join(dir, 'x.npy');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    writeNpy(input, tensorFrom('float32', [1, 4], [1, -2, 3, -4]));
  });

  const infer = (modelFile: string, out: string): ReturnType<typeof runPtq> =>
    runPtq(['exec', 'infer', '--model-file', modelFile, '--input-file', input, '--output-dir', out], { timeoutMs: 60_000 });

  it('truncated, random, empty and broken models: exit 2, one ERROR line, no stack, nothing written', () => {
    const files: [string, Uint8Array, RegExp][] = [];
    for (const n of [0, 1, 9, 100, 1000, 10_000, REAL.length - 600, REAL.length - 1]) files.push([`cut_${n}.onnx`, REAL.subarray(0, n), /not a valid ONNX model/]);
    const next = prng(99);
    for (let k = 0; k < 3; k++) files.push([`random_${k}.onnx`, randomBytes(next, 64 + (next() % 4000)), /not a valid ONNX model/]);
    for (const b of brokenModels()) files.push([`${b.name}.onnx`, encodeModel(b.model), b.text]);
    for (const [name, bytes, text] of files) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, bytes);
      const out = path.join(dir, `out_${name}`);
      const r = infer(file, out);
      expectUserError(r, text);
      expect(r.stderr).toContain(name);
      expect(r.stdout).toBe('');
      expect(fs.existsSync(out)).toBe(false);
    }
  });

  it('a missing model file or a directory: exit 2', () => {
    expectUserError(infer(path.join(dir, 'nope.onnx'), path.join(dir, 'o1')), /cannot read model file .*nope\.onnx.*ENOENT/);
    expectUserError(infer(dir, path.join(dir, 'o2')), /EISDIR/);
  });
});
