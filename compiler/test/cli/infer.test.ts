import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DType } from '../../src/onnx/dtype';
import { encodeModel } from '../../src/onnx/encode';
import { Graph, Model, Node, ValueInfo } from '../../src/onnx/ir';
import { Tensor, tensorFrom } from '../../src/onnx/tensor';
import { findOp } from '../../src/ops/registry';
import { readNpy, writeNpy } from '../../src/preprocess/npy';
import { compareTensors, hasNodeTests, NODE_TEST_DIR, readPb } from '../conformance/node-tests';
import { expectUserError, runPtq } from './run-cli';

/** `ptq exec infer` end to end, on the real binary. */
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'onnx');

function vi(name: string, dtype: DType, shape?: (number | string)[]): ValueInfo {
  return { name, type: { dtype, shape } };
}

function save(dir: string, name: string, m: Model): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, encodeModel(m));
  return file;
}

describe('ptq exec infer', () => {
  jest.setTimeout(180_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-infer-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const infer = (args: string[]): ReturnType<typeof runPtq> => runPtq(['exec', 'infer', ...args]);
  const listDir = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

  (hasNodeTests() ? it : it.skip).each(['reference', 'ort'])('runs an ONNX node test with .pb inputs on the %s engine', (engine) => {
    if (engine === 'reference' && !findOp('', 'Add')) return;
    const t = path.join(NODE_TEST_DIR, 'test_add');
    const out = path.join(dir, `add_${engine}`);
    const r = infer([
      '--model-file', path.join(t, 'model.onnx'),
      '--input-file', `${path.join(t, 'test_data_set_0', 'input_0.pb')},${path.join(t, 'test_data_set_0', 'input_1.pb')}`,
      '--output-dir', out,
      '--engine', engine,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sum\.npy\s+sum\s+float32\[3,4,5\]/);
    expect(listDir(out)).toEqual(['sum.npy']);
    const want = readPb(path.join(t, 'test_data_set_0', 'output_0.pb'));
    expect(compareTensors(readNpy(path.join(out, 'sum.npy')), want)).toBeUndefined();
  });

  it('takes .npy inputs in model-input order, on both engines, with the same result', () => {
    // y = (a - b) · 2, built with our IR; Sub/Mul are in the arithmetic module
    const m = new Model(
      new Graph({
        name: 'g',
        nodes: [
          new Node({ opType: 'Sub', name: 'sub', inputs: ['a', 'b'], outputs: ['d'] }),
          new Node({ opType: 'Mul', name: 'mul', inputs: ['d', 'two'], outputs: ['y'] }),
        ],
        inputs: [vi('a', 'float32', ['N', 3]), vi('b', 'float32', ['N', 3])],
        outputs: [vi('y', 'float32', ['N', 3])],
        initializers: new Map([['two', tensorFrom('float32', [], [2])]]),
      }),
    );
    const model = save(dir, 'sub.onnx', m);
    const a = path.join(dir, 'a.npy');
    const b = path.join(dir, 'b.npy');
    writeNpy(a, tensorFrom('float32', [2, 3], [1, 2, 3, 4, 5, 6]));
    writeNpy(b, tensorFrom('float32', [2, 3], [6, 5, 4, 3, 2, 1]));
    const engines = findOp('', 'Sub') && findOp('', 'Mul') ? ['ort', 'reference'] : ['ort'];
    for (const engine of engines) {
      const out = path.join(dir, `sub_${engine}`);
      const r = infer(['--model-file', model, '--input-file', a, '--input-file', b, '--output-dir', out, '--engine', engine]);
      expect([engine, r.code, r.stderr]).toEqual([engine, 0, '']);
      expect(readNpy(path.join(out, 'y.npy')).toNumbers()).toEqual([-10, -6, -2, 2, 6, 10]);
    }
    // the order matters: b, a gives the negation
    const out = path.join(dir, 'sub_swapped');
    expect(infer(['--model-file', model, '--input-file', `${b},${a}`, '--output-dir', out, '--engine', 'ort']).code).toBe(0);
    expect(readNpy(path.join(out, 'y.npy')).toNumbers()).toEqual([10, 6, 2, -2, -6, -10]);
  });

  it('sanitises output names into file names and keeps clashing names apart', () => {
    const m = new Model(
      new Graph({
        name: 'names',
        nodes: ['out/a:0', 'out:a/0', '../evil', 'Ünï code'].map(
          (o, i) => new Node({ opType: 'Identity', name: `id${i}`, inputs: ['x'], outputs: [o] }),
        ),
        inputs: [vi('x', 'int64', [2])],
        outputs: ['out/a:0', 'out:a/0', '../evil', 'Ünï code'].map((o) => vi(o, 'int64', [2])),
      }),
    );
    const model = save(dir, 'names.onnx', m);
    const x = path.join(dir, 'x64.npy');
    writeNpy(x, new Tensor('int64', [2], BigInt64Array.from([-(2n ** 62n), 7n])));
    const out = path.join(dir, 'names_out');
    const r = infer(['--model-file', model, '--input-file', x, '--output-dir', out, '--engine', 'ort']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(listDir(out)).toEqual(['___evil.npy', 'out_a_0.npy', 'out_a_0_1.npy', '_n__code.npy'].sort());
    expect(Array.from(readNpy(path.join(out, 'out_a_0_1.npy')).array as BigInt64Array)).toEqual([-(2n ** 62n), 7n]);
    expect(fs.existsSync(path.join(dir, 'evil.npy'))).toBe(false);
  });

  it('runs a model without inputs and writes every element type (strings, float16, uint64)', () => {
    const out = path.join(dir, 'typed');
    const r = infer(['--model-file', path.join(FIXTURES, 'typed_fields.onnx'), '--output-dir', out, '--engine', 'ort']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(listDir(out)).toHaveLength(14);
    expect(readNpy(path.join(out, 's_out.npy')).data).toEqual(['abc', 'déf']);
    expect(readNpy(path.join(out, 'h_out.npy')).toNumbers()).toEqual([1.5, -0.25]);
    expect(Array.from(readNpy(path.join(out, 'u64_out.npy')).array as BigUint64Array)).toEqual([0n, 2n ** 64n - 1n]);
    expect(readNpy(path.join(out, 'empty_out.npy')).dims).toEqual([0, 3]);
  });

  it('counts only real inputs of IR 3 models (initializers listed as inputs)', () => {
    const x = path.join(dir, 'cnn_x.npy');
    writeNpy(x, tensorFrom('float32', [2, 3, 4, 4], Array.from({ length: 96 }, (_, i) => Math.sin(i))));
    const out = path.join(dir, 'ir3');
    const r = infer(['--model-file', path.join(FIXTURES, 'ir3_opset7.onnx'), '--input-file', x, '--output-dir', out, '--engine', 'ort']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const y = readNpy(path.join(out, 'y.npy'));
    expect(y.dims).toEqual([2, 5]);
    // softmax rows sum to 1
    const v = y.toNumbers();
    expect(v.slice(0, 5).reduce((s, q) => s + q, 0)).toBeCloseTo(1, 5);
  });

  describe('user errors: exit 2, one ERROR line, nothing written', () => {
    const model = path.join(FIXTURES, 'bigger_cnn.onnx');
    const good = path.join(dir, 'good.npy');
    beforeAll(() => writeNpy(good, tensorFrom('float32', [1, 3, 16, 16], new Array(768).fill(0.5))));

    const fails = (args: string[], text: RegExp): void => {
      const out = path.join(dir, `fail_${Math.random().toString(36).slice(2)}`);
      const r = infer([...args, '--output-dir', out]);
      expectUserError(r, text);
      expect(r.stdout).toBe('');
      expect(fs.existsSync(out)).toBe(false);
    };

    it('wrong number, type, shape or format of input files', () => {
      fails(['--model-file', model], /has 1 input\(s\) \('x' float32\[1,3,16,16\]\), got 0 input file/);
      fails(['--model-file', model, '--input-file', `${good},${good}`], /got 2 input file/);
      const i32 = path.join(dir, 'i32.npy');
      writeNpy(i32, tensorFrom('int32', [1, 3, 16, 16], new Array(768).fill(1)));
      fails(['--model-file', model, '--input-file', i32], /'.*i32\.npy' holds int32, model input 'x' float32\[1,3,16,16\] needs float32/);
      const small = path.join(dir, 'small.npy');
      writeNpy(small, tensorFrom('float32', [1, 3, 8, 8], new Array(192).fill(1)));
      fails(['--model-file', model, '--input-file', small], /small\.npy' has shape \[1,3,8,8\].*needs \[1,3,16,16\]/);
      const txt = path.join(dir, 'x.txt');
      fs.writeFileSync(txt, '1 2 3');
      fails(['--model-file', model, '--input-file', txt], /neither a \.npy nor a \.pb/);
      const badNpy = path.join(dir, 'bad.npy');
      fs.writeFileSync(badNpy, 'not numpy');
      fails(['--model-file', model, '--input-file', badNpy], /bad\.npy' is not a usable \.npy file/);
      const badPb = path.join(dir, 'bad.pb');
      fs.writeFileSync(badPb, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]));
      fails(['--model-file', model, '--input-file', badPb], /bad\.pb' is not a valid ONNX TensorProto/);
      fails(['--model-file', model, '--input-file', path.join(dir, 'missing.npy')], /cannot read input file .*missing\.npy.*ENOENT/);
    });

    it('a model with an operator no engine has', () => {
      const m = new Model(
        new Graph({
          name: 'frob',
          nodes: [new Node({ opType: 'Frobnicate', name: 'frob1', domain: 'com.example', inputs: ['x'], outputs: ['y'] })],
          inputs: [vi('x', 'float32', [1, 3, 16, 16])],
          outputs: [vi('y', 'float32')],
        }),
        { opsetImports: [{ domain: '', version: 13 }, { domain: 'com.example', version: 1 }] },
      );
      const file = save(dir, 'frob.onnx', m);
      fails(['--model-file', file, '--input-file', good], /operator com\.example::Frobnicate \(opset 1\) of node 'frob1' is not supported/);
      fails(['--model-file', file, '--input-file', good, '--engine', 'ort'], /onnxruntime cannot load '.*frob\.onnx'.*Frobnicate/);
    });

    it('an output directory that is a file', () => {
      const file = path.join(dir, 'a-file');
      fs.writeFileSync(file, 'x');
      const r = infer(['--model-file', model, '--input-file', good, '--output-dir', file]);
      expectUserError(r, /--output-dir '.*a-file' exists and is not a directory/);
      expect(fs.readFileSync(file, 'utf8')).toBe('x');
    });

    it('a failure while running leaves earlier files untouched and no temp files', () => {
      const m = new Model(
        new Graph({
          name: 'reshape',
          nodes: [
            new Node({ opType: 'Identity', name: 'first', inputs: ['x'], outputs: ['a'] }),
            new Node({ opType: 'Reshape', name: 'reshape7', inputs: ['x', 's'], outputs: ['b'] }),
          ],
          inputs: [vi('x', 'float32', ['N']), vi('s', 'int64', [1])],
          outputs: [vi('a', 'float32', ['N']), vi('b', 'float32')],
        }),
      );
      const file = save(dir, 'reshape.onnx', m);
      const x = path.join(dir, 'x3.npy');
      const s = path.join(dir, 's4.npy');
      writeNpy(x, tensorFrom('float32', [3], [1, 2, 3]));
      writeNpy(s, new Tensor('int64', [1], BigInt64Array.from([4n])));
      const out = path.join(dir, 'keep');
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 'a.npy'), 'previous');
      const r = infer(['--model-file', file, '--input-file', `${x},${s}`, '--output-dir', out, '--engine', 'ort']);
      expectUserError(r, /node 'reshape7'/);
      expect(listDir(out)).toEqual(['a.npy']);
      expect(fs.readFileSync(path.join(out, 'a.npy'), 'utf8')).toBe('previous');
    });
  });
});
