import { Rng } from '../kernels/random';
import { DType } from '../onnx/dtype';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { AttrInput, inferOp, runOp } from './tensor-shape.test.util';

/* Pools against straightforward loops written here, on random shapes. */

const prod = (v: number[]): number => v.reduce((a, b) => a * b, 1);

function coords(i: number, dims: number[]): number[] {
  const c = new Array<number>(dims.length);
  for (let d = dims.length - 1; d >= 0; d--) {
    c[d] = i % dims[d];
    i = Math.floor(i / dims[d]);
  }
  return c;
}

interface Spec {
  k: number[];
  s: number[];
  d: number[];
  pb: number[];
  pe: number[];
  ceil: boolean;
}

function outSize(n: number, i: number, g: Spec): number {
  const span = n + g.pb[i] + g.pe[i] - g.d[i] * (g.k[i] - 1) - 1;
  if (!g.ceil) return Math.floor(span / g.s[i]) + 1;
  let o = Math.ceil(span / g.s[i]) + 1;
  if ((o - 1) * g.s[i] >= n + g.pb[i]) o--; // the last window starts inside the input or its begin pad
  return o;
}

/** Max/avg/lp pooling by the definition; indices row-major or column-major over the whole tensor. */
function naivePool(x: number[], dims: number[], g: Spec, kind: 'max' | 'avg' | 'lp', opts: { includePad?: boolean; p?: number; colMajor?: boolean } = {}) {
  const [N, C, ...sp] = dims;
  const out = sp.map((n, i) => outSize(n, i, g));
  const vals: number[] = [];
  const idx: number[] = [];
  for (let pl = 0; pl < N * C; pl++) {
    for (let q = 0; q < prod(out); q++) {
      const o = coords(q, out);
      let best = -Infinity, at = -1, sum = 0, count = 0, padCount = 0;
      for (let t = 0; t < prod(g.k); t++) {
        const tap = coords(t, g.k);
        const pos = o.map((oi, i) => oi * g.s[i] + tap[i] * g.d[i] - g.pb[i]);
        if (pos.every((p, i) => p < sp[i] + g.pe[i])) padCount++;
        if (pos.some((p, i) => p < 0 || p >= sp[i])) continue;
        let flat = 0;
        if (opts.colMajor) for (let i = sp.length - 1; i >= 0; i--) flat = flat * sp[i] + pos[i];
        else for (let i = 0; i < sp.length; i++) flat = flat * sp[i] + pos[i];
        const v = x[pl * prod(sp) + pos.reduce((a, p, i) => a * sp[i] + p, 0)];
        if (v > best) {
          best = v;
          at = pl * prod(sp) + flat;
        }
        sum += kind === 'lp' ? Math.abs(v) ** (opts.p ?? 2) : v;
        count++;
      }
      vals.push(kind === 'max' ? best : kind === 'lp' ? sum ** (1 / (opts.p ?? 2)) : sum / (opts.includePad ? padCount : count));
      idx.push(at);
    }
  }
  return { dims: [N, C, ...out], vals, idx };
}

function randomSpec(rng: Rng, nd: number): { g: Spec; sp: number[] } {
  const k = Array.from({ length: nd }, () => 1 + rng.int(4));
  const s = Array.from({ length: nd }, () => 1 + rng.int(3));
  const d = Array.from({ length: nd }, () => (rng.int(3) === 0 ? 2 : 1));
  const pb = k.map((kk) => rng.int(kk)), pe = k.map((kk) => rng.int(kk));
  const sp = k.map((kk, i) => d[i] * (kk - 1) + 1 + rng.int(nd === 3 ? 4 : 9));
  return { g: { k, s, d, pb, pe, ceil: rng.int(2) === 1 }, sp };
}

function expectClose(got: Tensor, dims: number[], want: number[], what: string): void {
  expect(got.dims).toEqual(dims);
  const g = got.toNumbers();
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(g[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])))) throw new Error(`${what}: element ${i} is ${g[i]}, expected ${want[i]}`);
  }
}

const attrsOf = (g: Spec): Record<string, AttrInput> => ({ kernel_shape: g.k, strides: g.s, dilations: g.d, pads: [...g.pb, ...g.pe], ceil_mode: g.ceil ? 1 : 0 });

