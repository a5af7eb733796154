import { Graph, Model } from '../onnx/ir';
import { Engine } from './engine';
import { OrtEngine, OrtEngineOptions } from './ort';
import { ReferenceEngine } from './reference';

/**
 * Operator domains onnxruntime's CPU build implements ('' and 'ai.onnx' are the default
 * ONNX domain; the others are its ML, contrib, training and internal layout domains). A node
 * in any other domain (a custom operator registered from `custom_op`, say) makes onnxruntime
 * refuse the whole model, so such models run in the ReferenceEngine.
 */
export const ORT_DOMAINS: ReadonlySet<string> = new Set([
  '',
  'ai.onnx',
  'ai.onnx.ml',
  'ai.onnx.training',
  'ai.onnx.preview.training',
  'com.microsoft',
  'com.microsoft.experimental',
  'com.microsoft.nchwc',
  'com.ms.internal.nhwc',
  'org.pytorch.aten',
]);

/** Whether onnxruntime knows the operator domain `domain`. */
export function isOrtDomain(domain: string): boolean {
  return ORT_DOMAINS.has(domain);
}

/**
 * Domains of the nodes onnxruntime cannot run: nodes of the graph, of its subgraphs
 * (If/Loop/Scan bodies) and of model-local function bodies. Calls of model-local functions
 * are not custom themselves (onnxruntime inlines them). Sorted, without duplicates.
 */
export function customDomains(model: Model): string[] {
  const fns = (model.extra?.functions ?? []) as { name?: string; domain?: string; node?: { domain?: string }[] }[];
  const local = new Set(fns.map((f) => `${f.domain ?? ''}::${f.name ?? ''}`));
  const found = new Set<string>();
  const visit = (g: Graph): void => {
    for (const n of g.nodes) {
      if (!isOrtDomain(n.domain) && !local.has(`${n.domain}::${n.opType}`)) found.add(n.domain);
      for (const a of n.attrs.values()) {
        if (a.type === 'graph') visit(a.value);
        else if (a.type === 'graphs') a.value.forEach(visit);
      }
    }
  };
  visit(model.graph);
  for (const f of fns) for (const n of f.node ?? []) if (!isOrtDomain(n.domain ?? '')) found.add(n.domain ?? '');
  return [...found].sort();
}

/** Whether the model has nodes in a domain onnxruntime does not know (custom operators). */
export function hasCustomOps(model: Model): boolean {
  return customDomains(model).length > 0;
}

/** `auto`: onnxruntime when it can run the model; `ort` / `reference`: that engine when possible. */
export type EngineChoice = 'auto' | 'ort' | 'reference';

export interface EngineDecision {
  engine: 'ort' | 'reference';
  /** Why, for logs (e.g. "custom operator domain com.example: onnxruntime cannot run it"). */
  reason: string;
}

/**
 * Which engine runs `model`. The ReferenceEngine when asked for, or when the model has custom
 * operators (even when onnxruntime was asked for: it would refuse the model); onnxruntime
 * otherwise.
 */
export function chooseEngine(model: Model, preferred: EngineChoice = 'auto'): EngineDecision {
  if (preferred === 'reference') return { engine: 'reference', reason: 'the reference engine was asked for' };
  const domains = customDomains(model);
  if (domains.length) {
    const list = domains.map((d) => `'${d}'`).join(', ');
    return { engine: 'reference', reason: `custom operator domain${domains.length > 1 ? 's' : ''} ${list}: onnxruntime cannot run the model` };
  }
  return { engine: 'ort', reason: preferred === 'ort' ? 'onnxruntime was asked for' : 'standard operators only' };
}

/** The engine `chooseEngine` picks, ready to run (`ortOptions` apply to onnxruntime only). */
export async function pickEngine(model: Model, preferred: EngineChoice = 'auto', ortOptions: OrtEngineOptions = {}): Promise<Engine> {
  const { engine } = chooseEngine(model, preferred);
  return engine === 'reference' ? new ReferenceEngine(model) : OrtEngine.create(model, ortOptions);
}
