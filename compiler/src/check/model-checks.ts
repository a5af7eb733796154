import { PtqError } from '../errors';
import { Model, Node } from '../onnx/ir';
import { ValueFacts } from '../ops/registry';
import rulesJson from './support/model-rules.json';

interface OpsetNote {
  ops: string[];
  before?: number;
  from?: number;
  note: string;
}

interface ModelRules {
  opsets: { min: number; max: number; reference: number[] };
  maxOutputs: number;
  postProcessingOps: string[];
  opsetNotes: OpsetNote[];
}

export const MODEL_RULES = rulesJson as unknown as ModelRules;

/**
 * The default-domain opset, refused outside the accepted range, and notes on how ops of this
 * model are read where their opset differs from the reference's 10/11.
 */
export function checkOpset(model: Model): { opset: number; notes: string[] } {
  const opset = model.opset('');
  const { min, max, reference } = MODEL_RULES.opsets;
  if (opset === undefined) {
    throw new PtqError('E_OPSET', 'the model imports no default-domain (ai.onnx) opset', {
      fix: 're-export the model with an opset_import for the ai.onnx domain',
    });
  }
  if (opset < min || opset > max) {
    throw new PtqError('E_OPSET', `ONNX opset ${opset} is not supported (accepted: ${min}-${max})`, {
      subject: 'opset',
      fix: `convert the model to an opset between ${min} and ${max} (e.g. onnx.version_converter), ideally ${reference.join(' or ')}`,
    });
  }
  const notes: string[] = [];
  if (!reference.includes(opset)) {
    const counts = new Map<string, number>();
    for (const n of model.graph.nodes) if (n.domain === '' || n.domain === 'ai.onnx') counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
    const read: string[] = [];
    for (const r of MODEL_RULES.opsetNotes) {
      const applies = (r.before !== undefined && opset < r.before) || (r.from !== undefined && opset >= r.from);
      if (!applies) continue;
      const present = r.ops.filter((op) => counts.has(op));
      if (present.length) read.push(`${present.map((op) => `${op} (${counts.get(op)})`).join(', ')}: ${r.note}`);
    }
    notes.push(
      `ONNX opset ${opset} (the reference documents ${reference.join(' and ')}): nodes are read with their opset-${opset} semantics` +
        (read.length ? `; ${read.join('; ')}` : '; no op of this model differs from its opset-11 form'),
    );
  }
  return { opset, notes };
}

/** At most `maxOutputs` model outputs. */
export function checkOutputs(model: Model): void {
  const n = model.graph.outputs.length;
  if (n > MODEL_RULES.maxOutputs) {
    throw new PtqError('E_MODEL_OUTPUTS', `the model has ${n} outputs; at most ${MODEL_RULES.maxOutputs} are supported`, {
      subject: 'outputs',
      fix: 'concatenate outputs inside the model, or set output_nodes to the ones you need',
    });
  }
}

/** Every model input fixed and 4-D (after `input_shape` overrides, which `facts` reflect). */
export function checkInputs(model: Model, facts: Map<string, ValueFacts>): void {
  for (const v of model.graph.realInputs) {
    const shape = facts.get(v.name)?.shape;
    const shown = shape ? `[${shape.join(',')}]` : 'of unknown rank';
    if (!shape || shape.some((d) => typeof d !== 'number' || d <= 0)) {
      throw new PtqError('E_INPUT_SHAPE', `input '${v.name}' has shape ${shown}: dynamic dimensions are not supported`, {
        subject: v.name,
        fix: `set input_shape for '${v.name}' (e.g. 1x3x224x224)`,
      });
    }
    if (shape.length !== 4) {
      throw new PtqError('E_INPUT_RANK', `input '${v.name}' has shape ${shown}: model inputs must be 4-D (NCHW or NHWC)`, {
        subject: v.name,
        fix: 'export the model with 4-D inputs (reshape inside the model if it needs another rank)',
      });
    }
  }
}

/** No detection post-processing (NMS, …) inside the model. */
export function checkNoPostProcessing(nodes: readonly Node[]): void {
  for (const n of nodes) {
    if (MODEL_RULES.postProcessingOps.includes(n.opType)) {
      throw new PtqError('E_POST_PROCESSING', `node '${n.label}' (${n.opType}) is a post-processing operator; the model must end before post-processing`, {
        subject: n.label,
        fix: 'cut the model before this node (output_nodes, or re-export) and run it in your application',
      });
    }
  }
}
