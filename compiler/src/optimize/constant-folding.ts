import { isPtqError } from '../errors';
import { bytesPerElement } from '../onnx/dtype';
import { Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor } from '../onnx/tensor';
import { getOp } from '../ops/registry';
import { runStep } from '../runtime/reference';
import { addInitializer, constantOf, describe, isGraphOutput, PassResult, readersOf, shapeFacts } from './pass';

export interface FoldOptions {
  /** Fixed shapes of graph inputs (e.g. from `input_shape`): written into the inputs, and Shape chains fold against them. */
  inputShapes?: Record<string, number[]>;
  /** Largest folded output in bytes (default 64 MiB). */
  maxBytes?: number;
}

/** Random ops and ops whose output is not a pure function of the inputs. */
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli', 'Dropout']);

/** Kept on purpose: a QDQ pair on a weight is how a quantized model states its scales. */
const KEEP = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']);

/** Ops whose result can be much bigger than their inputs (a folded one would bloat the model). */
const GROWING = new Set(['Expand', 'Tile', 'ConstantOfShape', 'Range', 'EyeLike', 'OneHot', 'Resize', 'Upsample']);

/** Inputs read as shapes, sizes, axes or indices (per ONNX op; a tensor feeding only these is metadata). */
const SHAPE_INPUTS: Record<string, number[]> = {
  Reshape: [1], Expand: [1], Tile: [1], ConstantOfShape: [0], Slice: [1, 2, 3, 4], Squeeze: [1], Unsqueeze: [1],
  Resize: [1, 2, 3], Upsample: [1], Pad: [1, 3], Split: [1], TopK: [1], Range: [0, 1, 2], OneHot: [1],
  Shape: [0], Size: [0], CumSum: [1], ReduceSum: [1], ReduceMean: [1], ReduceMax: [1], ReduceMin: [1], ReduceProd: [1],
  ReduceL1: [1], ReduceL2: [1], ReduceLogSum: [1], ReduceLogSumExp: [1], ReduceSumSquare: [1],
};

/** Growth (output bytes over input bytes) beyond which GROWING ops are not folded, and the size below which anything goes. */
const MAX_GROWTH = 4;
const SMALL_BYTES = 4096;

/**
 * Nodes whose inputs are all constants (or whose outputs shape inference knows, e.g.
 * Shape → Gather → Concat chains once input shapes are fixed) are evaluated with the reference
 * kernels and replaced by initializers. Not folded: random ops and Dropout, Quantize/Dequantize
 * (QDQ weights stay), nodes of other domains or with subgraphs, nodes producing a graph output,
 * results above `maxBytes`, and results of Expand/Tile/ConstantOfShape/… much bigger than their
 * inputs unless only read as shapes.
 */
export function constantFolding(model: Model, opts: FoldOptions = {}): PassResult {
  const g = model.graph;
  const notes: string[] = [];
  const maxBytes = opts.maxBytes ?? 64 * 2 ** 20;
  if (opts.inputShapes) fixInputShapes(model, opts.inputShapes, notes);
  const facts = shapeFacts(model, opts.inputShapes);
  const known = new Map<string, Tensor>();
  for (const name of g.initializers.keys()) {
    const t = constantOf(model, name);
    if (t) known.set(name, t);
  }
  const readers = readersOf(g);
  const folded = new Map<string, number>();
  let changed = 0;
  const opset = model.opset('') ?? 1;
  for (const node of g.topoSort()) {
    if (!candidate(node) || node.outputs.some((o) => o && isGraphOutput(g, o))) continue;
    const ins = node.inputs.map((n) => (n ? known.get(n) : undefined));
    let outs: (Tensor | undefined)[];
    if (node.inputs.every((n, k) => !n || ins[k])) {
      try {
        outs = runStep({ node, op: getOp(node, opset), opset }, ins);
      } catch (e) {
        if (!isPtqError(e)) throw e;
        notes.push(`kept ${describe(node)}: evaluating it failed: ${e.message}`);
        continue;
      }
    } else {
      outs = node.outputs.map((o) => (o ? facts?.get(o)?.value : undefined));
      if (node.outputs.some((o, k) => o && !outs[k])) continue;
    }
    const inBytes = ins.reduce((s, t) => s + (t ? byteSize(t) : 0), 0);
    const why = tooBig(node, outs, inBytes, maxBytes, readers);
    if (why) {
      notes.push(`kept ${describe(node)}: ${why}`);
      continue;
    }
    g.nodes.splice(g.nodes.indexOf(node), 1);
    node.outputs.forEach((o, k) => {
      const t = outs[k];
      if (!o || !t) return;
      g.valueInfo.delete(o);
      addInitializer(model, o, t);
      known.set(o, t);
    });
    folded.set(node.opType, (folded.get(node.opType) ?? 0) + 1);
    changed++;
  }
  if (changed) {
    const ops = [...folded].map(([op, n]) => (n > 1 ? `${op}×${n}` : op)).join(', ');
    notes.unshift(`${changed} node(s) folded into initializers (${ops})`);
  }
  return { changed, notes };
}

function candidate(node: Node): boolean {
  if (node.domain && node.domain !== 'ai.onnx') return false;
  if (NONDETERMINISTIC.has(node.opType) || KEEP.has(node.opType) || node.opType === 'Constant') return false;
  if ([...node.attrs.values()].some((a) => a.type === 'graph' || a.type === 'graphs')) return false;
  return node.inputs.some((i) => i);
}

function byteSize(t: Tensor): number {
  return t.dtype === 'string' ? (t.data as string[]).reduce((s, x) => s + x.length, 0) : t.size * bytesPerElement(t.dtype);
}

function tooBig(node: Node, outs: (Tensor | undefined)[], inBytes: number, maxBytes: number, readers: Map<string, Node[]>): string | undefined {
  for (const [k, t] of outs.entries()) {
    if (!t) continue;
    const bytes = byteSize(t);
    if (bytes > maxBytes) return `its result [${t.dims}] would be a ${(bytes / 2 ** 20).toFixed(1)} MiB initializer`;
    const out = node.outputs[k];
    if (GROWING.has(node.opType) && bytes > SMALL_BYTES && bytes > MAX_GROWTH * inBytes && !onlyShapeUse(out, readers)) {
      return `its result [${t.dims}] is ${Math.round(bytes / Math.max(inBytes, 1))}× bigger than its inputs`;
    }
  }
  return undefined;
}

/** Every reader reads `v` only at shape/axes/index inputs. */
function onlyShapeUse(v: string, readers: Map<string, Node[]>): boolean {
  const rs = readers.get(v) ?? [];
  return rs.length > 0 && rs.every((r) => r.inputs.every((i, k) => i !== v || (SHAPE_INPUTS[r.opType] ?? []).includes(k)));
}

/** Write fixed input shapes into the graph inputs (only symbolic dims may change; inferShapes checks that). */
function fixInputShapes(model: Model, shapes: Record<string, number[]>, notes: string[]): void {
  for (const v of model.graph.realInputs) {
    const s = shapes[v.name];
    if (!s || !v.type) continue;
    const old = v.type.shape;
    if (old && old.length === s.length && old.every((d, i) => d === s[i])) continue;
    inferShapes(model, { inputShapes: shapes, apply: false }); // validates the override
    v.type = { dtype: v.type.dtype, shape: s.slice() };
    notes.push(`input '${v.name}' fixed to [${s.join(',')}]`);
  }
}
