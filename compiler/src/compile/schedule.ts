import { bytesPerElement } from '../onnx/dtype';
import { isRelabel } from './layout';
import { Device, elementCount, Names, NX_DOMAIN, POp, Program } from './program';

/**
 * Execution order, BPU subgraphs and the memory plan.
 *
 * Subgraphs: connected groups of BPU ops that need no CPU result computed from one of their
 * own outputs (each op gets a level = how many BPU → CPU → BPU round trips precede it; BPU ops
 * of one level that are connected form a group — such a group can run as one unit). Every
 * group is one BPU segment `<model>_subgraph_<i>`; the CPU ops between them form CPU segments.
 * Segments run in a topological order of these units (ties: the quantized model's order; at
 * O3 and in compile_mode bandwidth the ready unit that frees the most activation bytes first).
 *
 * Memory plan: every value that is not a model input or output gets a byte range of one
 * activation arena, live from the step that writes it to the last step that reads it; values
 * live at the same time never overlap. From O1 an op that only relabels bytes (Reshape of a
 * vector, the NHWC → NCHW Transpose of an image input, …) shares its input's range; from O2
 * an elementwise op (Lut, Clip, same-shape Eltwise, the fused add of a Conv) writes over an
 * operand read for the last time (in place). Ranges are placed first-fit in order of first
 * use; at O3 also largest-first (best fit), keeping the smaller arena. 64-byte aligned.
 */

export interface Segment {
  name: string;
  kind: Device;
  ops: POp[];
}

export interface ScheduledValue {
  offset: number;
  bytes: number;
  firstUse: number;
  lastUse: number;
}

export interface Schedule {
  segments: Segment[];
  memory: Map<string, ScheduledValue>;
  arenaBytes: number;
}

const ALIGN = 64;

export function schedule(p: Program, opts: { level: number; bandwidth?: boolean }): Schedule {
  const units = formUnits(p);
  const order = orderUnits(p, units, opts.level >= 3 || !!opts.bandwidth);
  const segments: Segment[] = [];
  let nb = 0;
  let nc = 0;
  for (const u of order) {
    const last = segments[segments.length - 1];
    if (u.device === 'cpu' && last && last.kind === 'cpu') {
      last.ops.push(...u.ops);
      continue;
    }
    segments.push({ name: u.device === 'bpu' ? `${p.name}_subgraph_${nb++}` : `${p.name}_cpu_${nc++}`, kind: u.device, ops: u.ops.slice() });
  }
  p.ops = segments.flatMap((s) => s.ops);
  nameBorderConverts(p, segments);
  const { memory, arenaBytes } = planMemory(p, opts.level);
  return { segments, memory, arenaBytes };
}

interface Unit {
  device: Device;
  ops: POp[];
  /** position of its first op in the program */
  first: number;
}

function formUnits(p: Program): Unit[] {
  const prod = new Map<string, POp>();
  for (const op of p.ops) for (const o of op.outputs) if (o) prod.set(o, op);
  const level = new Map<POp, number>();
  for (const op of p.ops) {
    let l = 0;
    for (const i of op.inputs) {
      const q = i ? prod.get(i) : undefined;
      if (!q) continue;
      const ql = level.get(q) ?? 0;
      l = Math.max(l, op.device === 'cpu' && q.device === 'bpu' ? ql + 1 : ql);
    }
    level.set(op, l);
  }
  const parent = new Map<POp, POp>();
  const find = (x: POp): POp => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r) as POp;
    let y = x;
    while (parent.get(y) !== r) {
      const nx = parent.get(y) as POp;
      parent.set(y, r);
      y = nx;
    }
    return r;
  };
  for (const op of p.ops) if (op.device === 'bpu') parent.set(op, op);
  for (const op of p.ops) {
    if (op.device !== 'bpu') continue;
    for (const i of op.inputs) {
      const q = i ? prod.get(i) : undefined;
      if (q && q.device === 'bpu' && level.get(q) === level.get(op)) {
        const a = find(q);
        const b = find(op);
        if (a !== b) parent.set(a, b);
      }
    }
  }
  const groups = new Map<POp, Unit>();
  const units: Unit[] = [];
  p.ops.forEach((op, idx) => {
    if (op.device === 'cpu') {
      units.push({ device: 'cpu', ops: [op], first: idx });
      return;
    }
    const r = find(op);
    let u = groups.get(r);
    if (!u) {
      u = { device: 'bpu', ops: [], first: idx };
      groups.set(r, u);
      units.push(u);
    }
    u.ops.push(op);
  });
  return units;
}

