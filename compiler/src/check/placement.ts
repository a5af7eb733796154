import { PtqError } from '../errors';
import { Model, Node, subgraphOuterRefs } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { findOp } from '../ops/registry';
import { HZ_PREPROCESS } from '../preprocess/hz-preprocess';
import { checkEntry, supportsInt16 } from './constraints';
import { checkInputs, checkNoPostProcessing, checkOpset, checkOutputs } from './model-checks';
import { GraphIndex, nodeScope } from './node-scope';
import { Overrides, readOverrides } from './overrides';
import { moveIsolatedPassive, partition } from './partition';
import { March, MARCHES, OpSupport, SupportTable, findSupport, supportTable } from './table';

export type Device = 'BPU' | 'CPU';
export type DataType = 'int8' | 'int16' | 'float32';

/** One `node_info` entry as the YAML spells it (bayes only). */
export interface NodeInfoOverride {
  ON?: 'BPU' | 'CPU';
  /** data type of every input */
  InputType?: string;
  /** data type of every output */
  OutputType?: string;
  /** `InputType0`, `InputType1`, …: data type of one input */
  [key: `InputType${number}`]: string | undefined;
}

export interface PlaceOptions {
  march: March;
  /** `run_on_cpu`: node names forced onto the CPU */
  runOnCpu?: string[];
  /** `run_on_bpu`: node names forced onto the BPU (refused when the BPU cannot run them) */
  runOnBpu?: string[];
  /** `node_info` (bayes): per node ON and InputType/OutputType */
  nodeInfo?: Record<string, NodeInfoOverride>;
  /** `input_shape`: fixed shapes for inputs with dynamic dimensions */
  inputShapes?: Record<string, number[]>;
}

export interface NodePlacement {
  /** node name (a readable stand-in for unnamed nodes) */
  name: string;
  /** ONNX op type (`domain::type` outside the default domain) */
  op: string;
  on: Device;
  /** BPU subgraph id (BPU nodes only) */
  subgraph?: number;
  /** BPU operator type, or the ONNX op type on the CPU */
  type: string;
  /** why the node runs on the CPU (or why it was forced onto the BPU) */
  reason?: string;
  forcedBy?: 'run_on_cpu' | 'run_on_bpu' | 'node_info';
  inputType: DataType;
  outputType: DataType;
  /** per-input types set by node_info InputType<i> */
  inputTypes?: Record<number, DataType>;
}

/** A maximal connected group of BPU nodes that runs as one unit. */
export interface Subgraph {
  id: number;
  nodes: string[];
  /** values entering the subgraph (model inputs or CPU results) */
  inputs: string[];
  /** values leaving it (to CPU nodes or model outputs) */
  outputs: string[];
}

/** A Quantize (float → BPU) or Dequantize (BPU → float) implied on a value. */
export interface Boundary {
  value: string;
  kind: 'quantize' | 'dequantize';
  /** producing node, or `input` for a (float) model input */
  from: string;
  /** consuming nodes, `output` for a model output */
  to: string[];
}

export interface Placement {
  march: March;
  opset: number;
  graphName: string;
  /** non-folded nodes in topological order */
  nodes: NodePlacement[];
  subgraphs: Subgraph[];
  boundaries: Boundary[];
  /** nodes that only compute constants (folded at conversion time, not placed) */
  folded: string[];
  /** what the check normalised, moved or ignored, for the log */
  notes: string[];
}

const RANDOM_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/**
 * Place every node of `model` on the BPU or the CPU for `opts.march`, with the reason for
 * each CPU node, and partition the BPU nodes into subgraphs (what `hb_mapper checker`
 * reports). Runs shape inference first (constraints need channel counts and sizes) without
 * changing the model. User errors (bad opset, dynamic or non-4-D inputs, post-processing
 * ops, unknown node names in the overrides, impossible run_on_bpu) are PtqErrors.
 */
