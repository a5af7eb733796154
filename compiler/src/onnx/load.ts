import * as protobuf from 'protobufjs';
import { PtqError } from '../errors';
import { decodeModel, describeDecodeError, readModelFile } from './decode';
import { Graph, Model } from './ir';

/**
 * Loading a model a user hands us: decode, then check it is a complete, well-formed graph,
 * so every later stage can trust it. Whatever is wrong with the file (truncated, not ONNX,
 * dangling references, cycles, duplicate producers) becomes a one-line PtqError naming the
 * file and, when there is one, the node.
 */
export function loadAndValidate(file: string): Model {
  return decodeAndValidate(readModelFile(file), file);
}

/** decodeModel + validateModel, with the checks that need the raw bytes. */
export function decodeAndValidate(bytes: Uint8Array, source = '<bytes>'): Model {
  const fields = topLevelFields(bytes, source);
  const model = decodeModel(bytes, source);
  if (!fields.has(FIELD_IR_VERSION)) {
    throw invalid(source, 'it has no ir_version', 'the file is truncated or not an ONNX ModelProto; re-export it');
  }
  validateModel(model, source);
  return model;
}

/**
 * Semantic checks on a decoded model: a graph with outputs, every node's domain imported,
 * names that resolve, one producer per value, no cycle — in subgraphs too.
 */
export function validateModel(model: Model, source = '<model>'): void {
  const g = model.graph;
  if (g.outputs.length === 0) {
    throw invalid(source, 'its graph has no outputs', 'the file is truncated or not an ONNX model; re-export it');
  }
  const imported = new Set(model.opsetImports.map((o) => (o.domain === 'ai.onnx' ? '' : o.domain)));
  const functions = new Set(modelFunctionKeys(model));
  validateGraph(g, new Set(), imported, functions, source, '');
}

/** `within` says where a subgraph sits ("in the body of node 'loop1'") for messages. */
function validateGraph(
  g: Graph,
  outer: ReadonlySet<string>,
  imported: ReadonlySet<string>,
  functions: ReadonlySet<string>,
  source: string,
  within: string,
): void {
  const where = `'${source}'${within ? ` (${within})` : ''}`;
  for (const n of g.nodes) {
    if (!n.opType) {
      throw new PtqError('E_MODEL_GRAPH', `${where}: node '${n.label}' has no op_type`, { subject: n.label, fix: 're-export the model; the file is corrupt' });
    }
    const domain = n.domain === 'ai.onnx' ? '' : n.domain;
    if (!imported.has(domain) && !functions.has(`${n.domain}::${n.opType}`)) {
      throw new PtqError(
        'E_MODEL_OPSET',
        `${where}: node '${n.label}' (${n.opType}) is in domain '${domain || 'ai.onnx'}', which the model does not import`,
        { subject: n.label, fix: 'add the domain to the opset_import of the model (or re-export it)' },
      );
    }
  }
  try {
    g.validate(outer);
  } catch (e) {
    if (e instanceof PtqError) throw new PtqError(e.code, `${where}: ${e.message}`, { subject: e.subject, fix: e.fix });
    throw e;
  }
  // subgraphs (If/Loop/Scan bodies) see every name of the enclosing scopes
  const scope = new Set<string>([...outer, ...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) if (o) scope.add(o);
  for (const n of g.nodes) {
    for (const a of n.attrs.values()) {
      const subs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
      const inside = `in a subgraph of node '${n.label}'`;
      for (const sub of subs) validateGraph(sub, scope, imported, functions, source, within ? `${within}, ${inside}` : inside);
    }
  }
}

function modelFunctionKeys(model: Model): string[] {
  const fns = (model.extra?.functions ?? []) as { name?: string; domain?: string }[];
  return fns.map((f) => `${f.domain ?? ''}::${f.name ?? ''}`);
}

const FIELD_IR_VERSION = 1;

/** Field numbers present at the top level of a ModelProto (skipping over each field's body). */
function topLevelFields(bytes: Uint8Array, source: string): Set<number> {
  const found = new Set<number>();
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      if (field === 0) throw new Error('field number 0');
      r.skipType(tag & 7);
      found.add(field);
    }
  } catch (e) {
    throw invalid(source, describeDecodeError(e), 'the file is truncated or not an ONNX ModelProto; re-export or re-download it');
  }
  return found;
}

function invalid(source: string, why: string, fix: string): PtqError {
  return new PtqError('E_MODEL_DECODE', `'${source}' is not a valid ONNX model (${why})`, { subject: source, fix });
}
