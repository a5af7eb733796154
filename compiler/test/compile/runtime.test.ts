/**
 * The `.bin` host runtime against broken input: a corrupted or hand-edited `.bin` is refused
 * with one PtqError (never another exception, never a hang) — random byte flips and
 * truncations, and structured edits (unknown op types, attributes out of range, shapes,
 * dtypes, offsets, constants); bad feeds; packed files. And the comparison the bit-exactness
 * tests rely on does catch a wrong result.
 */
import { BinFile, BinModel, decodeBin, encodeBin } from '../../src/compile/bin-format';
import { compileQuantizedModel } from '../../src/compile/compile';
import { compareWithReference, quantizeThroughPipeline } from '../../src/compile/compile.test.util';
import { isPtqError } from '../../src/errors';
import { Rng } from '../../src/kernels/random';
import { GraphBuilder } from '../../src/onnx/builder';
import { Model } from '../../src/onnx/ir';
import { Tensor, tensorFrom } from '../../src/onnx/tensor';
import { BinEngine } from '../../src/runtime/bin-engine';
import { randomModelFeeds } from '../../src/runtime/bin-perf';

jest.setTimeout(120_000);

/** Convs (plain, depthwise, strided), pools, a residual Add, Sigmoid, Softmax on the CPU, Concat, Resize, FC. */
function net(): Model {
  const b = new GraphBuilder('fuzz', { seed: 31 });
  const x = b.input('data', 'float32', [1, 3, 8, 8]);
  let y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1 }));
  const z = b.conv(b.relu(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, group: 8 })), { outChannels: 8, kernel: 1 });
  y = b.add(y, z);
  const p = b.maxPool(y, { kernel: 2, stride: 2 });
  const sc = b.initializer(tensorFrom('float32', [4], [1, 1, 2, 2]), 'up.scales');
  const [up] = b.node('Resize', [p, '', sc], { mode: 'nearest' }, 1, { shapes: [[1, 8, 8, 8]] });
  y = b.concat([b.sigmoid(y), up], 1);
  y = b.softmax(b.conv(y, { outChannels: 8, kernel: 1 }), 1);
  b.output(b.gemm(b.flatten(b.globalAvgPool(b.conv(y, { outChannels: 8, kernel: 3, stride: 2, pad: 1 }))), 5), 'out');
  return b.build();
}

const models = quantizeThroughPipeline(net(), {
  preprocess: [{ name: 'data', typeTrain: 'rgb', typeRt: 'nv12', layoutTrain: 'NCHW', normType: 'data_mean_and_scale', mean: [120, 120, 120], scale: [0.017, 0.017, 0.017] }],
});
const compiled = compileQuantizedModel(models.quantized, { cpuNodes: models.cpuNodes, name: 'fuzz' }).model;
const file: BinFile = { formatVersion: 1, packed: false, models: [compiled] };
const bytes = encodeBin(file);

/** Load and run once: undefined when it worked, else the error (which must be a PtqError). */
function attempt(b: Uint8Array): unknown {
  try {
    const e = BinEngine.load(decodeBin(b, 'fuzz.bin'), undefined, { source: 'fuzz.bin' });
    e.runSync(randomModelFeeds(e.model, 1));
    return undefined;
  } catch (err) {
    return err;
  }
}

function expectRefusedOrFine(b: Uint8Array, what: string): 'ok' | 'refused' {
  const t0 = Date.now();
  const err = attempt(b);
  const ms = Date.now() - t0;
  if (ms > 5000) throw new Error(`${what}: took ${ms} ms`);
  if (err === undefined) return 'ok';
  if (!isPtqError(err)) throw new Error(`${what}: not a PtqError: ${(err as Error).stack}`);
  expect(err.oneLine()).not.toMatch(/\n/);
  return 'refused';
}

describe('the original file', () => {
  it('runs, and equals the reference bit for bit', () => {
    const e = new BinEngine(decodeBin(bytes).models[0]);
    expect(compareWithReference((f) => e.runSync(f), e.model, models.quantized, 3, 1).mismatch).toBeUndefined();
  });

  it('a wrong bias is caught by the comparison (the check can fail)', () => {
    const m = decodeBin(bytes).models[0];
    const bias = m.tensors.find((t) => t.name.endsWith('_bias') && t.dtype === 'int32')!;
    const v = new Int32Array(Uint8Array.from(bias.raw).buffer);
    for (let i = 0; i < v.length; i++) v[i] += 5000;
    const edited: BinModel = { ...m, tensors: m.tensors.map((t) => (t === bias ? { ...t, raw: new Uint8Array(v.buffer) } : t)) };
    const e = new BinEngine(edited);
    expect(compareWithReference((f) => e.runSync(f), edited, models.quantized, 2, 1).mismatch).toMatch(/output 'out'/);
  });
});

