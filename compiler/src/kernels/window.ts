/**
 * Sliding-window attributes shared by Conv, ConvTranspose and the pools: kernel_shape,
 * strides, dilations, pads and auto_pad, checked and resolved to begin/end pads and output
 * sizes per spatial dimension (ONNX Operators.md, "auto_pad" and output shape formulas).
 */
import { PtqError } from '../errors';
import { Dim, Node } from '../onnx/ir';

export interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** explicit pads [begin…, end…] (zeros when absent) */
  pads: number[];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
}

export function attrError(node: Node, msg: string, fix: string): PtqError {
  return new PtqError('E_MODEL_ATTR', `node '${node.label}' (${node.opType}): ${msg}`, { subject: node.label, fix });
}

export function shapeError(node: Node, msg: string, fix = 'check the model input shapes (input_shape) and the node attributes'): PtqError {
  return new PtqError('E_MODEL_SHAPE', `node '${node.label}' (${node.opType}): ${msg}`, { subject: node.label, fix });
}

/**
 * Read the window attributes for `nd` spatial dims; `kernel` is the weight's spatial shape
 * for convolutions (kernel_shape must agree with it) or undefined for pools (kernel_shape required).
 */
export function windowAttrs(node: Node, nd: number, kernel?: number[]): WindowAttrs {
  const ks = node.ints('kernel_shape') ?? kernel;
  if (!ks) throw attrError(node, 'kernel_shape is missing', 'add the kernel_shape attribute');
  if (ks.length !== nd) throw attrError(node, `kernel_shape [${ks}] has ${ks.length} dims, the input has ${nd} spatial dims`, 'give one kernel size per spatial dimension');
  if (kernel && ks.some((k, i) => k !== kernel[i])) {
    throw attrError(node, `kernel_shape [${ks}] does not match the weight's spatial shape [${kernel}]`, 'drop kernel_shape or make it match the weight');
  }
  const list = (attr: string, def: number): number[] => {
    const v = node.ints(attr) ?? new Array<number>(nd).fill(def);
    if (v.length !== nd) throw attrError(node, `${attr} [${v}] has ${v.length} values, expected ${nd}`, `give one ${attr} value per spatial dimension`);
    return v;
  };
  const strides = list('strides', 1);
  const dilations = list('dilations', 1);
  const pads = node.ints('pads') ?? new Array<number>(2 * nd).fill(0);
  if (pads.length !== 2 * nd) throw attrError(node, `pads [${pads}] has ${pads.length} values, expected ${2 * nd}`, 'give a begin and an end pad per spatial dimension');
  if (ks.some((k) => k < 1) || strides.some((s) => s < 1) || dilations.some((d) => d < 1)) {
    throw attrError(node, `kernel_shape [${ks}], strides [${strides}] and dilations [${dilations}] must be positive`, 'use sizes of at least 1');
  }
  if (pads.some((p) => p < 0)) throw attrError(node, `pads [${pads}] must not be negative`, 'use non-negative pads');
  const ap = node.str('auto_pad', 'NOTSET');
  if (ap !== 'NOTSET' && ap !== 'SAME_UPPER' && ap !== 'SAME_LOWER' && ap !== 'VALID') {
    throw attrError(node, `auto_pad '${ap}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`, 'use a valid auto_pad value');
  }
  return { kernel: ks.slice(), strides, dilations, pads: pads.slice(), autoPad: ap };
}

/** Output size of one dimension; with ceil_mode the last window must start inside the input or its begin pad. */
export function windowOut(n: number, k: number, s: number, d: number, pb: number, pe: number, ceil: boolean): number {
  const span = n + pb + pe - d * (k - 1) - 1;
  if (!ceil) return Math.floor(span / s) + 1;
  let out = Math.ceil(span / s) + 1;
  if ((out - 1) * s >= n + pb) out--;
  return out;
}

export interface ResolvedWindow {
  padsBegin: number[];
  padsEnd: number[];
  out: number[];
}

/** Pads and output sizes of a convolution or pool over input spatial sizes `inSp`. */
export function resolveWindow(node: Node, w: WindowAttrs, inSp: number[], ceil = false): ResolvedWindow {
  const nd = inSp.length;
  const padsBegin: number[] = [];
  const padsEnd: number[] = [];
  const out: number[] = [];
  for (let i = 0; i < nd; i++) {
    const n = inSp[i], k = w.kernel[i], s = w.strides[i], d = w.dilations[i];
    const span = d * (k - 1) + 1;
    let pb = w.pads[i], pe = w.pads[i + nd], o: number;
    if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') {
      o = Math.ceil(n / s);
      const total = Math.max(0, (o - 1) * s + span - n);
      const small = Math.floor(total / 2);
      pb = w.autoPad === 'SAME_UPPER' ? small : total - small;
      pe = total - pb;
    } else {
      if (w.autoPad === 'VALID') pb = pe = 0;
      o = windowOut(n, k, s, d, pb, pe, ceil);
    }
    if (o < 1) {
      throw shapeError(node, `spatial dim ${i} of size ${n} with pads ${pb}+${pe} is smaller than the window (${span})`, 'use a larger input or a smaller kernel/dilation');
    }
    padsBegin.push(pb);
    padsEnd.push(pe);
    out.push(o);
  }
  return { padsBegin, padsEnd, out };
}

/** Output spatial dims for shape inference ('?' where an input size is symbolic). */
export function inferWindowDims(node: Node, w: WindowAttrs, inSp: Dim[], ceil = false): Dim[] {
  if (inSp.every((d) => typeof d === 'number')) return resolveWindow(node, w, inSp as number[], ceil).out;
  return inSp.map((n, i) => {
    if (typeof n !== 'number') return '?';
    const one = { ...w, kernel: [w.kernel[i]], strides: [w.strides[i]], dilations: [w.dilations[i]], pads: [w.pads[i], w.pads[i + inSp.length]] };
    return resolveWindow(node, one, [n], ceil).out[0];
  });
}

export function product(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}
