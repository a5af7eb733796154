import { Model } from '../onnx/ir';
import { PassResult } from './pass';

/** Nodes whose outputs no graph output needs are removed, then initializers and value_info nothing reads. */
export function prune(model: Model): PassResult {
  const g = model.graph;
  const inits = g.initializers.size;
  const nodes = g.pruneUnused();
  const dropped = inits - g.initializers.size;
  const notes: string[] = [];
  if (nodes) notes.push(`${nodes} dead node(s) removed`);
  if (dropped) notes.push(`${dropped} unused initializer(s) removed`);
  return { changed: nodes + dropped, notes };
}
