import type { ModelStructure, StructureEdge, StructureNode } from './structure';

/**
 * A layered (top-to-bottom) drawing of a model structure, with each BPU subgraph in its own
 * box. The steps (a small Sugiyama layout):
 *  1. layers: longest path from the sources, so every edge points down;
 *  2. an edge spanning several layers gets one dummy point per layer it crosses (inside the box
 *     when both ends are in the same subgraph), so lines run beside nodes, not through them;
 *  3. inside a box, each layer's row is ordered by barycentre sweeps (fewer crossings);
 *  4. blocks (a box, or one free node) are placed top-down, each as close as possible below the
 *     centre of its predecessors without overlapping a block whose layer range it shares —
 *     so boxes never overlap each other or a free node.
 * Deterministic: only the input order breaks ties.
 */

export interface LayoutOptions {
  nodeWidth: number;
  nodeHeight: number;
  layerGap: number;
  nodeGap: number;
  clusterPad: number;
  clusterLabel: number;
  margin: number;
  dummyWidth: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = {
  nodeWidth: 180,
  nodeHeight: 34,
  layerGap: 36,
  nodeGap: 20,
  clusterPad: 8,
  clusterLabel: 16,
  margin: 40,
  dummyWidth: 6,
};

export interface Point {
  x: number;
  y: number;
}

export interface PlacedNode {
  node: StructureNode;
  /** top-left corner */
  x: number;
  y: number;
  w: number;
  h: number;
  layer: number;
}

export interface PlacedEdge {
  edge: StructureEdge;
  /** from the bottom of the source to the top of the target; pairs of points per dummy */
  points: Point[];
}

export interface PlacedCluster {
  name: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Layout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  clusters: PlacedCluster[];
}

interface Vertex {
  layer: number;
  cluster?: string;
  width: number;
  /** index of the real node, or −1 for a dummy */
  node: number;
  preds: number[];
  succs: number[];
  /** centre x, set by placement */
  cx: number;
}

interface Block {
  cluster?: string;
  vertices: number[];
  minLayer: number;
  maxLayer: number;
  /** rows of vertex ids per layer (boxes) */
  rows: Map<number, number[]>;
  width: number;
  order: number;
  x: number;
  placed: boolean;
}

const max = Math.max;
const min = Math.min;
const abs = Math.abs;

/** Lay out `s` (see the file comment). */
export function layoutStructure(s: ModelStructure, options: Partial<LayoutOptions> = {}): Layout {
  const o = { ...DEFAULT_LAYOUT, ...options };
  // boxes of consecutive layers may share x: the gap must hold one box's bottom and the next one's label
  o.layerGap = max(o.layerGap, 2 * o.clusterPad + o.clusterLabel + 4);
  const n = s.nodes.length;
  const index = new Map(s.nodes.map((node, i) => [node.id, i] as const));
  const edges = s.edges.filter((e) => index.has(e.from) && index.has(e.to) && e.from !== e.to);
  const layer = assignLayers(n, edges.map((e) => [index.get(e.from)!, index.get(e.to)!] as const));

  // vertices: real nodes, then dummies of long edges
  const vertices: Vertex[] = s.nodes.map((node, i) => ({
    layer: layer[i], cluster: node.kind === 'BPU' ? node.subgraph : undefined, width: o.nodeWidth, node: i, preds: [], succs: [], cx: 0,
  }));
  const chains: number[][] = [];
  for (const e of edges) {
    const u = index.get(e.from)!;
    const v = index.get(e.to)!;
    const chain = [u];
    if (layer[v] > layer[u] + 1) {
      const cluster = vertices[u].cluster !== undefined && vertices[u].cluster === vertices[v].cluster ? vertices[u].cluster : undefined;
      for (let l = layer[u] + 1; l < layer[v]; l++) {
        vertices.push({ layer: l, cluster, width: o.dummyWidth, node: -1, preds: [], succs: [], cx: 0 });
        chain.push(vertices.length - 1);
      }
    }
    chain.push(v);
    if (layer[v] > layer[u]) for (let k = 1; k < chain.length; k++) link(vertices, chain[k - 1], chain[k]);
    chains.push(chain);
  }

  const blocks = buildBlocks(vertices, s.nodes.length);
  for (const b of blocks) if (b.cluster !== undefined) orderRows(b, vertices, o);
  placeBlocks(blocks, vertices, o);

  // coordinates
  const rowTop = (l: number): number => o.margin + l * (o.nodeHeight + o.layerGap);
  let minX = Infinity;
  let maxX = -Infinity;
  for (const b of blocks) {
    minX = min(minX, b.x);
    maxX = max(maxX, b.x + b.width);
  }
  const shift = o.margin - (Number.isFinite(minX) ? minX : 0);
  const nodes: PlacedNode[] = s.nodes.map((node, i) => ({
    node, x: vertices[i].cx - o.nodeWidth / 2 + shift, y: rowTop(layer[i]), w: o.nodeWidth, h: o.nodeHeight, layer: layer[i],
  }));
  const clusters: PlacedCluster[] = [];
  for (const b of blocks) {
    if (b.cluster === undefined) continue;
    const top = rowTop(b.minLayer) - o.clusterPad - o.clusterLabel;
    clusters.push({ name: b.cluster, x: b.x + shift, y: top, w: b.width, h: rowTop(b.maxLayer) + o.nodeHeight + o.clusterPad - top });
  }
  const placedEdges: PlacedEdge[] = edges.map((edge, k) => {
    const chain = chains[k];
    const first = nodes[chain[0]];
    const last = nodes[chain[chain.length - 1]];
    const points: Point[] = [{ x: first.x + first.w / 2, y: first.y + first.h }];
    for (let j = 1; j < chain.length - 1; j++) {
      const d = vertices[chain[j]];
      points.push({ x: d.cx + shift, y: rowTop(d.layer) }, { x: d.cx + shift, y: rowTop(d.layer) + o.nodeHeight });
    }
    points.push({ x: last.x + last.w / 2, y: last.y });
    return { edge, points };
  });
  const layers = n ? max(...layer) + 1 : 1;
  return {
    width: Number.isFinite(maxX) ? maxX - minX + 2 * o.margin : 2 * o.margin,
    height: rowTop(layers - 1) + o.nodeHeight + o.margin,
    nodes,
    edges: placedEdges,
    clusters,
  };
}

function link(vs: Vertex[], u: number, v: number): void {
  vs[u].succs.push(v);
  vs[v].preds.push(u);
}

/** Longest-path layers in a topological order (edges closing a cycle are ignored). */
function assignLayers(n: number, edges: (readonly [number, number])[]): number[] {
  const succ: number[][] = Array.from({ length: n }, () => []);
  const indeg = new Array<number>(n).fill(0);
  for (const [u, v] of edges) {
    succ[u].push(v);
    indeg[v]++;
  }
  const order: number[] = [];
  const done = new Array<boolean>(n).fill(false);
  // Kahn's algorithm, always taking the lowest ready index (input order breaks ties)
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) ready.push(i);
  while (order.length < n) {
    if (ready.length === 0) {
      // a cycle: release the first unfinished node
      const i = done.indexOf(false);
      indeg[i] = 0;
      ready.push(i);
    }
    ready.sort((a, b) => a - b);
    const u = ready.shift()!;
    if (done[u]) continue;
    done[u] = true;
    order.push(u);
    for (const v of succ[u]) if (!done[v] && --indeg[v] === 0) ready.push(v);
  }
  const pos = new Array<number>(n);
  order.forEach((u, k) => (pos[u] = k));
  const layer = new Array<number>(n).fill(0);
  for (const u of order) for (const v of succ[u]) if (pos[v] > pos[u]) layer[v] = max(layer[v], layer[u] + 1);
  return layer;
}

