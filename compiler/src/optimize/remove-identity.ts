import { Graph, Model, Node } from '../onnx/ir';
import { constantOf, describe, isGraphOutput, PassResult, readersOf } from './pass';

/**
 * Removes Identity nodes and inference-mode Dropout nodes whose mask output is unused; their
 * readers read the input instead and graph output names are kept. Kept: a node copying a graph
 * input, initializer or another graph output straight to a graph output (the copy is what gives
 * the output its name), a Dropout whose mask is read, and a Dropout in training mode.
 */
export function removeIdentity(model: Model): PassResult {
  const g = model.graph;
  const notes: string[] = [];
  let changed = 0;
  for (const node of g.nodes.slice()) {
    if (node.domain || (node.opType !== 'Identity' && node.opType !== 'Dropout')) continue;
    const src = node.inputs[0];
    const out = node.outputs[0];
    if (!src || !out) continue;
    const why = node.opType === 'Dropout' ? dropoutKeepReason(model, node) : undefined;
    if (why) {
      notes.push(`kept ${describe(node)}: ${why}`);
      continue;
    }
    if (isGraphOutput(g, out) && !renamable(g, src)) continue; // the copy names the graph output
    g.removeNode(node, src);
    changed++;
  }
  if (changed) notes.unshift(`${changed} Identity/Dropout node(s) removed`);
  return { changed, notes };
}

/** A value a graph output may take the name of: produced by a node and not itself a graph input/output. */
function renamable(g: Graph, v: string): boolean {
  if (g.initializers.has(v) || g.inputs.some((i) => i.name === v) || isGraphOutput(g, v)) return false;
  return g.nodes.some((n) => n.outputs.includes(v));
}

/** Why a Dropout must stay, or undefined when it is the identity. */
function dropoutKeepReason(model: Model, node: Node): string | undefined {
  const g = model.graph;
  const mask = node.outputs[1];
  if (mask && ((readersOf(g).get(mask)?.length ?? 0) > 0 || isGraphOutput(g, mask))) return 'its mask output is used';
  const opset = model.opset('') ?? 1;
  if (opset >= 12) {
    const tm = node.inputs[2];
    if (!tm) return undefined;
    const t = constantOf(model, tm);
    if (!t) return 'training_mode is not a constant';
    if (t.toNumbers()[0] !== 0) return 'training_mode is true';
  }
  // opsets < 7 say is_test = 0 means training, but every inference runtime runs Dropout as the identity
  return undefined;
}
