import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { edgeSet, getSensitivityOfNodes, openDebugData } from '../compiler/src/debug';
import { calibratedProject } from '../compiler/src/debug/fixtures.test.util';
import { DebugModel } from '../compiler/src/debug/graph';
import { VARIANT_ORT, variantModel } from '../compiler/src/debug/variants';
import { readSample } from '../compiler/src/debug/data';
import { loadAndValidate } from '../compiler/src/onnx/load';
import { OrtEngine } from '../compiler/src/runtime/ort';
import { runStage } from '../compiler/src/stages';
import { ArchName, ARCHITECTURES } from '../scripts/fixtures/architectures';

/**
 * Time of the accuracy debugger's node sensitivity (get_sensitivity_of_nodes, node_type
 * 'node', every ordinary node with a calibration node, cosine-similarity) on a MobileNetV2-style
 * fixture with 20 samples.
 *
 *   node -r @swc-node/register bench/debugger.ts [--fixture fashion_mbv2 | --arch mobilenetv2]
 *        [--size 224] [--width 1] [--samples 20] [--compare 5] [--engine auto|reference]
 *
 * --fixture fashion_mbv2 (default): models/fashion_mbv2 (the trained MobileNetV2-style CNN,
 * rgb 32x32) taken through the real preprocess → check → calibrate stages (its model.yaml,
 * working_dir in a temporary folder; the first `samples` of its calibration set).
 * --arch mobilenetv2: scripts/fixtures/architectures.ts at --size/--width with random weights,
 * rgb input fed as nv12, through the same stages on smooth generated images (max calibration).
 *
 * Reported: stage_ms (preprocess + check + calibrate, not part of the debugger), sensitivity_ms
 * (the whole getSensitivityOfNodes call: loading the model, the float pass caching the cone
 * boundaries, one onnxruntime session and `samples` runs per node's cone), the node count, runs,
 * ms per run, and for scale the float model's session and run. --compare K: K nodes spread over
 * the graph measured three ways, each with its float pass: the cones in onnxruntime (what the
 * debugger does), a whole variant model per node with a fresh onnxruntime session, the cones in
 * the ReferenceEngine. Prints a table on stderr and one JSON line on stdout.
 */

interface Options {
  fixture?: 'fashion_mbv2';
  arch?: ArchName;
  size: number;
  width: number;
  samples: number;
  compare: number;
  engine: 'auto' | 'ort' | 'reference';
}

function parseArgs(argv: string[]): Options {
  const o: Options = { size: 224, width: 1, samples: 20, compare: 0, engine: 'auto' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--fixture') {
      if (v !== 'fashion_mbv2') throw new Error(`--fixture: only fashion_mbv2 (got ${v})`);
      o.fixture = v;
    } else if (a === '--arch') {
      if (!(v in ARCHITECTURES)) throw new Error(`--arch: one of ${Object.keys(ARCHITECTURES).join(', ')}`);
      o.arch = v as ArchName;
    } else if (a === '--size') o.size = Number(v);
    else if (a === '--width') o.width = Number(v);
    else if (a === '--samples') o.samples = Number(v);
    else if (a === '--compare') o.compare = Number(v);
    else if (a === '--engine') o.engine = v as Options['engine'];
    else throw new Error(`unknown option ${a}`);
  }
  if (!o.arch) o.fixture = 'fashion_mbv2';
  return o;
}

const REPO = path.resolve(__dirname, '..');
const round = (x: number): number => Math.round(x * 100) / 100;

