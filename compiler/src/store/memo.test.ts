/**
 * The memo through `runStage` on a real model: preprocess → check → calibrate → quantize of a
 * small conv net, counting computations through NX_PTQ_STAGE_LOG.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GraphBuilder } from '../onnx/builder';
import { saveModel } from '../onnx/encode';
import { loadConfig } from '../config';
import { runStage, StageName, stageOutputs } from '../stages';
import { stageKeyParts } from './key';
import { MemoStore, memoKey } from './store';

const YAML = `model_parameters:
  onnx_model: '../shared/net.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'net'
input_parameters:
  input_name: 'data'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_shape: '1x3x8x8'
  norm_type: 'data_scale'
  scale_value: '0.0039'
  input_type_rt: 'rgb'
  input_layout_rt: 'NHWC'
calibration_parameters:
  cal_data_dir: '../cal'
  calibration_type: 'max'
compiler_parameters:
  optimize_level: 'O3'
`;

const STAGES: StageName[] = ['preprocess', 'check', 'calibrate', 'quantize'];
const saved: Record<string, string | undefined> = {};
let root: string;
let yaml: string;
let store: string;
let stageLog: string;
const work = (f = ''): string => path.join(root, 'm1', 'model_output', f);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-memo-'));
  store = path.join(root, 'store');
  stageLog = path.join(root, 'stages.log');
  for (const k of ['NX_PTQ_STORE', 'NX_PTQ_STAGE_LOG', 'NX_PTQ_NO_MEMO']) saved[k] = process.env[k];
  process.env.NX_PTQ_STORE = store;
  process.env.NX_PTQ_STAGE_LOG = stageLog;
  delete process.env.NX_PTQ_NO_MEMO;
  const b = new GraphBuilder('net', { opset: 13, seed: 5 });
  const x = b.relu(b.conv(b.input('data', 'float32', [1, 3, 8, 8]), { outChannels: 6, kernel: 3, pad: 1 }));
  b.output(b.conv(x, { outChannels: 4, kernel: 1 }));
  fs.mkdirSync(path.join(root, 'shared'));
  saveModel(b.build(), path.join(root, 'shared', 'net.onnx'));
  fs.mkdirSync(path.join(root, 'cal'));
  for (let i = 0; i < 3; i++) {
    const s = new Float32Array(3 * 8 * 8).map((_, j) => ((j * 11 + i * 29) % 256) / 1.0);
    fs.writeFileSync(path.join(root, 'cal', `s${i}_f32.bin`), new Uint8Array(s.buffer));
  }
  fs.mkdirSync(path.join(root, 'm1'));
  yaml = path.join(root, 'm1', 'model.yaml');
  fs.writeFileSync(yaml, YAML);
});

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(root, { recursive: true, force: true });
});

/** Runs the stages in order; returns the stage-log lines they added and what each printed. */
async function run(stages: StageName[] = STAGES): Promise<{ events: string[]; lines: Record<string, string[]> }> {
  const before = fs.existsSync(stageLog) ? fs.readFileSync(stageLog, 'utf8').split('\n').filter(Boolean).length : 0;
  const lines: Record<string, string[]> = {};
  for (const s of stages) {
    lines[s] = [];
    await runStage(s, { configFile: yaml, log: (l) => lines[s].push(l) });
  }
  const events = fs.readFileSync(stageLog, 'utf8').split('\n').filter(Boolean).slice(before);
  return { events, lines };
}

function outputsHash(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(work(rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out[r] = crypto.createHash('sha256').update(fs.readFileSync(work(r))).digest('hex');
    }
  };
  walk('');
  return out;
}

const edit = (from: string, to: string): void => {
  const text = fs.readFileSync(yaml, 'utf8');
  if (!text.includes(from)) throw new Error(`no '${from}'`);
  fs.writeFileSync(yaml, text.replace(from, to));
};

