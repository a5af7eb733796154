import { GemmBackend, setGemmBackend } from '../kernels/gemm';
import { Rng } from '../kernels/random';
import { wasmKernels } from '../kernels/wasm-simd';
import { Tensor } from '../onnx/tensor';
import { AttrInput, inferOp, runOp } from './tensor-shape.test.util';

/* Conv and ConvTranspose against straightforward loops written here, on random shapes. */

const backends: GemmBackend[] = wasmKernels() ? ['wasm-simd', 'js'] : ['js'];
afterAll(() => setGemmBackend(backends[0]));

const prod = (v: number[]): number => v.reduce((a, b) => a * b, 1);
const randT = (rng: Rng, dims: number[]): Tensor => new Tensor('float32', dims, Float32Array.from({ length: prod(dims) }, () => rng.uniform(-1, 1)));

/** Unravel a flat index of `dims` (row-major). */
function coords(i: number, dims: number[]): number[] {
  const c = new Array<number>(dims.length);
  for (let d = dims.length - 1; d >= 0; d--) {
    c[d] = i % dims[d];
    i = Math.floor(i / dims[d]);
  }
  return c;
}

function ravel(c: number[], dims: number[]): number {
  let i = 0;
  for (let d = 0; d < dims.length; d++) i = i * dims[d] + c[d];
  return i;
}

interface Geo {
  k: number[];
  s: number[];
  d: number[];
  pb: number[];
  pe: number[];
  group: number;
}

/** Conv by its definition, in doubles. */
function naiveConv(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geo): { dims: number[]; data: Float64Array } {
  const [N, C, ...inSp] = x.dims;
  const [M, Cg] = w.dims;
  const nd = inSp.length;
  const outSp = inSp.map((n, i) => Math.floor((n + g.pb[i] + g.pe[i] - g.d[i] * (g.k[i] - 1) - 1) / g.s[i]) + 1);
  const out = new Float64Array(N * M * prod(outSp));
  const xd = x.array as Float32Array, wd = w.array as Float32Array;
  const Mg = M / g.group;
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const grp = Math.floor(m / Mg);
      for (let q = 0; q < prod(outSp); q++) {
        const o = coords(q, outSp);
        let s = b ? (b.array as Float32Array)[m] : 0;
        for (let c = 0; c < Cg; c++) {
          for (let t = 0; t < prod(g.k); t++) {
            const tap = coords(t, g.k);
            const pos = o.map((oi, i) => oi * g.s[i] + tap[i] * g.d[i] - g.pb[i]);
            if (pos.some((v, i) => v < 0 || v >= inSp[i])) continue;
            s += xd[(n * C + grp * Cg + c) * prod(inSp) + ravel(pos, inSp)] * wd[(m * Cg + c) * prod(g.k) + t];
          }
        }
        out[(n * M + m) * prod(outSp) + q] = s;
      }
    }
  }
  return { dims: [N, M, ...outSp], data: out };
}

/** ConvTranspose by scattering every input element, in doubles (pads given explicitly). */
function naiveConvT(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geo, outSp: number[]): Float64Array {
  const [N, C, ...inSp] = x.dims;
  const [, Mg] = w.dims;
  const M = Mg * g.group;
  const Cg = C / g.group;
  const out = new Float64Array(N * M * prod(outSp));
  const xd = x.array as Float32Array, wd = w.array as Float32Array;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const grp = Math.floor(c / Cg);
      for (let q = 0; q < prod(inSp); q++) {
        const i = coords(q, inSp);
        const v = xd[(n * C + c) * prod(inSp) + q];
        for (let m = 0; m < Mg; m++) {
          for (let t = 0; t < prod(g.k); t++) {
            const tap = coords(t, g.k);
            const pos = i.map((ii, d) => ii * g.s[d] + tap[d] * g.d[d] - g.pb[d]);
            if (pos.some((p, d) => p < 0 || p >= outSp[d])) continue;
            out[(n * M + grp * Mg + m) * prod(outSp) + ravel(pos, outSp)] += v * wd[(c * Mg + m) * prod(g.k) + t];
          }
        }
      }
    }
  }
  if (b) for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) for (let q = 0; q < prod(outSp); q++) out[(n * M + m) * prod(outSp) + q] += (b.array as Float32Array)[m];
  return out;
}

function expectClose(got: Tensor, dims: number[], want: Float64Array, what: string): void {
  expect(got.dims).toEqual(dims);
  const g = got.array as Float32Array;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(g[i] - want[i]) / (1 + Math.abs(want[i])));
  if (!(worst < 1e-5)) throw new Error(`${what}: error ${worst}`);
}