function orderUnits(p: Program, units: Unit[], memoryAware: boolean): Unit[] {
  const unitOf = new Map<string, Unit>();
  for (const u of units) for (const op of u.ops) for (const o of op.outputs) if (o) unitOf.set(o, u);
  const deps = new Map<Unit, Set<Unit>>();
  const readers = new Map<string, Set<Unit>>();
  for (const u of units) {
    const d = new Set<Unit>();
    for (const op of u.ops) {
      for (const i of op.inputs) {
        if (!i) continue;
        const q = unitOf.get(i);
        if (q && q !== u) d.add(q);
        (readers.get(i) ?? readers.set(i, new Set()).get(i)!).add(u);
      }
    }
    deps.set(u, d);
  }
  const done = new Set<Unit>();
  const out: Unit[] = [];
  const bytes = (v: string): number => {
    const pv = p.values.get(v);
    return pv ? elementCount(pv.dims) * bytesPerElement(pv.dtype) : 0;
  };
  const outputs = new Set(p.outputs.map((o) => o.value));
  while (out.length < units.length) {
    const ready = units.filter((u) => !done.has(u) && [...(deps.get(u) as Set<Unit>)].every((d) => done.has(d)));
    let pick = ready[0];
    if (memoryAware && ready.length > 1) {
      // the unit whose run frees the most (inputs read for the last time) minus what it allocates
      let best = -Infinity;
      for (const u of ready) {
        let gain = 0;
        const ins = new Set(u.ops.flatMap((op) => op.inputs).filter((i) => i && unitOf.has(i) && unitOf.get(i) !== u));
        for (const i of ins) if (!outputs.has(i) && [...(readers.get(i) ?? [])].every((r) => r === u || done.has(r))) gain += bytes(i);
        for (const op of u.ops) for (const o of op.outputs) if (o && [...(readers.get(o) ?? [])].some((r) => r !== u)) gain -= bytes(o);
        if (gain > best) {
          best = gain;
          pick = u;
        }
      }
    }
    done.add(pick);
    out.push(pick);
  }
  return out;
}

/** `<subgraph>_input_layout_convert` / `<subgraph>_output_layout_convert` names for the border conversions. */
function nameBorderConverts(p: Program, segments: Segment[]): void {
  const segOf = new Map<string, Segment>();
  for (const s of segments) for (const op of s.ops) for (const o of op.outputs) if (o) segOf.set(o, s);
  const readerSeg = new Map<string, Segment[]>();
  for (const s of segments) for (const op of s.ops) for (const i of op.inputs) if (i) (readerSeg.get(i) ?? readerSeg.set(i, []).get(i)!).push(s);
  const plan = new Map<POp, string>();
  const count = new Map<string, number>();
  for (const s of segments) {
    if (s.kind !== 'cpu') continue;
    for (const op of s.ops) {
      if (op.domain !== NX_DOMAIN || op.type !== 'LayoutConvert') continue;
      const src = segOf.get(op.inputs[0]);
      const dst = (readerSeg.get(op.outputs[0]) ?? []).find((r) => r.kind === 'bpu');
      const base = src && src.kind === 'bpu' ? `${src.name}_output_layout_convert` : dst ? `${dst.name}_input_layout_convert` : undefined;
      if (!base) continue;
      plan.set(op, base);
      count.set(base, (count.get(base) ?? 0) + 1);
    }
  }
  // the ops renamed here give up their old names; every other op keeps its own
  const names = new Names();
  for (const op of p.ops) if (!plan.has(op)) names.claim(op.name);
  for (const [op, base] of plan) op.name = names.fresh((count.get(base) ?? 0) > 1 ? `${base}_${op.inputs[0]}` : base);
}

