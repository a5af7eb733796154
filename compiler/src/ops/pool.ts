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
  const outVol = product(g.outSp);
  const inVol = product(g.inSp);
  const xd = x.array as NumericArray;
  const y = new (arrayCtor(x.dtype))(g.planes * outVol) as NumericArray;
  const [D, H, W] = g.inSp;
  const [tD, tH, tW] = [0, 1, 2].map((d) => tapTables(g, d));
  const [dD, dH, dW] = g.dilations;
  const wantIdx = kind === 'max' && node.outputs.length > 1 && !!node.outputs[1];
  const idx = wantIdx ? new BigInt64Array(g.planes * outVol) : undefined;
  const colMajor = node.int('storage_order', 0) === 1;
  const includePad = kind === 'avg' && node.int('count_include_pad', 0) !== 0;
  const p = kind === 'lp' ? node.float('p', 2) : 0;
  for (let pl = 0; pl < g.planes; pl++) {
    const xb = pl * inVol;
    let q = pl * outVol;
    for (let od = 0; od < g.outSp[0]; od++) {
      const sd = tD.start[od];
      for (let oh = 0; oh < g.outSp[1]; oh++) {
        const sh = tH.start[oh];
        for (let ow = 0; ow < g.outSp[2]; ow++, q++) {
          const sw = tW.start[ow];
          const wLo = tW.lo[ow], wHi = tW.hi[ow];
          if (kind === 'max') {
            let best = -Infinity;
            let at = -1;
            for (let td = tD.lo[od]; td < tD.hi[od]; td++) {
              const zd = sd + td * dD;
              for (let th = tH.lo[oh]; th < tH.hi[oh]; th++) {
                const zh = sh + th * dH;
                const row = xb + (zd * H + zh) * W + sw;
                for (let tw = wLo; tw < wHi; tw++) {
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
          } else {
            let s = 0;
            for (let td = tD.lo[od]; td < tD.hi[od]; td++) {
              const zd = sd + td * dD;
              for (let th = tH.lo[oh]; th < tH.hi[oh]; th++) {
                const zh = sh + th * dH;
                const row = xb + (zd * H + zh) * W + sw;
                if (kind === 'avg') for (let tw = wLo; tw < wHi; tw++) s += xd[row + tw * dW];
                else for (let tw = wLo; tw < wHi; tw++) s += Math.pow(Math.abs(xd[row + tw * dW]), p);
              }
            }
            if (kind === 'lp') y[q] = Math.pow(s, 1 / p);
            else {
              const count = includePad ? tD.padded[od] * tH.padded[oh] * tW.padded[ow] : (tD.hi[od] - tD.lo[od]) * (tH.hi[oh] - tH.lo[oh]) * (wHi - wLo);
              y[q] = s / count;
            }
          }
        }
      }
    }
  }
  const out = [new Tensor(x.dtype, outDims, y)];
  if (idx) out.push(new Tensor('int64', outDims, idx));
  return out;
}

function globalReduce(node: Node, kind: Kind, x: Tensor): Tensor {
  if (x.rank < 2) throw shapeError(node, `input X has rank ${x.rank}, global pooling needs [N, C, …]`);
  const planes = x.dims[0] * x.dims[1];
  const vol = product(x.dims.slice(2));
  const xd = x.array as NumericArray;
  const y = new (arrayCtor(x.dtype))(planes) as NumericArray;
  const p = kind === 'lp' ? node.float('p', 2) : 0;
  for (let pl = 0; pl < planes; pl++) {
    const b = pl * vol;
    if (kind === 'max') {
      let m = -Infinity;
      for (let i = 0; i < vol; i++) if (xd[b + i] > m) m = xd[b + i];
      y[pl] = m;
    } else if (kind === 'avg') {
      let s = 0;
      for (let i = 0; i < vol; i++) s += xd[b + i];
      y[pl] = s / vol;
    } else {
      let s = 0;
      for (let i = 0; i < vol; i++) s += Math.pow(Math.abs(xd[b + i]), p);
      y[pl] = Math.pow(s, 1 / p);
    }
  }
  return new Tensor(x.dtype, [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)], y);
}
