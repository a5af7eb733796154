import { Rng } from '../../kernels/random';
import { archFixture, binModelOf, checked, smallSplitModel } from './fixtures.test.util';
import { DEFAULT_LAYOUT, Layout, layoutStructure } from './layout';
import { collapseSubgraphs, ModelStructure, StructureNode, structureFromBin, structureFromPlacement } from './structure';

/**
 * The structure picture's graph and layout: what structureFromBin/Placement extract, and the
 * layout's guarantees on real and random graphs — edges point down, nothing overlaps, each
 * subgraph's box holds exactly its own nodes.
 */

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

const overlap = (a: Rect, b: Rect): boolean => a.x < b.x + b.w - 1e-6 && b.x < a.x + a.w - 1e-6 && a.y < b.y + b.h - 1e-6 && b.y < a.y + a.h - 1e-6;
const inside = (a: Rect, b: Rect): boolean => a.x >= b.x - 1e-6 && a.y >= b.y - 1e-6 && a.x + a.w <= b.x + b.w + 1e-6 && a.y + a.h <= b.y + b.h + 1e-6;

/** Every property the picture relies on; returns the problems found. */
function problems(s: ModelStructure, l: Layout): string[] {
  const out: string[] = [];
  const byId = new Map(l.nodes.map((n) => [n.node.id, n] as const));
  expect(l.nodes.map((n) => n.node.id)).toEqual(s.nodes.map((n) => n.id));
  for (let i = 0; i < l.nodes.length; i++) {
    for (let j = i + 1; j < l.nodes.length; j++) if (overlap(l.nodes[i], l.nodes[j])) out.push(`nodes ${l.nodes[i].node.id} and ${l.nodes[j].node.id} overlap`);
  }
  for (const c of l.clusters) {
    for (const n of l.nodes) {
      const member = n.node.kind === 'BPU' && n.node.subgraph === c.name;
      if (member && !inside(n, c)) out.push(`node ${n.node.id} is outside its box ${c.name}`);
      if (!member && overlap(n, c)) out.push(`node ${n.node.id} overlaps box ${c.name}`);
    }
    for (const d of l.clusters) if (d !== c && overlap(c, d)) out.push(`boxes ${c.name} and ${d.name} overlap`);
  }
  for (const e of l.edges) {
    const a = byId.get(e.edge.from)!;
    const b = byId.get(e.edge.to)!;
    if (b.layer <= a.layer) out.push(`edge ${e.edge.from} -> ${e.edge.to} does not point down`);
    if (e.points.length !== 2 * (b.layer - a.layer)) out.push(`edge ${e.edge.from} -> ${e.edge.to} has ${e.points.length} points over ${b.layer - a.layer} layers`);
    for (let k = 1; k < e.points.length; k++) if (e.points[k].y < e.points[k - 1].y) out.push(`edge ${e.edge.from} -> ${e.edge.to} goes up`);
    // dummy points of an edge never sit on a node
    for (let k = 1; k + 1 < e.points.length; k += 2) {
      const p = e.points[k];
      for (const n of l.nodes) if (p.x > n.x + 1 && p.x < n.x + n.w - 1 && p.y >= n.y && p.y < n.y + n.h) out.push(`edge ${e.edge.from} -> ${e.edge.to} crosses node ${n.node.id}`);
    }
  }
  for (const n of l.nodes) if (n.x < 0 || n.y < 0 || n.x + n.w > l.width + 1e-6 || n.y + n.h > l.height + 1e-6) out.push(`node ${n.node.id} is outside the picture`);
  return out;
}

describe('structure', () => {
  const f = checked(smallSplitModel());

  it('from a placement: inputs, ops on their device, outputs, edges along the values, subgraph names', () => {
    const s = structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate);
    expect(s.subgraphs).toEqual(['small_subgraph_0', 'small_subgraph_1']);
    const kind = (label: string): string | undefined => s.nodes.find((n) => n.label === label)?.kind;
    expect([kind('data'), kind('conv1'), kind('soft'), kind('conv3'), kind('out')]).toEqual(['input', 'BPU', 'CPU', 'BPU', 'output']);
    expect(s.nodes.find((n) => n.label === 'conv3')!.subgraph).toBe('small_subgraph_1');
    const edge = (a: string, b: string): boolean => s.edges.some((e) => e.from.endsWith(`:${a}`) && e.to.endsWith(`:${b}`));
    expect(edge('data', 'conv1') && edge('conv2', 'soft') && edge('soft', 'conv3') && edge('conv3', 'out')).toBe(true);
    expect(s.edges.some((e) => e.from.endsWith(':conv1') && e.to.endsWith(':conv3'))).toBe(false);
  });

  it('from a .bin: the same graph, segments as subgraphs', () => {
    const p = structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate);
    const b = structureFromBin(binModelOf(f, 'small'));
    expect(b.subgraphs).toEqual(p.subgraphs);
    expect(b.nodes.map((n) => [n.label, n.kind, n.subgraph])).toEqual(p.nodes.map((n) => [n.label, n.kind, n.subgraph]));
    expect(b.edges.map((e) => [e.from, e.to])).toEqual(p.edges.map((e) => [e.from, e.to]));
  });

  it('collapses each subgraph into one node, keeping the edges across it', () => {
    const s = collapseSubgraphs(structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate));
    expect(s.nodes.map((n) => n.label)).toEqual(['data', 'small_subgraph_0', 'soft', 'small_subgraph_1', 'out']);
    expect(s.nodes[1].members).toBe(3);
    expect(s.edges.map((e) => `${e.from} -> ${e.to}`)).toEqual([
      'input:data -> subgraph:small_subgraph_0',
      'subgraph:small_subgraph_0 -> op:soft',
      'op:soft -> subgraph:small_subgraph_1',
      'subgraph:small_subgraph_1 -> output:out',
    ]);
  });
});

