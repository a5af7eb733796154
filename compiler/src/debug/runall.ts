import * as path from 'path';
import { AccErrorResult, accErrorSvg, NodeSpec, plotAccErrorData, writeAccError } from './acc-error';
import { channelwiseData, ChannelwiseResult, writeChannelwise } from './channelwise';
import { DistributionResult, plotDistributionData, writeDistribution } from './distribution';
import { DebugModel } from './graph';
import { MetricName, pyFloat } from '../verify/metrics';
import { toJson, writeFolder } from './output';
import { formatSensitivityTable, getSensitivityOfNodes, NodeType, sensitivityCsv, sensitivityDict, SensitivityResult } from './sensitivity';
import { CommonOptions, DataOrDir, ModelOrFile, openData, openModel } from './session';
import { esc } from './svg';

/**
 * runall: the reference's four-step workflow in one call, every result in `<save_dir>/runall/`
 * with an index.html that shows them on one page.
 *
 *  1. sensitivity: by default of the weight and of the activation calibration nodes (two
 *     tables); with node_type given, of that type; with interested_nodes, of those;
 *  2. plot_distribution of the top RUNALL_TOP nodes of each table (dis_nodes_list overrides);
 *     for node_type 'node' the top nodes and their calibration nodes;
 *  3. get_channelwise_data_distribution of the calibration nodes of step 2 (cw_nodes_list
 *     overrides);
 *  4. plot_acc_error quantizing weights and activations separately (quantize_node ['weight',
 *     'activation']), unless quantize_node or non_quantize_node is given.
 * The reference restricts runall to RDK Ultra (bayes); nx-ptq's calibrated models have the
 * same form on both marches, so it runs on both.
 */
export const RUNALL_TOP = 5;

export interface RunallOptions extends CommonOptions {
  nsMetrics?: MetricName | MetricName[];
  outputNode?: string;
  nodeType?: NodeType;
  dataNum?: number;
  verbose?: boolean;
  interestedNodes?: string[];
  disNodesList?: string[];
  cwNodesList?: string[];
  axis?: number;
  quantizeNode?: NodeSpec;
  nonQuantizeNode?: NodeSpec;
  aeMetric?: MetricName;
  averageMode?: boolean;
  /** memory for the float values the sensitivity reuses (MB) */
  cacheMb?: number;
}

export interface RunallResult {
  dir: string;
  sensitivity: SensitivityResult[];
  distribution: DistributionResult;
  channelwise: ChannelwiseResult;
  accError: AccErrorResult;
}

export async function runall(modelOrFile: ModelOrFile, calibratedData: DataOrDir, saveDir = '.', opts: RunallOptions = {}): Promise<RunallResult> {
  const dm = openModel(modelOrFile);
  const data = openData(calibratedData, dm, opts.dataNum);
  const common: CommonOptions = { progress: opts.progress, log: opts.log, engine: opts.engine };
  const step = (k: number, what: string): void => opts.log?.(`INFO runall step ${k}/4: ${what}`);

  step(1, 'quantization sensitivity');
  const types: (NodeType | undefined)[] = opts.interestedNodes ? [undefined] : opts.nodeType ? [opts.nodeType] : ['weight', 'activation'];
  const sensitivity: SensitivityResult[] = [];
  for (const t of types) {
    sensitivity.push(
      await getSensitivityOfNodes(dm.model, data, { ...common, metrics: opts.nsMetrics, outputNode: opts.outputNode, nodeType: t, interestedNodes: opts.interestedNodes, verbose: opts.verbose, cacheMb: opts.cacheMb }),
    );
  }

  step(2, 'data distributions');
  const disNodes = opts.disNodesList ?? topNodes(dm, sensitivity);
  const distribution = disNodes.length ? await plotDistributionData(dm.model, data, disNodes, common) : { nodes: [], samples: 0 };

  step(3, 'channel-wise box plots');
  const cwNodes = opts.cwNodesList ?? disNodes.filter((n) => dm.calibrationNode(n));
  const channelwise = cwNodes.length ? await channelwiseData(dm.model, data, cwNodes, { ...common, axis: opts.axis }) : { nodes: [], samples: 0 };

  step(4, 'cumulative error');
  const spec = opts.quantizeNode === undefined && opts.nonQuantizeNode === undefined ? { quantizeNode: ['weight', 'activation'] } : { quantizeNode: opts.quantizeNode, nonQuantizeNode: opts.nonQuantizeNode };
  const accError = await plotAccErrorData(dm.model, data, { ...common, ...spec, metric: opts.aeMetric, averageMode: opts.averageMode });

  const source = typeof modelOrFile === 'string' ? path.basename(modelOrFile) : dm.source;
  const dir = await writeFolder(path.join(saveDir, 'runall'), (o) => {
    for (const s of sensitivity) {
      o.write(`sensitivity_of_nodes_${s.nodeType}.json`, toJson(sensitivityDict(s)));
      o.write(`sensitivity_of_nodes_${s.nodeType}.csv`, sensitivityCsv(s));
    }
    writeDistribution(o, distribution, 'distribution/');
    writeChannelwise(o, channelwise, 'channelwise_distribution/');
    writeAccError(o, accError, 'accumulate_error/');
    o.write('index.html', runallHtml({ model: source, data: data.set.dir, samples: data.count, sensitivity, distribution, channelwise, accError }));
  });
  return { dir, sensitivity, distribution, channelwise, accError };
}

