import { PtqError } from '../errors';
import { Tensor } from '../onnx/tensor';
import { readSample } from './data';
import { DebugModel, Edge } from './graph';
import { averageCurve, MetricAccumulator, MetricName, parseMetric, pyFloat } from '../verify/metrics';
import { csvCell } from './sensitivity';
import { CommonOptions, DataOrDir, ModelOrFile, openData, openModel, progressFor } from './session';
import { toJson, writeFolder } from './output';
import { lineChart } from './svg';
import { edgeSet, VariantRunner } from './variants';

/**
 * plot_acc_error: cumulative error curves. Each partial model quantizes some nodes and keeps
 * the rest float (`quantize_node`), or the other way round (`non_quantize_node`); the output of
 * every ordinary node (topological order) is compared with the float model's, giving one
 * curve per partial model across the nodes.
 *
 * Node lists, as in the reference:
 *  - a single list ['Conv_2', 'Conv_90']: one partial model per node (each alone);
 *  - a nested list [['Conv_2'], ['Conv_2', 'Conv_90']]: one partial model per sub-list;
 *  - the special values 'weight' and 'activation' (every weight / activation calibration
 *    node): ['weight', 'activation'] gives two partial models, weights only and activations
 *    only (with non_quantize_node: everything but the weights, everything but the activations).
 * A name may be an ordinary node (the calibration nodes it reads) or a calibration node.
 */
export type NodeSpec = string | (string | string[])[];

export interface AccErrorOptions extends CommonOptions {
  quantizeNode?: NodeSpec;
  nonQuantizeNode?: NodeSpec;
  /** default 'cosine-similarity' */
  metric?: MetricName;
  /** the n-th point is the mean of the first n (default false) */
  averageMode?: boolean;
  dataNum?: number;
}

export interface AccErrorCurve {
  /** partial_qmodel_<i> */
  name: string;
  /** the list that defines it (the names as given) */
  nodes: string[];
  /** metric per node of AccErrorResult.nodes (averaged when averageMode) */
  values: number[];
}

export interface AccErrorResult {
  metric: MetricName;
  averageMode: boolean;
  mode: 'quantize' | 'non_quantize';
  /** x axis: ordinary nodes with a float output, topological order */
  nodes: string[];
  curves: AccErrorCurve[];
  samples: number;
  engine: string;
}

export async function plotAccErrorData(modelOrFile: ModelOrFile, calibratedData: DataOrDir, opts: AccErrorOptions): Promise<AccErrorResult> {
  const dm = openModel(modelOrFile);
  const metric = parseMetric(opts.metric ?? 'cosine-similarity');
  const q = opts.quantizeNode;
  const nq = opts.nonQuantizeNode;
  if ((q === undefined) === (nq === undefined)) {
    throw new PtqError('E_DEBUG_ARGS', q === undefined ? 'plot_acc_error needs quantize_node or non_quantize_node' : 'plot_acc_error takes quantize_node or non_quantize_node, not both', {
      subject: 'quantize_node',
      fix: "give one of them, e.g. quantize_node=['Conv_2'] (-q) or non_quantize_node=[['Conv_2'],['Conv_2','Conv_90']] (-nq)",
    });
  }
  const mode = q !== undefined ? 'quantize' : 'non_quantize';
  const groups = partialModels(dm, (q ?? nq) as NodeSpec, mode === 'quantize' ? 'quantize_node' : 'non_quantize_node');
  const all = edgeSet(dm.edges);
  const sets = groups.map((g) => {
    const chosen = edgeSet(g.edges);
    if (mode === 'quantize') return chosen;
    return new Set([...all].filter((id) => !chosen.has(id)));
  });
  const xs = dm.nodes.filter((n) => n.floatOutput);
  const values = xs.map((n) => n.value);
  const data = openData(calibratedData, dm, opts.dataNum);
  const runner = new VariantRunner(dm, { fetchable: values, engine: opts.engine });
  const accs = sets.map(() => xs.map(() => new MetricAccumulator()));
  opts.log?.(`INFO cumulative error of ${sets.length} partial model(s) over ${xs.length} node(s) on ${data.count} sample(s)`);
  const bar = progressFor(opts, 'accumulate error', data.count * (sets.length + 1));
  try {
    for (let i = 0; i < data.count; i++) {
      const sample = readSample(data, i);
      const ref = floats(await runner.run(sample, new Set(), values), values);
      bar.tick();
      for (let k = 0; k < sets.length; k++) {
        const test = floats(await runner.run(sample, sets[k], values), values);
        for (let j = 0; j < values.length; j++) if (ref[j] && test[j]) accs[k][j].add(ref[j] as Float32Array, test[j] as Float32Array);
        bar.tick();
      }
    }
    bar.finish();
  } catch (e) {
    bar.abort();
    throw e;
  } finally {
    await runner.dispose();
  }
  const averageMode = !!opts.averageMode;
  const curves = groups.map((g, k) => {
    const raw = accs[k].map((a) => a.value(metric));
    return { name: `partial_qmodel_${k}`, nodes: g.names, values: averageMode ? averageCurve(raw) : raw };
  });
  return { metric, averageMode, mode, nodes: xs.map((n) => n.name), curves, samples: data.count, engine: runner.engineName };
}

