import { allocData } from '../kernels/copy';
import { opError, storedValue } from '../kernels/op-args';
import { DType } from '../onnx/dtype';
import { Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { OpContext, OpDef, ValueFacts } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any -- mask writes are generic over the mask's storage */

/** Dropout's mask is bool from opset 10; before, it had the data's type. */
function maskDtype(opset: number, data: DType | undefined): DType | undefined {
  return opset >= 10 ? 'bool' : data;
}

/**
 * ratio and whether dropout is active: only the training_mode input (opset 12+) turns it on.
 * Dropout-1/6 default to is_test=0 (training), but a model handed to a PTQ toolchain is run
 * for inference, which is also what onnxruntime does with them.
 */
function dropoutParams({ node, opset }: OpContext, ratioIn: Tensor | undefined, trainingIn: Tensor | undefined): { ratio: number; training: boolean } {
  if (opset >= 12) {
    return { ratio: ratioIn ? ratioIn.toNumbers()[0] : 0.5, training: trainingIn ? trainingIn.toNumbers()[0] !== 0 : false };
  }
  return { ratio: node.float('ratio', 0.5), training: false };
}

/** A small seeded generator (mulberry32): training-mode masks are reproducible for a given seed. */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Dropout: the identity in inference (mask all true), which is how a converted model runs it.
 * In training mode it zeroes each element with probability `ratio` (seeded by `seed`, default 0)
 * and scales the rest by 1 / (1 - ratio). Passive.
 */
function runDropout(ctx: OpContext, [x, r, t]: (Tensor | undefined)[]): Tensor[] {
  const X = x!;
  const { ratio, training } = dropoutParams(ctx, r, t);
  const wantMask = ctx.node.outputs.length > 1 && ctx.node.outputs[1] !== '';
  const mdt = maskDtype(ctx.opset, X.dtype)!;
  if (!training || ratio === 0) {
    const outs = [X];
    if (wantMask) {
      const mask = allocData(mdt, X.size) as any;
      mask.fill(storedValue(mdt, 1));
      outs.push(new Tensor(mdt, X.dims, mask));
    }
    return outs;
  }
  if (!(ratio >= 0 && ratio < 1)) throw opError(ctx.node, 'E_MODEL_ATTR', `ratio ${ratio} is outside [0, 1)`, 'use a dropout ratio in [0, 1)');
  const rnd = uniform(ctx.node.int('seed', 0));
  const xs = X.toNumbers();
  const keep = new Uint8Array(X.size);
  const scale = 1 / (1 - ratio);
  const ys = new Float64Array(X.size);
  for (let i = 0; i < xs.length; i++) {
    keep[i] = rnd() >= ratio ? 1 : 0;
    ys[i] = keep[i] ? xs[i] * scale : 0;
  }
  const outs = [tensorFrom(X.dtype, X.dims, ys)];
  if (wantMask) outs.push(tensorFrom(mdt, X.dims, keep));
  return outs;
}

function inferDropout(ctx: OpContext, [x]: (ValueFacts | undefined)[]): ValueFacts[] {
  const outs: ValueFacts[] = [{ dtype: x?.dtype, shape: x?.shape }];
  if (ctx.node.outputs.length > 1) outs.push({ dtype: maskDtype(ctx.opset, x?.dtype), shape: x?.shape });
  return outs;
}

function identity(node: Node, x: Tensor | undefined): Tensor {
  if (!x) throw opError(node, 'E_MODEL_GRAPH', 'has no input', 'give Identity an input');
  return x;
}

export const ops: OpDef[] = [
  {
    type: 'Identity',
    quant: 'passive',
    nativeHalf: true,
    infer: (_ctx, [x]) => [{ dtype: x?.dtype, shape: x?.shape, value: x?.value }],
    run: ({ node }, [x]) => [identity(node, x)],
  },
  {
    type: 'Dropout',
    quant: 'passive',
    nativeHalf: true,
    infer: inferDropout,
    run: runDropout,
  },
];
