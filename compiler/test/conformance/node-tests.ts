import * as fs from 'fs';
import * as path from 'path';
import { decodeModel } from '../../src/onnx/decode';
import { decodeTensor } from '../../src/onnx/decode';
import { onnxType } from '../../src/onnx/proto';
import { Model } from '../../src/onnx/ir';
import { Tensor } from '../../src/onnx/tensor';
import { findOp } from '../../src/ops/registry';
import { isFloat } from '../../src/onnx/dtype';

/** Where Debian's libonnx-testdata puts ONNX's own operator tests. */
export const NODE_TEST_DIR = process.env.ONNX_NODE_TESTS ?? '/usr/share/libonnx-testdata/data/node';

export interface NodeTest {
  name: string;
  dir: string;
  model: Model;
  ops: string[];
  /** every op of the model has a registered module (the tests the conformance target counts) */
  registered: boolean;
  /** the model's ops that have no registered module */
  missing: string[];
  sets: { inputs: Tensor[]; outputs: Tensor[] }[];
}

export function hasNodeTests(): boolean {
  return fs.existsSync(NODE_TEST_DIR);
}

export function listNodeTests(): string[] {
  return fs.readdirSync(NODE_TEST_DIR).filter((d) => fs.existsSync(path.join(NODE_TEST_DIR, d, 'model.onnx'))).sort();
}

export function readPb(file: string): Tensor {
  const msg = onnxType('TensorProto').decode(fs.readFileSync(file));
  return decodeTensor(msg, { source: file });
}

function readSet(dir: string, prefix: string): Tensor[] {
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.pb'));
  files.sort((a, b) => Number(a.slice(prefix.length, -3)) - Number(b.slice(prefix.length, -3)));
  return files.map((f) => readPb(path.join(dir, f)));
}

export function loadNodeTest(name: string): NodeTest {
  const dir = path.join(NODE_TEST_DIR, name);
  const model = decodeModel(fs.readFileSync(path.join(dir, 'model.onnx')), `${name}/model.onnx`);
  const ops = [...new Set(model.graph.nodes.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType)))].sort();
  const missing = new Set<string>();
  for (const n of model.graph.nodes) {
    const op = findOp(n.domain, n.opType);
    if (op === undefined || (op.sinceOpset ?? 1) > (model.opset(n.domain) ?? 1)) missing.add(n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType);
  }
  const registered = missing.size === 0;
  let sets: NodeTest['sets'] = [];
  try {
    sets = fs
      .readdirSync(dir)
      .filter((d) => d.startsWith('test_data_set_'))
      .sort()
      .map((d) => ({ inputs: readSet(path.join(dir, d), 'input_'), outputs: readSet(path.join(dir, d), 'output_') }));
  } catch {
    /* non-tensor data (sequences, optionals): such tests use ops we do not register */
  }
  return { name, dir, model, ops, registered, missing: [...missing].sort(), sets };
}

export const RTOL = 1e-3;
export const ATOL = 1e-7;

/** ONNX's comparison: |got - want| <= atol + rtol * |want| elementwise, NaN == NaN, exact for non-floats. */
export function compareTensors(got: Tensor | undefined, want: Tensor, rtol = RTOL, atol = ATOL): string | undefined {
  if (!got) return 'output missing';
  if (got.dtype !== want.dtype) return `dtype ${got.dtype}, expected ${want.dtype}`;
  if (got.dims.join(',') !== want.dims.join(',')) return `shape [${got.dims}], expected [${want.dims}]`;
  if (want.dtype === 'string') {
    const a = got.data as string[];
    const b = want.data as string[];
    const i = b.findIndex((v, k) => v !== a[k]);
    return i < 0 ? undefined : `element ${i}: '${a[i]}' vs '${b[i]}'`;
  }
  const a = got.toNumbers();
  const b = want.toNumbers();
  const fl = isFloat(want.dtype);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (x === y) continue;
    const err = Math.abs(x - y);
    const tol = fl ? atol + rtol * Math.abs(y) : 0;
    if (!(err <= tol) && (err > worstErr || worst < 0 || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  return worst < 0 ? undefined : `element ${worst}: ${a[worst]} vs ${b[worst]} (${countBad(a, b, fl, rtol, atol)} of ${b.length} differ)`;
}

function countBad(a: number[], b: number[], fl: boolean, rtol: number, atol: number): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    if (a[i] === b[i]) continue;
    if (!(Math.abs(a[i] - b[i]) <= (fl ? atol + rtol * Math.abs(b[i]) : 0))) n++;
  }
  return n;
}
