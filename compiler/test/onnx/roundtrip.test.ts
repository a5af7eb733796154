import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PtqError } from '../../src/errors';
import { decodeModel, loadModel } from '../../src/onnx/decode';
import { encodeModel } from '../../src/onnx/encode';
import { Model, Node } from '../../src/onnx/ir';
import { Tensor, tensorFrom } from '../../src/onnx/tensor';
import { OrtEngine } from '../../src/runtime/ort';
import { compareTensors, hasNodeTests, listNodeTests, loadNodeTest, NODE_TEST_DIR } from '../conformance/node-tests';
import { diffModels, diffTensors } from './ir-equal';

/**
 * "Round trip": every ONNX node-test model and every fixture survives decode → encode →
 * decode unchanged, the re-encoded bytes pass onnx.checker (wherever the original does) and
 * give in onnxruntime exactly the outputs of the original file.
 */
const PYTHON = '/usr/bin/python3';
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'onnx');
const CHECK_SCRIPT = path.join(__dirname, 'check_models.py');
const hasPython = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

interface Case {
  name: string;
  original: string;
  reencoded: string;
  m1: Model;
  diffs: string[];
  /** encode(decode(encode(x))) === encode(x) */
  stable: boolean;
  feeds?: Record<string, Tensor>[];
}

function fixtureFiles(): string[] {
  return fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.onnx') && f !== 'external_data.onnx').sort();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** Seeded inputs for a model whose inputs are typed (symbolic dims become 2). */
function syntheticFeeds(m: Model): Record<string, Tensor> {
  let s = 12345;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const feeds: Record<string, Tensor> = {};
  for (const v of m.graph.realInputs) {
    const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 2));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[v.name] = tensorFrom(v.type?.dtype ?? 'float32', dims, Array.from({ length: n }, rnd));
  }
  return feeds;
}

function roundTrip(name: string, original: string, dir: string): Case {
  const bytes0 = fs.readFileSync(original);
  const m1 = decodeModel(bytes0, name);
  const bytes1 = encodeModel(m1);
  const m2 = decodeModel(bytes1, `${name} (re-encoded)`);
  const reencoded = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(reencoded, bytes1);
  return { name, original, reencoded, m1, diffs: diffModels(m1, m2), stable: sameBytes(encodeModel(m2), bytes1) };
}

const maybe = hasNodeTests() ? describe : describe.skip;

