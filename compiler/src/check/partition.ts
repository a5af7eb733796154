import { Node } from '../onnx/ir';
import { findOp } from '../ops/registry';
import { GraphIndex } from './node-scope';
import type { NodePlacement, Subgraph } from './placement';

const PASSIVE_REASON = 'passive op between CPU ops: on the BPU it would only add a Quantize/Dequantize pair';

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
export function bpuComponents(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex): Node[][] {
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
export function moveIsolatedPassive(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex, notes: string[]): void {
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
export function partition(live: Node[], placed: Map<Node, NodePlacement>, index: GraphIndex): Subgraph[] {
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
