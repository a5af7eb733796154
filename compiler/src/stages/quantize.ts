import * as fs from 'fs';
import * as path from 'path';
import { Sample } from '../calibrate/collect';
import { PtqConfig } from '../config';
import { Rng } from '../kernels/random';
import { isFloat } from '../onnx/dtype';
import { saveModel, writeFileAtomic } from '../onnx/encode';
import { Model } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { CALIBRATION_DATA_DIR } from '../preprocess/caldata';
import { emitQuantizationModels, QUANT_INFO_KEY, QuantizedModelInfo, QuantizeSpec, QuantPlan } from '../quantize';
import { ReferenceEngine } from '../runtime/reference';
import { pickEngine } from '../runtime/select';
import { missingOutput, readCheckOutputs, readStageJson } from './artifacts';
import type { CalibrationJson } from './calibrate';
import { openCalibrationSet, readModelSample } from './calibration-data';
import { FAKE_QUANT_ORT } from './calibration-search';
import { StageFn, stageOutputPaths } from './index';
import { hasQdq, stripQdq } from './qdq';
import { fmt, Similarity } from '../verify/similarity';

/**
 * The quantize stage: `***_quantized_model.onnx` (int8, DESIGN §3) from the optimized model,
 * the thresholds of `***_calibration.json` and the placement of check.json, then the
 * reference toolchain's closing report, also written to `***_quant_info.json`:
 *  - per node (check.json order): Node, ON, Subgraph, Type, the cosine similarity of the
 *    node's output between the float model (onnxruntime) and the calibrated fake-quant model
 *    of the same plan (for a Conv fused with its Relu/Clip: the clamped output, what the BPU
 *    computes), the threshold the quantized model uses for that output (scale · 127) and its
 *    data type (int8 / int16 / float);
 *  - per model output: cosine similarity, L1 (mean |a − b|), L2 (√mean (a − b)²) and
 *    Chebyshev (max |a − b|) distances between the float model (onnxruntime) and the
 *    quantized model (ReferenceEngine: the arithmetic the .bin reproduces).
 * On the first TABLE_SAMPLES calibration samples; without calibration data (skip, load) on
 * seeded random inputs (Rng('quantize')), which the log says.
 */

/** Samples behind the similarity report (the reference engine runs int8 kernels in JS). */
export const TABLE_SAMPLES = 5;

export interface QuantInfoJson {
  version: 1;
  samples: number;
  sample_source: 'calibration_data' | 'random';
  output_type: 'float32' | 'int8' | 'int16';
  nodes: { node: string; on: string; subgraph: string; type: string; cosine: number | null; threshold: number | null; data_type: string }[];
  outputs: { name: string; cosine: number; l1: number; l2: number; chebyshev: number }[];
  notes: string[];
}

export const quantizeStage: StageFn = async (cfg, ctx) => {
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
    ctx.log(l);
  };
  const chk = readCheckOutputs(cfg);
  const [, calJson] = stageOutputPaths('calibrate', cfg);
  const cal = readStageJson<CalibrationJson>(cfg, 'calibrate', calJson);
  if (!cal || typeof cal.tensors !== 'object' || cal.tensors === null) throw missingOutput(cfg, 'calibrate', calJson, 'has no tensors');
  if (cal.model_sha256 !== chk.modelHash) {
    throw missingOutput(cfg, 'calibrate', calJson, `belongs to another version of '${path.basename(chk.modelFile)}' (the check stage ran again since)`);
  }
  const model = hasQdq(chk.model) ? stripQdq(chk.model).model : chk.model;
  const outputType = cfg.calibration.optimization === 'set_model_output_int8' ? 'int8' : cfg.calibration.optimization === 'set_model_output_int16' ? 'int16' : 'float32';
  const spec: QuantizeSpec = {
    activations: Object.fromEntries(Object.entries(cal.tensors).map(([k, v]) => [k, { threshold: v.threshold }])),
    cpuNodes: chk.cpuNodes,
    march: cfg.model.march,
    outputType,
    ...(chk.int16Nodes.size ? { int16Nodes: chk.int16Nodes } : {}),
    ...(cal.channel_scales ? { channelScales: cal.channel_scales } : {}),
    ...(cal.bias_correction ? { biasCorrection: cal.bias_correction } : {}),
  };
  const { calibrated, quantized, plan } = emitQuantizationModels(model, spec);
  for (const n of plan.notes) log(`INFO ${n}`);

  const { samples, source } = reportSamples(cfg, model);
  if (source === 'random') log(`INFO no calibration data (calibration_type ${cal.calibration_type}): similarities on ${samples.length} seeded random input(s)`);
  const info = await similarityReport(model, calibrated, quantized, plan, chk.check.nodes, samples, outputType);
  const json: QuantInfoJson = { version: 1, samples: samples.length, sample_source: source, output_type: outputType, ...info, notes: plan.notes.slice() };
  const [qFile, infoFile] = stageOutputPaths('quantize', cfg);
  saveModel(quantized, qFile);
  writeFileAtomic(infoFile, `${JSON.stringify(json, null, 2)}\n`);
  log(formatNodeTable(json));
  log(formatOutputTable(json));
  return { stage: 'quantize', outputs: [qFile, infoFile], lines };
};