/** The partial models of a node list (see the file comment). */
export function partialModels(dm: DebugModel, spec: NodeSpec, what: string): { names: string[]; edges: Edge[] }[] {
  const list = typeof spec === 'string' ? [spec] : spec;
  if (!Array.isArray(list) || !list.length) {
    throw new PtqError('E_DEBUG_ARGS', `${what} is empty`, { subject: what, fix: "name at least one node, e.g. ['Conv_2']" });
  }
  const resolve = (name: string): Edge[] => {
    if (name === 'weight' || name === 'activation') {
      if (!dm.node(name) && !dm.calibrationNode(name)) return dm.edgesOfKind(name);
    }
    return dm.edgesOf(name);
  };
  return list.map((item) => {
    const names = typeof item === 'string' ? [item] : item;
    if (!Array.isArray(names) || !names.length || names.some((n) => typeof n !== 'string')) {
      throw new PtqError('E_DEBUG_ARGS', `${what}: every entry is a node name or a list of node names`, { subject: what, fix: "e.g. [['Conv_2'], ['Conv_2', 'Conv_90']]" });
    }
    const edges = new Map<number, Edge>();
    for (const n of names) for (const e of resolve(n)) edges.set(e.id, e);
    return { names: names.slice(), edges: [...edges.values()] };
  });
}

/** The curves as CSV: node, then one column per partial model. */
export function accErrorCsv(r: AccErrorResult): string {
  const rows = [['index', 'node', ...r.curves.map((c) => c.name)].join(',')];
  r.nodes.forEach((n, j) => rows.push([String(j), csvCell(n), ...r.curves.map((c) => pyFloat(c.values[j]))].join(',')));
  return `${rows.join('\n')}\n`;
}

function floats(r: Record<string, Tensor>, names: string[]): (Float32Array | undefined)[] {
  return names.map((n) => {
    const t = r[n];
    return t && (t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'float64') ? t.toFloat32() : undefined;
  });
}

/** The chart of the curves (one per partial model, nodes in topological order). */
export function accErrorSvg(r: AccErrorResult): string {
  return lineChart({
    title: `${r.averageMode ? 'average ' : ''}accumulate error (${r.metric}), ${r.mode === 'quantize' ? 'quantized' : 'non-quantized'} nodes per partial model`,
    categories: r.nodes,
    series: r.curves.map((c) => ({ name: `${c.name}: ${r.mode === 'quantize' ? 'quantize' : 'float'} ${c.nodes.join(', ')}`, values: c.values })),
    xLabel: 'node (topological order)',
    yLabel: r.metric,
  });
}

export function accErrorJson(r: AccErrorResult): Record<string, unknown> {
  return {
    metric: r.metric,
    average_mode: r.averageMode,
    mode: r.mode,
    samples: r.samples,
    nodes: r.nodes,
    partial_models: r.curves.map((c) => ({ name: c.name, [r.mode === 'quantize' ? 'quantize_node' : 'non_quantize_node']: c.nodes, values: c.values })),
  };
}

export function writeAccError(o: { write(rel: string, data: string): void }, r: AccErrorResult, prefix = ''): void {
  o.write(`${prefix}accumulate_error.svg`, accErrorSvg(r));
  o.write(`${prefix}accumulate_error.json`, toJson(accErrorJson(r)));
  o.write(`${prefix}accumulate_error.csv`, accErrorCsv(r));
}

/** plot_acc_error into `<saveDir>/accumulate_error/` (SVG, JSON, CSV). */
export async function plotAccError(saveDir: string, modelOrFile: ModelOrFile, calibratedData: DataOrDir, opts: AccErrorOptions): Promise<{ dir: string; result: AccErrorResult }> {
  const result = await plotAccErrorData(modelOrFile, calibratedData, opts);
  const dir = await writeFolder(`${saveDir}/accumulate_error`, (o) => writeAccError(o, result));
  return { dir, result };
}
