/**
 * `ptq perf` (hb_perf) and the perf stage on `.bin` files assembled from generated models (and
 * one from the real compiler):
 * the report folders, the reference's warning without debug, packed files (all models, or -m),
 * one-line errors, the stage's atomic and deterministic hb_perf_result, and the host simulator
 * profile labelled apart from the BPU estimate.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BinModel, writeBinFile } from '../../src/compile/bin-format';
import { main } from '../../src/cli/main';
import { saveModel } from '../../src/onnx/encode';
import { binFileOf, binModelOf, checked, smallSplitModel } from '../../src/perf/report/fixtures.test.util';
import { runStage } from '../../src/stages';
import { perfStageWith } from '../../src/stages/perf';
import { loadConfig } from '../../src/config';
import { compileQuantizedModel } from '../../src/compile/compile';
import { emitQuantizedModel } from '../../src/quantize';
import { maxThresholds, randomFeeds } from '../../src/quantize/quantize.test.util';
import { expectUserError, runPtq } from './run-cli';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-perf-cli-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const WARNING = [
  "WARNING bpu model don't have per-layer perf info.",
  'WARNING if you need per-layer perf info, please enable [compiler_parameters.debug:True] when using makertbin.',
];

const fixture = checked(smallSplitModel());

async function ptq(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['perf', ...args], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

function writeBin(name: string, models: BinModel[]): string {
  const file = path.join(root, name);
  writeBinFile(file, binFileOf(models));
  return file;
}

const listing = (dir: string): string[] => fs.readdirSync(dir).sort();

describe('ptq perf', () => {
  it('writes hb_perf_result/<model>/ and prints the summary and the reference\'s warning (no debug)', async () => {
    const bin = writeBin('one.bin', [binModelOf(fixture, 'mobilenet')]);
    const out = path.join(root, 'r1');
    const r = await ptq([bin, '-o', out]);
    expect(r.code).toBe(0);
    expect(r.err).toEqual(WARNING);
    expect(listing(out)).toEqual(['mobilenet']);
    expect(listing(path.join(out, 'mobilenet'))).toEqual([
      'mobilenet.html', 'mobilenet.json', 'mobilenet.png', 'mobilenet.svg',
      'mobilenet_subgraph_0.html', 'mobilenet_subgraph_0.json', 'mobilenet_subgraph_1.html', 'mobilenet_subgraph_1.json',
    ]);
    expect(r.out[1]).toBe(`  Model Latency (ms): ${fixture.estimate.totals.bpuMs.toFixed(3)}  (static estimate of the BPU part)`);
    expect(r.out.some((l) => l.startsWith('  mobilenet_subgraph_1: '))).toBe(true);
    const j = JSON.parse(fs.readFileSync(path.join(out, 'mobilenet', 'mobilenet.json'), 'utf8'));
    expect(j.bpu.summary.modelLatencyMs).toBeCloseTo(fixture.estimate.totals.bpuMs, 6);
    expect(j.bpu.layers).toBeUndefined();
    // the picture is drawn from the .bin's segments; the recorded estimate's subgraphs (named after
    // the graph) take the names of the segments that hold their nodes
    expect(fixture.estimate.subgraphs.map((s) => s.name)).toEqual(['small_subgraph_0', 'small_subgraph_1']);
    expect(j.structure.subgraphs).toEqual(['mobilenet_subgraph_0', 'mobilenet_subgraph_1']);
    expect(j.bpu.subgraphs.map((s: { name: string }) => s.name)).toEqual(['mobilenet_subgraph_0', 'mobilenet_subgraph_1']);
    expect(j.structure.nodes.find((n: { name: string }) => n.name === 'soft').kind).toBe('CPU');
  });

  it('debug: no warning, Layer Details in the pages', async () => {
    const bin = writeBin('debug.bin', [binModelOf(fixture, 'dbg', { debug: true })]);
    const out = path.join(root, 'r2');
    const r = await ptq([bin, '--output-dir', out]);
    expect([r.code, r.err]).toEqual([0, []]);
    const html = fs.readFileSync(path.join(out, 'dbg', 'dbg_subgraph_0.html'), 'utf8');
    expect(html).toContain('Compute time (ms)');
    expect(html).toContain('conv2');
  });

  it('a packed file: every model without -m, one model with -m, a one-line error for an unknown name', async () => {
    const bin = writeBin('packed.bin', [binModelOf(fixture, 'a'), binModelOf(checked(smallSplitModel('other')), 'b', { debug: true })]);
    const all = path.join(root, 'r3');
    const r = await ptq(['-p', bin, '-o', all]);
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe(`INFO '${bin}' is a packed model with 2 models (a, b): reporting all of them (choose one with -m NAME)`);
    expect(listing(all)).toEqual(['a', 'b']);
    expect(r.err).toEqual(WARNING); // only 'a' lacks debug

    const one = path.join(root, 'r4');
    expect((await ptq([bin, '-m', 'b', '-o', one])).code).toBe(0);
    expect(listing(one)).toEqual(['b']);

    const bad = await ptq([bin, '-m', 'c', '-o', path.join(root, 'r5')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual([expect.stringMatching(/^ERROR .*has no model named 'c'.*a, b/)]);
    expect(fs.existsSync(path.join(root, 'r5'))).toBe(false);
  });

  it('replaces only the reported model\'s folder', async () => {
    const out = path.join(root, 'r6');
    fs.mkdirSync(path.join(out, 'mobilenet'), { recursive: true });
    fs.mkdirSync(path.join(out, 'someone_else'));
    fs.writeFileSync(path.join(out, 'mobilenet', 'stale.txt'), 'x');
    expect((await ptq([path.join(root, 'one.bin'), '-o', out])).code).toBe(0);
    expect(listing(out)).toEqual(['mobilenet', 'someone_else']);
    expect(fs.existsSync(path.join(out, 'mobilenet', 'stale.txt'))).toBe(false);
  });

  it('a .bin without a perf record reports its segments\' numbers', async () => {
    const bin = writeBin('noperf.bin', [binModelOf(fixture, 'np', { perf: false })]);
    const out = path.join(root, 'r7');
    expect((await ptq([bin, '-o', out])).code).toBe(0);
    const j = JSON.parse(fs.readFileSync(path.join(out, 'np', 'np.json'), 'utf8'));
    expect(j.bpu.subgraphs.map((s: { latencyMs: number }) => s.latencyMs)).toEqual(fixture.estimate.subgraphs.map((s) => expect.closeTo(s.latencyMs, 6)));
    expect(j.bpu.summary.modelLatencyMs).toBeCloseTo(fixture.estimate.totals.bpuMs, 6);
    expect(j.notes[0]).toMatch(/no static perf record/);
  });

  it('user errors are one line, exit 2, and write nothing', async () => {
    const out = path.join(root, 'r8');
    const cases: [string[], RegExp][] = [
      [[], /missing BIN_FILE/],
      [['a.bin', 'b.bin'], /one BIN_FILE expected, got 2/],
      [[path.join(root, 'nope.bin')], /cannot read model file .*nope\.bin/],
      [['--bogus', 'x.bin'], /unknown option '--bogus'/],
    ];
    fs.writeFileSync(path.join(root, 'garbage.bin'), 'not a model at all');
    cases.push([[path.join(root, 'garbage.bin')], /is not a valid nx-ptq \.bin model/]);
    const broken = binModelOf(fixture, 'broken');
    broken.perfJson = JSON.stringify({ ...fixture.estimate, totals: { ...fixture.estimate.totals, bpuMs: 'fast' } });
    cases.push([[writeBin('broken.bin', [broken])], /model 'broken' in .*broken\.bin' has a malformed perf record \(totals\.bpuMs is not a number\)/]);
    for (const [args, msg] of cases) {
      const r = await ptq([...args, '-o', out]);
      expect({ args, code: r.code, lines: r.err.length }).toEqual({ args, code: 2, lines: 1 });
      expect(r.err[0]).toMatch(/^ERROR /);
      expect(r.err[0]).toMatch(msg);
    }
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a .bin from the compiler: its segments drawn, Quantize/layout conversions as CPU nodes, the recorded estimate reported', async () => {
    const opt = fixture.checked.optimized;
    const cpuNodes = new Set(fixture.checked.placement.nodes.filter((n) => n.on === 'CPU').map((n) => n.name));
    const q = emitQuantizedModel(opt, { activations: maxThresholds(opt, randomFeeds(opt, 2, 1)), cpuNodes, march: 'bernoulli2' });
    const { model } = compileQuantizedModel(q, { name: 'compiled', cpuNodes, perf: fixture.estimate, debug: true, march: 'bernoulli2' });
    const out = path.join(root, 'r9');
    const r = await ptq([writeBin('compiled.bin', [model]), '-o', out]);
    expect([r.code, r.err]).toEqual([0, []]);
    const j = JSON.parse(fs.readFileSync(path.join(out, 'compiled', 'compiled.json'), 'utf8'));
    expect(j.bpu.summary.modelLatencyMs).toBeCloseTo(fixture.estimate.totals.bpuMs, 6);
    const bpuSegments = model.segments.filter((s) => s.kind === 'bpu').map((s) => s.name);
    expect(j.structure.subgraphs).toEqual(bpuSegments);
    expect(j.bpu.subgraphs.map((s: { name: string }) => s.name)).toEqual(bpuSegments);
    const nodes = j.structure.nodes as { name: string; kind: string; type: string; subgraph?: string }[];
    expect(nodes.filter((n) => n.kind === 'BPU').length).toBe(model.segments.filter((s) => s.kind === 'bpu').reduce((a, s) => a + s.ops.length, 0));
    expect(nodes.some((n) => n.kind === 'CPU' && /Quantize/.test(n.type))).toBe(true);
    expect(j.bpu.layers.length).toBeGreaterThan(0);
  });

  it('the real binary writes hb_perf_result in the current folder', () => {
    const cwd = path.join(root, 'cwd');
    fs.mkdirSync(cwd);
    const r = runPtq(['perf', path.join(root, 'one.bin')], { cwd });
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual(WARNING);
    expect(listing(path.join(cwd, 'hb_perf_result', 'mobilenet'))).toContain('mobilenet.html');
    expectUserError(runPtq(['perf', 'missing.bin'], { cwd }), /missing\.bin/);
    expect(runPtq(['perf', '--help']).stdout).toMatch(/^Usage: ptq perf \[OPTIONS\] BIN_FILE/);
  });
});

describe('the perf stage', () => {
  function project(name: string): { yaml: string; work: string } {
    const dir = path.join(root, `project-${name}`);
    fs.mkdirSync(dir, { recursive: true });
    saveModel(smallSplitModel(), path.join(dir, 'model.onnx'));
    const yaml = path.join(dir, 'model.yaml');
    fs.writeFileSync(
      yaml,
      `model_parameters:
  onnx_model: 'model.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: '${name}'
input_parameters:
  input_type_train: 'featuremap'
  input_layout_train: 'NCHW'
  input_type_rt: 'featuremap'
  input_layout_rt: 'NCHW'
  norm_type: 'no_preprocess'
calibration_parameters:
  calibration_type: 'skip'
compiler_parameters:
  optimize_level: 'O3'
`,
    );
    return { yaml, work: path.join(dir, 'model_output') };
  }

  it('reads <working_dir>/<prefix>.bin, replaces hb_perf_result atomically, byte-identical on a rerun', async () => {
    const p = project('stage');
    fs.mkdirSync(p.work, { recursive: true });
    writeBinFile(path.join(p.work, 'stage.bin'), binFileOf([binModelOf(fixture, 'stage')]));
    fs.mkdirSync(path.join(p.work, 'hb_perf_result', 'old_model'), { recursive: true });
    const lines: string[] = [];
    const r = await runStage('perf', { configFile: p.yaml, log: (l) => lines.push(l) });
    expect(r.stage).toBe('perf');
    const out = path.join(p.work, 'hb_perf_result');
    expect(listing(out)).toEqual(['stage']);
    expect(r.outputs.map((f) => path.relative(out, f)).sort()).toEqual(listing(path.join(out, 'stage')).map((f) => `stage${path.sep}${f}`));
    expect(lines.slice(0, 2)).toEqual(WARNING);
    expect(lines[2]).toMatch(/^INFO perf: model 'stage': Model Latency \d+\.\d{3} ms \(static BPU estimate\)/);
    const first = new Map(r.outputs.map((f) => [f, fs.readFileSync(f)] as const));
    // the report names the .bin by its file name only: moving working_dir changes nothing
    expect(first.get(path.join(out, 'stage', 'stage.json'))!.toString()).toContain('"source": "stage.bin"');
    const again = await runStage('perf', { configFile: p.yaml, log: () => undefined });
    for (const f of again.outputs) expect(fs.readFileSync(f).equals(first.get(f)!)).toBe(true);
    expect(fs.readdirSync(p.work).filter((n) => n.includes('.tmp-') || n.includes('.old-'))).toEqual([]);
  });

  it('without the .bin: the error names the compile stage', async () => {
    const p = project('nobin');
    let message = '';
    try {
      await runStage('perf', { configFile: p.yaml, log: () => undefined });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/nobin\.bin' is missing; it is written by the compile stage/);
  });

  it('with a host profiler: its measurement sits in the JSON, labelled host simulator (not BPU)', async () => {
    const p = project('host');
    fs.mkdirSync(p.work, { recursive: true });
    writeBinFile(path.join(p.work, 'host.bin'), binFileOf([binModelOf(fixture, 'host')]));
    const stage = perfStageWith({ hostProfiler: async (_bin, m) => ({ engine: 'fake runtime', frames: 3, threads: 1, averageMs: 42 + m.name.length }) });
    const lines: string[] = [];
    await stage(loadConfig(p.yaml), { configFile: p.yaml, log: (l) => lines.push(l) });
    const j = JSON.parse(fs.readFileSync(path.join(p.work, 'hb_perf_result', 'host', 'host.json'), 'utf8'));
    expect(j.hostSimulator).toMatchObject({ label: 'host simulator (not BPU)', engine: 'fake runtime', averageMs: 46 });
    expect(j.bpu.summary.modelLatencyMs).toBeCloseTo(fixture.estimate.totals.bpuMs, 6);
    expect(lines.find((l) => l.startsWith('INFO perf: model'))).toMatch(/host simulator 46\.000 ms per frame \(not BPU\)/);
  });
});