function planMemory(p: Program, level: number): { memory: Map<string, ScheduledValue>; arenaBytes: number } {
  const outside = new Set<string>([...p.inputs.map((i) => i.value), ...p.outputs.map((o) => o.value)]);
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  p.ops.forEach((op, step) => {
    for (const o of op.outputs) if (o && !first.has(o)) first.set(o, step), last.set(o, step);
    for (const i of op.inputs) if (i && p.values.has(i)) last.set(i, step);
  });
  for (const i of p.inputs) first.set(i.value, -1);
  // alias groups: a relabel's output shares its input's bytes
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r) as string;
    return r;
  };
  if (level >= 1) {
    for (const op of p.ops) {
      if (!isRelabel(op, p)) continue;
      const [x] = op.inputs;
      const [o] = op.outputs;
      if (outside.has(x) || outside.has(o) || !p.values.has(x)) continue;
      parent.set(find(o), find(x));
    }
  }
  // in place: an elementwise op overwrites an operand whose storage dies at that op
  const groupLast = (root: string): number => {
    let l = -Infinity;
    for (const [name] of p.values) if (!outside.has(name) && find(name) === root) l = Math.max(l, last.get(name) ?? first.get(name) ?? 0);
    return l;
  };
  if (level >= 2) {
    p.ops.forEach((op, step) => {
      const [o] = op.outputs;
      const target = inPlaceOperand(op, p);
      if (!o || target === undefined || outside.has(o) || outside.has(target) || !p.values.has(target)) return;
      const a = p.values.get(target)!;
      const b = p.values.get(o)!;
      if (elementCount(a.dims) * bytesPerElement(a.dtype) !== elementCount(b.dims) * bytesPerElement(b.dtype)) return;
      const root = find(target);
      if (root === find(o) || groupLast(root) !== step) return;
      parent.set(find(o), root);
    });
  }
  const blocks = new Map<string, { members: string[]; bytes: number; first: number; last: number }>();
  for (const [name, v] of p.values) {
    if (outside.has(name)) continue;
    const root = find(name);
    const bytes = elementCount(v.dims) * bytesPerElement(v.dtype);
    const b = blocks.get(root) ?? { members: [], bytes: 0, first: Infinity, last: -Infinity };
    b.members.push(name);
    b.bytes = Math.max(b.bytes, bytes);
    b.first = Math.min(b.first, first.get(name) ?? 0);
    b.last = Math.max(b.last, last.get(name) ?? first.get(name) ?? 0);
    blocks.set(root, b);
  }
  const list = [...blocks.values()];
  const byFirst = place([...list].sort((a, b) => a.first - b.first || b.bytes - a.bytes), false);
  const bySize = level >= 3 ? place([...list].sort((a, b) => b.bytes - a.bytes || a.first - b.first), true) : undefined;
  const chosen = bySize && bySize.arena < byFirst.arena ? bySize : byFirst;
  const arena = chosen.arena;
  const memory = new Map<string, ScheduledValue>();
  list.forEach((b) => {
    const off = chosen.offsets.get(b) as number;
    for (const m of b.members) {
      const v = p.values.get(m)!;
      memory.set(m, { offset: off, bytes: elementCount(v.dims) * bytesPerElement(v.dtype), firstUse: first.get(m) ?? 0, lastUse: last.get(m) ?? first.get(m) ?? 0 });
    }
  });
  for (const name of outside) {
    const v = p.values.get(name);
    if (!v) continue;
    memory.set(name, { offset: -1, bytes: elementCount(v.dims) * bytesPerElement(v.dtype), firstUse: first.get(name) ?? -1, lastUse: last.get(name) ?? p.ops.length });
  }
  return { memory, arenaBytes: arena };
}

/** True for the boundary ops the reference runs on the CPU next to the BPU (for the profile). */
export function isBorderOp(op: Pick<POp, 'domain' | 'type'>): boolean {
  return op.domain === NX_DOMAIN && ['Quantize', 'Dequantize', 'LayoutConvert', 'Preprocess'].includes(op.type);
}

interface Block {
  members: string[];
  bytes: number;
  first: number;
  last: number;
}

/** Offsets for blocks in the given order: the lowest free gap (first fit) or the tightest one (best fit). */
function place(order: Block[], bestFit: boolean): { offsets: Map<Block, number>; arena: number } {
  const placed: { off: number; end: number; first: number; last: number }[] = [];
  const offsets = new Map<Block, number>();
  let arena = 0;
  for (const b of order) {
    const size = Math.ceil(Math.max(1, b.bytes) / ALIGN) * ALIGN;
    const busy = placed.filter((q) => q.first <= b.last && b.first <= q.last).sort((x, y) => x.off - y.off);
    let off = 0;
    let pick = -1;
    let bestGap = Infinity;
    for (const q of busy) {
      if (q.off - off >= size) {
        if (!bestFit) {
          pick = off;
          break;
        }
        if (q.off - off - size < bestGap) {
          bestGap = q.off - off - size;
          pick = off;
        }
      }
      off = Math.max(off, q.end);
    }
    if (pick < 0) pick = off;
    placed.push({ off: pick, end: pick + size, first: b.first, last: b.last });
    offsets.set(b, pick);
    arena = Math.max(arena, pick + size);
  }
  return { offsets, arena };
}

/** The operand an op may overwrite with its output (its kernel reads element i before writing element i). */
export function inPlaceOperand(op: POp, p: Program): string | undefined {
  if (op.domain !== NX_DOMAIN) return undefined;
  const y = p.values.get(op.outputs[0] ?? '');
  if (!y) return undefined;
  const same = (v: string | undefined): boolean => {
    const x = v ? p.values.get(v) : undefined;
    return !!x && x.dtype === y.dtype && x.layout === y.layout && x.dims.join(',') === y.dims.join(',');
  };
  switch (op.type) {
    case 'Lut':
    case 'Clip':
      return same(op.inputs[0]) ? op.inputs[0] : undefined;
    case 'Eltwise':
      if (!op.inputs.every((i) => p.values.has(i) && same(i))) return undefined;
      return op.inputs[0];
    case 'Conv':
      return op.inputs[4] && same(op.inputs[4]) ? op.inputs[4] : undefined;
    default:
      return undefined;
  }
}
