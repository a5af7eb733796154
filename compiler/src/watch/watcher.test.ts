/**
 * The watcher on real files (chokidar) with a recording runner: what each kind of edit reruns,
 * debouncing, a broken YAML and its recovery, changes during a run, a failed run, and paths
 * that move. One test runs real stages in-process (DirectRunner).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GraphBuilder } from '../onnx/builder';
import { saveModel } from '../onnx/encode';
import { StageName } from '../stages';
import { DirectRunner, RunOutcome, Runner, RunRequest } from './runner';
import { StatusBoard } from './status';
import { ModelWatcher, WatchEvent } from './watcher';

jest.setTimeout(60_000);

const YAML = `model_parameters:
  onnx_model: './net.onnx'
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
  cal_data_dir: '../../cal/a'
  cal_data_type: 'float32'
  calibration_type: 'max'
compiler_parameters:
  optimize_level: 'O3'
`;

const ALL: StageName[] = ['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify'];
const roots: string[] = [];

function workspace(models: string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-watch-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'cal', 'a'), { recursive: true });
  fs.mkdirSync(path.join(root, 'cal', 'b'), { recursive: true });
  fs.writeFileSync(path.join(root, 'cal', 'a', 's0.bin'), new Uint8Array(3 * 8 * 8 * 4));
  for (const m of models) {
    fs.mkdirSync(path.join(root, 'models', m), { recursive: true });
    fs.writeFileSync(path.join(root, 'models', m, 'model.yaml'), YAML);
    fs.writeFileSync(path.join(root, 'models', m, 'net.onnx'), 'not read by the recording runner');
  }
  return root;
}

/** A runner that records its requests; `hold` makes runs wait until released; `fail` fails a stage. */
class RecordingRunner implements Runner {
  readonly description = 'recording';
  readonly calls: Array<Array<{ model: string; stages: StageName[] }>> = [];
  hold?: Promise<void>;
  fail?: { model: string; stage: StageName };

  async run(requests: readonly RunRequest[]): Promise<Map<string, RunOutcome>> {
    this.calls.push(requests.map((r) => ({ model: r.model.name, stages: r.stages })));
    if (this.hold) await this.hold;
    const out = new Map<string, RunOutcome>();
    for (const r of requests) {
      if (this.fail && this.fail.model === r.model.name && r.stages.includes(this.fail.stage)) {
        const ran = r.stages.slice(0, r.stages.indexOf(this.fail.stage));
        out.set(r.model.name, { ok: false, ran, cached: [], failed: this.fail.stage, error: 'ERROR calibration data is bad (fix: replace it)', ms: 5 });
      } else {
        out.set(r.model.name, { ok: true, ran: r.stages, cached: [], ms: 5 });
      }
    }
    return out;
  }

  close(): void {}
}

interface Harness {
  root: string;
  watcher: ModelWatcher;
  runner: Runner;
  lines: string[];
  events: WatchEvent[];
  /** resolves with the next `n` events (after those already seen) */
  next(n?: number): Promise<WatchEvent[]>;
  yaml(model: string): string;
}

const open: ModelWatcher[] = [];