describe('layout of real models', () => {
  it.each([
    ['mobilenetv2 (residual adds)', () => archFixture('mobilenetv2')],
    ['mobilenetv2 with a CPU conv mid-graph', () => archFixture('mobilenetv2', { cpuMidConv: true })],
    ['googlenet (4-way branches)', () => archFixture('googlenet', { inputSize: 32, width: 0.125 })],
    ['resnet18 with a CPU conv mid-graph', () => archFixture('resnet18', { cpuMidConv: true })],
  ])('%s: nothing overlaps, boxes hold their own nodes, edges run down beside the nodes', (_label, make) => {
    const f = make();
    const s = structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate);
    const l = layoutStructure(s);
    expect(problems(s, l)).toEqual([]);
    expect(l.clusters.map((c) => c.name)).toEqual(s.subgraphs);
    // a chain-like CNN stays narrow: at most a few nodes side by side
    expect(l.width).toBeLessThan(8 * (DEFAULT_LAYOUT.nodeWidth + DEFAULT_LAYOUT.nodeGap));
  });

  it('is deterministic', () => {
    const f = archFixture('googlenet', { inputSize: 32, width: 0.125 });
    const s = structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate);
    expect(JSON.stringify(layoutStructure(s))).toBe(JSON.stringify(layoutStructure(JSON.parse(JSON.stringify(s)) as ModelStructure)));
  });
});

describe('layout of random graphs', () => {
  /** A random DAG in execution order; BPU runs between CPU nodes form subgraphs, as the partition makes them. */
  function randomStructure(rng: Rng, n: number): ModelStructure {
    const nodes: StructureNode[] = [{ id: 'input:x', label: 'x', type: 'input', kind: 'input' }];
    let sg = 0;
    for (let i = 1; i < n; i++) {
      const cpu = rng.uniform() < 0.15;
      if (cpu) sg++;
      nodes.push({ id: `op:n${i}`, label: `n${i}`, type: 'Op', kind: cpu ? 'CPU' : 'BPU', ...(cpu ? {} : { subgraph: `g_subgraph_${sg}` }) });
    }
    nodes.push({ id: 'output:y', label: 'y', type: 'output', kind: 'output' });
    const edges = [];
    for (let i = 1; i < nodes.length; i++) {
      const fanIn = 1 + Math.floor(rng.uniform() * 2);
      const from = new Set<number>();
      for (let k = 0; k < fanIn; k++) from.add(Math.max(0, i - 1 - Math.floor(rng.uniform() * Math.min(i, 6))));
      for (const j of from) edges.push({ from: nodes[j].id, to: nodes[i].id, value: `v${j}` });
    }
    return { nodes, edges, subgraphs: [...new Set(nodes.map((x) => x.subgraph).filter((x): x is string => !!x))] };
  }

  it('200 random graphs: no overlaps, boxes exact, edges down', () => {
    const rng = new Rng(11);
    for (let t = 0; t < 200; t++) {
      const s = randomStructure(rng, 3 + Math.floor(rng.uniform() * 40));
      const found = problems(s, layoutStructure(s));
      if (found.length) throw new Error(`graph ${t}: ${found.slice(0, 3).join('; ')}\n${JSON.stringify(s)}`);
    }
  });

  it('a cycle (not produced by our tools) still lays out without hanging', () => {
    const s: ModelStructure = {
      nodes: ['a', 'b', 'c'].map((x) => ({ id: x, label: x, type: 'Op', kind: 'CPU' as const })),
      edges: [{ from: 'a', to: 'b', value: '' }, { from: 'b', to: 'c', value: '' }, { from: 'c', to: 'a', value: '' }],
      subgraphs: [],
    };
    const l = layoutStructure(s);
    expect(l.nodes).toHaveLength(3);
    expect(l.edges).toHaveLength(3);
  });
});
