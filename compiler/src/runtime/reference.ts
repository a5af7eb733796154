import { PtqError } from '../errors';
import { Graph, Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { getOp, OpDef } from '../ops/registry';
import { checkFeed, Engine, RunOptions } from './engine';

interface Step {
  node: Node;
  op: OpDef;
  opset: number;
  /** values whose last reader is this step (freed after it runs) */
  frees: string[];
}

/**
 * Executes a model with nx-ptq's own kernels (ops/), node by node in topological order.
 * Float, fake-quant (QDQ) and integer (QLinear*) graphs all run here; intermediates are
 * released after their last reader unless fetched.
 */
export class ReferenceEngine implements Engine {
  readonly name = 'reference';
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly graph: Graph;
  private readonly steps: Step[];

  constructor(readonly model: Model) {
    this.graph = model.graph;
    const order = this.graph.topoSort();
    this.steps = order.map((node) => {
      const opset = model.opset(node.domain) ?? (node.domain ? 1 : model.opset('') ?? 1);
      return { node, op: getOp(node, opset), opset, frees: [] };
    });
    this.inputNames = this.graph.realInputs.map((v) => v.name);
    this.outputNames = this.graph.outputs.map((v) => v.name);
    const lastUse = new Map<string, number>();
    this.steps.forEach((s, i) => s.node.inputs.forEach((v) => v && lastUse.set(v, i)));
    const keep = new Set(this.outputNames);
    for (const [v, i] of lastUse) if (!keep.has(v) && !this.graph.initializers.has(v)) this.steps[i].frees.push(v);
  }

  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    return this.runSync(feeds, opts);
  }

  runSync(feeds: Record<string, Tensor>, opts: RunOptions = {}): Record<string, Tensor> {
    const env = new Map<string, Tensor>(this.graph.initializers);
    for (const v of this.graph.realInputs) {
      const t = feeds[v.name];
      if (!t) {
        throw new PtqError('E_INPUT_MISSING', `model input '${v.name}' was not given`, {
          subject: v.name,
          fix: `provide one tensor per model input (${this.inputNames.join(', ')})`,
        });
      }
      checkFeed(v.name, t, v.type);
      env.set(v.name, t);
    }
    const fetch = new Set(opts.fetch ?? []);
    for (const step of this.steps) {
      const inputs = step.node.inputs.map((n) => (n ? env.get(n) : undefined));
      const outs = runStep(step, inputs);
      step.node.outputs.forEach((name, k) => {
        if (name && outs[k]) env.set(name, outs[k]);
      });
      for (const f of step.frees) if (!fetch.has(f)) env.delete(f);
    }
    const result: Record<string, Tensor> = {};
    for (const n of [...this.outputNames, ...fetch]) {
      const t = env.get(n);
      if (!t) throw new PtqError('E_VALUE_UNKNOWN', `value '${n}' is not computed by the model`, { subject: n, fix: 'ask for an existing value name' });
      result[n] = t;
    }
    return result;
  }

  async dispose(): Promise<void> {
    /* nothing held outside the JS heap */
  }
}

/** Run one node's kernel, widening float16/bfloat16 to float32 when the op asks for it. */
export function runStep(step: { node: Node; op: OpDef; opset: number }, inputs: (Tensor | undefined)[]): Tensor[] {
  const ctx = { node: step.node, opset: step.opset };
  if (step.op.nativeHalf || !inputs.some((t) => t && (t.dtype === 'float16' || t.dtype === 'bfloat16'))) return step.op.run(ctx, inputs);
  const wide = inputs.map((t) => (t && (t.dtype === 'float16' || t.dtype === 'bfloat16') ? new Tensor('float32', t.dims, t.toFloat32()) : t));
  // Outputs take the half type of the data input (input 0); float32 inputs beside it (a
  // Resize roi, say) do not make the result half.
  const half = inputs[0]?.dtype;
  const outs = step.op.run(ctx, wide);
  if (half !== 'float16' && half !== 'bfloat16') return outs;
  return outs.map((t) => (t && t.dtype === 'float32' ? tensorFrom(half, t.dims, t.data as Float32Array) : t));
}