function buildBlocks(vs: Vertex[], realCount: number): Block[] {
  const blocks: Block[] = [];
  const byCluster = new Map<string, Block>();
  const make = (cluster: string | undefined, order: number): Block => ({
    cluster, vertices: [], minLayer: Infinity, maxLayer: -Infinity, rows: new Map(), width: 0, order, x: 0, placed: false,
  });
  vs.forEach((v, i) => {
    let b: Block;
    if (v.cluster !== undefined) {
      b = byCluster.get(v.cluster) ?? make(v.cluster, i);
      if (!byCluster.has(v.cluster)) {
        byCluster.set(v.cluster, b);
        blocks.push(b);
      }
    } else {
      b = make(undefined, i < realCount ? i : realCount + i);
      b.width = v.width;
      blocks.push(b);
    }
    b.vertices.push(i);
    b.minLayer = min(b.minLayer, v.layer);
    b.maxLayer = max(b.maxLayer, v.layer);
    const row = b.rows.get(v.layer) ?? [];
    row.push(i);
    b.rows.set(v.layer, row);
  });
  return blocks;
}

/** Barycentre sweeps inside a box; then the box's width from its widest row. */
function orderRows(b: Block, vs: Vertex[], o: LayoutOptions): void {
  const pos = new Map<number, number>();
  const setPos = (row: number[]): void => row.forEach((v, k) => pos.set(v, k - (row.length - 1) / 2));
  for (const row of b.rows.values()) setPos(row);
  const sweep = (l: number, neighbours: (v: Vertex) => number[]): void => {
    const row = b.rows.get(l);
    if (!row || row.length < 2) return;
    const bary = new Map<number, number>();
    for (const v of row) {
      const ns = neighbours(vs[v]).filter((u) => pos.has(u) && vs[u].cluster === b.cluster);
      bary.set(v, ns.length ? ns.reduce((a, u) => a + pos.get(u)!, 0) / ns.length : pos.get(v)!);
    }
    row.sort((x, y) => bary.get(x)! - bary.get(y)!);
    setPos(row);
  };
  for (let it = 0; it < 4; it++) {
    for (let l = b.minLayer + 1; l <= b.maxLayer; l++) sweep(l, (v) => v.preds);
    for (let l = b.maxLayer - 1; l >= b.minLayer; l--) sweep(l, (v) => v.succs);
  }
  let inner = 0;
  for (const row of b.rows.values()) inner = max(inner, rowWidth(row, vs, o));
  b.width = inner + 2 * o.clusterPad;
}