/** The first TABLE_SAMPLES calibration samples, or seeded random inputs when skip/load ran without any. */
function reportSamples(cfg: PtqConfig, model: Model): { samples: Sample[]; source: QuantInfoJson['sample_source'] } {
  const type = cfg.calibration.calibrationType;
  if ((type === 'skip' || type === 'load') && !hasSamples(path.join(cfg.model.workingDir, CALIBRATION_DATA_DIR))) {
    return { samples: randomSamples(model, TABLE_SAMPLES), source: 'random' };
  }
  const set = openCalibrationSet(cfg, model);
  const samples: Sample[] = [];
  for (let i = 0; i < Math.min(TABLE_SAMPLES, set.count); i++) samples.push(readModelSample(set, i));
  return { samples, source: 'calibration_data' };
}

/** Whether calibration_data/ holds any .npy sample. */
function hasSamples(dir: string): boolean {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory() && fs.readdirSync(path.join(dir, d.name)).some((f) => f.endsWith('.npy')));
  } catch {
    return false;
  }
}

function randomSamples(model: Model, count: number): Sample[] {
  const rng = new Rng('quantize');
  const out: Sample[] = [];
  for (let k = 0; k < count; k++) {
    const s: Sample = {};
    for (const v of model.graph.realInputs) {
      const dims = (v.type?.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
      const n = dims.reduce((a, b) => a * b, 1);
      if (v.type?.dtype === 'int8') {
        const a = new Int8Array(n);
        for (let i = 0; i < n; i++) a[i] = rng.int(256) - 128;
        s[v.name] = new Tensor('int8', dims, a);
      } else {
        s[v.name] = new Tensor('float32', dims, rng.fillNormal(new Float32Array(n)));
      }
    }
    out.push(s);
  }
  return out;
}

type CheckNode = { name: string; op: string; on: string; subgraph: number | null; type: string };

async function similarityReport(
  model: Model,
  calibrated: Model,
  quantized: Model,
  plan: QuantPlan,
  rows: CheckNode[],
  samples: Sample[],
  outputType: QuantInfoJson['output_type'],
): Promise<Pick<QuantInfoJson, 'nodes' | 'outputs'>> {
  const byLabel = new Map(plan.model.graph.nodes.map((n) => [n.label, n]));
  const computed = (m: Model): Set<string> => new Set(m.graph.nodes.flatMap((n) => n.outputs).filter((o) => o));
  const inFloat = computed(model);
  const inCal = computed(calibrated);
  const fq = fakeQuantNames(calibrated);
  const graphOutputs = new Set(plan.model.graph.outputs.map((o) => o.name));
  const pairs = new Map<string, { f: string; c: string }>();
  for (const r of rows) {
    const node = byLabel.get(r.name);
    // a Conv (or other active op) fused with its Relu/Clip computes the clamped value on the BPU
    const clamp = node ? plan.fusedClamp.get(node) : undefined;
    const t = (clamp ?? node)?.outputs[0];
    if (!t) continue;
    const c = fq.get(t) ?? t;
    if (inFloat.has(t) && inCal.has(c)) pairs.set(r.name, { f: t, c });
  }
  const nodeSims = new Map([...pairs.keys()].map((k) => [k, new Similarity()]));
  const outputs = plan.model.graph.outputs.map((o) => o.name);
  const outSims = new Map(outputs.map((o) => [o, new Similarity()]));
  const info = JSON.parse(quantized.metadataProps[QUANT_INFO_KEY] ?? '{"inputs":[],"outputs":[]}') as QuantizedModelInfo;

  const floatEngine = await pickEngine(model, 'auto', { threads: 1 });
  const calEngine = await pickEngine(calibrated, 'auto', FAKE_QUANT_ORT);
  const qEngine = new ReferenceEngine(quantized);
  try {
    for (const s of samples) {
      const f = await floatEngine.run(s, { fetch: [...new Set([...pairs.values()].map((p) => p.f))] });
      const c = await calEngine.run(s, { fetch: [...new Set([...pairs.values()].map((p) => p.c))] });
      for (const [k, p] of pairs) {
        const a = f[p.f];
        const b = c[p.c];
        if (a && b && isFloat(a.dtype) && isFloat(b.dtype)) nodeSims.get(k)?.add(a.toFloat32(), b.toFloat32());
        else nodeSims.delete(k);
      }
      const q = qEngine.runSync(quantizedFeeds(s, info, plan.imageInputs));
      for (const o of outputs) {
        const a = f[o];
        const b = q[o];
        if (!a || !b || !isFloat(a.dtype)) {
          outSims.delete(o);
          continue;
        }
        outSims.get(o)?.add(a.toFloat32(), dequantized(b, info.outputs.find((x) => x.name === o)?.scale));
      }
    }
  } finally {
    await floatEngine.dispose();
    await calEngine.dispose();
  }

  // the QuantizeLinear/DequantizeLinear pairs of a QAT model (calibration_type load) are gone
  const shown = rows.filter((r) => byLabel.has(r.name) || !/^(Quantize|Dequantize)Linear$/.test(r.op));
  const nodes = shown.map((r): QuantInfoJson['nodes'][number] => {
    const node = byLabel.get(r.name);
    const t = node?.outputs[0];
    const int = t !== undefined && plan.int8.has(t);
    const dataType = !int ? 'float' : outputType === 'int16' && graphOutputs.has(t) ? 'int16' : 'int8';
    const scale = t !== undefined && int ? plan.scales.get(t) : undefined;
    const sim = nodeSims.get(r.name);
    return {
      node: r.name,
      on: r.on,
      subgraph: r.subgraph === null || r.subgraph === undefined ? '--' : `id(${r.subgraph})`,
      type: r.type,
      cosine: sim ? sim.cosine : null,
      threshold: scale !== undefined ? scale * 127 : null,
      data_type: node ? dataType : 'float',
    };
  });
  return {
    nodes,
    outputs: [...outSims].map(([name, s]) => {
      const m = s.metrics;
      return { name, cosine: m.cosine, l1: m.l1, l2: m.l2, chebyshev: m.chebyshev };
    }),
  };
}

/** Float value → its fake-quantized value in the calibrated model (the DequantizeLinear after its QuantizeLinear). */
function fakeQuantNames(calibrated: Model): Map<string, string> {
  const g = calibrated.graph;
  const readers = g.consumers();
  const out = new Map<string, string>();
  const outputs = new Set(g.outputs.map((o) => o.name));
  for (const q of g.nodes) {
    if (q.opType !== 'QuantizeLinear' || q.domain) continue;
    const dq = (readers.get(q.outputs[0]) ?? []).find((n) => n.opType === 'DequantizeLinear');
    if (!dq) continue;
    // a graph output keeps its name on the DequantizeLinear (the float value was renamed `t_float`)
    if (outputs.has(dq.outputs[0])) out.set(dq.outputs[0], dq.outputs[0]);
    else if (!out.has(q.inputs[0])) out.set(q.inputs[0], dq.outputs[0]);
  }
  return out;
}

/**
 * The float-model sample as the quantized model takes it: an image input the emitter turned
 * from NCHW into NHWC is transposed; one trained in NHWC is fed as it is.
 */
function quantizedFeeds(s: Sample, info: QuantizedModelInfo, floatLayouts: ReadonlyMap<string, 'NCHW' | 'NHWC'>): Sample {
  const out: Sample = { ...s };
  for (const inp of info.inputs) {
    const t = s[inp.name];
    if (inp.layout === 'NHWC' && floatLayouts.get(inp.name) === 'NCHW' && t && t.rank === 4) {
      const [n, c, h, w] = t.dims;
      const src = t.data as Int8Array;
      const dst = new Int8Array(src.length);
      for (let b = 0; b < n; b++) {
        for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dst[((b * h + y) * w + x) * c + k] = src[((b * c + k) * h + y) * w + x];
      }
      out[inp.name] = new Tensor(t.dtype, [n, h, w, c], dst);
    }
  }
  return out;
}

function dequantized(t: Tensor, scale: number | undefined): Float32Array {
  const v = t.toFloat32();
  if (isFloat(t.dtype) || scale === undefined) return v;
  const o = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) o[i] = v[i] * scale;
  return o;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] + 2))).join('').trimEnd());
  const width = widths.reduce((p, q) => p + q + 2, 0) - 2;
  return ['='.repeat(width), lines[0], '-'.repeat(width), ...lines.slice(1)].join('\n');
}

/** The reference's closing table: Node ON Subgraph Type Cosine Similarity Threshold DataType. */
export function formatNodeTable(j: Pick<QuantInfoJson, 'nodes'>): string {
  return table([
    ['Node', 'ON', 'Subgraph', 'Type', 'Cosine Similarity', 'Threshold', 'DataType'],
    ...j.nodes.map((n) => [n.node, n.on, n.subgraph, n.type, fmt(n.cosine ?? undefined), fmt(n.threshold ?? undefined), n.data_type]),
  ]);
}

/** Per model output: Cosine Similarity, L1, L2, Chebyshev (float vs quantized). */
export function formatOutputTable(j: Pick<QuantInfoJson, 'outputs'>): string {
  return table([
    ['Output', 'Cosine Similarity', 'L1 Distance', 'L2 Distance', 'Chebyshev Distance'],
    ...j.outputs.map((o) => [o.name, fmt(o.cosine), fmt(o.l1), fmt(o.l2), fmt(o.chebyshev)]),
  ]);
}
