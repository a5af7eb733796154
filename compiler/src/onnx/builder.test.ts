import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { OrtEngine } from '../runtime/ort';
import { GraphBuilder, outSize } from './builder';
import { decodeModel } from './decode';
import { encodeModel } from './encode';
import { Model } from './ir';
import { Tensor } from './tensor';
import { Rng } from '../kernels/random';

/** A small CNN touching every builder method with weights. */
function smallNet(seed: number, opset = 13): Model {
  const b = new GraphBuilder('small', { opset, seed });
  const x = b.input('data', 'float32', [1, 3, 33, 33]);
  let y = b.relu(b.batchNorm(b.conv(x, { outChannels: 8, kernel: 3, stride: 2, pad: 1, bias: false })));
  y = b.maxPool(y, { kernel: 3, stride: 2, ceilMode: opset >= 10 }); // 17 → 8 (with or without ceil)
  const dw = b.clip(b.conv(y, { outChannels: 8, kernel: 3, pad: 1, group: 8 }), 0, 6);
  const pw = b.conv(dw, { outChannels: 8, kernel: 1 });
  y = b.add(y, pw);
  const wide = b.conv(y, { outChannels: 4, kernel: 3, pad: [1, 2, 1, 0], dilation: 2 });
  y = b.concat([b.avgPool(y, { kernel: 2, stride: 2 }), b.avgPool(b.conv(y, { outChannels: 4, kernel: 1 }), { kernel: 2, stride: 2 })]);
  const flat = b.reshape(b.globalAvgPool(y), [0, -1]);
  b.output(b.softmax(b.gemm(flat, 10)), 'prob');
  b.output(b.sigmoid(b.flatten(wide)), 'side');
  return b.build();
}