describe('MaxPool', () => {
  it('matches the definition with pads, strides, dilations, ceil_mode and both Indices orders', () => {
    const rng = new Rng('maxpool');
    for (let t = 0; t < 120; t++) {
      const nd = 1 + (t % 3);
      const { g, sp } = randomSpec(rng, nd);
      const dims = [1 + rng.int(2), 1 + rng.int(3), ...sp];
      const x = tensorFrom('float32', dims, Array.from({ length: prod(dims) }, () => rng.uniform(-1, 1)));
      const colMajor = rng.int(2) === 1;
      const want = naivePool(x.toNumbers(), dims, g, 'max', { colMajor });
      const [y, i] = runOp('MaxPool', 12, [x], { ...attrsOf(g), storage_order: colMajor ? 1 : 0 }, 2);
      expectClose(y, want.dims, want.vals, `case ${t} [${dims}] ${JSON.stringify(g)}`);
      expect(i.dtype).toBe('int64');
      expect(i.toNumbers()).toEqual(want.idx);
      expect(inferOp('MaxPool', 12, [{ dtype: 'float32', shape: dims }], attrsOf(g), 2).map((f) => f.shape)).toEqual([want.dims, want.dims]);
    }
  });

  it('pools int8 and uint8 tensors in their own type', () => {
    const rng = new Rng('maxpool-int');
    for (const dtype of ['int8', 'uint8'] as DType[]) {
      const dims = [1, 2, 7, 6];
      const vals = Array.from({ length: prod(dims) }, () => (dtype === 'int8' ? rng.int(256) - 128 : rng.int(256)));
      const g: Spec = { k: [3, 2], s: [2, 2], d: [1, 1], pb: [1, 0], pe: [1, 1], ceil: false };
      const y = runOp('MaxPool', 12, [tensorFrom(dtype, dims, vals)], attrsOf(g))[0];
      expect(y.dtype).toBe(dtype);
      const want = naivePool(vals, dims, g, 'max');
      expect(y.dims).toEqual(want.dims);
      expect(y.toNumbers()).toEqual(want.vals);
    }
  });

  it('uses SAME_UPPER / SAME_LOWER pads', () => {
    const x = tensorFrom('float32', [1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i));
    // out 2×2 from stride 2, kernel 3 → total pad 1: at the end (UPPER) or the beginning (LOWER)
    expect(runOp('MaxPool', 12, [x], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' })[0].toNumbers()).toEqual([10, 11, 14, 15]);
    expect(runOp('MaxPool', 12, [x], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_LOWER' })[0].toNumbers()).toEqual([5, 7, 13, 15]);
  });
});

describe('AveragePool and LpPool', () => {
  it('match the definition with and without count_include_pad', () => {
    const rng = new Rng('avgpool');
    for (let t = 0; t < 120; t++) {
      const nd = 1 + (t % 3);
      const { g, sp } = randomSpec(rng, nd);
      if (t % 2) g.d = g.d.map(() => 1);
      const dims = [1 + rng.int(2), 1 + rng.int(3), ...sp];
      const x = tensorFrom('float32', dims, Array.from({ length: prod(dims) }, () => rng.uniform(-1, 1)));
      const includePad = rng.int(2) === 1;
      const want = naivePool(x.toNumbers(), dims, g, 'avg', { includePad });
      expectClose(runOp('AveragePool', 19, [x], { ...attrsOf(g), count_include_pad: includePad ? 1 : 0 })[0], want.dims, want.vals, `avg case ${t} ${JSON.stringify(g)} include ${includePad}`);
      const p = 1 + rng.int(3);
      const lp = naivePool(x.toNumbers(), dims, g, 'lp', { p });
      expectClose(runOp('LpPool', 18, [x], { ...attrsOf(g), p })[0], lp.dims, lp.vals, `lp case ${t}`);
    }
  });
});

describe('global pools', () => {
  it('reduce every spatial dim', () => {
    const rng = new Rng('global');
    for (const dims of [[2, 3, 5], [1, 4, 3, 7], [2, 2, 2, 3, 4]]) {
      const vals = Array.from({ length: prod(dims) }, () => rng.uniform(-1, 1));
      const x = tensorFrom('float32', dims, vals);
      const vol = prod(dims.slice(2));
      const planes = Array.from({ length: dims[0] * dims[1] }, (_, i) => vals.slice(i * vol, (i + 1) * vol));
      const outDims = [dims[0], dims[1], ...dims.slice(2).map(() => 1)];
      expectClose(runOp('GlobalAveragePool', 1, [x])[0], outDims, planes.map((p) => p.reduce((a, b) => a + b) / vol), 'avg');
      expectClose(runOp('GlobalMaxPool', 1, [x])[0], outDims, planes.map((p) => Math.max(...p)), 'max');
      expectClose(runOp('GlobalLpPool', 2, [x], { p: 3 })[0], outDims, planes.map((p) => p.reduce((a, b) => a + Math.abs(b) ** 3, 0) ** (1 / 3)), 'lp');
      expect(inferOp('GlobalAveragePool', 1, [{ dtype: 'float32', shape: ['N', ...dims.slice(1)] }])[0].shape).toEqual(['N', dims[1], ...outDims.slice(2)]);
    }
  });
});
