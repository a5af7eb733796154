import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PtqError } from '../errors';
import { floatAttr, GraphBuilder } from '../onnx/builder';
import { decodeModel } from '../onnx/decode';
import { encodeModel } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { validateModel } from '../onnx/load';
import { inferShapes } from '../onnx/shape-inference';
import { tensorFrom } from '../onnx/tensor';
import { findOp } from '../ops/registry';
import { ReferenceEngine } from '../runtime/reference';
import { chooseEngine, hasCustomOps, pickEngine } from '../runtime/select';
import { CustomOpConfig, loadCustomOps, registeredCustomOps } from './loader';
import { ensureOpsetImport, importCustomDomains } from './opset';

const TS_OP = `
import type { CustomOpApi } from '${path.resolve(__dirname, 'types').replace(/\\/g, '/')}';
import { checkFloat } from './lib/helpers';

/** y = a * tanh(x) */
export function register(api: CustomOpApi): void {
  api.registerOp({
    domain: 'com.example',
    type: 'ScaledTanh',
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape }],
    run: (ctx, [x]) => {
      const a: number = ctx.node.float('a', 1);
      checkFloat(x!.dtype, ctx.node.label);
      const src = x!.data as Float32Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = a * Math.tanh(src[i]);
      return [new api.Tensor('float32', x!.dims, out)];
    },
  });
}
`;

const TS_HELPER = `
export function checkFloat(dtype: string, label: string): void {
  if (dtype !== 'float32') throw new Error(label + ': ScaledTanh wants float32, got ' + dtype);
}
`;

const JS_OP = `'use strict';
const { absDiff } = require('./lib/math.cjs');
const { sep } = require('path'); // node builtins load through Node
if (typeof sep !== 'string') throw new Error('no path module');
// |a - b| for two tensors of one shape; returns a plain { dtype, dims, data } object
exports.ops = [
  {
    domain: 'com.acme',
    type: 'AbsDiff',
    infer(_ctx, [a]) { return [{ dtype: a && a.dtype, shape: a && a.shape }]; },
    run(_ctx, [a, b]) { return [{ dtype: 'float32', dims: a.dims, data: absDiff(a.data, b.data) }]; },
  },
];
`;

const JS_MATH = `exports.absDiff = (x, y) => {
  if (x.length !== y.length) throw new Error('AbsDiff: inputs differ in size');
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i] - y[i]);
  return out;
};
`;

const tmpRoots: string[] = [];

function project(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nx-ptq-custom-'));
  tmpRoots.push(root);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

/** What config/normalize.ts makes of a `custom_op` group (paths resolved against the YAML's folder). */
function cfgFor(root: string, dir: string | undefined, files: string[], extra: Partial<CustomOpConfig['source']> & { dirAsWritten?: string } = {}): CustomOpConfig {
  const dirAbs = dir === undefined ? undefined : path.resolve(root, dir);
  const { dirAsWritten, ...source } = extra;
  return {
    customOp: { method: 'register', registerFiles: files.map((f) => path.resolve(dirAbs ?? root, f)), dir: dirAbs, dirAsWritten: dirAsWritten ?? dir },
    source: { dir: root, ...source },
  };
}

function expectConfigError(f: () => unknown, key: 'custom_op_dir' | 'op_register_files', text: RegExp): PtqError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PtqError);
  const err = caught as PtqError;
  expect(err.code).toBe('E_CONFIG');
  expect(err.message).toContain(`custom_op.${key}`);
  expect(err.message).toMatch(text);
  expect(err.fix).toBeTruthy();
  expect(err.oneLine()).not.toMatch(/\n/);
  return err;
}

afterAll(() => {
  for (const r of tmpRoots) fs.rmSync(r, { recursive: true, force: true });
});

