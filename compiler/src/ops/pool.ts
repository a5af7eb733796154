import { inferWindowDims, product, resolveWindow, shapeError, windowAttrs } from '../kernels/window';
import { arrayCtor, isBigInt, NumericArray } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpContext, OpDef, QuantRole, ValueFacts } from './registry';

/**
 * Pooling over the spatial dims of [N, C, spatial…] (1 to 3 spatial dims):
 * MaxPool (int8/uint8 too, optional Indices output, dilations, ceil_mode, storage_order),
 * AveragePool (count_include_pad, ceil_mode, dilations), LpPool, and their Global forms.
 * Padding never contributes to a max; for averages it counts only with count_include_pad
 * (and then only the explicit pads, not the overhang that ceil_mode adds).
 */
export const ops: OpDef[] = [
  windowPool('MaxPool', 'passive', 'max'),
  windowPool('AveragePool', 'active', 'avg'),
  windowPool('LpPool', 'cpu', 'lp'),
  globalPool('GlobalMaxPool', 'passive', 'max'),
  globalPool('GlobalAveragePool', 'active', 'avg'),
  globalPool('GlobalLpPool', 'cpu', 'lp'),
];

type Kind = 'max' | 'avg' | 'lp';

function windowPool(type: string, quant: QuantRole, kind: Kind): OpDef {
  return {
    type,
    quant,
    infer: (ctx, [x]) => {
      const xs = x?.shape;
      const shape = xs ? [xs[0], xs[1], ...inferWindowDims(ctx.node, windowAttrs(ctx.node, xs.length - 2), xs.slice(2), ceilMode(ctx))] : undefined;
      const out: ValueFacts[] = [{ dtype: x?.dtype, shape }];
      if (kind === 'max' && ctx.node.outputs.length > 1) out.push({ dtype: 'int64', shape });
      return out;
    },
    run: (ctx, [x]) => pool(ctx, kind, x!),
  };
}

function globalPool(type: string, quant: QuantRole, kind: Kind): OpDef {
  return {
    type,
    quant,
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape ? [x.shape[0], x.shape[1], ...x.shape.slice(2).map((): Dim => 1)] : undefined }],
    run: ({ node }, [x]) => [globalReduce(node, kind, x!)],
  };
}

const ceilMode = (ctx: OpContext): boolean => ctx.opset >= 10 && ctx.node.int('ceil_mode', 0) !== 0;

/** Window geometry over exactly three spatial dims (leading ones added for 1-D and 2-D). */
interface Geometry {
  planes: number;
  inSp: number[];
  outSp: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
}

function geometry(ctx: OpContext, x: Tensor): Geometry {
  const { node } = ctx;
  if (x.rank < 3) throw shapeError(node, `input X has rank ${x.rank}, pooling needs [N, C, spatial…]`);
  const nd = x.rank - 2;
  if (nd > 3) throw shapeError(node, `${nd} spatial dims: pooling supports up to 3`, 'reshape the input to at most 3 spatial dims');
  const win = windowAttrs(node, nd);
  const r = resolveWindow(node, win, x.dims.slice(2), ceilMode(ctx));
  const lead = <T>(v: T[], fill: T): T[] => [...new Array<T>(3 - nd).fill(fill), ...v];
  return {
    planes: x.dims[0] * x.dims[1],
    inSp: lead(x.dims.slice(2), 1),
    outSp: lead(r.out, 1),
    kernel: lead(win.kernel, 1),
    strides: lead(win.strides, 1),
    dilations: lead(win.dilations, 1),
    padsBegin: lead(r.padsBegin, 0),
    padsEnd: lead(r.padsEnd, 0),
  };
}

/** Per dim and output index: window start, first and end valid tap, taps counted with padding. */
function tapTables(g: Geometry, d: number): { start: Int32Array; lo: Int32Array; hi: Int32Array; padded: Int32Array } {
  const n = g.outSp[d], s = g.strides[d], dl = g.dilations[d], k = g.kernel[d], size = g.inSp[d];
  const start = new Int32Array(n), lo = new Int32Array(n), hi = new Int32Array(n), padded = new Int32Array(n);
  for (let o = 0; o < n; o++) {
    const st = o * s - g.padsBegin[d];
    start[o] = st;
    lo[o] = st >= 0 ? 0 : Math.ceil(-st / dl);
    hi[o] = Math.max(lo[o], Math.min(k, Math.floor((size - 1 - st) / dl) + 1));
    padded[o] = Math.max(0, Math.min(k, Math.floor((size + g.padsEnd[d] - 1 - st) / dl) + 1));
  }
  return { start, lo, hi, padded };
}

function pool(ctx: OpContext, kind: Kind, x: Tensor): Tensor[] {
  const { node } = ctx;
  if (isBigInt(x.dtype) || x.dtype === 'string' || x.dtype === 'bool') throw shapeError(node, `input type ${x.dtype} is not supported`);
  const g = geometry(ctx, x);
  const outDims = [x.dims[0], x.dims[1], ...g.outSp.slice(3 - (x.rank - 2))];
  const xd = x.array as NumericArray;
  const y = new (arrayCtor(x.dtype))(g.planes * product(g.outSp)) as NumericArray;
  const t = [0, 1, 2].map((d) => tapTables(g, d));
  if (kind === 'max') {
    const idx = node.outputs.length > 1 && node.outputs[1] ? new BigInt64Array(y.length) : undefined;
    maxPool(g, t, xd, y, idx, node.int('storage_order', 0) === 1);
    const out = [new Tensor(x.dtype, outDims, y)];
    if (idx) out.push(new Tensor('int64', outDims, idx));
    return out;
  }
  if (kind === 'avg') sumPool(g, t, xd, y, 0, node.int('count_include_pad', 0) !== 0);
  else sumPool(g, t, xd, y, node.float('p', 2), false);
  return [new Tensor(x.dtype, outDims, y)];
}

