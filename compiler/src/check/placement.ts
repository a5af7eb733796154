import { PtqError } from '../errors';
import { Model, Node, subgraphOuterRefs } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { findOp } from '../ops/registry';
import { checkEntry, supportsInt16 } from './constraints';
import { checkInputs, checkNoPostProcessing, checkOpset, checkOutputs } from './model-checks';
import { GraphIndex, nodeScope } from './node-scope';
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
  /** producing node, or `input` for a model input */
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

const PASSIVE_REASON = 'passive op between CPU ops: on the BPU it would only add a Quantize/Dequantize pair';

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

// ---------------------------------------------------------------- overrides

interface Overrides {
  cpu: Map<string, 'run_on_cpu' | 'node_info'>;
  bpu: Map<string, 'run_on_bpu' | 'node_info'>;
  info: Map<string, NodeInfoOverride>;
}

function readOverrides(opts: PlaceOptions, live: Node[], folded: Node[], notes: string[]): Overrides {
  const names = new Set(live.map((n) => n.label));
  const foldedNames = new Set(folded.map((n) => n.label));
  const all = [...names, ...foldedNames];
  const known = (key: string, name: string): boolean => {
    if (names.has(name)) return true;
    if (foldedNames.has(name)) {
      notes.push(`${key} names '${name}', which only computes constants (folded at conversion); ignored`);
      return false;
    }
    const near = closest(name, all);
    throw new PtqError('E_NODE_NAME', `${key} names node '${name}', which is not in the model`, {
      subject: key,
      fix: near ? `did you mean '${near}'?` : 'use node names as the checker table lists them',
    });
  };
  const o: Overrides = { cpu: new Map(), bpu: new Map(), info: new Map() };
  for (const name of opts.runOnCpu ?? []) if (known('run_on_cpu', name)) o.cpu.set(name, 'run_on_cpu');
  for (const name of opts.runOnBpu ?? []) {
    if (!known('run_on_bpu', name)) continue;
    if (o.cpu.has(name)) {
      throw new PtqError('E_NODE_PLACEMENT', `node '${name}' is in both run_on_cpu and run_on_bpu`, { subject: 'run_on_bpu', fix: 'keep the node in one of the two lists' });
    }
    o.bpu.set(name, 'run_on_bpu');
  }
  const info = opts.nodeInfo ?? {};
  if (Object.keys(info).length && opts.march !== 'bayes') {
    throw new PtqError('E_NODE_INFO', `node_info is only supported for march bayes (RDK Ultra), not ${opts.march}`, {
      subject: 'node_info',
      fix: 'use run_on_cpu / run_on_bpu on bernoulli2, and remove node_info',
    });
  }
  for (const [name, entry] of Object.entries(info)) {
    validateNodeInfo(name, entry);
    if (!known('node_info', name)) continue;
    o.info.set(name, entry);
    if (entry.ON === 'CPU') {
      if (o.bpu.has(name)) throw conflict(name);
      o.cpu.set(name, 'node_info');
    } else if (entry.ON === 'BPU') {
      if (o.cpu.has(name)) throw conflict(name);
      o.bpu.set(name, 'node_info');
    }
  }
  return o;
}

function conflict(name: string): PtqError {
  return new PtqError('E_NODE_PLACEMENT', `node_info puts node '${name}' on one device and run_on_cpu/run_on_bpu on the other`, {
    subject: 'node_info',
    fix: 'place the node in one place only (node_info ON, or run_on_cpu/run_on_bpu)',
  });
}

function validateNodeInfo(name: string, entry: NodeInfoOverride): void {
  for (const [key, value] of Object.entries(entry)) {
    const bad = (want: string): PtqError =>
      new PtqError('E_NODE_INFO', `node_info '${name}': ${key} is '${String(value)}', expected ${want}`, { subject: 'node_info', fix: `set ${key} to ${want}` });
    if (key === 'ON') {
      if (value !== 'BPU' && value !== 'CPU') throw bad('BPU or CPU');
    } else if (key === 'InputType' || key === 'OutputType' || /^InputType\d+$/.test(key)) {
      if (value !== 'int8' && value !== 'int16') throw bad('int8 or int16');
    } else {
      throw new PtqError('E_NODE_INFO', `node_info '${name}': unknown key '${key}'`, { subject: 'node_info', fix: 'use ON, InputType, InputType<i> or OutputType' });
    }
  }
}

/** The most similar name (edit distance), when close enough to be a likely typo. */
function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

// ---------------------------------------------------------------- one node

