import { cachedPacker, gemmPacked, MR, NR, stridedPacker } from '../kernels/gemm';
import { col2im, ConvGeometry } from '../kernels/im2col';
import { attrError, product, shapeError, windowAttrs, WindowAttrs } from '../kernels/window';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { OpDef } from './registry';

/**
 * ConvTranspose (the gradient of Conv): each input pixel scatters W[c, m, t…]·X into
 * Y[n, g·M/G + m, i·s + t·d − pad]. W is [C, M/G, k…].
 *
 * float32 runs as one GEMM per image and group — columns (M/G·k) × (input positions) =
 * Wᵀ · X, the transposed weights packed once and cached — then a col2im scatter-add.
 * Output size: s·(in − 1) + output_padding + (k − 1)·d + 1 − pads, or `output_shape`
 * (pads then derived from it), or in·s for SAME_UPPER/SAME_LOWER. float64 scatters directly
 * in double precision.
 */
export const ops: OpDef[] = [
  {
    type: 'ConvTranspose',
    quant: 'active',
    infer: ({ node }, [x, w]) => {
      const xs = x?.shape;
      if (!xs) return [{ dtype: x?.dtype }];
      const ws = w?.shape;
      const group = node.int('group', 1);
      const m: Dim = ws && typeof ws[1] === 'number' ? ws[1] * group : '?';
      const nd = xs.length - 2;
      const inSp = xs.slice(2);
      const wk = ws?.slice(2);
      if (!wk?.every((d) => typeof d === 'number') || !inSp.every((d) => typeof d === 'number')) {
        const fixed = node.ints('output_shape');
        return [{ dtype: x?.dtype, shape: [xs[0], m, ...(fixed && fixed.length === nd ? fixed : new Array<Dim>(nd).fill('?'))] }];
      }
      const geo = transposeWindow(node, inSp as number[], wk as number[]);
      return [{ dtype: x?.dtype, shape: [xs[0], m, ...geo.outSp] }];
    },
    run: ({ node }, [x, w, b]) => [convTranspose(node, x!, w!, b)],
  },
];

interface TransposeWindow extends WindowAttrs {
  padsBegin: number[];
  outSp: number[];
}

function transposeWindow(node: Node, inSp: number[], kSp: number[]): TransposeWindow {
  const nd = inSp.length;
  const win = windowAttrs(node, nd, kSp);
  const outPad = node.ints('output_padding') ?? new Array<number>(nd).fill(0);
  if (outPad.length !== nd) throw attrError(node, `output_padding [${outPad}] has ${outPad.length} values, expected ${nd}`, 'give one output_padding per spatial dimension');
  const fixed = node.ints('output_shape');
  // output_shape may list N and C too (older exporters); the spatial part is its tail
  const outShape = fixed && fixed.length >= nd ? fixed.slice(fixed.length - nd) : undefined;
  const padsBegin: number[] = [];
  const outSp: number[] = [];
  for (let i = 0; i < nd; i++) {
    const full = win.strides[i] * (inSp[i] - 1) + outPad[i] + (win.kernel[i] - 1) * win.dilations[i] + 1;
    let pb = win.pads[i], pe = win.pads[i + nd];
    if (outShape || win.autoPad === 'SAME_UPPER' || win.autoPad === 'SAME_LOWER') {
      const target = outShape ? outShape[i] : inSp[i] * win.strides[i];
      const total = full - target;
      const half = Math.floor(total / 2);
      // the remainder of an odd total goes to the end for SAME_UPPER, to the beginning otherwise
      if (win.autoPad === 'SAME_UPPER') [pb, pe] = [half, total - half];
      else [pb, pe] = [total - half, half];
    } else if (win.autoPad === 'VALID') {
      pb = pe = 0;
    }
    const o = full - pb - pe;
    if (o < 1) throw shapeError(node, `spatial dim ${i} gets output size ${o}`, 'check pads, output_shape and output_padding');
    padsBegin.push(pb);
    outSp.push(o);
  }
  return { ...win, padsBegin, outSp };
}