function rowWidth(row: number[], vs: Vertex[], o: LayoutOptions): number {
  return row.reduce((a, v) => a + vs[v].width, 0) + o.nodeGap * (row.length - 1);
}

/** Place blocks top-down next to the centre of their predecessors, without overlaps. */
function placeBlocks(blocks: Block[], vs: Vertex[], o: LayoutOptions): void {
  const blockOf = new Map<number, Block>();
  for (const b of blocks) for (const v of b.vertices) blockOf.set(v, b);
  const queue = [...blocks].sort((a, b) => a.minLayer - b.minLayer || a.order - b.order);
  const placed: Block[] = [];
  for (const b of queue) {
    let sum = 0;
    let count = 0;
    for (const v of b.vertices) {
      for (const u of vs[v].preds) {
        const ub = blockOf.get(u)!;
        if (ub !== b && ub.placed) {
          sum += vs[u].cx;
          count++;
        }
      }
    }
    const desired = count ? sum / count : 0;
    const busy = placed.filter((p) => p.minLayer <= b.maxLayer && p.maxLayer >= b.minLayer).map((p) => [p.x, p.x + p.width] as const);
    const gap = b.cluster === undefined && b.vertices.every((v) => vs[v].node < 0) ? o.nodeGap / 2 : o.nodeGap;
    const candidates = [desired - b.width / 2];
    for (const [l, r] of busy) candidates.push(r + gap, l - gap - b.width);
    let best = NaN;
    for (const x of candidates) {
      if (busy.some(([l, r]) => x < r + gap - 1e-9 && x + b.width > l - gap + 1e-9)) continue;
      if (Number.isNaN(best) || abs(x + b.width / 2 - desired) < abs(best + b.width / 2 - desired) - 1e-9 || (abs(x + b.width / 2 - desired) <= abs(best + b.width / 2 - desired) + 1e-9 && x < best)) best = x;
    }
    b.x = best;
    b.placed = true;
    placed.push(b);
    if (b.cluster === undefined) {
      vs[b.vertices[0]].cx = b.x + b.width / 2;
    } else {
      for (const row of b.rows.values()) {
        let x = b.x + o.clusterPad + (b.width - 2 * o.clusterPad - rowWidth(row, vs, o)) / 2;
        for (const v of row) {
          vs[v].cx = x + vs[v].width / 2;
          x += vs[v].width + o.nodeGap;
        }
      }
    }
  }
}
