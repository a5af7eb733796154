import { PtqError } from '../errors';
import { CalibrationKind, DebugModel } from './graph';
import { compareWorstFirst, MetricName, parseMetric, pyFloat } from '../verify/metrics';
import { CommonOptions, DataOrDir, ModelOrFile, openData, openModel } from './session';
import { measureVariants } from './cones';
import { edgeSet } from './variants';

/**
 * get_sensitivity_of_nodes: quantize one node at a time (an ordinary node: the calibration
 * nodes it reads; a weight or activation calibration node: that pair for all its readers),
 * everything else float, and measure the model outputs (or `output_node`'s output) against the
 * float model over the samples. The result is sorted by the first metric, largest error first.
 *
 * The float model runs once per sample; each node then runs only the part of the model its
 * quantization changes, fed with the float values (cones.ts). With interested_nodes the table
 * is titled 'interested' instead of the node type.
 */
export type NodeType = 'node' | CalibrationKind;
export const NODE_TYPES: readonly NodeType[] = ['node', 'weight', 'activation'];

export interface SensitivityOptions extends CommonOptions {
  /** default 'cosine-similarity'; the ranking uses the first */
  metrics?: MetricName | MetricName[];
  /** an ordinary node whose output is measured instead of the model outputs */
  outputNode?: string;
  /** default 'node' */
  nodeType?: NodeType;
  /** samples used (default all) */
  dataNum?: number;
  /** print the table (through `log`, or stdout) */
  verbose?: boolean;
  /** only these nodes (any type), instead of every node of `nodeType` */
  interestedNodes?: string[];
  /** memory for the cached float values (default 1024 MB; samples go in chunks that fit) */
  cacheMb?: number;
}

export interface NodeSensitivity {
  name: string;
  type: NodeType;
  values: Record<string, number>;
}

export interface SensitivityResult {
  nodeType: NodeType | 'interested';
  metrics: MetricName[];
  /** sorted: largest error (by metrics[0]) first; ties keep topological order */
  nodes: NodeSensitivity[];
  samples: number;
  /** the values compared (model outputs or the output node's) */
  compared: string[];
  engine: string;
}

export async function getSensitivityOfNodes(modelOrFile: ModelOrFile, calibratedData: DataOrDir, opts: SensitivityOptions = {}): Promise<SensitivityResult> {
  const dm = openModel(modelOrFile);
  const metrics = normaliseMetrics(opts.metrics);
  const nodeType = opts.nodeType ?? 'node';
  if (!NODE_TYPES.includes(nodeType)) {
    throw new PtqError('E_DEBUG_ARGS', `node_type '${String(nodeType)}' is not one of ${NODE_TYPES.join(', ')}`, { subject: 'node_type', fix: 'use node, weight or activation' });
  }
  const compared = comparedValues(dm, opts.outputNode);
  const candidates = candidateNodes(dm, nodeType, opts.interestedNodes, opts.outputNode ? compared[0] : undefined);
  const data = openData(calibratedData, dm, opts.dataNum);
  const sets = candidates.map((c) => edgeSet(dm.edgesOf(c.name)));
  const accs = await measureVariants(dm, data, sets, compared, { ...opts, label: `${opts.interestedNodes ? 'interested' : nodeType} node(s)` });
  const nodes = candidates.map((c, k) => ({ name: c.name, type: c.type, values: accs.metrics[k].values(metrics) }));
  const order = nodes.map((_, k) => k).sort((x, y) => compareWorstFirst(metrics[0], nodes[x].values[metrics[0]], nodes[y].values[metrics[0]]) || x - y);
  const result: SensitivityResult = {
    nodeType: opts.interestedNodes ? 'interested' : nodeType,
    metrics,
    nodes: order.map((k) => nodes[k]),
    samples: data.count,
    compared,
    engine: accs.engine,
  };
  if (opts.verbose) (opts.log ?? ((l: string) => process.stdout.write(`${l}\n`)))(formatSensitivityTable(result));
  return result;
}

/** The reference's return value: node → metric → value as Python prints it, in ranking order. */
export function sensitivityDict(r: SensitivityResult): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const n of r.nodes) {
    const v: Record<string, string> = {};
    for (const m of r.metrics) v[m] = pyFloat(n.values[m]);
    out[n.name] = v;
  }
  return out;
}