export function placeModel(model: Model, opts: PlaceOptions): Placement {
  if (!MARCHES.includes(opts.march)) {
    throw new PtqError('E_MARCH', `march '${String(opts.march)}' is not supported`, { subject: 'march', fix: `use one of ${MARCHES.join(', ')}` });
  }
  const table = supportTable(opts.march);
  const g = model.graph;
  const { opset, notes } = checkOpset(model);
  checkOutputs(model);
  const facts = inferShapes(model, { inputShapes: opts.inputShapes, apply: false });
  checkInputs(model, facts);
  const order = g.topoSort();
  checkNoPostProcessing(order);
  for (const n of order) checkKnownOp(n, table);

  const index = buildIndex(model, facts, order);
  const folded = order.filter((n) => n.outputs.every((o) => !o || index.constants.has(o)));
  const foldedSet = new Set(folded);
  const live = order.filter((n) => !foldedSet.has(n));

  const overrides = readOverrides(opts, live, folded, notes);
  const placed = new Map<Node, NodePlacement>();
  for (const n of live) placed.set(n, placeNode(n, model, table, index, overrides));

  moveIsolatedPassive(live, placed, index, notes);
  const subgraphs = partition(live, placed, index);
  applyDataTypes(live, placed, model, table, index, overrides, notes);
  const boundaries = findBoundaries(live, placed, index, model);

  return {
    march: opts.march,
    opset,
    graphName: g.name,
    nodes: live.map((n) => placed.get(n)!),
    subgraphs,
    boundaries,
    folded: folded.map((n) => n.label),
    notes,
  };
}

// ---------------------------------------------------------------- graph facts

function buildIndex(model: Model, facts: GraphIndex['facts'], order: Node[]): GraphIndex {
  const g = model.graph;
  const constants = new Set<string>(g.initializers.keys());
  for (const n of order) {
    const fromConstants = n.inputs.every((i) => !i || constants.has(i)) && subgraphOuterRefs(n).every((r) => constants.has(r));
    const valued = n.outputs.every((o) => !o || facts.get(o)?.value !== undefined);
    if ((fromConstants && !RANDOM_OPS.has(n.opType)) || (valued && n.outputs.some((o) => o))) for (const o of n.outputs) if (o) constants.add(o);
  }
  return {
    graph: g,
    facts,
    producers: g.producers(),
    consumers: g.consumers(),
    graphOutputs: new Set(g.outputs.map((o) => o.name)),
    constants,
  };
}

function opName(n: Node): string {
  return n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType;
}

/** An op neither our engines nor the BPU table know cannot be converted at all. */
function checkKnownOp(n: Node, table: SupportTable): void {
  if (findOp(n.domain, n.opType) || findSupport(table, n.domain, n.opType)) return;
  throw new PtqError('E_UNSUPPORTED_OP', `node '${n.label}' (${opName(n)}): operator not supported (no CPU kernel and no BPU mapping)`, {
    subject: n.label,
    fix: 'replace the operator in the model, or register it as a custom CPU operator (custom_op in the YAML)',
  });
}

// ---------------------------------------------------------------- one node

/** A node of the HzPreprocess stage (preprocess/hz-preprocess.ts tags them in doc_string). */
function isPreprocess(n: Node): boolean {
  return n.docString?.startsWith(`${HZ_PREPROCESS}:`) ?? false;
}

function placeNode(n: Node, model: Model, table: SupportTable, index: GraphIndex, o: Overrides): NodePlacement {
  const op = opName(n);
  const cpu = (reason: string, forcedBy?: NodePlacement['forcedBy']): NodePlacement => ({
    name: n.label, op, on: 'CPU', type: n.opType, reason, forcedBy, inputType: 'float32', outputType: 'float32',
  });
  const forcedCpu = o.cpu.get(n.label);
  if (forcedCpu) return cpu(forcedCpu === 'run_on_cpu' ? 'run_on_cpu' : 'node_info ON CPU', forcedCpu);
  const forcedBpu = o.bpu.get(n.label);
  // the input stage the check inserts (standard ops tagged hz_preprocess) is one BPU op
  const entry = isPreprocess(n) ? findSupport(table, '', 'HzPreprocess') : findSupport(table, n.domain, n.opType);
  const refuse = (why: string): PtqError =>
    new PtqError('E_RUN_ON_BPU', `${forcedBpu} puts node '${n.label}' (${op}) on the BPU, which ${table.march} cannot do: ${why}`, {
      subject: n.label,
      fix: `remove '${n.label}' from ${forcedBpu}, or change the layer to meet the BPU constraint`,
    });
  if (!entry) {
    const why = `${op} has no BPU implementation on ${table.march}`;
    if (forcedBpu) throw refuse(why);
    return cpu(why);
  }
  if (entry.bpu === false) {
    const why = entry.why ?? `${op} runs on the CPU on ${table.march}`;
    if (forcedBpu) throw refuse(why);
    return cpu(why);
  }
  const scope = nodeScope(n, model.opset(n.domain) ?? 1, entry, index);
  const failures = checkEntry(table, entry, scope);
  if (failures.length) {
    const messages = failures.map((f) => f.message).join('; ');
    // say-messages that already name the march read better without the suffix
    const why = messages.includes(`on ${table.march}`) ? messages : `${messages} (${table.march} ${op})`;
    if (forcedBpu) throw refuse(why);
    return cpu(entry.bpu === 'on-request' ? entry.why ?? why : why);
  }
  if (entry.bpu === 'on-request' && !forcedBpu) return cpu(entry.why ?? `${op} runs on the CPU on ${table.march} unless run_on_bpu names it`);
  return {
    name: n.label,
    op,
    on: 'BPU',
    type: entry.type ?? n.opType,
    reason: forcedBpu ? (forcedBpu === 'run_on_bpu' ? 'run_on_bpu' : 'node_info ON BPU') : undefined,
    forcedBy: forcedBpu,
    inputType: 'int8',
    outputType: 'int8',
  };
}

