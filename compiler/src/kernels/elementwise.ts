import { arrayCtor, DType, TypedArray } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { broadcastIndex, broadcastShape } from './shape';

/* eslint-disable @typescript-eslint/no-explicit-any -- kernels are generic over number and bigint arrays */
export type Scalar = number | bigint;

/** out[i] = f(a[i], b[i]) with numpy broadcasting; the output array type comes from `outDtype`. */
export function binaryOp(a: Tensor, b: Tensor, outDtype: DType, f: (x: any, y: any) => Scalar, node?: Node): Tensor {
  const dims = broadcastShape(a.dims, b.dims, node);
  const out = new (arrayCtor(outDtype))(dims.reduce((p, q) => p * q, 1)) as any;
  const x = a.data as any;
  const y = b.data as any;
  const n = out.length;
  if (a.size === n && b.size === n) {
    for (let i = 0; i < n; i++) out[i] = f(x[i], y[i]);
  } else if (b.size === 1 && a.size === n) {
    const s = y[0];
    for (let i = 0; i < n; i++) out[i] = f(x[i], s);
  } else if (a.size === 1 && b.size === n) {
    const s = x[0];
    for (let i = 0; i < n; i++) out[i] = f(s, y[i]);
  } else {
    const ia = a.size === n ? null : broadcastIndex(a.dims, dims);
    const ib = b.size === n ? null : broadcastIndex(b.dims, dims);
    for (let i = 0; i < n; i++) out[i] = f(x[ia ? ia[i] : i], y[ib ? ib[i] : i]);
  }
  return new Tensor(outDtype, dims, out as TypedArray);
}

/** out[i] = f(x[i]) into an array of `outDtype` (default: the input's). */
export function unaryOp(a: Tensor, f: (x: any) => Scalar, outDtype: DType = a.dtype): Tensor {
  const x = a.data as any;
  const out = new (arrayCtor(outDtype))(a.size) as any;
  for (let i = 0; i < out.length; i++) out[i] = f(x[i]);
  return new Tensor(outDtype, a.dims, out as TypedArray);
}

/** Fold n tensors pairwise with broadcasting (Sum, Max, Min, Mean). */
export function variadicOp(ts: Tensor[], f: (x: any, y: any) => Scalar, node?: Node): Tensor {
  let acc = ts[0];
  for (let i = 1; i < ts.length; i++) acc = binaryOp(acc, ts[i], acc.dtype, f, node);
  if (ts.length === 1) acc = new Tensor(acc.dtype, acc.dims, (acc.array as any).slice());
  return acc;
}