function randomGeo(rng: Rng, nd: number, depthwise: boolean): { g: Geo; C: number; M: number; inSp: number[] } {
  const k = Array.from({ length: nd }, () => 1 + rng.int(nd === 3 ? 3 : 5));
  const s = Array.from({ length: nd }, () => 1 + rng.int(3));
  const d = Array.from({ length: nd }, () => (rng.int(4) === 0 ? 2 : 1));
  const pb = Array.from({ length: nd }, () => rng.int(3));
  const pe = Array.from({ length: nd }, () => rng.int(3));
  const inSp = k.map((kk, i) => Math.max(1, d[i] * (kk - 1) + 1 - pb[i] - pe[i]) + rng.int(nd === 3 ? 5 : nd === 2 ? 14 : 30));
  const group = depthwise ? 1 + rng.int(6) : [1, 1, 1, 2, 3][rng.int(5)];
  const C = depthwise ? group : group * (1 + rng.int(5));
  const M = group * (depthwise ? 1 + rng.int(3) : 1 + rng.int(9));
  return { g: { k, s, d, pb, pe, group }, C, M, inSp };
}

let layers: { x: Tensor; w: Tensor; b: Tensor; attrs: Record<string, AttrInput>; want: { dims: number[]; data: Float64Array } }[] | undefined;

/** Layer shapes of real CNNs (smaller), with their expected outputs computed once. */
function layerCases(): NonNullable<typeof layers> {
  if (layers) return layers;
  const rng = new Rng('conv-layers');
  const shapes: [number[], number[], Record<string, AttrInput>][] = [
    [[1, 3, 30, 30], [16, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }],
    [[1, 24, 13, 13], [40, 24, 1, 1], {}],
    [[1, 100, 7, 7], [20, 100, 3, 3], { pads: [1, 1, 1, 1] }],
    [[2, 16, 17, 19], [16, 1, 3, 3], { pads: [1, 1, 1, 1], group: 16 }],
    [[1, 16, 17, 19], [32, 1, 3, 3], { pads: [1, 0, 1, 2], group: 16, strides: [2, 2] }],
    [[1, 8, 33, 33], [8, 1, 5, 5], { pads: [2, 2, 2, 2], group: 8, strides: [1, 3] }],
    [[1, 300, 4, 4], [8, 300, 1, 1], {}],
    [[1, 20, 9, 9], [12, 20, 1, 1], { strides: [2, 2] }],
    [[1, 4, 40, 40], [5, 4, 7, 7], { strides: [2, 2], pads: [3, 3, 3, 3] }],
  ];
  layers = shapes.map(([xs, ws, attrs]) => {
    const x = randT(rng, xs), w = randT(rng, ws), b = randT(rng, [ws[0]]);
    const nd = xs.length - 2;
    const pads = (attrs.pads as number[] | undefined) ?? new Array<number>(2 * nd).fill(0);
    const g: Geo = { k: ws.slice(2), s: (attrs.strides as number[] | undefined) ?? [1, 1], d: [1, 1], pb: pads.slice(0, nd), pe: pads.slice(nd), group: (attrs.group as number | undefined) ?? 1 };
    return { x, w, b, attrs, want: naiveConv(x, w, b, g) };
  });
  return layers;
}