/** x[N,4] → Relu → ScaledTanh(a) → AbsDiff(·, x) → Add(c) → y */
function customModel(a: number, withImports = true): { model: Model; c: number[] } {
  const c = [0.25, -1, 2, 0.5];
  const b = new GraphBuilder('custom', { opset: 13, opsetImports: withImports ? [{ domain: 'com.example', version: 1 }, { domain: 'com.acme', version: 1 }] : [] });
  const x = b.input('x', 'float32', ['N', 4]);
  const r = b.node('Relu', [x], {}, 1, { name: 'relu', shapes: [['N', 4]] })[0];
  const t = b.node('ScaledTanh', [r], { a: floatAttr(a) }, 1, { name: 'scaled_tanh', domain: 'com.example' })[0];
  const d = b.node('AbsDiff', [t, x], {}, 1, { name: 'abs_diff', domain: 'com.acme' })[0];
  const y = b.node('Add', [d, b.initializer(tensorFrom('float32', [4], c), 'c')], {}, 1, { name: 'add', shapes: [['N', 4]] })[0];
  b.output(y, 'y');
  return { model: b.build(), c };
}

/** The same computation in plain JS (float32 rounding after each op, as the kernels store). */
function expected(x: number[], a: number, c: number[]): number[] {
  return x.map((v, i) => {
    const t = Math.fround(a * Math.tanh(Math.max(0, v)));
    const d = Math.fround(Math.abs(t - v));
    return Math.fround(d + c[i % 4]);
  });
}