async function start(models: string[], opts: { runner?: Runner; until?: StageName[]; root?: string } = {}): Promise<Harness> {
  const root = opts.root ?? workspace(models);
  const runner = opts.runner ?? new RecordingRunner();
  const lines: string[] = [];
  const status = new StatusBoard({ write: (t: string) => lines.push(...t.split('\n').filter(Boolean)) }, models, { tty: false });
  const watcher = new ModelWatcher({
    models: models.map((name) => ({ name, configFile: path.join(root, 'models', name, 'model.yaml') })),
    runner,
    status,
    until: opts.until,
    debounceMs: 150,
  });
  open.push(watcher);
  const events: WatchEvent[] = [];
  let seen = 0;
  const waiters: Array<() => void> = [];
  watcher.onEvent((e) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (n = 1): Promise<WatchEvent[]> => {
    const deadline = Date.now() + 20_000;
    while (events.length < seen + n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} watch event(s); status lines:\n${lines.join('\n')}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    const out = events.slice(seen, seen + n);
    seen += n;
    return out;
  };
  await watcher.start();
  return { root, watcher, runner, lines, events, next, yaml: (m) => path.join(root, 'models', m, 'model.yaml') };
}

function edit(file: string, from: string, to: string): void {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no '${from}'`);
  fs.writeFileSync(file, text.replace(from, to));
}

afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
});
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

describe('ModelWatcher', () => {
  it('builds every model at start, then reruns only what one YAML edit affects, once per burst', async () => {
    const h = await start(['a', 'b']);
    const runner = h.runner as RecordingRunner;
    const initial = await h.next(2);
    expect(initial.map((e) => [e.model, e.stages, e.reason])).toEqual([
      ['a', ALL, 'initial build'],
      ['b', ALL, 'initial build'],
    ]);
    expect(runner.calls).toHaveLength(1); // both models in one run
    expect(h.lines).toContain('[a] perf, verify ✓ 5ms  initial build · ran preprocess, check, calibrate, quantize, compile, perf, verify');

    // three saves within the debounce time: one run
    edit(h.yaml('a'), "optimize_level: 'O3'", "optimize_level: 'O2'");
    edit(h.yaml('a'), "optimize_level: 'O2'", "optimize_level: 'O1'");
    edit(h.yaml('a'), "optimize_level: 'O1'", "optimize_level: 'O0'");
    const [e] = await h.next();
    expect(e).toMatchObject({ model: 'a', stages: ['compile', 'perf', 'verify'], reason: 'compiler_parameters changed' });
    await h.watcher.idle();
    expect(runner.calls).toHaveLength(2);
    expect(runner.calls[1]).toEqual([{ model: 'a', stages: ['compile', 'perf', 'verify'] }]);

    // a comment: nothing to run, said in one line
    fs.appendFileSync(h.yaml('b'), '# a comment\n');
    expect((await h.next())[0]).toMatchObject({ model: 'b', stages: [], reason: 'model.yaml changed' });
    expect(h.lines[h.lines.length - 1]).toBe('[b] up to date ✓ model.yaml changed: no stage affected');
    expect(runner.calls).toHaveLength(2);
  });

  it('shows a broken YAML in one line, keeps watching, and compares the next good save with the last good one', async () => {
    const h = await start(['a']);
    await h.next();
    const good = fs.readFileSync(h.yaml('a'), 'utf8');
    fs.writeFileSync(h.yaml('a'), good.replace("march: 'bernoulli2'", "march: 'bernouli2'"));
    const [bad] = await h.next();
    expect(bad.configError).toMatch(/^ERROR .*model\.yaml:3 model_parameters\.march: 'bernouli2' is not allowed/);
    const line = h.lines[h.lines.length - 1];
    expect(line).toMatch(/^\[a\] model\.yaml ✗ ERROR .*model\.yaml:3 model_parameters\.march: 'bernouli2' is not allowed.*\(still watching: the last good configuration is kept; fix and save\)$/);
    expect(line.split('\n')).toHaveLength(1);

    // a calibration file changes while the YAML is broken: remembered, not run
    fs.writeFileSync(path.join(h.root, 'cal', 'a', 's1.bin'), new Uint8Array(3 * 8 * 8 * 4));
    await new Promise((r) => setTimeout(r, 600));
    expect((h.runner as RecordingRunner).calls).toHaveLength(1);

    // fixed, with another edit: the calibration change and the edit, relative to the last good YAML
    fs.writeFileSync(h.yaml('a'), good.replace("scale_value: '0.0039'", "scale_value: '0.0078'"));
    const [fixed] = await h.next();
    expect(fixed.stages).toEqual(['preprocess', 'check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(fixed.reason).toBe('calibration data changed; input_parameters changed');
    expect(fixed.outcome?.ok).toBe(true);
  });

  it('maps file changes to stages: calibration data → preprocess and after, the model → everything', async () => {
    const h = await start(['a'], { until: ['quantize'] });
    expect((await h.next())[0].stages).toEqual(['preprocess', 'check', 'calibrate', 'quantize']);
    fs.writeFileSync(path.join(h.root, 'cal', 'a', 's1.bin'), new Uint8Array(3 * 8 * 8 * 4));
    expect((await h.next())[0]).toMatchObject({ stages: ['preprocess', 'calibrate', 'quantize'], reason: 'calibration data changed' });
    fs.writeFileSync(path.join(h.root, 'models', 'a', 'net.onnx'), 'changed');
    expect((await h.next())[0]).toMatchObject({ stages: ['preprocess', 'check', 'calibrate', 'quantize'], reason: 'model file changed' });
    // outside the stages kept up to date: nothing runs
    edit(h.yaml('a'), "optimize_level: 'O3'", "optimize_level: 'O2'");
    expect((await h.next())[0]).toMatchObject({ stages: [] });
    expect(h.lines[h.lines.length - 1]).toBe('[a] up to date ✓ compiler_parameters changed: no stage up to quantize affected');
  });

  it("maps a change inside verify's data_dir (nx-ptq.verify.data_dir) to verify only", async () => {
    const root = workspace(['a']);
    fs.mkdirSync(path.join(root, 'vdata'));
    fs.writeFileSync(path.join(root, 'vdata', 'v0.bin'), new Uint8Array(3 * 8 * 8 * 4));
    fs.appendFileSync(path.join(root, 'models', 'a', 'model.yaml'), "nx-ptq:\n  verify:\n    data_dir: '../../vdata'\n");
    const h = await start(['a'], { root });
    expect((await h.next())[0].stages).toEqual(ALL);
    fs.writeFileSync(path.join(root, 'vdata', 'v0.bin'), new Uint8Array(3 * 8 * 8 * 4).fill(1));
    expect((await h.next())[0]).toMatchObject({ stages: ['verify'], reason: 'verify data changed' });
    fs.writeFileSync(path.join(root, 'vdata', 'v1.bin'), new Uint8Array(3 * 8 * 8 * 4));
    expect((await h.next())[0]).toMatchObject({ stages: ['verify'], reason: 'verify data changed' });
    expect((h.runner as RecordingRunner).calls.slice(1)).toEqual([[{ model: 'a', stages: ['verify'] }], [{ model: 'a', stages: ['verify'] }]]);
    expect(h.lines[h.lines.length - 1]).toBe('[a] verify ✓ 5ms  verify data changed · ran verify');
    // the calibration folder still maps to preprocess and after
    fs.writeFileSync(path.join(root, 'cal', 'a', 's1.bin'), new Uint8Array(3 * 8 * 8 * 4));
    expect((await h.next())[0]).toMatchObject({ stages: ['preprocess', 'calibrate', 'quantize', 'compile', 'perf', 'verify'], reason: 'calibration data changed' });
  });

  it('follows a calibration folder that moved', async () => {
    const h = await start(['a'], { until: ['preprocess'] });
    await h.next();
    edit(h.yaml('a'), "cal_data_dir: '../../cal/a'", "cal_data_dir: '../../cal/b'");
    expect((await h.next())[0]).toMatchObject({ stages: ['preprocess'], reason: 'calibration_parameters changed' });
    await h.watcher.idle();
    await new Promise((r) => setTimeout(r, 300)); // chokidar picks up the new folder
    fs.writeFileSync(path.join(h.root, 'cal', 'b', 's0.bin'), new Uint8Array(3 * 8 * 8 * 4));
    expect((await h.next())[0]).toMatchObject({ stages: ['preprocess'], reason: 'calibration data changed' });
    fs.writeFileSync(path.join(h.root, 'cal', 'a', 's9.bin'), new Uint8Array(4));
    await new Promise((r) => setTimeout(r, 600));
    expect(h.events).toHaveLength(3); // the old folder is no longer watched
  });

  it('gathers changes made during a run into the next run', async () => {
    const runner = new RecordingRunner();
    let release!: () => void;
    runner.hold = new Promise((r) => (release = r));
    const h = await start(['a'], { runner });
    await new Promise((r) => setTimeout(r, 300)); // the initial run is waiting
    expect(runner.calls).toHaveLength(1);
    edit(h.yaml('a'), "optimize_level: 'O3'", "optimize_level: 'O2'");
    edit(h.yaml('a'), "calibration_type: 'max'", "calibration_type: 'kl'");
    await new Promise((r) => setTimeout(r, 500));
    expect(runner.calls).toHaveLength(1);
    runner.hold = undefined;
    release();
    await h.next(2);
    await h.watcher.idle();
    expect(runner.calls).toHaveLength(2);
    expect(runner.calls[1][0].stages).toEqual(['calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(h.events[1].reason).toBe('calibration_parameters, compiler_parameters changed');
  });

  it('after a failure, reruns the failed stage with the next change', async () => {
    const runner = new RecordingRunner();
    runner.fail = { model: 'a', stage: 'calibrate' };
    const h = await start(['a'], { runner });
    const [first] = await h.next();
    expect(first.outcome).toMatchObject({ ok: false, failed: 'calibrate', ran: ['preprocess', 'check'] });
    expect(h.lines[h.lines.length - 1]).toBe('[a] calibrate ✗ 5ms  initial build · ERROR calibration data is bad (fix: replace it)');
    runner.fail = undefined;
    edit(h.yaml('a'), "optimize_level: 'O3'", "optimize_level: 'O2'");
    expect((await h.next())[0].stages).toEqual(['calibrate', 'quantize', 'compile', 'perf', 'verify']);
    edit(h.yaml('a'), "optimize_level: 'O2'", "optimize_level: 'O1'");
    expect((await h.next())[0].stages).toEqual(['compile', 'perf', 'verify']);
  });

  it('runs real stages in-process with the DirectRunner (check of a tiny model)', async () => {
    const root = workspace(['a']);
    const b = new GraphBuilder('tiny', { opset: 13, seed: 1 });
    b.output(b.relu(b.conv(b.input('data', 'float32', [1, 3, 8, 8]), { outChannels: 4, kernel: 3, pad: 1 })));
    saveModel(b.build(), path.join(root, 'models', 'a', 'net.onnx'));
    const h = await start(['a'], { root, runner: new DirectRunner(), until: ['check'] });
    const [first] = await h.next();
    expect(first.outcome).toMatchObject({ ok: true, ran: ['check'] });
    const checkJson = path.join(root, 'models', 'a', 'model_output', 'check.json');
    expect(fs.existsSync(checkJson)).toBe(true);
    const log = path.join(root, 'models', 'a', 'model_output', 'net_original_float_model.onnx');
    const before = fs.readFileSync(log);
    edit(h.yaml('a'), "scale_value: '0.0039'", "scale_value: '0.0078'");
    const [second] = await h.next();
    expect(second.outcome).toMatchObject({ ok: true, ran: ['check'] });
    expect(fs.readFileSync(log).equals(before)).toBe(false); // the HzPreprocess scale is in the model

    // a stage error is one line, and the watcher recovers on the next good save
    edit(h.yaml('a'), "input_shape: '1x3x8x8'", "input_shape: '1x3x9x9'");
    const [third] = await h.next();
    expect(third.outcome?.ok).toBe(false);
    expect(third.outcome?.error).toMatch(/^ERROR .*(shape|1x3x9x9)/);
    edit(h.yaml('a'), "input_shape: '1x3x9x9'", "input_shape: '1x3x8x8'");
    expect((await h.next())[0].outcome).toMatchObject({ ok: true, ran: ['check'] });
  });
});
