import { PtqError } from '../errors';
import { readSample } from './data';
import { CalibrationNode } from './graph';
import { pyFloat } from '../verify/metrics';
import { toJson, fileNames, writeFolder } from './output';
import { CommonOptions, DataOrDir, ModelOrFile, openData, openModel, progressFor } from './session';
import { BoxStats, boxStats, channelValues } from './stats';
import { boxChart } from './svg';
import { uniqueNodes } from './distribution';
import { edgeSet, VariantRunner } from './variants';

/**
 * get_channelwise_data_distribution: per-channel box plots of the data a calibration node
 * quantizes. Weight calibration nodes: the float weights, channels along the node's own axis
 * (its per-channel axis; 0 for a per-tensor weight); activation calibration nodes: the node's
 * input over the samples as the calibrated model computes it, channels along axis 1. `axis`
 * overrides both (negative counts from the end). Boxes: quartiles (numpy's linear
 * interpolation), whiskers at the most extreme values within 1.5 · IQR, the channel's min and
 * max as circles beyond them; the median solid red, the mean dashed blue.
 */
export interface ChannelwiseOptions extends CommonOptions {
  axis?: number;
  dataNum?: number;
}

export interface NodeChannels {
  name: string;
  type: 'weight' | 'activation';
  axis: number;
  dims: number[];
  channels: BoxStats[];
  file: string;
  svg: string;
}

export interface ChannelwiseResult {
  nodes: NodeChannels[];
  samples: number;
}

export async function channelwiseData(modelOrFile: ModelOrFile, calibratedData: DataOrDir, nodes: string[], opts: ChannelwiseOptions = {}): Promise<ChannelwiseResult> {
  const dm = openModel(modelOrFile);
  const list = uniqueNodes(dm, nodes, 'nodes_list').map((n) => {
    const c = dm.calibrationNode(n);
    if (!c) {
      const cal = dm.node(n)?.calibration ?? [];
      throw new PtqError('E_DEBUG_NODE', `'${n}' is an ordinary node; get_channelwise_data_distribution takes calibration nodes`, {
        subject: n,
        fix: cal.length ? `give its calibration nodes: ${cal.join(', ')}` : 'give weight or activation calibration nodes (<tensor>_HzCalibration)',
      });
    }
    return c;
  });
  const acts = list.filter((c) => c.kind === 'activation');
  const values = new Map<string, { dims: number[]; data: Float32Array }[]>(acts.map((c) => [c.input, []]));
  let samples = 0;
  if (acts.length) {
    const data = openData(calibratedData, dm, opts.dataNum);
    samples = data.count;
    const fetch = [...values.keys()];
    const runner = new VariantRunner(dm, { fetchable: fetch, engine: opts.engine });
    const all = edgeSet(dm.edges);
    const bar = progressFor(opts, 'channel-wise data', data.count);
    try {
      for (let i = 0; i < data.count; i++) {
        const r = await runner.run(readSample(data, i), all, fetch);
        for (const [v, l] of values) l.push({ dims: r[v].dims.slice(), data: r[v].toFloat32() });
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
  const stems = fileNames(list.map((c) => c.name));
  const out = list.map((c, k): NodeChannels => {
    const tensors = c.kind === 'weight' ? [{ dims: dm.weightOf(c).dims.slice(), data: dm.weightOf(c).toFloat32() }] : (values.get(c.input) as { dims: number[]; data: Float32Array }[]);
    const dims = tensors[0].dims;
    const axis = channelAxis(c, dims.length, opts.axis);
    const channels = channelValues(tensors, axis).map((v) => boxStats(v));
    const svg = boxChart({
      title: `${c.name}: ${channels.length} channel(s) along axis ${axis} of ${c.kind === 'weight' ? 'weight' : 'input'} '${c.input}' ${JSON.stringify(dims)}`,
      boxes: channels.map((s, i) => ({ label: String(i), ...s })),
      xLabel: 'channel',
      yLabel: 'value',
    });
    return { name: c.name, type: c.kind, axis, dims, channels, file: stems[k], svg };
  });
  return { nodes: out, samples };
}

/** get_channelwise_data_distribution into `<saveDir>/channelwise_distribution/`. */
export async function getChannelwiseDataDistribution(saveDir: string, modelOrFile: ModelOrFile, calibratedData: DataOrDir, nodes: string[], opts: ChannelwiseOptions = {}): Promise<{ dir: string; result: ChannelwiseResult }> {
  const result = await channelwiseData(modelOrFile, calibratedData, nodes, opts);
  const dir = await writeFolder(`${saveDir}/channelwise_distribution`, (o) => writeChannelwise(o, result));
  return { dir, result };
}

export function writeChannelwise(o: { write(rel: string, data: string): void }, r: ChannelwiseResult, prefix = ''): void {
  for (const n of r.nodes) {
    o.write(`${prefix}${n.file}.svg`, n.svg);
    o.write(`${prefix}${n.file}.json`, toJson({ node: n.name, type: n.type, axis: n.axis, dims: n.dims, samples: n.type === 'activation' ? r.samples : null, channels: n.channels }));
    const keys: (keyof BoxStats)[] = ['count', 'min', 'whiskerLow', 'q1', 'median', 'mean', 'q3', 'whiskerHigh', 'max'];
    const rows = [['channel', ...keys.map((k) => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`))].join(',')];
    n.channels.forEach((s, i) => rows.push([String(i), ...keys.map((k) => (k === 'count' ? String(s[k]) : pyFloat(s[k])))].join(',')));
    o.write(`${prefix}${n.file}.csv`, `${rows.join('\n')}\n`);
  }
}

function channelAxis(c: CalibrationNode, rank: number, axis: number | undefined): number {
  if (axis === undefined) {
    if (c.kind === 'weight') return c.axis ?? 0;
    return rank > 1 ? 1 : 0;
  }
  if (!Number.isInteger(axis) || axis >= rank || axis < -rank) {
    throw new PtqError('E_DEBUG_ARGS', `axis ${axis} is out of range for '${c.name}', whose data has rank ${rank}`, {
      subject: 'axis',
      fix: `give an axis from ${-rank} to ${rank - 1}, or leave it out (weights: the node's axis, activations: 1)`,
    });
  }
  return axis < 0 ? axis + rank : axis;
}

