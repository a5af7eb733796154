import { Dim, Model, Node } from '../onnx/ir';
import { ValueFacts } from '../ops/registry';
import { foldAffineIntoProducer } from './affine';
import { addInitializer, constantOf, describe, floatTensor, floatValues, freshName, isGraphOutput, onlyReadBy, PassResult, readersOf, shapeFacts } from './pass';

/**
 * Inference BatchNormalization y = (x − mean) / √(var + ε) · γ + β, i.e. x · a + b per channel,
 * is folded into the Conv / ConvTranspose / Gemm that produces x when nothing else reads x
 * (weights · a, bias · a + b). A BN without such a producer becomes Mul(x, a) → Add(b) with
 * a, b shaped [C, 1, …] so no later stage has to handle BatchNormalization; it stays a BN
 * only when its parameters are not constants, its statistics are per element (spatial = 0),
 * it runs in training mode, its extra outputs are read, or the rank of x is unknown.
 */
export function foldBatchNorm(model: Model): PassResult {
  const g = model.graph;
  const notes: string[] = [];
  let folded = 0;
  let rewritten = 0;
  let facts: Map<string, ValueFacts> | undefined | null;
  for (const bn of g.nodes.slice()) {
    if (bn.opType !== 'BatchNormalization' || bn.domain) continue;
    const params = bnAffine(model, bn);
    if (typeof params === 'string') {
      notes.push(`kept ${describe(bn)}: ${params}`);
      continue;
    }
    const x = bn.inputs[0];
    const producer = g.nodes.find((n) => n.outputs[0] === x);
    let refusal = 'no Conv, ConvTranspose or Gemm produces its input';
    if (producer) {
      const readers = readersOf(g);
      if (!onlyReadBy(g, readers, x, bn)) refusal = `the output of ${describe(producer)} is also read elsewhere`;
      else {
        const why = foldAffineIntoProducer(model, producer, params.scale, params.shift);
        if (!why) {
          g.removeNode(bn, x);
          folded++;
          continue;
        }
        refusal = `cannot fold into ${describe(producer)}: ${why}`;
      }
    }
    // no foldable producer: Mul + Add
    let shape = g.typeOf(x)?.shape;
    if (!shape) {
      if (facts === undefined) facts = shapeFacts(model);
      shape = facts?.get(x)?.shape;
    }
    if (!shape) {
      notes.push(`kept ${describe(bn)}: ${refusal}, and the rank of its input is unknown`);
      continue;
    }
    replaceByMulAdd(model, bn, params, shape);
    notes.push(`${describe(bn)} became Mul + Add: ${refusal}`);
    rewritten++;
  }
  if (folded) notes.unshift(`${folded} BatchNormalization node(s) folded into the preceding Conv/ConvTranspose/Gemm`);
  return { changed: folded + rewritten, notes };
}

interface Affine {
  scale: Float64Array;
  shift: Float64Array;
  dtype: 'float16' | 'float32' | 'float64' | 'bfloat16';
}

/** a = γ / √(var + ε), b = β − mean · a, or the reason the BN cannot be treated as constant. */
export function bnAffine(model: Model, bn: Node): Affine | string {
  const g = model.graph;
  const opset = model.opset('') ?? 1;
  if (opset >= 14 && bn.int('training_mode', 0) !== 0) return 'it is in training mode';
  if (opset < 9 && bn.int('spatial', 1) === 0) return 'its statistics are per element (spatial = 0)';
  const readers = readersOf(g);
  if (bn.outputs.slice(1).some((o) => o && ((readers.get(o)?.length ?? 0) > 0 || isGraphOutput(g, o)))) return 'its running statistics outputs are read';
  const ts = bn.inputs.slice(1, 5).map((n) => constantOf(model, n));
  if (ts.length < 4 || ts.some((t) => !t)) return 'its scale, bias, mean or variance is not a constant';
  const [gamma, beta, mean, variance] = ts.map((t) => floatValues(t!));
  if (!gamma || !beta || !mean || !variance) return 'its parameters are not floating point';
  const c = gamma.length;
  if (ts.some((t) => t!.rank !== 1 || t!.size !== c)) return 'its parameters are not vectors of one size';
  const eps = bn.float('epsilon', 1e-5);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    scale[i] = gamma[i] / Math.sqrt(variance[i] + eps);
    shift[i] = beta[i] - mean[i] * scale[i];
  }
  return { scale, shift, dtype: ts[0]!.dtype as Affine['dtype'] };
}

function replaceByMulAdd(model: Model, bn: Node, p: Affine, shape: Dim[]): void {
  const g = model.graph;
  const c = p.scale.length;
  const dims = [c, ...new Array<number>(Math.max(shape.length - 2, 0)).fill(1)];
  const dtype = g.typeOf(bn.inputs[0])?.dtype ?? p.dtype;
  const base = bn.name || bn.outputs[0];
  const scaleName = freshName(g, `${base}_scale`);
  addInitializer(model, scaleName, floatTensor(dtype, dims, p.scale));
  const shiftName = freshName(g, `${base}_shift`);
  addInitializer(model, shiftName, floatTensor(dtype, dims, p.shift));
  const mid = freshName(g, `${base}_scaled`);
  g.replaceNode(bn, [
    new Node({ opType: 'Mul', name: `${base}_mul`, inputs: [bn.inputs[0], scaleName], outputs: [mid] }),
    new Node({ opType: 'Add', name: `${base}_add`, inputs: [mid, shiftName], outputs: [bn.outputs[0]] }),
  ]);
}
