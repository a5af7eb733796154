import { PtqError } from '../errors';
import { dequantizeValue, quantizeValue } from '../kernels/requant';
import { Tensor } from '../onnx/tensor';
import { readSample } from './data';
import { CalibrationNode, DebugModel, OrdinaryNode } from './graph';
import { pyFloat } from '../verify/metrics';
import { fileNames, toJson, writeFolder } from './output';
import { csvCell } from './sensitivity';
import { CommonOptions, DataOrDir, ModelOrFile, openData, openModel, progressFor } from './session';
import { binEdges, histogram, rangeOf } from './stats';
import { BLUE, GREEN, histogramChart, HistPanel, ORANGE, RED } from './svg';
import { edgeSet, VariantRunner } from './variants';

/**
 * plot_distribution, per node of `nodes_list`:
 *  - weight calibration node: the original (float) weights against the calibrated weights
 *    (quantized and dequantized with the node's scales, per channel where it is per channel);
 *  - activation calibration node: the distribution of its input, the data it quantizes, over
 *    the samples as the calibrated model computes it (every calibration node on);
 *  - ordinary node: its output in the float model and in the calibrated model, and the error
 *    (calibrated − float) on its own histogram.
 * Every plot marks the value of largest magnitude (blue triangle) and ± the calibration
 * threshold (red dashed; the smallest over channels for per-channel weights; for an ordinary
 * node the threshold of the calibration node quantizing its output, when there is one).
 * Histograms have HIST_BINS equal bins over the data's range.
 */
export const HIST_BINS = 100;

const floor = Math.floor;

export interface DistributionOptions extends CommonOptions {
  dataNum?: number;
}

export interface NodeDistribution {
  name: string;
  type: 'node' | 'weight' | 'activation';
  /** file stem in the result folder */
  file: string;
  svg: string;
  json: Record<string, unknown>;
  /** file suffix ('' or '_error') → CSV */
  csv: Record<string, string>;
}

export interface DistributionResult {
  nodes: NodeDistribution[];
  samples: number;
}

export async function plotDistributionData(modelOrFile: ModelOrFile, calibratedData: DataOrDir, nodes: string[], opts: DistributionOptions = {}): Promise<DistributionResult> {
  const dm = openModel(modelOrFile);
  const list = uniqueNodes(dm, nodes, 'nodes_list');
  const kinds = list.map((n) => dm.typeOf(n));
  const needFloat = list.filter((_, k) => kinds[k] === 'node').map((n) => (dm.node(n) as OrdinaryNode).value);
  const needFull = [
    ...needFloat,
    ...list.filter((_, k) => kinds[k] === 'activation').map((n) => (dm.calibrationNode(n) as CalibrationNode).input),
  ];
  const floatVals = new Map<string, Float32Array[]>(needFloat.map((v) => [v, []]));
  const fullVals = new Map<string, Float32Array[]>(needFull.map((v) => [v, []]));
  let samples = 0;
  if (needFull.length) {
    const data = openData(calibratedData, dm, opts.dataNum);
    samples = data.count;
    const runner = new VariantRunner(dm, { fetchable: needFull, engine: opts.engine });
    const all = edgeSet(dm.edges);
    const bar = progressFor(opts, 'distribution', data.count);
    try {
      for (let i = 0; i < data.count; i++) {
        const s = readSample(data, i);
        if (needFloat.length) collect(await runner.run(s, new Set(), needFloat), floatVals);
        collect(await runner.run(s, all, needFull), fullVals);
        bar.tick();
      }
      bar.finish();
    } catch (e) {
      bar.abort();
      throw e;
    } finally {
      await runner.dispose();
    }
  }
  const stems = fileNames(list);
  const out = list.map((name, k): NodeDistribution => {
    const kind = kinds[k];
    if (kind === 'weight') return weightDistribution(dm, dm.calibrationNode(name) as CalibrationNode, stems[k]);
    if (kind === 'activation') {
      const c = dm.calibrationNode(name) as CalibrationNode;
      return activationDistribution(c, fullVals.get(c.input) as Float32Array[], stems[k], samples);
    }
    const n = dm.node(name) as OrdinaryNode;
    return nodeDistribution(dm, n, floatVals.get(n.value) as Float32Array[], fullVals.get(n.value) as Float32Array[], stems[k], samples);
  });
  return { nodes: out, samples };
}

