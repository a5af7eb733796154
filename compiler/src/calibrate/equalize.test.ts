import '../ops';
import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { applyChannelScales, equalizedModel } from '../quantize/equalize';
import { randomFeeds } from '../quantize/quantize.test.util';
import { ReferenceEngine } from '../runtime/reference';
import { collectRanges } from './collect';
import { equalizationScales, equalizationSites } from './equalize';

// bound once: global lookups are slow inside jest's vm context
const { abs, fround, max, min, round } = Math;

/**
 * x → c1 (16) → Relu → c2 (16, group 1) → Relu → dw (16, depthwise) → Relu → pw (8) → Clip(0, 6)
 * → c3 → GAP → Gemm; c1's output channels scaled by 2^-(c mod 8) so their ranges differ by up to 128×.
 */
function net(): Model {
  const b = new GraphBuilder('eq', { opset: 13, seed: 9 });
  const x = b.input('x', 'float32', [1, 3, 12, 12]);
  const a1 = b.relu(b.conv(x, { outChannels: 16, kernel: 3, pad: 1, name: 'c1' }), 'r1');
  const a2 = b.relu(b.conv(a1, { outChannels: 16, kernel: 1, name: 'c2' }), 'r2');
  const a3 = b.relu(b.conv(a2, { outChannels: 16, kernel: 3, pad: 1, group: 16, name: 'dw' }), 'r3');
  const a4 = b.clip(b.conv(a3, { outChannels: 8, kernel: 1, name: 'pw' }), 0, 6, 'r4');
  const a5 = b.conv(a4, { outChannels: 8, kernel: 1, name: 'c3' });
  b.output(b.gemm(b.flatten(b.globalAvgPool(a5)), 4, { name: 'fc' }), 'y');
  const m = b.build();
  const g = m.graph;
  for (const name of ['c1', 'dw']) {
    const w = g.initializers.get(`${name}.weight`)!;
    const bias = g.initializers.get(`${name}.bias`)!;
    const v = w.toFloat32();
    const inner = v.length / w.dims[0];
    const f = (c: number): number => 2 ** -(c % 8) * (1 + 0.1 * c);
    g.initializers.set(`${name}.weight`, new Tensor('float32', w.dims, v.map((u, i) => fround(u * f(Math.floor(i / inner))))));
    g.initializers.set(`${name}.bias`, new Tensor('float32', bias.dims, bias.toFloat32().map((u, c) => fround(u * f(c)))));
  }
  return m;
}

/**
 * Mean over the channels of ‖fq(t_c) − t_c‖² / ‖t_c‖², with one int8 scale for the whole tensor
 * (absmax / 127), in the original units (÷ s[c]): what a narrow channel loses to the shared scale.
 */
function perTensorError(values: Float32Array[], channels: number, s?: number[]): number {
  let m = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) m = max(m, abs(v[i]));
  const scale = fround(m / 127);
  const err = new Float64Array(channels);
  const sig = new Float64Array(channels);
  for (const v of values) {
    const inner = v.length / channels;
    for (let i = 0; i < v.length; i++) {
      const c = Math.floor(i / inner);
      const f = s ? s[c] : 1;
      const q = max(-128, min(127, round(v[i] / scale))) * scale;
      err[c] += ((q - v[i]) / f) ** 2;
      sig[c] += (v[i] / f) ** 2;
    }
  }
  let sum = 0;
  let n = 0;
  for (let c = 0; c < channels; c++) {
    if (sig[c] > 0) {
      sum += err[c] / sig[c];
      n++;
    }
  }
  return sum / n;
}

describe('per-channel activation equalisation', () => {
  const model = net();
  const feeds = randomFeeds(model, 8, 4);

  it('finds the activations between BPU Convs (through a Relu at most), not across a Clip or into a Gemm', () => {
    const sites = equalizationSites(model, new Set());
    expect(sites.map((s) => [s.tensor, s.producer, s.relu, s.readers, s.depthwiseReaders])).toEqual([
      ['r1', 'c1', true, ['c2'], false],
      ['r2', 'c2', true, ['dw'], true],
      ['r3', 'dw', true, ['pw'], false],
    ]);
    // a CPU reader (or producer) rules a site out
    expect(equalizationSites(model, new Set(['c2'])).map((s) => s.tensor)).toEqual(['r3']);
  });

  it('keeps the float function (bit for bit: powers of two) and cuts the per-tensor quantization error', async () => {
    const sites = equalizationSites(model, new Set());
    const ranges = await collectRanges(model, feeds, sites.map((s) => s.tensor), { perChannel: true });
    const scales = equalizationScales(model, sites, Object.fromEntries(Object.entries(ranges.tensors).map(([k, r]) => [k, r.perChannelAbsmax!])));
    expect(Object.keys(scales).sort()).toEqual(['r1', 'r2', 'r3']);
    for (const s of Object.values(scales)) for (const f of s) expect(Number.isInteger(Math.log2(f))).toBe(true);
    // the depthwise reader of r2 takes the full equalisation: channel ranges within a factor √2·(1.1)
    const eq = equalizedModel(model, scales);
    const a = new ReferenceEngine(model);
    const b = new ReferenceEngine(eq);
    const names = Object.keys(scales);
    const before = new Map<string, Float32Array[]>(names.map((n) => [n, []]));
    const after = new Map<string, Float32Array[]>(names.map((n) => [n, []]));
    for (const f of feeds) {
      const ra = a.runSync(f, { fetch: names });
      const rb = b.runSync(f, { fetch: names });
      const ya = ra.y.toFloat32();
      const yb = rb.y.toFloat32();
      let scale = 0;
      ya.forEach((v) => (scale = max(scale, abs(v))));
      ya.forEach((v, i) => expect(abs(yb[i] - v)).toBeLessThanOrEqual(1e-4 * scale));
      expect(Array.from(yb)).toEqual(Array.from(ya)); // exact, in fact
      for (const n of names) {
        before.get(n)!.push(ra[n].toFloat32());
        after.get(n)!.push(rb[n].toFloat32());
      }
    }
    const r2 = after.get('r2')!;
    const chMax = new Float64Array(16);
    for (const v of r2) for (let i = 0; i < v.length; i++) chMax[Math.floor(i / 144)] = max(chMax[Math.floor(i / 144)], abs(v[i]));
    const live = Array.from(chMax).filter((v) => v > 0);
    expect(max(...live) / min(...live)).toBeLessThan(2 * 1.6);
    for (const n of names) {
      const e0 = perTensorError(before.get(n)!, 16);
      const e1 = perTensorError(after.get(n)!, 16, scales[n]);
      expect(e1).toBeLessThan(0.25 * e0);
    }
  });

  it('refuses factors for a tensor that is not a site, or that are not positive', () => {
    const m = net();
    expect(() => applyChannelScales(m, { r4: new Array<number>(8).fill(2) })).toThrow(expect.objectContaining({ code: 'E_EQUALIZE', subject: 'r4' }));
    expect(() => applyChannelScales(m, { r1: new Array<number>(16).fill(0) })).toThrow(/finite and > 0/);
    expect(() => applyChannelScales(m, { r1: [2, 2] })).toThrow(/16|2 output channels/);
  });
});