function convTranspose(node: Node, x: Tensor, w: Tensor, b?: Tensor): Tensor {
  if (x.rank < 3) throw shapeError(node, `input X has rank ${x.rank}, ConvTranspose needs [N, C, spatial…]`);
  if (w.rank !== x.rank) throw shapeError(node, `weight W has rank ${w.rank}, the input has rank ${x.rank}`);
  const [N, C, ...inSp] = x.dims;
  const [Cw, Mg, ...kSp] = w.dims;
  const group = node.int('group', 1);
  if (group < 1 || C % group !== 0) throw attrError(node, `group ${group} does not divide the ${C} input channels`, 'fix the group attribute');
  if (Cw !== C) throw shapeError(node, `weight W [${w.dims}] expects ${Cw} input channels, X has ${C}`);
  const M = Mg * group;
  if (b && b.size !== M) throw shapeError(node, `bias B has ${b.size} elements, expected ${M}`);
  const win = transposeWindow(node, inSp, kSp);
  const outDims = [N, M, ...win.outSp];
  const Cg = C / group;
  const inVol = product(inSp);
  const outVol = product(win.outSp);
  const kvol = product(kSp);
  const rows = Mg * kvol;
  const geo = { channels: Mg, inShape: inSp, kernel: kSp, strides: win.strides, dilations: win.dilations, padsBegin: win.padsBegin, outShape: win.outSp };
  if (x.dtype === 'float64') return new Tensor('float64', outDims, scatter64(geo, group, N, C, x.array as Float64Array, w.toNumbers(), b?.toNumbers()));
  if (x.dtype !== 'float32') throw shapeError(node, `input type ${x.dtype} is not supported (float32, float64, float16)`, 'convert the model to float32');
  const xd = x.array as Float32Array;
  const wd = w.toFloat32();
  const y = new Float32Array(N * M * outVol);
  const cols = new Float32Array(rows * inVol);
  for (let g = 0; g < group; g++) {
    // A = W_gᵀ: row (m, t…) , column c at W[(g·Cg + c)·rows + row]
    const packA = cachedPacker(w, `convT/${group}/${g}`, wd, stridedPacker(MR, wd, g * Cg * rows, 1, rows), MR, rows, Cg);
    for (let n = 0; n < N; n++) {
      gemmPacked(rows, inVol, Cg, packA, stridedPacker(NR, xd, (n * C + g * Cg) * inVol, 1, inVol), cols, 0, inVol);
      col2im(geo, cols, 0, y, (n * M + g * Mg) * outVol);
    }
  }
  if (b) {
    const bd = b.toFloat32();
    for (let n = 0; n < N; n++) {
      for (let m = 0; m < M; m++) {
        const o = (n * M + m) * outVol;
        const v = bd[m];
        for (let i = 0; i < outVol; i++) y[o + i] += v;
      }
    }
  }
  return new Tensor('float32', outDims, y);
}

/** ConvTranspose in double precision by scattering every input element (float64 models). */
function scatter64(g: ConvGeometry, group: number, N: number, C: number, x: Float64Array, w: number[], bias: number[] | undefined): Float64Array {
  const nd = g.inShape.length;
  const Mg = g.channels, M = Mg * group, Cg = C / group;
  const inVol = product(g.inShape), outVol = product(g.outShape), kvol = product(g.kernel);
  const y = new Float64Array(N * M * outVol);
  const i = new Array<number>(nd).fill(0);
  for (let q = 0; q < inVol; q++) {
    const t = new Array<number>(nd).fill(0);
    for (let r = 0; r < kvol; r++) {
      let off = 0;
      for (let d = 0; d < nd && off >= 0; d++) {
        const o = i[d] * g.strides[d] + t[d] * g.dilations[d] - g.padsBegin[d];
        off = o < 0 || o >= g.outShape[d] ? -1 : off * g.outShape[d] + o;
      }
      if (off >= 0) {
        for (let n = 0; n < N; n++) {
          for (let c = 0; c < C; c++) {
            const v = x[(n * C + c) * inVol + q];
            const grp = Math.floor(c / Cg);
            for (let m = 0; m < Mg; m++) y[(n * M + grp * Mg + m) * outVol + off] += v * w[(c * Mg + m) * kvol + r];
          }
        }
      }
      for (let d = nd - 1; d >= 0; d--) {
        if (++t[d] < g.kernel[d]) break;
        t[d] = 0;
      }
    }
    for (let d = nd - 1; d >= 0; d--) {
      if (++i[d] < g.inShape[d]) break;
      i[d] = 0;
    }
  }
  if (bias) for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) for (let o = 0; o < outVol; o++) y[(n * M + m) * outVol + o] += bias[m];
  return y;
}