describe('custom operators from the project', () => {
  let root: string;
  let cfg: CustomOpConfig;

  beforeAll(() => {
    root = project({
      'custom_op/scaled_tanh.ts': TS_OP,
      'custom_op/lib/helpers.ts': TS_HELPER,
      'custom_op/abs_diff.js': JS_OP,
      'custom_op/lib/math.cjs': JS_MATH,
    });
    cfg = cfgFor(root, './custom_op', ['scaled_tanh.ts', 'abs_diff.js']);
  });

  it('loads a TypeScript module (register) and a JavaScript module (ops) as CPU operators', () => {
    const loaded = loadCustomOps(cfg);
    expect(loaded.map((l) => l.key)).toEqual(['com.example::ScaledTanh', 'com.acme::AbsDiff']);
    expect(loaded[0].file).toBe(path.join(root, 'custom_op', 'scaled_tanh.ts'));
    expect(loaded[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(findOp('com.example', 'ScaledTanh')?.quant).toBe('cpu');
    expect(findOp('com.acme', 'AbsDiff')?.quant).toBe('cpu');
    expect(findOp('', 'ScaledTanh')).toBeUndefined();
  });

  it('is idempotent: loading the same modules again re-registers nothing and does not fail', () => {
    loadCustomOps(cfg);
    const again = loadCustomOps(cfg);
    expect(again).toHaveLength(2);
    expect(registeredCustomOps().get('com.example::ScaledTanh')).toBe(path.join(root, 'custom_op', 'scaled_tanh.ts'));
  });

  it('runs mid-graph in the ReferenceEngine with the right numbers', async () => {
    loadCustomOps(cfg);
    const a = 0.75;
    const { model, c } = customModel(a);
    const xs = [-2, -0.5, 0, 0.3, 1, 2.5, -3.25, 4];
    const engine = await pickEngine(model);
    expect(engine).toBeInstanceOf(ReferenceEngine);
    const out = await engine.run({ x: tensorFrom('float32', [2, 4], xs) });
    expect(out.y.dims).toEqual([2, 4]);
    const want = expected(xs, a, c);
    const got = Array.from(out.y.data as Float32Array);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    // the attribute matters: a different `a` gives different numbers
    const other = new ReferenceEngine(customModel(2).model).runSync({ x: tensorFrom('float32', [2, 4], xs) });
    expect(Array.from(other.y.data as Float32Array)[3]).toBeCloseTo(expected(xs, 2, c)[3], 6);
    expect(Array.from(other.y.data as Float32Array)[3]).not.toBeCloseTo(want[3], 3);
  });

  it('shape inference uses the module infer functions (symbolic dims survive)', () => {
    loadCustomOps(cfg);
    const { model } = customModel(0.5);
    const facts = inferShapes(model, { apply: false });
    expect(facts.get('scaled_tanh')).toEqual({ dtype: 'float32', shape: ['N', 4] });
    expect(facts.get('abs_diff')).toEqual({ dtype: 'float32', shape: ['N', 4] });
    const fixed = inferShapes(customModel(0.5).model, { inputShapes: { x: [3, 4] } });
    expect(fixed.get('abs_diff')?.shape).toEqual([3, 4]);
  });

  it('picks the reference engine for custom domains, even when onnxruntime is asked for', () => {
    const { model } = customModel(0.5);
    expect(hasCustomOps(model)).toBe(true);
    expect(chooseEngine(model, 'ort')).toEqual({ engine: 'reference', reason: expect.stringMatching(/'com\.acme', 'com\.example'/) });
    expect(chooseEngine(model, 'auto').engine).toBe('reference');
  });

  it('encode → decode keeps the custom nodes, their domains and the opset imports', () => {
    loadCustomOps(cfg);
    const { model } = customModel(0.5);
    const back = decodeModel(encodeModel(model));
    validateModel(back);
    const st = back.graph.nodes.find((n) => n.name === 'scaled_tanh');
    expect(st?.domain).toBe('com.example');
    expect(st?.float('a')).toBe(0.5);
    expect(back.graph.nodes.find((n) => n.name === 'abs_diff')?.domain).toBe('com.acme');
    expect(back.opset('com.example')).toBe(1);
    expect(back.opset('com.acme')).toBe(1);
    const xs = [1, -1, 0.5, 3];
    const a = new ReferenceEngine(model).runSync({ x: tensorFrom('float32', [1, 4], xs) }).y.data;
    const b = new ReferenceEngine(back).runSync({ x: tensorFrom('float32', [1, 4], xs) }).y.data;
    expect(Array.from(b as Float32Array)).toEqual(Array.from(a as Float32Array));
  });

  it('ensureOpsetImport / importCustomDomains add the custom domains a model lacks', () => {
    const { model } = customModel(0.5, false);
    expect(() => validateModel(model)).toThrow(/com\.(example|acme)/);
    expect(importCustomDomains(model)).toEqual(['com.acme', 'com.example']);
    validateModel(model);
    expect(ensureOpsetImport(model, 'com.example', 3)).toBe(3);
    expect(ensureOpsetImport(model, 'com.example', 2)).toBe(3);
    expect(ensureOpsetImport(model, 'ai.onnx', 11)).toBe(13);
    expect(model.opsetImports.filter((o) => o.domain === 'com.example')).toHaveLength(1);
    const back = decodeModel(encodeModel(model));
    expect(back.opset('com.example')).toBe(3);
  });

  it('a kernel failure is a PtqError naming the node and the module', () => {
    loadCustomOps(cfg);
    const b = new GraphBuilder('bad', { opsetImports: [{ domain: 'com.acme', version: 1 }] });
    const x = b.input('x', 'float32', [4]);
    const z = b.input('z', 'float32', [3]);
    b.output(b.node('AbsDiff', [x, z], {}, 1, { name: 'mismatch', domain: 'com.acme' })[0]);
    const engine = new ReferenceEngine(b.build());
    let caught: unknown;
    try {
      engine.runSync({ x: tensorFrom('float32', [4], [1, 2, 3, 4]), z: tensorFrom('float32', [3], [1, 2, 3]) });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PtqError);
    expect((caught as PtqError).code).toBe('E_CUSTOM_OP');
    expect((caught as PtqError).message).toMatch(/node 'mismatch' \(com\.acme::AbsDiff\).*abs_diff\.js.*inputs differ in size/);
  });
});

describe('module shapes', () => {
  it('accepts export default register and outputs given as plain numbers', () => {
    const root = project({
      'ops/twice.ts': `export default function (api: { registerOp(d: unknown): void }): void {
  api.registerOp({
    domain: 'com.shapes', type: 'Twice', sinceOpset: 2,
    infer: (_c: unknown, [x]: { dtype?: string; shape?: unknown[] }[]) => [{ dtype: 'int32', shape: x.shape }],
    run: (_c: unknown, [x]: { dims: number[]; toNumbers(): number[] }[]) => [{ dtype: 'int32', dims: x.dims, data: x.toNumbers().map((v) => 2 * v) }],
  });
}
`,
    });
    expect(loadCustomOps(cfgFor(root, 'ops', ['twice.ts'])).map((l) => l.key)).toEqual(['com.shapes::Twice']);
    const build = (version: number): Model => {
      const b = new GraphBuilder('twice', { opsetImports: [{ domain: 'com.shapes', version }] });
      b.output(b.node('Twice', [b.input('x', 'int32', [3])], {}, 1, { name: 'twice', domain: 'com.shapes', dtype: 'int32' })[0], 'y');
      return b.build();
    };
    const y = new ReferenceEngine(build(2)).runSync({ x: tensorFrom('int32', [3], [1, -7, 40]) }).y;
    expect(y.dtype).toBe('int32');
    expect(y.data).toBeInstanceOf(Int32Array);
    expect(Array.from(y.data as Int32Array)).toEqual([2, -14, 80]);
    // sinceOpset 2: a model importing com.shapes at version 1 is not supported
    expect(() => new ReferenceEngine(build(1))).toThrow(/com\.shapes::Twice \(opset 1\)/);
  });
});

describe('onnxruntime stays the engine of standard models', () => {
  it('chooseEngine / pickEngine pick onnxruntime when no custom domain is used', async () => {
    const b = new GraphBuilder('plain', { opsetImports: [{ domain: 'com.microsoft', version: 1 }] });
    b.output(b.node('Relu', [b.input('x', 'float32', [1, 4])], {}, 1, { shapes: [[1, 4]] })[0], 'y');
    const model = b.build();
    expect(hasCustomOps(model)).toBe(false);
    expect(chooseEngine(model).engine).toBe('ort');
    expect(chooseEngine(model, 'reference').engine).toBe('reference');
    const engine = await pickEngine(model, 'auto');
    try {
      expect(engine.name).toBe('ort');
      const y = await engine.run({ x: tensorFrom('float32', [1, 4], [-1, 2, -3, 4]) });
      expect(Array.from(y.y.data as Float32Array)).toEqual([0, 2, 0, 4]);
    } finally {
      await engine.dispose();
    }
  });
});

describe('custom_op refusals', () => {
  const okOp = (type: string): string => `exports.ops = [{ domain: 'com.refusal', type: '${type}', infer: () => [{}], run: (_c, [x]) => [x] }];\n`;

  it('refuses an absolute custom_op_dir (as written, or read back from the YAML)', () => {
    const root = project({ 'ops/a.js': okOp('A1') });
    const abs = path.join(root, 'ops');
    expectConfigError(() => loadCustomOps(cfgFor(root, abs, ['a.js'], { dirAsWritten: abs })), 'custom_op_dir', /absolute path/);
    fs.writeFileSync(path.join(root, 'model.yaml'), `# test\ncustom_op:\n  custom_op_dir: ${abs}\n  op_register_files: a.js\n`);
    const c = cfgFor(root, abs, ['a.js'], { file: path.join(root, 'model.yaml'), lines: { custom_op: 2, 'custom_op.custom_op_dir': 3 } });
    delete c.customOp!.dirAsWritten;
    const err = expectConfigError(() => loadCustomOps(c), 'custom_op_dir', /absolute path/);
    expect(err.message).toMatch(/model\.yaml:3 custom_op\.custom_op_dir/);
  });

  it('refuses a custom_op_dir that leaves the project through ..', () => {
    const root = project({ 'inner/model_dir/.keep': '', 'inner/ops/a.js': okOp('A2') });
    const projectRoot = path.join(root, 'inner', 'model_dir');
    expectConfigError(() => loadCustomOps(cfgFor(projectRoot, '../ops', ['a.js'])), 'custom_op_dir', /leaves the project folder/);
  });

  it('refuses a custom_op_dir that is a symlink out of the project', () => {
    const outside = project({ 'a.js': okOp('A3') });
    const root = project({ 'model.yaml': '' });
    fs.symlinkSync(outside, path.join(root, 'linked'));
    expectConfigError(() => loadCustomOps(cfgFor(root, './linked', ['a.js'])), 'custom_op_dir', /is a link to .*outside the project/);
  });

  it('refuses a module symlinked from outside the project', () => {
    const outside = project({ 'a.js': okOp('A4') });
    const root = project({ 'ops/.keep': '' });
    fs.symlinkSync(path.join(outside, 'a.js'), path.join(root, 'ops', 'a.js'));
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['a.js'])), 'op_register_files', /is a link to .*outside the project/);
  });

  it('refuses a module named outside custom_op_dir', () => {
    const root = project({ 'ops/.keep': '', 'a.js': okOp('A5') });
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['../a.js'])), 'op_register_files', /outside custom_op_dir/);
  });

  it('refuses a missing custom_op_dir and a missing module', () => {
    const root = project({ 'ops/a.js': okOp('A6') });
    expectConfigError(() => loadCustomOps(cfgFor(root, 'nope', ['a.js'])), 'custom_op_dir', /'nope' does not exist/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['a.js', 'missing.ts'])), 'op_register_files', /'missing\.ts' not found in custom_op_dir 'ops'/);
    expect(findOp('com.refusal', 'A6')).toBeUndefined();
  });

  it('refuses files that are not .ts/.js/.cjs (the reference\'s Python files included)', () => {
    const root = project({ 'ops/sample_custom.py': 'def f(): pass\n', 'ops/a.mjs': 'export const ops = []\n' });
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['sample_custom.py'])), 'op_register_files', /not Python/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['a.mjs'])), 'op_register_files', /'\.mjs' is not a module type/);
  });

  it('refuses modules without a registration, or with a bad one', () => {
    const root = project({
      'ops/none.js': 'exports.something = 1;\n',
      'ops/empty.ts': 'export function register(api: unknown): void { void api; }\n',
      'ops/norun.js': "exports.ops = [{ domain: 'com.refusal', type: 'NoRun', infer: () => [] }];\n",
      'ops/onnx.js': "exports.ops = [{ domain: '', type: 'Relu2', infer: () => [], run: () => [] }];\n",
      'ops/ms.js': "exports.ops = [{ domain: 'com.microsoft', type: 'Mine', infer: () => [], run: () => [] }];\n",
      'ops/broken.ts': 'export const ops = [ {;\n',
      'ops/throws.js': "throw new Error('boom at load');\n",
    });
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['none.js'])), 'op_register_files', /exports neither register\(api\) nor ops/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['empty.ts'])), 'op_register_files', /registered no operator/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['norun.js'])), 'op_register_files', /\(NoRun\) has no run/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['onnx.js'])), 'op_register_files', /domain 'ai\.onnx'/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['ms.js'])), 'op_register_files', /domain 'com\.microsoft'/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['broken.ts'])), 'op_register_files', /does not compile/);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['throws.js'])), 'op_register_files', /failed while loading: boom at load/);
  });

  it('refuses two modules registering the same operator, naming both; registers nothing then', () => {
    const root = project({
      'ops/first.js': `${okOp('Dup')}exports.ops.push({ domain: 'com.refusal', type: 'OnlyFirst', infer: () => [{}], run: (_c, [x]) => [x] });\n`,
      'ops/second.ts': "export const ops = [{ domain: 'com.refusal', type: 'Dup', infer: () => [{}], run: (_c: unknown, i: unknown[]) => [i[0]] }];\n",
    });
    const err = expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['first.js', 'second.ts'])), 'op_register_files', /'ops\/second\.ts' registers com\.refusal::Dup, which 'ops\/first\.js' registers too/);
    expect(err.subject).toBe('custom_op.op_register_files');
    expect(findOp('com.refusal', 'OnlyFirst')).toBeUndefined();
    // one module alone is fine, and then the other one conflicts with it
    expect(loadCustomOps(cfgFor(root, 'ops', ['first.js'])).map((l) => l.type)).toEqual(['Dup', 'OnlyFirst']);
    expectConfigError(() => loadCustomOps(cfgFor(root, 'ops', ['second.ts'])), 'op_register_files', /second\.ts.*first\.js/);
  });
});