describe('GraphBuilder', () => {
  it('is deterministic: same seed, same bytes; another seed, other weights', () => {
    const a = encodeModel(smallNet(1));
    const b = encodeModel(smallNet(1));
    const c = encodeModel(smallNet(2));
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    expect(a.byteLength).toBe(c.byteLength);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(c))).not.toBe(0);
  });

  it('builds a valid graph with typed graph inputs and outputs that survives a round trip', () => {
    const m = smallNet(1);
    expect(() => m.graph.validate()).not.toThrow();
    expect(m.graph.inputs).toEqual([{ name: 'data', type: { dtype: 'float32', shape: [1, 3, 33, 33] } }]);
    expect(m.graph.outputs.map((o) => [o.name, o.type?.shape])).toEqual([
      ['prob', [1, 10]],
      ['side', [1, 4 * 6 * 6]],
    ]);
    const back = decodeModel(encodeModel(m));
    expect(back.graph.nodes.map((n) => n.opType)).toEqual(m.graph.nodes.map((n) => n.opType));
    expect(back.opset()).toBe(13);
    expect(back.graph.initializers.size).toBe(m.graph.initializers.size);
  });

  it('loads in onnxruntime, which computes the shapes the builder tracked', async () => {
    const m = smallNet(1);
    const engine = await OrtEngine.create(m);
    try {
      const feeds = { data: new Tensor('float32', [1, 3, 33, 33], new Rng(3).fillNormal(new Float32Array(3 * 33 * 33))) };
      const out = await engine.run(feeds);
      expect(out.prob.dims).toEqual([1, 10]);
      expect(out.side.dims).toEqual([1, 144]);
      const p = out.prob.toFloat32();
      expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    } finally {
      await engine.dispose();
    }
  });

  it('writes Conv/Gemm attributes with the meaning the builder intends (checked against a direct computation)', async () => {
    const b = new GraphBuilder('check', { seed: 5 });
    const x = b.input('x', 'float32', [1, 2, 6, 5]);
    const c = b.conv(x, { outChannels: 4, kernel: [3, 2], stride: [2, 1], pad: [1, 0, 0, 1], group: 2 });
    const g = b.gemm(b.flatten(c), 3);
    b.output(g, 'y');
    const m = b.build();
    expect(c.shape).toEqual([1, 4, 3, 5]);
    const inp = new Rng(9).fillNormal(new Float32Array(60));
    const engine = await OrtEngine.create(m);
    const got = (await engine.run({ x: new Tensor('float32', [1, 2, 6, 5], inp) })).y.toFloat32();
    await engine.dispose();
    // direct loops over the initializers: grouped conv (1 input channel per group), then x·Wᵀ + b
    const W = m.graph.initializers.get(`${c.name}.weight`)!.toFloat32();
    const B = m.graph.initializers.get(`${c.name}.bias`)!.toFloat32();
    const conv = new Float32Array(4 * 3 * 5);
    for (let o = 0; o < 4; o++) {
      const ci = o < 2 ? 0 : 1;
      for (let oy = 0; oy < 3; oy++) {
        for (let ox = 0; ox < 5; ox++) {
          let s = B[o];
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 2; kx++) {
              const iy = oy * 2 - 1 + ky;
              const ix = ox + kx;
              if (iy < 0 || iy >= 6 || ix < 0 || ix >= 5) continue;
              s += inp[ci * 30 + iy * 5 + ix] * W[o * 6 + ky * 2 + kx];
            }
          }
          conv[o * 15 + oy * 5 + ox] = s;
        }
      }
    }
    const GW = m.graph.initializers.get(`${g.name}.weight`)!.toFloat32();
    const GB = m.graph.initializers.get(`${g.name}.bias`)!.toFloat32();
    for (let j = 0; j < 3; j++) {
      let s = GB[j];
      for (let i = 0; i < 60; i++) s += conv[i] * GW[j * 60 + i];
      expect(got[j]).toBeCloseTo(s, 4);
    }
  });

  it('keeps activations O(1) through a deep BN/ReLU stack (BN statistics follow the estimated moments)', async () => {
    const b = new GraphBuilder('deep', { seed: 4 });
    let x = b.input('x', 'float32', [1, 8, 16, 16]);
    for (let i = 0; i < 12; i++) {
      const y = b.batchNorm(b.conv(b.relu(x), { outChannels: 8, kernel: 3, pad: 1, bias: false }), { gain: 0.5 });
      x = b.add(x, y);
    }
    b.output(x, 'y');
    const engine = await OrtEngine.create(b.build());
    const out = (await engine.run({ x: new Tensor('float32', [1, 8, 16, 16], new Rng(1).fillNormal(new Float32Array(2048))) })).y.toFloat32();
    await engine.dispose();
    const rms = Math.sqrt(out.reduce((s, v) => s + v * v, 0) / out.length);
    // 12 residual additions of a gain-0.5 branch: variance ≈ 1 + 12·0.25 = 4
    expect(rms).toBeGreaterThan(1);
    expect(rms).toBeLessThan(4);
  });

  it('follows the opset: Clip bounds as attributes before 11, inputs from 11; no ceil_mode before 10', () => {
    const clipOf = (opset: number) => smallNet(1, opset).graph.nodes.find((n) => n.opType === 'Clip')!;
    expect(clipOf(9).inputs).toHaveLength(1);
    expect(clipOf(9).float('max')).toBe(6);
    expect(clipOf(13).inputs).toHaveLength(3);
    const b = new GraphBuilder('old', { opset: 9 });
    const x = b.input('x', 'float32', [1, 1, 5, 5]);
    expect(() => b.maxPool(x, { kernel: 2, stride: 2, ceilMode: true })).toThrow(/opset 10/);
  });

  it('passes onnx.checker', () => {
    const py = '/usr/bin/python3';
    if (!fs.existsSync(py)) return;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'builder-')), 'small.onnx');
    fs.writeFileSync(file, encodeModel(smallNet(1)));
    const r = spawnSync(py, ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', file], { encoding: 'utf8' });
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    if (/No module named/.test(r.stderr)) return;
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('rejects misuse', () => {
    const b = new GraphBuilder('bad');
    const x = b.input('x', 'float32', [1, 6, 4, 4]);
    expect(() => b.input('x', 'float32', [1])).toThrow(/already used/);
    expect(() => b.conv(x, { outChannels: 4, kernel: 1, group: 4 })).toThrow(/divisible/);
    expect(() => b.node('Relu', ['nope'])).toThrow(/unknown value 'nope'/);
    b.output(b.relu(x));
    b.build();
    expect(() => b.relu(x)).toThrow(/build\(\) was called/);
  });

  it('computes pooling output sizes with the ceil_mode rule', () => {
    expect(outSize(112, 3, 2, 1, 0, 0, true)).toBe(56);
    expect(outSize(14, 2, 2, 1, 0, 0, true)).toBe(7);
    expect(outSize(5, 2, 2, 1, 0, 0, true)).toBe(3);
    // the last window would start in the end padding only: dropped
    expect(outSize(4, 2, 2, 1, 0, 1, true)).toBe(2);
    expect(outSize(224, 7, 2, 1, 3, 3, false)).toBe(112);
  });
});