// ---------------------------------------------------------------- int16 (bayes node_info)

function applyDataTypes(live: Node[], placed: Map<Node, NodePlacement>, model: Model, table: SupportTable, index: GraphIndex, o: Overrides, notes: string[]): void {
  for (const n of live) {
    const info = o.info.get(n.label);
    if (!info) continue;
    const p = placed.get(n)!;
    const perInput: Record<number, DataType> = {};
    for (const [k, v] of Object.entries(info)) {
      const m = /^InputType(\d+)$/.exec(k);
      if (m) perInput[Number(m[1])] = v as DataType;
    }
    const wants16 = info.InputType === 'int16' || info.OutputType === 'int16' || Object.values(perInput).includes('int16');
    const typed = info.InputType !== undefined || info.OutputType !== undefined || Object.keys(perInput).length > 0;
    if (!typed) continue;
    if (p.on === 'CPU') {
      notes.push(`node_info sets data types for '${n.label}', which runs on the CPU in float; ignored`);
      continue;
    }
    const entry = findSupport(table, n.domain, n.opType) as OpSupport;
    if (wants16 && !supportsInt16(entry, nodeScope(n, model.opset(n.domain) ?? 1, entry, index))) {
      notes.push(`node_info asks int16 for '${n.label}' (${p.op}), which ${table.march} computes in int8 only here; falling back to int8`);
      continue;
    }
    placed.set(n, {
      ...p,
      inputType: (info.InputType as DataType | undefined) ?? p.inputType,
      outputType: (info.OutputType as DataType | undefined) ?? p.outputType,
      ...(Object.keys(perInput).length ? { inputTypes: perInput } : {}),
    });
  }
}

// ---------------------------------------------------------------- boundaries

function findBoundaries(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex, model: Model): Boundary[] {
  const out = new Map<string, Boundary>();
  const add = (value: string, kind: Boundary['kind'], from: string, to: string): void => {
    const key = `${kind}:${value}`;
    const b = out.get(key);
    if (b) {
      if (!b.to.includes(to)) b.to.push(to);
    } else out.set(key, { value, kind, from, to: [to] });
  };
  const deviceOf = (value: string): Device | 'input' | undefined => {
    if (index.constants.has(value)) return undefined;
    const p = index.producers.get(value);
    if (p) return placed.get(p)?.on;
    // an int8/uint8 model input (the *_128 image contract) enters the BPU as is: no Quantize
    const input = model.graph.realInputs.find((v) => v.name === value);
    return input && (input.type?.dtype === 'float32' || input.type?.dtype === 'float16' || input.type === undefined) ? 'input' : undefined;
  };
  for (const n of live) {
    const on = placed.get(n)!.on;
    for (const i of new Set(n.inputs)) {
      if (!i) continue;
      const src = deviceOf(i);
      if (src === undefined) continue;
      const from = index.producers.get(i)?.label ?? 'input';
      if (on === 'BPU' && src !== 'BPU') add(i, 'quantize', from, n.label);
      if (on === 'CPU' && src === 'BPU') add(i, 'dequantize', from, n.label);
    }
  }
  for (const o of model.graph.outputs) {
    if (deviceOf(o.name) === 'BPU') add(o.name, 'dequantize', index.producers.get(o.name)!.label, 'output');
  }
  return [...out.values()];
}
export { overridesFromConfig } from './overrides';