describe('the stage memo through runStage', () => {
  let first: Record<string, string>;
  let firstLines: Record<string, string[]>;

  it('computes every stage once, then restores them all byte-identical from the store', async () => {
    const a = await run();
    expect(a.events).toEqual(STAGES.map((s) => `${s} m1 computed`));
    first = outputsHash();
    firstLines = a.lines;
    expect(Object.keys(first)).toEqual(
      expect.arrayContaining(['net_calibrated_model.onnx', 'net_quantized_model.onnx', 'check.json', 'calibration_data/data/0.npy']),
    );

    fs.rmSync(work(), { recursive: true });
    const b = await run();
    expect(b.events).toEqual(STAGES.map((s) => `${s} m1 memo-hit`));
    expect(outputsHash()).toEqual(first);
    // a hit prints one line, then the stage's own lines as they were
    for (const s of STAGES) {
      expect(b.lines[s][0]).toMatch(new RegExp(`^INFO ${s}: memo hit [0-9a-f]{12}, outputs restored from `));
      expect(b.lines[s].slice(1)).toEqual(firstLines[s]);
    }
  });

  it('editing compiler_parameters leaves all four stages to the memo', async () => {
    edit("optimize_level: 'O3'", "optimize_level: 'O1'");
    const r = await run();
    expect(r.events).toEqual(STAGES.map((s) => `${s} m1 memo-hit`));
    expect(outputsHash()).toEqual(first);
  });

  it("editing calibration_type recomputes calibrate and, since its outputs change, quantize; preprocess and check stay memoised", async () => {
    edit("calibration_type: 'max'", "calibration_type: 'kl'");
    const r = await run();
    expect(r.events).toEqual(['preprocess m1 memo-hit', 'check m1 memo-hit', 'calibrate m1 computed', 'quantize m1 computed']);
    expect(outputsHash()['net_calibration.json']).not.toBe(first['net_calibration.json']);
    // back to max: both entries are still there
    edit("calibration_type: 'kl'", "calibration_type: 'max'");
    expect((await run()).events).toEqual(STAGES.map((s) => `${s} m1 memo-hit`));
    expect(outputsHash()).toEqual(first);
  });

  it('a calibration sample with new content recomputes preprocess and the stages after it; a touched file does not', async () => {
    const sample = path.join(root, 'cal', 's1_f32.bin');
    const t = new Date(Date.now() + 5000);
    fs.utimesSync(sample, t, t);
    expect((await run()).events).toEqual(STAGES.map((s) => `${s} m1 memo-hit`));

    const original = fs.readFileSync(sample);
    const changed = Buffer.from(original);
    changed[0] ^= 0x40;
    fs.writeFileSync(sample, changed);
    const r = await run();
    expect(r.events).toEqual(['preprocess m1 computed', 'check m1 memo-hit', 'calibrate m1 computed', 'quantize m1 computed']);
    fs.writeFileSync(sample, original);
    expect((await run()).events).toEqual(STAGES.map((s) => `${s} m1 memo-hit`));
  });

  it('a corrupt entry is reported in one line, discarded and recomputed; the new entry serves the next run', async () => {
    // the entry the next calibrate run looks up
    const cfg = loadConfig(yaml);
    const parts = stageKeyParts('calibrate', cfg, (st) => stageOutputs(st, cfg));
    if (!parts.ok) throw new Error(parts.reason);
    const maxEntry = { dir: new MemoStore(store).entryDir(memoKey(parts.parts)) };
    expect(fs.existsSync(maxEntry.dir)).toBe(true);
    // corrupt the stored copy only (restored files are links: break the link first)
    const stored = path.join(maxEntry.dir, 'files', 'net_calibration.json');
    const text = fs.readFileSync(stored, 'utf8');
    fs.rmSync(stored);
    fs.writeFileSync(stored, text.replace('"max"', '"kl!"'));

    const r = await run(['calibrate']);
    expect(r.events).toEqual(['calibrate m1 computed']);
    const warn = r.lines.calibrate.filter((l) => l.startsWith('WARN'));
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatch(/^WARN memo: the calibrate entry [0-9a-f]{12} in .* is corrupt \(net_calibration\.json (has \d+ bytes|does not match its sha256)/);
    expect(warn[0]).toMatch(/discarded, recomputing$/);
    expect(outputsHash()).toEqual(first);
    expect((await run(['calibrate'])).events).toEqual(['calibrate m1 memo-hit']);
  });

  it('a stage whose upstream outputs are missing runs unmemoised and reports what to run', async () => {
    fs.rmSync(work('check.json'));
    await expect(run(['calibrate'])).rejects.toThrow(/check\.json' is missing; it is written by the check stage/);
    const events = fs.readFileSync(stageLog, 'utf8').trim().split('\n');
    expect(events[events.length - 1]).toBe('calibrate m1 failed');
    await run(['check']);
  });

  it('NX_PTQ_NO_MEMO=1 computes, without touching the store', async () => {
    const before = new MemoStore(store).list().length;
    process.env.NX_PTQ_NO_MEMO = '1';
    try {
      const r = await run(['check', 'quantize']);
      expect(r.events).toEqual(['check m1 computed', 'quantize m1 computed']);
      expect(r.lines.check.some((l) => l.includes('memo'))).toBe(false);
    } finally {
      delete process.env.NX_PTQ_NO_MEMO;
    }
    expect(new MemoStore(store).list().length).toBe(before);
    expect(outputsHash()).toEqual(first);
  });
});