/** plot_distribution into `<saveDir>/distribution/` (SVG, JSON and CSV per node). */
export async function plotDistribution(saveDir: string, modelOrFile: ModelOrFile, calibratedData: DataOrDir, nodes: string[], opts: DistributionOptions = {}): Promise<{ dir: string; result: DistributionResult }> {
  const result = await plotDistributionData(modelOrFile, calibratedData, nodes, opts);
  const dir = await writeFolder(`${saveDir}/distribution`, (o) => writeDistribution(o, result));
  return { dir, result };
}

export function writeDistribution(o: { write(rel: string, data: string): void }, r: DistributionResult, prefix = ''): void {
  for (const n of r.nodes) {
    o.write(`${prefix}${n.file}.svg`, n.svg);
    o.write(`${prefix}${n.file}.json`, toJson(n.json));
    for (const [suffix, text] of Object.entries(n.csv)) o.write(`${prefix}${n.file}${suffix}.csv`, text);
  }
}

/** Names resolved and validated (a PtqError for an unknown one), duplicates dropped. */
export function uniqueNodes(dm: DebugModel, names: string[], what: string): string[] {
  if (!names.length) {
    throw new PtqError('E_DEBUG_ARGS', `${what} is empty`, { subject: what, fix: 'name at least one node' });
  }
  const out: string[] = [];
  for (const n of names) {
    dm.typeOf(n);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

function collect(r: Record<string, Tensor>, into: Map<string, Float32Array[]>): void {
  for (const [v, list] of into) list.push(r[v].toFloat32());
}

/** The weights as the calibrated model computes them: QuantizeLinear then DequantizeLinear with the node's scales. */
export function fakeQuantizeWeights(w: Tensor, c: CalibrationNode): Float32Array {
  const x = w.toFloat32();
  const out = new Float32Array(x.length);
  const channels = c.axis === undefined ? 1 : w.dims[c.axis];
  const inner = c.axis === undefined ? x.length : w.dims.slice(c.axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < x.length; i++) {
    const ch = channels === 1 ? 0 : floor(i / inner) % channels;
    const s = c.scales[ch];
    const z = c.zeroPoints[ch] ?? 0;
    out[i] = dequantizeValue(quantizeValue(x[i], s, z, c.qmin, c.qmax), s, z);
  }
  return out;
}

function minThreshold(c: CalibrationNode): number {
  let m = Infinity;
  for (const t of c.thresholds) if (t < m) m = t;
  return m;
}

function thresholdLines(t: number | undefined, label: string): HistPanel['lines'] {
  if (t === undefined || !Number.isFinite(t)) return [];
  return [
    { x: -t, color: RED, label },
    { x: t, color: RED, label },
  ];
}

function summary(arrays: Float32Array[]): Record<string, number> {
  const r = rangeOf(arrays);
  let sum = 0;
  let sq = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      sum += a[i];
      sq += a[i] * a[i];
    }
  }
  const n = Math.max(1, r.count);
  const mean = sum / n;
  return { count: r.count, min: r.min, max: r.max, max_abs: r.maxAbs, mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
}

function histCsv(edges: number[], series: { name: string; counts: number[] }[]): string {
  const rows = [['bin_low', 'bin_high', ...series.map((s) => csvCell(s.name))].join(',')];
  for (let i = 0; i + 1 < edges.length; i++) rows.push([pyFloat(edges[i]), pyFloat(edges[i + 1]), ...series.map((s) => String(s.counts[i]))].join(','));
  return `${rows.join('\n')}\n`;
}

function weightDistribution(dm: DebugModel, c: CalibrationNode, file: string): NodeDistribution {
  const w = dm.weightOf(c);
  const orig = w.toFloat32();
  const cal = fakeQuantizeWeights(w, c);
  const r = rangeOf([orig, cal]);
  const edges = binEdges(r.min, r.max, HIST_BINS);
  const series = [
    { name: 'original weight', counts: histogram([orig], edges), color: BLUE },
    { name: 'calibrated weight', counts: histogram([cal], edges), color: ORANGE },
  ];
  const th = minThreshold(c);
  const maxAbs = rangeOf([orig]).maxAbs;
  const svg = histogramChart({
    title: `${c.name} (weight calibration node)`,
    panels: [
      {
        title: `weight '${c.input}' ${JSON.stringify(w.dims)}${c.axis !== undefined ? `, per channel along axis ${c.axis}` : ', per tensor'}`,
        edges,
        series,
        lines: thresholdLines(th, c.axis !== undefined ? 'calibration threshold (smallest channel)' : 'calibration threshold'),
        markers: [{ x: maxAbs, color: BLUE, label: `max |w| = ${pyFloat(Math.abs(maxAbs))}` }],
        xLabel: 'value',
      },
    ],
  });
  return {
    name: c.name,
    type: 'weight',
    file,
    svg,
    json: {
      node: c.name,
      type: 'weight',
      tensor: c.input,
      dims: w.dims,
      axis: c.axis ?? null,
      threshold_min: th,
      thresholds: Array.from(c.thresholds),
      original: summary([orig]),
      calibrated: summary([cal]),
      histogram: { edges, original: series[0].counts, calibrated: series[1].counts },
    },
    csv: { '': histCsv(edges, series) },
  };
}

function activationDistribution(c: CalibrationNode, values: Float32Array[], file: string, samples: number): NodeDistribution {
  const r = rangeOf(values);
  const th = minThreshold(c);
  const edges = binEdges(r.min, r.max, HIST_BINS);
  const series = [{ name: 'input data', counts: histogram(values, edges), color: BLUE }];
  const svg = histogramChart({
    title: `${c.name} (activation calibration node)`,
    panels: [
      {
        title: `input '${c.input}' over ${samples} sample(s)`,
        edges,
        series,
        lines: thresholdLines(th, 'calibration threshold'),
        markers: [{ x: r.maxAbs, color: BLUE, label: `max |x| = ${pyFloat(Math.abs(r.maxAbs))}` }],
        xLabel: 'value',
      },
    ],
  });
  return {
    name: c.name,
    type: 'activation',
    file,
    svg,
    json: { node: c.name, type: 'activation', tensor: c.input, samples, threshold: th, data: summary(values), histogram: { edges, data: series[0].counts } },
    csv: { '': histCsv(edges, series) },
  };
}

function nodeDistribution(dm: DebugModel, n: OrdinaryNode, fl: Float32Array[], q: Float32Array[], file: string, samples: number): NodeDistribution {
  const r = rangeOf([...fl, ...q]);
  const edges = binEdges(r.min, r.max, HIST_BINS);
  const err = fl.map((a, k) => {
    const b = q[k];
    const d = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) d[i] = b[i] - a[i];
    return d;
  });
  const er = rangeOf(err);
  const errEdges = binEdges(er.min, er.max, HIST_BINS);
  const outCal = dm.calibration.find((c) => c.kind === 'activation' && (c.input === n.node.outputs[0] || c.output === n.value));
  const th = outCal ? minThreshold(outCal) : undefined;
  const maxAbs = rangeOf(fl).maxAbs;
  const series = [
    { name: 'float output', counts: histogram(fl, edges), color: BLUE },
    { name: 'quantized output', counts: histogram(q, edges), color: ORANGE },
  ];
  const errSeries = [{ name: 'error (quantized − float)', counts: histogram(err, errEdges), color: GREEN }];
  const svg = histogramChart({
    title: `${n.name} (${n.node.opType})`,
    panels: [
      {
        title: `output '${n.value}' over ${samples} sample(s): float vs calibrated model`,
        edges,
        series,
        lines: thresholdLines(th, `calibration threshold (${outCal?.name ?? ''})`),
        markers: [{ x: maxAbs, color: BLUE, label: `max |float| = ${pyFloat(Math.abs(maxAbs))}` }],
        xLabel: 'value',
      },
      { title: 'error distribution', edges: errEdges, series: errSeries, markers: [{ x: er.maxAbs, color: BLUE, label: `max |error| = ${pyFloat(Math.abs(er.maxAbs))}` }], xLabel: 'quantized − float' },
    ],
  });
  return {
    name: n.name,
    type: 'node',
    file,
    svg,
    json: {
      node: n.name,
      type: 'node',
      op_type: n.node.opType,
      output: n.value,
      samples,
      threshold: th ?? null,
      calibration_node: outCal?.name ?? null,
      float: summary(fl),
      quantized: summary(q),
      error: summary(err),
      histogram: { edges, float: series[0].counts, quantized: series[1].counts },
      error_histogram: { edges: errEdges, error: errSeries[0].counts },
    },
    csv: { '': histCsv(edges, series), _error: histCsv(errEdges, errSeries) },
  };
}
