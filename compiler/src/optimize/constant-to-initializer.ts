import { isPtqError } from '../errors';
import { Model } from '../onnx/ir';
import { getOp } from '../ops/registry';
import { runStep } from '../runtime/reference';
import { addInitializer, describe, isGraphOutput, PassResult } from './pass';

/**
 * Every `Constant` node of the main graph (any of value, value_float(s), value_int(s),
 * value_string(s)) becomes an initializer of the same name, so later passes see one kind of
 * constant. Kept: sparse_value constants (not supported) and constants that are themselves a
 * graph output (a graph output backed by an initializer is not accepted everywhere).
 */
export function constantToInitializer(model: Model): PassResult {
  const g = model.graph;
  const notes: string[] = [];
  let changed = 0;
  const opset = model.opset('') ?? 1;
  for (const node of g.nodes.slice()) {
    if (node.opType !== 'Constant' || node.domain) continue;
    const out = node.outputs[0];
    if (!out) continue;
    if (isGraphOutput(g, out)) {
      notes.push(`kept ${describe(node)}: its value is a graph output`);
      continue;
    }
    let value;
    try {
      value = runStep({ node, op: getOp(node, opset), opset }, [])[0];
    } catch (e) {
      if (!isPtqError(e)) throw e;
      notes.push(`kept ${describe(node)}: ${e.message}`);
      continue;
    }
    g.removeNode(node);
    g.valueInfo.delete(out);
    addInitializer(model, out, value);
    changed++;
  }
  if (changed) notes.unshift(`${changed} Constant node(s) became initializers`);
  return { changed, notes };
}
