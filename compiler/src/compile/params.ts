import * as path from 'path';
import type { PtqConfig } from '../config';
import type { BinParamGroup } from './bin-format';

/**
 * The four YAML groups as the `.bin` records them (what `ptq model-info` prints, in the
 * reference's order and spelling: `BPU march`, `working dir`, `input_space&range`,
 * `input-source`, …). Every key of each group is recorded, 'None' where it was not set, so
 * a model's compilation can be read back from the file alone. Paths are written relative to
 * the YAML's folder (the same file compiled on another machine gives the same bytes).
 */

const b = (v: boolean): string => (v ? 'True' : 'False');
const none = (v: string | number | undefined): string => (v === undefined || v === '' ? 'None' : String(v));
const list = (v: readonly (string | number)[] | undefined, sep = ';'): string => (v && v.length ? v.join(sep) : 'None');
/** mean/scale values as the reference prints them: `123.68,116.779,103.939,` */
const values = (v: readonly number[] | undefined): string => (v && v.length ? `${v.map((x) => String(x)).join(',')},` : 'None');

function rel(cfg: PtqConfig, p: string | undefined): string {
  if (!p) return 'None';
  const r = path.relative(cfg.source.dir, p).split(path.sep).join('/');
  return r === '' ? '.' : r;
}

function sortedJson(o: Record<string, unknown>): string {
  const keys = Object.keys(o).sort();
  return keys.length ? `{${keys.map((k) => `'${k}': '${String(o[k])}'`).join(', ')}}` : 'None';
}

export function paramGroups(cfg: PtqConfig): BinParamGroup[] {
  const m = cfg.model;
  const model: [string, string][] = [];
  if (m.kind === 'caffe') {
    model.push(['prototxt', rel(cfg, m.prototxt)], ['caffe_model', rel(cfg, m.caffeModel)]);
  } else model.push(['onnx_model', rel(cfg, m.onnxModel)]);
  model.push(
    ['BPU march', m.march],
    ['layer_out_dump', b(m.layerOutDump)],
    ['working dir', rel(cfg, m.workingDir)],
    ['output_model_file_prefix', m.outputModelFilePrefix],
    ['output_nodes', list(m.outputNodes)],
    ['remove_node_type', list(m.removeNodeType)],
    ['remove_node_name', list(m.removeNodeName)],
    ['set_node_data_type', list(m.setNodeDataType)],
    ['debug_mode', none(m.debugMode)],
    ['node_info', Object.keys(m.nodeInfo).length ? JSON.stringify(Object.fromEntries(Object.keys(m.nodeInfo).sort().map((k) => [k, m.nodeInfo[k]]))) : 'None'],
  );
  const groups: BinParamGroup[] = [{ group: 'model_parameters', input: '', params: model.map(([key, value]) => ({ key, value })) }];
  for (const i of cfg.inputs) {
    const p: [string, string][] = [
      ['input_name', none(i.name)],
      ['input_type_rt', i.typeRt],
      ['input_space&range', i.spaceAndRange],
      ['input_layout_rt', none(i.layoutRt)],
      ['input_type_train', i.typeTrain],
      ['input_layout_train', i.layoutTrain],
      ['norm_type', i.normType],
      ['input_shape', i.shape ? i.shape.join('x') : 'None'],
      ['input_batch', String(cfg.inputBatch)],
      ['mean_value', values(i.mean)],
      ['scale_value', values(i.scale)],
      ['cal_data_dir', rel(cfg, i.calDataDir)],
      ['cal_data_type', none(i.calDataType)],
    ];
    groups.push({ group: 'input_parameters', input: i.name ?? '', params: p.map(([key, value]) => ({ key, value })) });
  }
  const c = cfg.calibration;
  const cal: [string, string][] = [
    ['preprocess_on', b(c.preprocessOn)],
    ['calibration_type', c.calibrationType],
    ['max_percentile', none(c.maxPercentile)],
    ['per_channel', b(c.perChannel)],
    ['run_on_cpu', list(c.runOnCpu)],
    ['run_on_bpu', list(c.runOnBpu)],
    ['optimization', none(c.optimization)],
  ];
  groups.push({ group: 'calibration_parameters', input: '', params: cal.map(([key, value]) => ({ key, value })) });
  const k = cfg.compiler;
  const sources: Record<string, string> = {};
  for (const i of cfg.inputs) if (i.name) sources[i.name] = i.source;
  const comp: [string, string][] = [
    ['compile_mode', k.compileMode],
    ['debug', b(k.debug)],
    ['core_num', String(k.coreNum)],
    ['optimize_level', k.optimizeLevel],
    ['input-source', sortedJson(sources)],
    ['max_time_per_fc', String(k.maxTimePerFc)],
    ['jobs', none(k.jobs)],
  ];
  groups.push({ group: 'compiler_parameters', input: '', params: comp.map(([key, value]) => ({ key, value })) });
  return groups;
}
