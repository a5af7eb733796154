import { PtqError } from '../errors';
import { Dim, Graph, Model, ValueType } from './ir';
import { findOp, OpDef, ValueFacts } from '../ops/registry';
import { runStep } from '../runtime/reference';

/** Constants larger than this are not folded during inference (shape math is tiny). */
const FOLD_LIMIT = 1 << 16;

export interface InferOptions {
  /** Fixed shapes for graph inputs, e.g. `{ data: [1, 3, 320, 320] }` for a `?x3x?x?` input. */
  inputShapes?: Record<string, number[]>;
  /** Write the inferred types into graph.valueInfo / inputs / outputs (default true). */
  apply?: boolean;
  /** Fail on operators without a registered shape function (default false: outputs unknown). */
  strict?: boolean;
}

/**
 * Propagate dtypes and shapes through the graph, folding small constant subgraphs
 * (Shape → Gather → Concat → Reshape chains) so that fixing an input shape fixes every
 * shape downstream. Returns the facts per value name.
 */
export function inferShapes(model: Model, opts: InferOptions = {}): Map<string, ValueFacts> {
  const g = model.graph;
  const facts = new Map<string, ValueFacts>();
  for (const [name, t] of g.initializers) facts.set(name, { dtype: t.dtype, shape: t.dims.slice(), value: t.size <= FOLD_LIMIT ? t : undefined });
  for (const v of g.realInputs) {
    const fixed = opts.inputShapes?.[v.name];
    const declared = v.type?.shape;
    if (fixed && declared && declared.length !== fixed.length) {
      throw new PtqError('E_INPUT_SHAPE', `input_shape ${fixed.join('x')} for input '${v.name}' has rank ${fixed.length}, the model declares [${declared.join(',')}]`, {
        subject: v.name,
        fix: 'give one size per dimension of the model input',
      });
    }
    if (fixed && declared) {
      declared.forEach((d, i) => {
        if (typeof d === 'number' && d !== fixed[i]) {
          throw new PtqError('E_INPUT_SHAPE', `input_shape ${fixed.join('x')} for input '${v.name}' conflicts with the model's fixed dimension ${i} = ${d}`, {
            subject: v.name,
            fix: 'only symbolic dimensions (N, ?, batch…) can be overridden',
          });
        }
      });
    }
    facts.set(v.name, { dtype: v.type?.dtype, shape: fixed ? fixed.slice() : declared?.slice() });
  }
  if (opts.inputShapes) {
    for (const name of Object.keys(opts.inputShapes)) {
      if (!g.realInputs.some((v) => v.name === name)) {
        throw new PtqError('E_INPUT_NAME', `input_shape names '${name}', which is not an input of the model`, {
          subject: name,
          fix: `model inputs are: ${g.realInputs.map((v) => v.name).join(', ')}`,
        });
      }
    }
  }
  for (const node of g.topoSort()) {
    const opset = model.opset(node.domain) ?? 1;
    const op: OpDef | undefined = findOp(node.domain, node.opType);
    const ins = node.inputs.map((n) => (n ? facts.get(n) : undefined));
    let outs: ValueFacts[] = [];
    if (op) {
      const ctx = { node, opset };
      const foldable = ins.length > 0 && node.inputs.every((n, k) => !n || ins[k]?.value !== undefined) && node.opType !== 'RandomNormalLike' && node.opType !== 'RandomUniformLike';
      if (foldable || (ins.length === 0 && node.opType !== 'RandomNormal' && node.opType !== 'RandomUniform')) {
        try {
          const vals = runStep({ node, op, opset }, ins.map((f) => f?.value));
          outs = vals.map((t) => ({ dtype: t.dtype, shape: t.dims.slice(), value: t.size <= FOLD_LIMIT ? t : undefined }));
        } catch (e) {
          if (e instanceof PtqError) throw e;
          outs = op.infer(ctx, ins);
        }
      } else {
        outs = op.infer(ctx, ins);
      }
    } else if (opts.strict) {
      throw new PtqError('E_UNSUPPORTED_OP', `operator ${node.opType} of node '${node.label}' has no shape function`, { subject: node.label });
    }
    node.outputs.forEach((name, k) => {
      if (!name) return;
      const f = outs[k] ?? {};
      if (f.dtype === undefined) {
        const known = g.typeOf(name);
        if (known) Object.assign(f, { dtype: known.dtype, shape: f.shape ?? known.shape });
      }
      facts.set(name, f);
    });
  }
  if (opts.apply !== false) applyFacts(g, facts, opts.inputShapes);
  return facts;
}

function applyFacts(g: Graph, facts: Map<string, ValueFacts>, inputShapes?: Record<string, number[]>): void {
  const toType = (f: ValueFacts | undefined): ValueType | undefined => (f?.dtype ? { dtype: f.dtype, shape: f.shape?.slice() as Dim[] | undefined } : undefined);
  for (const v of g.realInputs) if (inputShapes?.[v.name] && v.type) v.type = { dtype: v.type.dtype, shape: inputShapes[v.name].slice() };
  const outNames = new Set(g.outputs.map((o) => o.name));
  for (const o of g.outputs) {
    const t = toType(facts.get(o.name));
    if (t && (t.shape || !o.type)) o.type = t;
  }
  for (const n of g.nodes) {
    for (const o of n.outputs) {
      if (!o || outNames.has(o)) continue;
      const t = toType(facts.get(o));
      if (t) g.valueInfo.set(o, { ...(g.valueInfo.get(o) ?? {}), name: o, type: t });
    }
  }
}