/**
 * The verbose table of the reference:
 *
 *   ==========================node==========================
 *   Node        cosine-similarity   mse
 *   --------------------------------------------------------
 *   Conv_3      0.999009567957658   0.027825591154396534
 *
 * Each column is as wide as its longest entry plus two; the rules span all columns with the
 * node type centred in the top one.
 */
export function formatSensitivityTable(r: SensitivityResult): string {
  const head = ['Node', ...r.metrics];
  const rows = r.nodes.map((n) => [n.name, ...r.metrics.map((m) => pyFloat(n.values[m]))]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)) + 2);
  const total = widths.reduce((a, b) => a + b, 0);
  const title = r.nodeType;
  const left = Math.max(0, Math.floor((total - title.length) / 2));
  const right = Math.max(0, total - title.length - left);
  const line = (cells: string[]): string => cells.map((c, k) => c.padEnd(widths[k])).join('').trimEnd();
  return [`${'='.repeat(left)}${title}${'='.repeat(right)}`, line(head), '-'.repeat(total), ...rows.map(line)].join('\n');
}

/** The sensitivity as CSV (node, type, metrics…), ranking order. */
export function sensitivityCsv(r: SensitivityResult): string {
  const rows = [['node', 'type', ...r.metrics].join(',')];
  for (const n of r.nodes) rows.push([csvCell(n.name), n.type, ...r.metrics.map((m) => pyFloat(n.values[m]))].join(','));
  return `${rows.join('\n')}\n`;
}

export function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function normaliseMetrics(m: MetricName | MetricName[] | undefined): MetricName[] {
  const list = m === undefined ? ['cosine-similarity'] : Array.isArray(m) ? m : [m];
  if (!list.length) return ['cosine-similarity'];
  const out: MetricName[] = [];
  for (const x of list) {
    const p = parseMetric(x, 'metric');
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** The values compared: the float model outputs, or the output node's output. */
export function comparedValues(dm: DebugModel, outputNode?: string): string[] {
  if (outputNode === undefined) {
    const outs = dm.model.graph.outputs.map((o) => o.name).filter((o) => {
      const t = dm.model.graph.typeOf(o);
      return !t || t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'float64';
    });
    if (!outs.length) throw new PtqError('E_DEBUG_MODEL', `'${dm.source}' has no float outputs to compare`, { fix: 'give an output_node with a float output' });
    return outs;
  }
  const n = dm.node(outputNode);
  if (!n) {
    if (dm.calibrationNode(outputNode)) {
      throw new PtqError('E_DEBUG_NODE', `output_node '${outputNode}' is a calibration node; output_node takes an ordinary node`, {
        subject: outputNode,
        fix: 'give the ordinary node the calibration node quantizes for (its reader)',
      });
    }
    throw dm.unknown(outputNode, 'output_node');
  }
  if (!n.floatOutput) {
    throw new PtqError('E_DEBUG_NODE', `output_node '${outputNode}' (${n.node.opType}) has no float output to compare`, { subject: outputNode, fix: 'give a node with a float output' });
  }
  return [n.value];
}

interface Candidate {
  name: string;
  type: NodeType;
}

/**
 * The nodes to measure: `interested` (any type, validated) or every node of `nodeType` with
 * something to quantize. With an output node, nodes that cannot change it are left out.
 */
function candidateNodes(dm: DebugModel, nodeType: NodeType, interested: string[] | undefined, target?: string): Candidate[] {
  const upstream = target ? dm.ancestorsOf(target) : undefined;
  const affects = (name: string): boolean => !upstream || dm.edgesOf(name).some((e) => upstream.has(e.node));
  if (interested) {
    if (!interested.length) throw new PtqError('E_DEBUG_ARGS', 'interested_nodes is empty', { subject: 'interested_nodes', fix: 'name at least one node, or leave interested_nodes out' });
    const seen = new Set<string>();
    const out: Candidate[] = [];
    for (const name of interested) {
      const type = dm.typeOf(name);
      if (seen.has(name)) continue;
      seen.add(name);
      out.push({ name, type });
    }
    return out;
  }
  const list: Candidate[] =
    nodeType === 'node'
      ? dm.nodes.filter((n) => n.calibration.length).map((n) => ({ name: n.name, type: 'node' as const }))
      : dm.calibration.filter((c) => c.kind === nodeType && dm.edgesOf(c.name).length).map((c) => ({ name: c.name, type: c.kind }));
  return list.filter((c) => affects(c.name));
}