describe.each(backends)('Conv (%s)', (backend) => {
  beforeAll(() => setGemmBackend(backend));

  it('matches the definition on random 1-D, 2-D and 3-D shapes with groups, strides, dilations and pads', () => {
    const rng = new Rng(`conv-${backend}`);
    for (let t = 0; t < 150; t++) {
      const nd = t % 10 === 0 ? 3 : t % 3 === 0 ? 1 : 2;
      const { g, C, M, inSp } = randomGeo(rng, nd, t % 4 === 1);
      const N = 1 + rng.int(2);
      const x = randT(rng, [N, C, ...inSp]);
      const w = randT(rng, [M, C / g.group, ...g.k]);
      const b = rng.int(3) ? randT(rng, [M]) : undefined;
      const want = naiveConv(x, w, b, g);
      const attrs: Record<string, AttrInput> = { strides: g.s, dilations: g.d, pads: [...g.pb, ...g.pe], group: g.group };
      if (rng.int(2)) attrs.kernel_shape = g.k;
      const got = runOp('Conv', 13, b ? [x, w, b] : [x, w], attrs)[0];
      expectClose(got, want.dims, want.data, `case ${t} x[${x.dims}] w[${w.dims}] ${JSON.stringify(attrs)}`);
    }
  });

  it('matches on ResNet/MobileNet-like layers (1x1, 3x3 s1/s2, depthwise, tall K), cached weights too', () => {
    for (const { x, w, b, attrs, want } of layerCases()) {
      for (let run = 0; run < 3; run++) {
        // runs 2 and 3 use the packed weights cached on `w`
        expectClose(runOp('Conv', 13, [x, w, b], attrs)[0], want.dims, want.data, `x[${x.dims}] w[${w.dims}] run ${run}`);
      }
    }
  });

  it('resolves auto_pad SAME_UPPER / SAME_LOWER / VALID', () => {
    const rng = new Rng('conv-autopad');
    for (const autoPad of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) {
      for (let t = 0; t < 12; t++) {
        const k = [1 + rng.int(4), 1 + rng.int(4)], s = [1 + rng.int(3), 1 + rng.int(3)], d = [1, 1 + rng.int(2)];
        const inSp = [k[0] + rng.int(9), d[1] * (k[1] - 1) + 1 + rng.int(9)];
        const x = randT(rng, [1, 2, ...inSp]), w = randT(rng, [3, 2, ...k]);
        const pb = [0, 0], pe = [0, 0];
        if (autoPad !== 'VALID') {
          for (let i = 0; i < 2; i++) {
            const out = Math.ceil(inSp[i] / s[i]);
            const total = Math.max(0, (out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - inSp[i]);
            pb[i] = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
            pe[i] = total - pb[i];
          }
        }
        const want = naiveConv(x, w, undefined, { k, s, d, pb, pe, group: 1 });
        const got = runOp('Conv', 11, [x, w], { auto_pad: autoPad, strides: s, dilations: d })[0];
        expectClose(got, want.dims, want.data, `${autoPad} in [${inSp}] k [${k}] s [${s}] d [${d}]`);
        if (autoPad !== 'VALID') expect(got.dims.slice(2)).toEqual(inSp.map((n, i) => Math.ceil(n / s[i])));
      }
    }
  });
});

describe.each(backends)('ConvTranspose (%s)', (backend) => {
  beforeAll(() => setGemmBackend(backend));

  it('matches the scatter definition on random shapes with groups, strides, dilations, pads and output_padding', () => {
    const rng = new Rng(`convt-${backend}`);
    for (let t = 0; t < 80; t++) {
      const nd = t % 8 === 0 ? 3 : t % 3 === 0 ? 1 : 2;
      const k = Array.from({ length: nd }, () => 1 + rng.int(nd === 3 ? 3 : 4));
      const s = Array.from({ length: nd }, () => 1 + rng.int(3));
      const d = Array.from({ length: nd }, () => 1 + (rng.int(4) === 0 ? 1 : 0));
      const op = s.map((si) => rng.int(si));
      const pb = k.map((kk) => rng.int(kk)), pe = k.map((kk) => rng.int(kk));
      const inSp = Array.from({ length: nd }, () => 1 + rng.int(nd === 3 ? 4 : 8));
      const group = [1, 1, 2, 3][rng.int(4)];
      const C = group * (1 + rng.int(4)), Mg = 1 + rng.int(4);
      const x = randT(rng, [1 + rng.int(2), C, ...inSp]);
      const w = randT(rng, [C, Mg, ...k]);
      const b = rng.int(2) ? randT(rng, [Mg * group]) : undefined;
      const outSp = inSp.map((n, i) => s[i] * (n - 1) + op[i] + (k[i] - 1) * d[i] + 1 - pb[i] - pe[i]);
      if (outSp.some((o) => o < 1)) continue;
      const g: Geo = { k, s, d, pb, pe, group };
      const want = naiveConvT(x, w, b, g, outSp);
      const attrs: Record<string, AttrInput> = { strides: s, dilations: d, pads: [...pb, ...pe], output_padding: op, group };
      const got = runOp('ConvTranspose', 13, b ? [x, w, b] : [x, w], attrs)[0];
      expectClose(got, [x.dims[0], Mg * group, ...outSp], want, `case ${t} x[${x.dims}] w[${w.dims}] ${JSON.stringify(attrs)}`);
      const inferred = inferOp('ConvTranspose', 13, [{ dtype: 'float32', shape: x.dims }, { dtype: 'float32', shape: w.dims }], attrs)[0];
      expect(inferred.shape).toEqual(got.dims);
    }
  });

  it('derives pads from output_shape and from SAME_UPPER / SAME_LOWER', () => {
    const rng = new Rng('convt-shape');
    const x = randT(rng, [1, 2, 4, 5]), w = randT(rng, [2, 3, 3, 3]);
    // full size s·(in−1) + k = [3·3+3, 2·4+3] = [12, 11]; asked [10, 10] → total pads [2, 1]
    const got = runOp('ConvTranspose', 13, [x, w], { strides: [3, 2], output_shape: [10, 10] })[0];
    expectClose(got, [1, 3, 10, 10], naiveConvT(x, w, undefined, { k: [3, 3], s: [3, 2], d: [1, 1], pb: [1, 1], pe: [1, 0], group: 1 }, [10, 10]), 'output_shape');
    const up = runOp('ConvTranspose', 13, [x, w], { strides: [2, 2], auto_pad: 'SAME_UPPER' })[0];
    // full [9, 11], target in·s = [8, 10]: total 1 each, SAME_UPPER puts it at the end
    expectClose(up, [1, 3, 8, 10], naiveConvT(x, w, undefined, { k: [3, 3], s: [2, 2], d: [1, 1], pb: [0, 0], pe: [1, 1], group: 1 }, [8, 10]), 'SAME_UPPER');
    const low = runOp('ConvTranspose', 13, [x, w], { strides: [2, 2], auto_pad: 'SAME_LOWER' })[0];
    expectClose(low, [1, 3, 8, 10], naiveConvT(x, w, undefined, { k: [3, 3], s: [2, 2], d: [1, 1], pb: [1, 1], pe: [0, 0], group: 1 }, [8, 10]), 'SAME_LOWER');
  });
});

describe('Conv details', () => {
  it('computes float64 in double precision', () => {
    const rng = new Rng('conv64');
    const x32 = randT(rng, [1, 3, 6, 7]), w32 = randT(rng, [4, 3, 3, 2]);
    const x = new Tensor('float64', x32.dims, Float64Array.from(x32.array as Float32Array));
    const w = new Tensor('float64', w32.dims, Float64Array.from(w32.array as Float32Array));
    const got = runOp('Conv', 13, [x, w], { pads: [1, 0, 1, 1], strides: [1, 2] })[0];
    const want = naiveConv(x32, w32, undefined, { k: [3, 2], s: [1, 2], d: [1, 1], pb: [1, 0], pe: [1, 1], group: 1 });
    expect(got.dtype).toBe('float64');
    const g = got.array as Float64Array;
    for (let i = 0; i < want.data.length; i++) expect(Math.abs(g[i] - want.data[i])).toBeLessThan(1e-12);
  });

  it('computes float64 ConvTranspose in double precision', () => {
    const rng = new Rng('convt64');
    const x32 = randT(rng, [2, 4, 3, 5]), w32 = randT(rng, [4, 3, 2, 3]), b32 = randT(rng, [6]);
    const to64 = (t: Tensor): Tensor => new Tensor('float64', t.dims, Float64Array.from(t.array as Float32Array));
    const attrs = { strides: [2, 1], pads: [1, 0, 0, 1], output_padding: [1, 0], group: 2 };
    const got = runOp('ConvTranspose', 13, [to64(x32), to64(w32), to64(b32)], attrs)[0];
    const outSp = [2 * 2 + 1 + 2 - 1, 4 + 3 - 1];
    const want = naiveConvT(x32, w32, b32, { k: [2, 3], s: [2, 1], d: [1, 1], pb: [1, 0], pe: [0, 1], group: 2 }, outSp);
    expect(got.dtype).toBe('float64');
    expect(got.dims).toEqual([2, 6, ...outSp]);
    const g = got.array as Float64Array;
    for (let i = 0; i < want.length; i++) expect(Math.abs(g[i] - want[i])).toBeLessThan(1e-12);
  });

  it('infers output shapes, symbolic batch included', () => {
    const f = inferOp('Conv', 13, [{ dtype: 'float32', shape: ['N', 3, 224, 224] }, { dtype: 'float32', shape: [32, 3, 3, 3] }], { strides: [2, 2], pads: [1, 1, 1, 1] });
    expect(f[0]).toEqual({ dtype: 'float32', shape: ['N', 32, 112, 112] });
    const g = inferOp('Conv', 13, [{ dtype: 'float32', shape: [1, 8, 'H', 10] }, { dtype: 'float32', shape: [8, 1, 3, 3] }], { group: 8, auto_pad: 'SAME_UPPER', strides: [2, 2] });
    expect(g[0].shape).toEqual([1, 8, '?', 5]);
  });

  it('rejects inconsistent groups and shapes with a PtqError naming the node', () => {
    const x = new Tensor('float32', [1, 6, 5, 5]);
    expect(() => runOp('Conv', 13, [x, new Tensor('float32', [4, 3, 3, 3])], { group: 4 })).toThrow(/conv_under_test.*group 4/);
    expect(() => runOp('Conv', 13, [x, new Tensor('float32', [4, 4, 3, 3])])).toThrow(/expects 4 input channels/);
    expect(() => runOp('Conv', 13, [x, new Tensor('float32', [4, 6, 7, 7])])).toThrow(/smaller than the window/);
  });
});