function placeNode(n: Node, model: Model, table: SupportTable, index: GraphIndex, o: Overrides): NodePlacement {
  const op = opName(n);
  const cpu = (reason: string, forcedBy?: NodePlacement['forcedBy']): NodePlacement => ({
    name: n.label, op, on: 'CPU', type: n.opType, reason, forcedBy, inputType: 'float32', outputType: 'float32',
  });
  const forcedCpu = o.cpu.get(n.label);
  if (forcedCpu) return cpu(forcedCpu === 'run_on_cpu' ? 'run_on_cpu' : 'node_info ON CPU', forcedCpu);
  const forcedBpu = o.bpu.get(n.label);
  const entry = findSupport(table, n.domain, n.opType);
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

// ---------------------------------------------------------------- passive islands and subgraphs

/** Successor nodes (readers of any output) among the placed nodes. */
function successors(n: Node, index: GraphIndex, placed: Map<Node, NodePlacement>): Node[] {
  const out: Node[] = [];
  for (const o of n.outputs) for (const c of (o && index.consumers.get(o)) || []) if (placed.has(c) && !out.includes(c)) out.push(c);
  return out;
}

/** Producer nodes of the inputs among the placed nodes. */
function predecessors(n: Node, index: GraphIndex, placed: Map<Node, NodePlacement>): Node[] {
  const out: Node[] = [];
  for (const i of n.inputs) {
    const p = i ? index.producers.get(i) : undefined;
    if (p && placed.has(p) && !out.includes(p)) out.push(p);
  }
  return out;
}

/** Connected components of the BPU nodes over BPU→BPU edges, each in topological order. */
function bpuComponents(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex): Node[][] {
  const parent = new Map<Node, Node>();
  const find = (x: Node): Node => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const onBpu = (n: Node): boolean => placed.get(n)?.on === 'BPU';
  for (const n of live) if (onBpu(n)) parent.set(n, n);
  for (const n of live) {
    if (!onBpu(n)) continue;
    for (const p of predecessors(n, index, placed)) if (onBpu(p)) parent.set(find(p), find(n));
  }
  const groups = new Map<Node, Node[]>();
  for (const n of live) {
    if (!onBpu(n)) continue;
    const r = find(n);
    let l = groups.get(r);
    if (!l) groups.set(r, (l = []));
    l.push(n);
  }
  return [...groups.values()];
}

/**
 * A group of BPU nodes made only of passive ops (Relu, MaxPool, Reshape, …), surrounded by
 * CPU nodes and model edges, does no arithmetic worth quantising for: it moves to the CPU.
 * Groups holding a node forced by run_on_bpu/node_info stay.
 */
function moveIsolatedPassive(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex, notes: string[]): void {
  const moved: string[] = [];
  for (const group of bpuComponents(live, placed, index)) {
    const passive = group.every((n) => findOp(n.domain, n.opType)?.quant === 'passive' && !placed.get(n)!.forcedBy);
    if (!passive) continue;
    for (const n of group) {
      const p = placed.get(n)!;
      placed.set(n, { ...p, on: 'CPU', type: n.opType, reason: PASSIVE_REASON, inputType: 'float32', outputType: 'float32' });
      moved.push(n.label);
    }
  }
  if (moved.length) notes.push(`moved to the CPU (passive ops with no BPU neighbour): ${moved.join(', ')}`);
}

/**
 * BPU subgraphs: connected components of BPU nodes, split further where a component is not
 * convex (a path leaves it through the CPU and comes back, so it cannot run as one unit);
 * numbered id(0), id(1), … by their first node in topological order.
 */
function partition(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex): Subgraph[] {
  const pos = new Map(live.map((n, i) => [n, i]));
  const groups: Node[][] = [];
  let level: Map<Node, number> | undefined;
  for (const group of bpuComponents(live, placed, index)) {
    if (isConvex(group, placed, index)) {
      groups.push(group);
      continue;
    }
    level ??= roundTrips(live, placed, index);
    groups.push(...splitByLevel(group, level, placed, index));
  }
  groups.forEach((gr) => gr.sort((a, b) => pos.get(a)! - pos.get(b)!));
  groups.sort((a, b) => pos.get(a[0])! - pos.get(b[0])!);
  return groups.map((gr, id) => {
    const members = new Set(gr);
    for (const n of gr) placed.set(n, { ...placed.get(n)!, subgraph: id });
    const inputs: string[] = [];
    const outputs: string[] = [];
    for (const n of gr) {
      for (const i of n.inputs) {
        if (!i || index.constants.has(i) || inputs.includes(i)) continue;
        const p = index.producers.get(i);
        if (!p || !members.has(p)) inputs.push(i);
      }
      for (const o of n.outputs) {
        if (!o || outputs.includes(o)) continue;
        const leaves = index.graphOutputs.has(o) || (index.consumers.get(o) ?? []).some((c) => placed.has(c) && !members.has(c));
        if (leaves) outputs.push(o);
      }
    }
    return { id, nodes: gr.map((n) => n.label), inputs, outputs };
  });
}

function isConvex(group: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex): boolean {
  const members = new Set(group);
  const stack: Node[] = [];
  const seen = new Set<Node>();
  for (const n of group) for (const s of successors(n, index, placed)) if (!members.has(s) && !seen.has(s)) seen.add(s), stack.push(s);
  while (stack.length) {
    const x = stack.pop()!;
    for (const s of successors(x, index, placed)) {
      if (members.has(s)) return false;
      if (!seen.has(s)) seen.add(s), stack.push(s);
    }
  }
  return true;
}

/**
 * For each node, how many BPU → CPU → BPU round trips must finish before it can run. BPU
 * nodes with the same count that are connected form convex groups.
 */
function roundTrips(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex): Map<Node, number> {
  const level = new Map<Node, number>();
  for (const n of live) {
    const bpu = placed.get(n)!.on === 'BPU';
    let l = 0;
    for (const p of predecessors(n, index, placed)) {
      const pl = level.get(p) ?? 0;
      const pBpu = placed.get(p)!.on === 'BPU';
      l = Math.max(l, bpu ? pl : pBpu ? pl + 1 : pl);
    }
    level.set(n, l);
  }
  return level;
}

function splitByLevel(group: Node[], level: Map<Node, number>, placed: Map<Node, NodePlacement>, index: GraphIndex): Node[][] {
  const members = new Set(group);
  const seen = new Set<Node>();
  const out: Node[][] = [];
  for (const start of group) {
    if (seen.has(start)) continue;
    const part: Node[] = [];
    const stack = [start];
    seen.add(start);
    while (stack.length) {
      const x = stack.pop()!;
      part.push(x);
      for (const y of [...predecessors(x, index, placed), ...successors(x, index, placed)]) {
        if (members.has(y) && !seen.has(y) && level.get(y) === level.get(x)) seen.add(y), stack.push(y);
      }
    }
    out.push(part);
  }
  return out;
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
    return model.graph.realInputs.some((v) => v.name === value) ? 'input' : undefined;
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