/** fashion_mbv2's model.yaml with absolute paths and working_dir in `dir`, through calibrate. */
async function fashionProject(dir: string, samples: number): Promise<{ calibrated: string; data: string }> {
  const src = path.join(REPO, 'models', 'fashion_mbv2');
  const calSrc = path.join(REPO, 'calibration', 'fashion_mnist', 'rgb_32');
  // the first `samples` files of the calibration set (file order), so preprocessing is not timed for 100
  const cal = path.join(dir, 'cal');
  fs.mkdirSync(cal, { recursive: true });
  for (const f of fs.readdirSync(calSrc).sort().slice(0, samples)) fs.copyFileSync(path.join(calSrc, f), path.join(cal, f));
  const yaml = fs
    .readFileSync(path.join(src, 'model.yaml'), 'utf8')
    .replace(/onnx_model: '[^']*'/, `onnx_model: '${path.join(src, 'fashion_mbv2.onnx')}'`)
    .replace(/cal_data_dir: '[^']*'/, `cal_data_dir: '${cal}'`)
    .replace(/working_dir: '[^']*'/, `working_dir: '${path.join(dir, 'model_output')}'`);
  const file = path.join(dir, 'model.yaml');
  fs.writeFileSync(file, yaml);
  for (const s of ['preprocess', 'check', 'calibrate'] as const) await runStage(s, { configFile: file, log: () => undefined });
  const work = path.join(dir, 'model_output');
  return { calibrated: path.join(work, 'fashion_mbv2_calibrated_model.onnx'), data: path.join(work, 'calibration_data') };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-debugger-'));
  try {
    let t = performance.now();
    const label = o.fixture ?? `${o.arch}@${o.size}x${o.width}`;
    const p = o.fixture
      ? await fashionProject(dir, o.samples)
      : await calibratedProject(dir, 'arch', ARCHITECTURES[o.arch as ArchName]({ inputSize: o.size, width: o.width }).model, { samples: o.samples, input: 'rgb', calibrationType: 'max' });
    const stageMs = performance.now() - t;

    t = performance.now();
    const cpu0 = process.cpuUsage();
    const r = await getSensitivityOfNodes(p.calibrated, p.data, { dataNum: o.samples, progress: process.stderr, engine: o.engine, log: (l) => process.stderr.write(`${l}\n`) });
    const sensitivityMs = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const sensitivityCpuMs = (cpu.user + cpu.system) / 1000;
    const runs = (r.nodes.length + 1) * r.samples;

    // for scale: the float model's session and one float run
    const dm = DebugModel.of(loadAndValidate(p.calibrated), path.basename(p.calibrated));
    const data = openDebugData(p.data, dm.model, o.samples);
    const sample = readSample(data, 0);
    t = performance.now();
    const fl = await OrtEngine.create(variantModel(dm, new Set()), VARIANT_ORT);
    const openMs = performance.now() - t;
    await fl.run(sample);
    const times: number[] = [];
    for (let k = 0; k < 10; k++) {
      t = performance.now();
      await fl.run(sample);
      times.push(performance.now() - t);
    }
    await fl.dispose();
    times.sort((a, b) => a - b);

    const row: Record<string, unknown> = {
      bench: 'debugger',
      fixture: label,
      samples: r.samples,
      nodes: r.nodes.length,
      calibration_nodes: dm.calibration.length,
      edges: dm.edges.length,
      runs,
      engine: r.engine,
      stage_ms: round(stageMs),
      sensitivity_ms: round(sensitivityMs),
      // CPU time of the process in the call (onnxruntime computes on the calling thread): less sensitive to a shared machine
      sensitivity_cpu_ms: round(sensitivityCpuMs),
      ms_per_run: round(sensitivityMs / runs),
      float_open_ms: round(openMs),
      float_run_median_ms: round(times[times.length >> 1]),
      top: r.nodes.slice(0, 3).map((n) => [n.name, n.values['cosine-similarity']]),
      load_avg: os.loadavg().map(round),
    };

    if (o.compare > 0) {
      // K nodes spread evenly over the graph (topological order), each way on the same nodes
      const all = dm.nodes.filter((n) => n.calibration.length).map((n) => n.name);
      const nodes = Array.from({ length: Math.min(o.compare, all.length) }, (_, k) => all[Math.floor(((k + 0.5) * all.length) / Math.min(o.compare, all.length))]);
      const samples = Array.from({ length: r.samples }, (_, i) => readSample(data, i));
      t = performance.now();
      await getSensitivityOfNodes(p.calibrated, p.data, { dataNum: o.samples, progress: false, interestedNodes: nodes });
      const cones = performance.now() - t;
      // a whole model per variant, a fresh onnxruntime session each (and one float pass)
      t = performance.now();
      let sessionMs = 0;
      for (const open of [new Set<number>(), ...nodes.map((n) => edgeSet(dm.edgesOf(n)))]) {
        const s0 = performance.now();
        const e = await OrtEngine.create(variantModel(dm, open), VARIANT_ORT);
        sessionMs += performance.now() - s0;
        for (const s of samples) await e.run(s);
        await e.dispose();
      }
      const whole = performance.now() - t;
      // the cones in the ReferenceEngine
      t = performance.now();
      await getSensitivityOfNodes(p.calibrated, p.data, { dataNum: o.samples, progress: false, engine: 'reference', interestedNodes: nodes });
      const ref = performance.now() - t;
      row.compare_nodes = nodes;
      row.compare_ort_cones_ms = round(cones);
      row.compare_ort_whole_models_ms = round(whole);
      row.compare_ort_whole_models_open_ms = round(sessionMs / (nodes.length + 1));
      row.compare_reference_cones_ms = round(ref);
    }
    process.stderr.write(`${Object.entries(row).map(([k, v]) => `${k.padEnd(34)}${JSON.stringify(v)}`).join('\n')}\n`);
    process.stdout.write(`${JSON.stringify(row)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