type Taps = ReturnType<typeof tapTables>;

/** Max over each window; `idx` gets the flat input index of the first maximum. */
function maxPool(g: Geometry, [tD, tH, tW]: Taps[], xd: NumericArray, y: NumericArray, idx: BigInt64Array | undefined, colMajor: boolean): void {
  const [D, H, W] = g.inSp;
  const [OD, OH, OW] = g.outSp;
  const [dD, dH, dW] = g.dilations;
  const inVol = D * H * W;
  const wStart = tW.start, wLo = tW.lo, wHi = tW.hi;
  let q = 0;
  for (let pl = 0; pl < g.planes; pl++) {
    const xb = pl * inVol;
    for (let od = 0; od < OD; od++) {
      const dLo = tD.lo[od], dHi = tD.hi[od], sd = tD.start[od];
      for (let oh = 0; oh < OH; oh++) {
        const hLo = tH.lo[oh], hHi = tH.hi[oh], sh = tH.start[oh];
        for (let ow = 0; ow < OW; ow++, q++) {
          const sw = wStart[ow], lo = wLo[ow], hi = wHi[ow];
          let best = -Infinity;
          let at = -1;
          for (let td = dLo; td < dHi; td++) {
            const plane = (sd + td * dD) * H;
            for (let th = hLo; th < hHi; th++) {
              const row = xb + (plane + sh + th * dH) * W + sw;
              for (let tw = lo; tw < hi; tw++) {
                const v = xd[row + tw * dW];
                if (v > best || at < 0) {
                  best = v;
                  at = row + tw * dW;
                }
              }
            }
          }
          y[q] = best;
          if (idx) {
            let i = at;
            if (colMajor && at >= 0) {
              const r = at - xb;
              const zw = r % W, zh = Math.floor(r / W) % H, zd = Math.floor(r / (W * H));
              i = xb + (zw * H + zh) * D + zd;
            }
            idx[q] = BigInt(i);
          }
        }
      }
    }
  }
}

/**
 * Averages (p = 0; divisor: the taps inside the input, or with `includePad` those inside
 * the explicit pads too) or Lp norms (p > 0: (Σ |x|^p)^(1/p)) over each window.
 */
function sumPool(g: Geometry, [tD, tH, tW]: Taps[], xd: NumericArray, y: NumericArray, p: number, includePad: boolean): void {
  const [D, H, W] = g.inSp;
  const [OD, OH, OW] = g.outSp;
  const [dD, dH, dW] = g.dilations;
  const inVol = D * H * W;
  const wStart = tW.start, wLo = tW.lo, wHi = tW.hi, wPad = tW.padded;
  const lp = p !== 0;
  let q = 0;
  for (let pl = 0; pl < g.planes; pl++) {
    const xb = pl * inVol;
    for (let od = 0; od < OD; od++) {
      const dLo = tD.lo[od], dHi = tD.hi[od], sd = tD.start[od];
      for (let oh = 0; oh < OH; oh++) {
        const hLo = tH.lo[oh], hHi = tH.hi[oh], sh = tH.start[oh];
        const outer = includePad ? tD.padded[od] * tH.padded[oh] : (dHi - dLo) * (hHi - hLo);
        for (let ow = 0; ow < OW; ow++, q++) {
          const sw = wStart[ow], lo = wLo[ow], hi = wHi[ow];
          let s = 0;
          for (let td = dLo; td < dHi; td++) {
            const plane = (sd + td * dD) * H;
            for (let th = hLo; th < hHi; th++) {
              const row = xb + (plane + sh + th * dH) * W + sw;
              if (lp) for (let tw = lo; tw < hi; tw++) s += Math.pow(Math.abs(xd[row + tw * dW]), p);
              else for (let tw = lo; tw < hi; tw++) s += xd[row + tw * dW];
            }
          }
          y[q] = lp ? Math.pow(s, 1 / p) : s / (outer * (includePad ? wPad[ow] : hi - lo));
        }
      }
    }
  }
}

function globalReduce(node: Node, kind: Kind, x: Tensor): Tensor {
  if (x.rank < 2) throw shapeError(node, `input X has rank ${x.rank}, global pooling needs [N, C, …]`);
  const planes = x.dims[0] * x.dims[1];
  const vol = product(x.dims.slice(2));
  const xd = x.array as NumericArray;
  const y = new (arrayCtor(x.dtype))(planes) as NumericArray;
  if (kind === 'max') globalMax(xd, y, planes, vol);
  else globalSum(xd, y, planes, vol, kind === 'avg' ? 0 : node.float('p', 2));
  return new Tensor(x.dtype, [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)], y);
}

function globalMax(xd: NumericArray, y: NumericArray, planes: number, vol: number): void {
  for (let pl = 0, b = 0; pl < planes; pl++, b += vol) {
    let m = -Infinity;
    for (let i = b; i < b + vol; i++) if (xd[i] > m) m = xd[i];
    y[pl] = m;
  }
}

/** Mean (p = 0) or Lp norm of each plane. */
function globalSum(xd: NumericArray, y: NumericArray, planes: number, vol: number, p: number): void {
  for (let pl = 0, b = 0; pl < planes; pl++, b += vol) {
    let s = 0;
    if (p === 0) for (let i = b; i < b + vol; i++) s += xd[i];
    else for (let i = b; i < b + vol; i++) s += Math.pow(Math.abs(xd[i]), p);
    y[pl] = p === 0 ? s / vol : Math.pow(s, 1 / p);
  }
}
