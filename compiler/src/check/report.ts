import { Boundary, DataType, Device, Placement } from './placement';

/** Rows padded into columns two spaces apart (no trailing spaces). */
function columns(rows: string[][]): { lines: string[]; width: number } {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] + 2))).join('').trimEnd());
  return { lines, width: widths.reduce((p, q) => p + q + 2, 0) - 2 };
}

const subgraphLabel = (id: number | undefined): string => (id === undefined ? '--' : `id(${id})`);

/**
 * The checker table as `hb_mapper checker` prints it: Node, ON, Subgraph (`id(k)`, `--` on
 * the CPU) and Type (the BPU operator, or the ONNX op type on the CPU), one row per node in
 * topological order.
 */
export function formatCheckerTable(p: Placement): string {
  const rows = [['Node', 'ON', 'Subgraph', 'Type'], ...p.nodes.map((n) => [n.name, n.on, subgraphLabel(n.subgraph), n.type])];
  const { lines, width } = columns(rows);
  return ['='.repeat(width), lines[0], '-'.repeat(width), ...lines.slice(1)].join('\n');
}

/** Why each CPU node is on the CPU (empty string when every node runs on the BPU). */
export function formatCpuReasons(p: Placement): string {
  const cpu = p.nodes.filter((n) => n.on === 'CPU');
  if (!cpu.length) return '';
  const { lines } = columns([['Node', 'Type', 'Reason'], ...cpu.map((n) => [n.name, n.type, n.reason ?? ''])]);
  return ['CPU nodes and why they are not on the BPU:', ...lines].join('\n');
}

function plural(n: number, word: string): string {
  if (n === 1) return `${n} ${word}`;
  return `${n} ${/[^aeiou]y$/.test(word) ? `${word.slice(0, -1)}ies` : `${word}s`}`;
}

/** One line: node, BPU/CPU, subgraph and boundary counts. */
export function formatSummary(p: Placement): string {
  const s = summarize(p);
  return (
    `${plural(s.nodes, 'node')}: ${s.bpu} on the BPU, ${s.cpu} on the CPU; ${plural(s.subgraphs, 'BPU subgraph')}; ` +
    `${plural(s.quantize, 'Quantize boundary')}, ${plural(s.dequantize, 'Dequantize boundary')}` +
    (s.folded ? `; ${plural(s.folded, 'constant node')} folded` : '')
  );
}

/** The checker log (`hb_mapper_checker.log`): notes, the table, the CPU reasons and the summary. No timestamps, so it is reproducible. */
export function formatCheckerLog(p: Placement): string {
  const lines = [`INFO Check of graph '${p.graphName}' for march ${p.march} (ONNX opset ${p.opset})`];
  for (const n of p.notes) lines.push(`INFO ${n}`);
  lines.push('INFO The converted model node information:', formatCheckerTable(p));
  const reasons = formatCpuReasons(p);
  if (reasons) lines.push(`INFO ${reasons}`);
  for (const sg of p.subgraphs) lines.push(`INFO subgraph id(${sg.id}): ${plural(sg.nodes.length, 'node')}, inputs ${sg.inputs.join(', ') || '-'}, outputs ${sg.outputs.join(', ') || '-'}`);
  lines.push(`INFO ${formatSummary(p)}`);
  return `${lines.join('\n')}\n`;
}

export interface CheckSummary {
  nodes: number;
  bpu: number;
  cpu: number;
  folded: number;
  subgraphs: number;
  quantize: number;
  dequantize: number;
}

export function summarize(p: Placement): CheckSummary {
  const bpu = p.nodes.filter((n) => n.on === 'BPU').length;
  const count = (k: Boundary['kind']): number => p.boundaries.filter((b) => b.kind === k).length;
  return {
    nodes: p.nodes.length,
    bpu,
    cpu: p.nodes.length - bpu,
    folded: p.folded.length,
    subgraphs: p.subgraphs.length,
    quantize: count('quantize'),
    dequantize: count('dequantize'),
  };
}

/** `check.json`: the placement in a stable, machine-readable form. */
export interface CheckJson {
  march: string;
  opset: number;
  graph: string;
  summary: CheckSummary;
  nodes: {
    name: string;
    op: string;
    on: Device;
    subgraph: number | null;
    type: string;
    reason: string | null;
    inputType: DataType;
    outputType: DataType;
    inputTypes?: Record<string, DataType>;
  }[];
  subgraphs: { id: number; name: string; nodes: string[]; inputs: string[]; outputs: string[] }[];
  boundaries: Boundary[];
  folded: string[];
  notes: string[];
}

export function placementToJson(p: Placement): CheckJson {
  return {
    march: p.march,
    opset: p.opset,
    graph: p.graphName,
    summary: summarize(p),
    nodes: p.nodes.map((n) => ({
      name: n.name,
      op: n.op,
      on: n.on,
      subgraph: n.subgraph ?? null,
      type: n.type,
      reason: n.reason ?? null,
      inputType: n.inputType,
      outputType: n.outputType,
      ...(n.inputTypes ? { inputTypes: Object.fromEntries(Object.entries(n.inputTypes)) } : {}),
    })),
    subgraphs: p.subgraphs.map((s) => ({ id: s.id, name: subgraphLabel(s.id), nodes: s.nodes.slice(), inputs: s.inputs.slice(), outputs: s.outputs.slice() })),
    boundaries: p.boundaries.map((b) => ({ ...b, to: b.to.slice() })),
    folded: p.folded.slice(),
    notes: p.notes.slice(),
  };
}