describe('corrupted files', () => {
  it('random byte flips and truncations: a PtqError or a clean run, never another exception', () => {
    const rng = new Rng(77);
    const counts = { ok: 0, refused: 0 };
    for (let k = 0; k < 250; k++) {
      const b = Uint8Array.from(bytes);
      const flips = 1 + rng.int(3);
      for (let f = 0; f < flips; f++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      counts[expectRefusedOrFine(b, `flip #${k}`)]++;
    }
    for (let k = 0; k < 30; k++) counts[expectRefusedOrFine(bytes.subarray(0, rng.int(bytes.length)), `truncation #${k}`)]++;
    expect(counts.refused).toBeGreaterThan(20);
  });

  it('structured edits of ops, attributes, values and constants are refused with one line', () => {
    const rng = new Rng(5);
    const base = decodeBin(bytes).models[0];
    const edits: ((m: BinModel) => void)[] = [
      (m) => (m.segments[1].ops[0].type = 'Teleport'),
      (m) => (m.segments[1].ops[0].domain = 'nx_ptq'),
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Conv')!;
        op.attrs.find((a) => a.name === 'strides')!.ints = [0, 1];
      },
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Conv')!;
        op.attrs.find((a) => a.name === 'pads')!.ints = [1, 1, 1, 1e9];
      },
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'MaxPool')!;
        op.attrs.find((a) => a.name === 'kernel')!.ints = [5000, 5000];
      },
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Lut')!;
        m.tensors = m.tensors.map((t) => (t.name === op.inputs[1] ? { ...t, dims: [128], raw: t.raw.subarray(0, 128) } : t));
      },
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Requant' || o.type === 'Eltwise' || o.type === 'Concat')!;
        op.attrs.find((a) => a.name === 'out_scale')!.f = Number.NaN;
      },
      (m) => {
        const v = m.values.find((x) => x.offset >= 0)!;
        v.offset = m.arenaBytes - 1;
      },
      (m) => {
        const v = m.values.find((x) => x.offset >= 0 && x.shape.length === 4)!;
        v.shape = [v.shape[0], v.shape[1] * 2, v.shape[2], v.shape[3]];
        v.bytes *= 2;
      },
      (m) => (m.arenaBytes = 2 ** 30),
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Resize')!;
        op.attrs.push({ name: 'mode', s: 'cubic-ish' });
      },
      (m) => {
        const v = m.values.find((x) => x.layout === 'NHWC')!;
        v.layout = '';
      },
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Preprocess')!;
        op.attrs = op.attrs.map((a) => (a.name === 'type_rt' ? { ...a, s: 'rgb' } : a));
      },
      (m) => {
        const op = m.segments.flatMap((s) => s.ops).find((o) => o.type === 'Softmax')!;
        op.attrs = op.attrs.map((a) => (a.name === '_opset' ? { ...a, i: 99999 } : a));
      },
    ];
    for (const [k, edit] of edits.entries()) {
      const m: BinModel = structuredClone(base);
      edit(m);
      let b: Uint8Array;
      try {
        b = encodeBin({ formatVersion: 1, packed: false, models: [m] });
      } catch {
        continue; // the container refuses it already
      }
      expect(expectRefusedOrFine(b, `edit #${k}`)).toBe('refused');
    }
    // random attribute values on random ops
    for (let k = 0; k < 150; k++) {
      const m: BinModel = { ...base, segments: base.segments.map((s) => ({ ...s, ops: s.ops.map((o) => ({ ...o, attrs: o.attrs.map((a) => ({ ...a })) })) })) };
      const ops = m.segments.flatMap((s) => s.ops).filter((o) => o.attrs.length);
      const op = ops[rng.int(ops.length)];
      const a = op.attrs[rng.int(op.attrs.length)];
      if (a.ints) a.ints = a.ints.map((x) => (rng.int(3) === 0 ? x + rng.int(7) - 3 : x));
      else if (a.f !== undefined) a.f = [0, -1, 1e30, Number.NaN, a.f * 2][rng.int(5)];
      else if (a.i !== undefined) a.i = a.i + rng.int(5) - 2;
      else if (a.s !== undefined) a.s = ['', 'NHWC', 'int16', 'Mul', 'x'][rng.int(5)];
      expectRefusedOrFine(encodeBin({ formatVersion: 1, packed: false, models: [m] }), `attr #${k} ${op.name}.${a.name}`);
    }
  });
});

describe('feeds and packed files', () => {
  it('bad feeds are one-line input errors', () => {
    const e = BinEngine.load(bytes);
    const err = (f: Record<string, Tensor>): string => {
      try {
        e.runSync(f);
      } catch (x) {
        if (!isPtqError(x)) throw x;
        return `${x.code}: ${x.message}`;
      }
      return 'no error';
    };
    expect(err({})).toMatch(/^E_INPUT_MISSING: model input 'data' was not given/);
    expect(err({ data: new Tensor('float32', [1, 12, 8]) })).toMatch(/^E_INPUT_TYPE: model input 'data' expects uint8 \(input_type_rt nv12\), got float32/);
    expect(err({ data: new Tensor('uint8', [1, 8, 8, 3]) })).toMatch(/^E_INPUT_SHAPE: model input 'data' expects shape \[1,12,8\]/);
  });

  it('a packed file: one model by name, a one-line error for an unknown name or none', () => {
    const other = { ...compiled, name: 'second' };
    const packed = encodeBin({ formatVersion: 1, packed: true, models: [compiled, other] });
    expect(BinEngine.load(packed, 'second').model.name).toBe('second');
    expect(() => BinEngine.load(packed, 'third')).toThrow(/has no model named 'third'/);
    expect(() => BinEngine.load(packed)).toThrow(/is a packed model with 2 models/);
  });
});