/** Step 2's nodes: the top nodes of each table, and for ordinary nodes their calibration nodes too. */
function topNodes(dm: DebugModel, tables: SensitivityResult[]): string[] {
  const out: string[] = [];
  const add = (n: string): void => {
    if (!out.includes(n)) out.push(n);
  };
  for (const t of tables) {
    for (const n of t.nodes.slice(0, RUNALL_TOP)) {
      add(n.name);
      if (n.type === 'node') for (const c of dm.node(n.name)?.calibration ?? []) add(c);
    }
  }
  return out;
}

interface Page {
  model: string;
  data: string;
  samples: number;
  sensitivity: SensitivityResult[];
  distribution: DistributionResult;
  channelwise: ChannelwiseResult;
  accError: AccErrorResult;
}

/** One self-contained page: tables as HTML, the charts inlined, links to the data files. */
export function runallHtml(p: Page): string {
  const link = (href: string, label: string): string => `<a href="${esc(href.split('/').map(encodeURIComponent).join('/'))}">${esc(label)}</a>`;
  const parts: string[] = [];
  parts.push(`<h1>Accuracy debugger: runall</h1>`);
  parts.push(
    `<table class="facts"><tr><th>calibrated model</th><td>${esc(p.model)}</td></tr><tr><th>calibration data</th><td>${esc(p.data)}</td></tr><tr><th>samples</th><td>${p.samples}</td></tr></table>`,
  );
  parts.push('<h2>1. Quantization sensitivity</h2>');
  parts.push('<p>Each node quantized alone, everything else float; rows sorted by the first metric, largest error first.</p>');
  for (const s of p.sensitivity) {
    const f = `sensitivity_of_nodes_${s.nodeType}`;
    parts.push(`<h3>${esc(s.nodeType)} (${s.nodes.length})</h3><p>${link(`${f}.json`, `${f}.json`)} · ${link(`${f}.csv`, `${f}.csv`)}</p>`);
    const head = ['#', 'Node', ...s.metrics].map((h) => `<th>${esc(h)}</th>`).join('');
    const rows = s.nodes.map((n, k) => `<tr><td>${k + 1}</td><td>${esc(n.name)}</td>${s.metrics.map((m) => `<td class="num">${esc(pyFloat(n.values[m]))}</td>`).join('')}</tr>`);
    parts.push(`<table class="grid"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`);
  }
  parts.push('<h2>2. Data distributions</h2>');
  if (!p.distribution.nodes.length) parts.push('<p>No nodes.</p>');
  for (const n of p.distribution.nodes) {
    parts.push(`<figure>${n.svg}<figcaption>${esc(n.name)} (${esc(n.type)}) · ${link(`distribution/${n.file}.json`, 'JSON')} · ${link(`distribution/${n.file}.csv`, 'CSV')}</figcaption></figure>`);
  }
  parts.push('<h2>3. Channel-wise data distributions</h2>');
  if (!p.channelwise.nodes.length) parts.push('<p>No calibration nodes.</p>');
  for (const n of p.channelwise.nodes) {
    parts.push(`<figure>${n.svg}<figcaption>${esc(n.name)} (${esc(n.type)}, axis ${n.axis}) · ${link(`channelwise_distribution/${n.file}.json`, 'JSON')} · ${link(`channelwise_distribution/${n.file}.csv`, 'CSV')}</figcaption></figure>`);
  }
  parts.push('<h2>4. Cumulative error</h2>');
  parts.push(`<figure>${accErrorSvg(p.accError)}<figcaption>${link('accumulate_error/accumulate_error.json', 'JSON')} · ${link('accumulate_error/accumulate_error.csv', 'CSV')}</figcaption></figure>`);
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>runall: ${esc(p.model)}</title>`,
    '<style>',
    'body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:24px;color:#111;background:#fff}',
    'h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}h3{font-size:15px}',
    'table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;text-align:left}',
    'table.grid th{background:#eee;border-bottom:1px solid #999}table.grid td{border-bottom:1px solid #e5e5e5}',
    'td.num{font-family:"DejaVu Sans Mono",monospace}table.facts th{font-weight:normal;color:#555}',
    'figure{margin:16px 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}figcaption{font-size:13px;color:#333}',
    '</style>',
    '</head>',
    '<body>',
    ...parts,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