maybe('ONNX round trip', () => {
  jest.setTimeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-roundtrip-'));
  const cases: Case[] = [];
  const decodeErrors: string[] = [];
  let checker: Record<string, string | null> = {};

  beforeAll(() => {
    for (const name of listNodeTests()) {
      try {
        const c = roundTrip(name, path.join(NODE_TEST_DIR, name, 'model.onnx'), dir);
        const t = loadNodeTest(name);
        c.feeds = t.sets.slice(0, 1).map((set) => {
          const feeds: Record<string, Tensor> = {};
          set.inputs.forEach((tensor, k) => (feeds[t.model.graph.realInputs[k].name] = tensor));
          return feeds;
        });
        cases.push(c);
      } catch (e) {
        decodeErrors.push(`${name}: ${(e as Error).message}`);
      }
    }
    for (const f of fixtureFiles()) {
      const c = roundTrip(`fixture_${f.replace(/\.onnx$/, '')}`, path.join(FIXTURES, f), dir);
      c.feeds = [syntheticFeeds(c.m1)];
      cases.push(c);
    }
    if (hasPython) {
      // ONE Python process checks the originals and the re-encoded files together
      const r = spawnSync(PYTHON, [CHECK_SCRIPT, dir, NODE_TEST_DIR, FIXTURES], { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`check_models.py failed: ${r.stderr}`);
      checker = JSON.parse(r.stdout) as Record<string, string | null>;
    }
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('decodes every node-test model and fixture', () => {
    expect(decodeErrors).toEqual([]);
    expect(cases.length).toBe(listNodeTests().length + fixtureFiles().length);
    expect(cases.length).toBeGreaterThanOrEqual(932);
  });

  it('decode → encode → decode yields an equal IR, and re-encoding is byte-stable', () => {
    const bad = cases.filter((c) => c.diffs.length).map((c) => `${c.name}: ${c.diffs.slice(0, 3).join('; ')}`);
    expect(bad).toEqual([]);
    expect(cases.filter((c) => !c.stable).map((c) => c.name)).toEqual([]);
  });

  (hasPython ? it : it.skip)('re-encoded models pass onnx.checker (full_check) wherever the original does', () => {
    const bad: string[] = [];
    let checked = 0;
    for (const c of cases) {
      expect(c.original in checker).toBe(true);
      expect(c.reencoded in checker).toBe(true);
      if (checker[c.original] !== null) continue; // newer IR than this onnx knows, etc.
      checked++;
      if (checker[c.reencoded] !== null) bad.push(`${c.name}: ${checker[c.reencoded]}`);
    }
    expect(bad).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(932);
  });

  it('re-encoded models load in onnxruntime and give the outputs of the original file', async () => {
    const bad: string[] = [];
    let ran = 0;
    for (const c of cases) {
      let orig: OrtEngine | undefined;
      let re: OrtEngine | undefined;
      try {
        try {
          orig = await OrtEngine.create(c.m1, { bytes: fs.readFileSync(c.original), source: c.name });
        } catch {
          continue; // onnxruntime cannot load the original either (see ort-expectations.json)
        }
        try {
          re = await OrtEngine.create(c.m1, { bytes: fs.readFileSync(c.reencoded), source: `${c.name} (re-encoded)` });
        } catch (e) {
          bad.push(`${c.name}: original loads, re-encoded does not: ${(e as Error).message}`);
          continue;
        }
        for (const feeds of c.feeds ?? []) {
          let want: Record<string, Tensor>;
          let again: Record<string, Tensor>;
          try {
            want = await orig.run(feeds);
            again = await orig.run(feeds);
          } catch {
            continue;
          }
          // random ops (Bernoulli, RandomNormal, training Dropout) differ run to run: nothing to compare
          if (orig.outputNames.some((o) => compareTensors(again[o], want[o], 0, 0))) continue;
          const got = await re.run(feeds);
          ran++;
          for (const o of orig.outputNames) {
            const why = compareTensors(got[o], want[o], 0, 0);
            if (why) bad.push(`${c.name} output '${o}': ${why}`);
          }
        }
      } finally {
        await orig?.dispose();
        await re?.dispose();
      }
    }
    expect(bad).toEqual([]);
    expect(ran).toBeGreaterThan(850);
  });

  it('the equality helper notices differences (so the round trip can fail)', () => {
    const c = cases.find((x) => x.name === 'fixture_bigger_cnn') as Case;
    const copy = decodeModel(fs.readFileSync(c.reencoded));
    expect(diffModels(c.m1, copy)).toEqual([]);
    copy.graph.nodes[0].setAttr('pads', { type: 'ints', value: [1, 1, 1, 2] });
    copy.graph.inputs[0].type = { dtype: 'float32', shape: ['N', 3, 16, 16] };
    const w = copy.graph.initializers.get('c1.w') as Tensor;
    const changed = new Tensor('float32', w.dims, Float32Array.from(w.array as Float32Array));
    (changed.array as Float32Array)[5] = -0 === (changed.array as Float32Array)[5] ? 0 : -0;
    copy.graph.initializers.set('c1.w', changed);
    copy.opsetImports = [{ domain: '', version: 12 }];
    copy.graph.nodes.push(new Node({ opType: 'Identity', inputs: ['logits'], outputs: ['z'] }));
    const d = diffModels(c.m1, copy).join('\n');
    expect(d).toMatch(/pads/);
    expect(d).toMatch(/inputs\[0\]\(x\)/);
    expect(d).toMatch(/initializers\['c1\.w'\]: byte/);
    expect(d).toMatch(/opsetImports/);
    expect(d).toMatch(/nodes\.length/);
    expect(diffTensors(tensorFrom('float32', [1], [NaN]), tensorFrom('float32', [1], [NaN]))).toBeUndefined();
    expect(diffTensors(tensorFrom('float32', [1], [0]), tensorFrom('float32', [1], [-0]))).toMatch(/byte/);
  });
});

describe('fixtures: versions, constants, symbolic dims, value_info, external data', () => {
  const load = (f: string): Model => loadModel(path.join(FIXTURES, f));

  it.each([
    [3, 7], [3, 8], [4, 9], [5, 10], [6, 11], [7, 12], [7, 13], [7, 14], [8, 15], [8, 16], [8, 17], [9, 18], [9, 19], [9, 20], [10, 21],
  ])('IR %i / opset %i: header, inputs and initializers decode as written', (ir, opset) => {
    const m = load(`ir${ir}_opset${opset}.onnx`);
    expect(m.irVersion).toBe(ir);
    expect(m.opset('')).toBe(opset);
    expect(m.opset('ai.onnx')).toBe(opset);
    expect(m.graph.realInputs.map((v) => v.name)).toEqual(['x']);
    // before IR 4 initializers are listed as graph inputs as well
    expect(m.graph.inputs.length).toBe(ir < 4 ? 6 : 1);
    expect([...m.graph.initializers.keys()]).toEqual(['conv.w', 'conv.b', 'bias', 'fc.w', 'fc.b']);
    expect(m.graph.inputs[0].type).toEqual({ dtype: 'float32', shape: ['N', 3, 4, 4] });
    expect(m.graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Add', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Softmax']);
    expect(diffModels(m, decodeModel(encodeModel(m)))).toEqual([]);
  });

  it('keeps weights held in Constant nodes (typed fields and value_float/value_ints)', async () => {
    const m = load('constant_weights.onnx');
    const w = m.graph.nodes[0].tensor('value') as Tensor;
    expect(w.dtype).toBe('float32');
    expect(w.dims).toEqual([2, 3]);
    expect(m.graph.nodes[1].tensor('value')?.toNumbers()).toEqual([1, 9]);
    expect(m.graph.nodes[2].float('value_float')).toBe(0.5);
    expect(m.graph.nodes[3].ints('value_ints')).toEqual([1]);
    const back = decodeModel(encodeModel(m));
    expect(diffModels(m, back)).toEqual([]);
    // the weights still compute the same thing: y = reshape(x · w, [1, 9]) · 0.5, s = sum(y)
    const e = await OrtEngine.create(back);
    const x = tensorFrom('float32', [3, 2], [1, 2, 3, 4, 5, 6]);
    const { y, s } = await e.run({ x });
    const W = w.toNumbers();
    const X = x.toNumbers();
    const want: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) want.push((X[i * 2] * W[j] + X[i * 2 + 1] * W[3 + j]) * 0.5);
    expect(y.dims).toEqual([1, 9]);
    y.toNumbers().forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    expect(s.toNumbers()[0]).toBeCloseTo(want.reduce((a, b) => a + b, 0), 4);
    await e.dispose();
  });

  it('keeps tensors of every element type stored in the typed fields', () => {
    const m = load('typed_fields.onnx');
    const get = (n: string): Tensor => m.graph.initializers.get(n) as Tensor;
    expect(Array.from(get('i64').array as BigInt64Array)).toEqual([-(2n ** 63n), 2n ** 63n - 1n]);
    expect(Array.from(get('u64').array as BigUint64Array)).toEqual([0n, 2n ** 64n - 1n]);
    expect(get('u32').toNumbers()).toEqual([0, 4294967295]);
    expect(get('f64').toNumbers()).toEqual([1 / 3, -2.5]);
    expect(get('h').toNumbers()).toEqual([1.5, -0.25]);
    expect(get('b').toNumbers()).toEqual([1, 0, 1]);
    expect(get('s').data).toEqual(['abc', 'déf']);
    expect(get('scalar').dims).toEqual([]);
    expect(get('empty').dims).toEqual([0, 3]);
    expect(diffModels(m, decodeModel(encodeModel(m)))).toEqual([]);
  });

  it('keeps symbolic dims (named, unnamed) and absent or rank-less value_info', () => {
    const plain = load('symbolic_dims.onnx');
    expect(plain.graph.inputs[0].type?.shape).toEqual(['N', '?', 'height', 4]);
    expect(plain.graph.valueInfo.size).toBe(0);
    const back = decodeModel(encodeModel(plain));
    expect(back.graph.valueInfo.size).toBe(0);
    expect(back.graph.outputs[0].type?.shape).toEqual(['N', '?', 'height', 4]);
    const withVi = load('symbolic_dims_value_info.onnx');
    expect(withVi.graph.valueInfo.get('r')?.type?.shape).toEqual(['N', '?', 'height', 4]);
    expect(withVi.graph.valueInfo.get('n')?.type).toEqual({ dtype: 'float32' });
    expect(diffModels(withVi, decodeModel(encodeModel(withVi)))).toEqual([]);
  });

  it('rejects a model with external data with a clear one-line PtqError', () => {
    let err: unknown;
    try {
      load('external_data.onnx');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PtqError);
    const p = err as PtqError;
    expect(p.code).toBe('E_MODEL_EXTERNAL_DATA');
    expect(p.message).toMatch(/conv\.w/);
    expect(p.message).toMatch(/external_data\.onnx/);
    expect(p.oneLine()).toMatch(/^ERROR .*\(fix: .*save_as_external_data=False/);
    expect(p.oneLine()).not.toMatch(/\n/);
  });
});
