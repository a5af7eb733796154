/**
 * `ptq debugger <subcommand>`: each subcommand on a calibrated model written by the real
 * stages (the quantization-hostile fixture), the reference's argument syntax, one-line user
 * errors, and the runall page rendered by headless Chromium.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { calibratedProject, DebugProject, outlierNet, tempRoot } from '../../src/debug/fixtures.test.util';
import { main } from '../../src/cli/main';
import { expectUserError, runPtq } from './run-cli';

jest.setTimeout(120_000);

const root = tempRoot('cli');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let project: Promise<DebugProject> | undefined;
const outlier = (): Promise<DebugProject> => (project ??= calibratedProject(root, 'outlier', outlierNet(), { samples: 5 }));

interface Ran {
  code: number;
  out: string[];
  err: string[];
}

async function ptq(...argv: string[]): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A user error: exit 2 and exactly one `ERROR …` line. */
function expectOneLineError(r: Ran, text: RegExp): void {
  expect(r.code).toBe(2);
  const errors = r.err.filter((l) => l.startsWith('ERROR'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).not.toMatch(/\n/);
  expect(errors[0]).toMatch(text);
}

describe('ptq debugger', () => {
  it('lists its subcommands and their options', async () => {
    const r = await ptq('debugger', '--help');
    expect(r.code).toBe(0);
    for (const s of ['get-sensitivity-of-nodes', 'plot-acc-error', 'plot-distribution', 'get-channelwise-data-distribution', 'runall']) expect(r.out[0]).toContain(s);
    const sub = await ptq('debugger', 'plot-acc-error', '-h');
    expect(sub.out[0]).toMatch(/^Usage: ptq debugger plot-acc-error MODEL_OR_FILE CALIBRATION_DATA/);
    expect(sub.out[0]).toMatch(/-nq, --non_quantize_node NODES/);
    expect((await ptq('--help')).out[0]).toMatch(/debugger +accuracy debugger/);
  });

  it('get-sensitivity-of-nodes: the sorted table with -v True, the dict as JSON without', async () => {
    const p = await outlier();
    // as the shell passes the reference's `-m ['cosine-similarity','mse'] -v True`
    const r = await ptq('debugger', 'get-sensitivity-of-nodes', p.calibrated, p.data, '-m', '[cosine-similarity,mse]', '-v', 'True');
    expect(r.code).toBe(0);
    const lines = r.out.join('\n').split('\n');
    expect(lines[0]).toMatch(/^=+node=+$/);
    expect(lines[1]).toMatch(/^Node +cosine-similarity +mse$/);
    expect(lines[3]).toMatch(/^conv_reader +0\.\d+ +\d/);
    expect(r.err.some((l) => /^sensitivity: \d+\/\d+ \(100%\) done/.test(l))).toBe(true);
    const j = await ptq('debugger', 'get-sensitivity-of-nodes', p.calibrated, p.data, '-n', 'activation', '-m', '[sqnr,', 'chebyshev]', '-d', '3', '--cache_mb', '0');
    expect(j.code).toBe(0);
    expect(j.err).toContainEqual(expect.stringMatching(/^INFO float values cached: .* 3 chunk\(s\) of 1 sample\(s\)$/));
    const dict = JSON.parse(j.out.join('\n')) as Record<string, Record<string, string>>;
    expect(Object.keys(dict)[0]).toBe('conv_outlier_HzCalibration');
    expect(Object.keys(dict.conv_outlier_HzCalibration)).toEqual(['sqnr', 'chebyshev']);
    const some = await ptq('debugger', 'get-sensitivity-of-nodes', p.calibrated, p.data, '-i', 'conv1', 'conv_tail', '--output-node', 'conv_tail');
    expect(Object.keys(JSON.parse(some.out.join('\n')) as object).sort()).toEqual(['conv1', 'conv_tail']);
  });

  it('plot-acc-error: nested lists, average mode, the files', async () => {
    const p = await outlier();
    const dir = path.join(root, 'acc');
    const r = await ptq('debugger', 'plot-acc-error', p.calibrated, p.data, '-nq', "[['conv1'],['conv_reader']]", '-a', 'True', '-s', dir);
    expect(r.code).toBe(0);
    expect(r.out[0]).toMatch(/^partial_qmodel_0 \[conv1\]: cosine-similarity at the last node 'fc_flatten' = /);
    const last = (l: string): number => Number(/= (\S+)$/.exec(l)?.[1]);
    expect(last(r.out[1])).toBeGreaterThan(last(r.out[0]));
    for (const f of ['accumulate_error.svg', 'accumulate_error.json', 'accumulate_error.csv']) expect(fs.existsSync(path.join(dir, 'accumulate_error', f))).toBe(true);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'accumulate_error', 'accumulate_error.json'), 'utf8')) as { average_mode: boolean; partial_models: { non_quantize_node: string[] }[] };
    expect(json.average_mode).toBe(true);
    expect(json.partial_models.map((m) => m.non_quantize_node)).toEqual([['conv1'], ['conv_reader']]);
    const csv = fs.readFileSync(path.join(dir, 'accumulate_error', 'accumulate_error.csv'), 'utf8').split('\n');
    expect(csv[0]).toBe('index,node,partial_qmodel_0,partial_qmodel_1');
    // -q weight activation: words after the flag once MODEL and DATA are known
    const kinds = await ptq('debugger', 'plot-acc-error', p.calibrated, p.data, '-q', 'weight', 'activation', '-m', 'mse', '-s', dir);
    expect(kinds.out.slice(0, 2).map((l) => l.split(':')[0])).toEqual(['partial_qmodel_0 [weight]', 'partial_qmodel_1 [activation]']);
  });

  it('plot-distribution and get-channelwise-data-distribution', async () => {
    const p = await outlier();
    const dir = path.join(root, 'dist');
    const r = await ptq('debugger', 'plot-distribution', p.calibrated, p.data, '-n', "['conv_outlier_HzCalibration','conv_reader.weight_HzCalibration','conv_reader']", '-s', dir);
    expect(r.code).toBe(0);
    expect(r.out.map((l) => l.replace(/^INFO wrote .*\//, ''))).toEqual(['conv_outlier_HzCalibration.svg (activation)', 'conv_reader.weight_HzCalibration.svg (weight)', 'conv_reader.svg (node)']);
    expect(fs.readdirSync(path.join(dir, 'distribution')).sort()).toEqual([
      'conv_outlier_HzCalibration.csv', 'conv_outlier_HzCalibration.json', 'conv_outlier_HzCalibration.svg',
      'conv_reader.csv', 'conv_reader.json', 'conv_reader.svg', 'conv_reader.weight_HzCalibration.csv',
      'conv_reader.weight_HzCalibration.json', 'conv_reader.weight_HzCalibration.svg', 'conv_reader_error.csv',
    ]);
    const c = await ptq('debugger', 'get-channelwise-data-distribution', p.calibrated, p.data, '-n', 'conv_outlier_HzCalibration,conv1.weight_HzCalibration', '-s', dir);
    expect(c.code).toBe(0);
    expect(c.out).toEqual([expect.stringMatching(/conv_outlier_HzCalibration\.svg \(8 channels along axis 1\)$/), expect.stringMatching(/conv1\.weight_HzCalibration\.svg \(8 channels along axis 0\)$/)]);
    const ax = await ptq('debugger', 'get-channelwise-data-distribution', p.calibrated, p.data, '-n', 'conv_outlier_HzCalibration', '-a', '-1', '-s', dir);
    expect(ax.out[0]).toMatch(/\(12 channels along axis 3\)$/);
  });

  it('user errors are one line: bad node names, bad list syntax, bad flags', async () => {
    const p = await outlier();
    const m = p.calibrated;
    const d = p.data;
    expectOneLineError(await ptq('debugger', 'plot-acc-error', m, d, '-q', '[conv1,Conv_9]'), /^ERROR node 'Conv_9' is not in the calibrated model 'outlier_calibrated_model\.onnx'.*\(fix: /);
    expectOneLineError(await ptq('debugger', 'plot-acc-error', m, d, '-q', '[[conv1],[conv_reader]'), /^ERROR -q: cannot read the node list "\[\[conv1\],\[conv_reader\]": a '\]' is missing at the end \(fix: /);
    expectOneLineError(await ptq('debugger', 'plot-acc-error', m, d, '-nq', '[[[conv1]]]'), /lists nest one level at most/);
    expectOneLineError(await ptq('debugger', 'plot-distribution', m, d, '-n', 'conv_readr'), /node 'conv_readr' is not in the calibrated model .*did you mean 'conv_reader'/);
    expectOneLineError(await ptq('debugger', 'plot-distribution', m, d), /missing required option --nodes_list \(-n\)/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m, d, '-m', 'l2'), /unknown metric 'l2'/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m, d, '-n', 'layer'), /-n must be one of node, weight, activation/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m, d, '--verbose=maybe'), /--verbose takes True or False \(got 'maybe'\)/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m, d, '-v', 'maybe'), /unexpected argument 'maybe'/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m), /needs MODEL_OR_FILE and CALIBRATION_DATA \(got only/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m, d, '--frobnicate'), /unknown option '--frobnicate'/);
    expectOneLineError(await ptq('debugger', 'get-sensitivity-of-nodes', m, d, '-d', '0'), /data_num 0 is out of range/);
    expectOneLineError(await ptq('debugger', 'get-channelwise-data-distribution', m, d, '-n', 'conv1'), /'conv1' is an ordinary node/);
    expectOneLineError(await ptq('debugger', 'plot-acc-error', m, d), /needs quantize_node or non_quantize_node/);
    expectOneLineError(await ptq('debugger', 'explain', m, d), /unknown debugger subcommand 'explain'/);
    expectOneLineError(await ptq('debugger', 'runall', path.join(root, 'missing.onnx'), d), /missing\.onnx/);
    // the real binary: exit 2, one line, no stack
    expectUserError(runPtq(['debugger', 'plot-acc-error', m, d, '-q', '[a,,b]']), /a name is missing before ','/);
  });

  it('runall: the four steps into runall/, an index.html Chromium renders', async () => {
    const p = await outlier();
    const dir = path.join(root, 'ra');
    const r = await ptq('debugger', 'runall', p.calibrated, p.data, '-s', dir, '-v', 'True');
    expect(r.code).toBe(0);
    expect(r.err.filter((l) => l.startsWith('INFO runall step')).map((l) => l.slice(0, 22))).toEqual(['INFO runall step 1/4: ', 'INFO runall step 2/4: ', 'INFO runall step 3/4: ', 'INFO runall step 4/4: ']);
    expect(r.out.some((l) => /^=+weight=+/.test(l))).toBe(true);
    const index = path.join(dir, 'runall', 'index.html');
    expect(r.out[r.out.length - 1]).toBe(`INFO wrote ${index}`);
    for (const f of ['sensitivity_of_nodes_weight.json', 'sensitivity_of_nodes_activation.csv', 'accumulate_error/accumulate_error.svg', 'distribution/conv_outlier_HzCalibration.svg', 'channelwise_distribution/conv_outlier_HzCalibration.svg']) {
      expect(fs.existsSync(path.join(dir, 'runall', f))).toBe(true);
    }
    const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((c) => fs.existsSync(c));
    if (!chromium) {
      // CI installs Debian's chromium; without it the render check cannot run
      console.warn('SKIPPED: headless Chromium render check of runall/index.html (no /usr/bin/chromium)');
      return;
    }
    const png = path.join(root, 'index.png');
    const c = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', `--screenshot=${png}`, '--window-size=1200,3000', `file://${index}`], { encoding: 'utf8', timeout: 90_000 });
    expect(c.error).toBeUndefined();
    expect(fs.existsSync(png)).toBe(true);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sharp = require('sharp') as typeof import('sharp');
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([1200, 3000]);
    let ink = 0;
    let bluish = 0;
    let reddish = 0;
    for (let i = 0; i < data.length; i += info.channels) {
      const [rr, g, b] = [data[i], data[i + 1], data[i + 2]];
      if (rr < 200 || g < 200 || b < 200) ink++;
      // the charts: blue (#1f77b4) bars, orange (#ff7f0e) bars, red (#d62728) threshold lines
      if (b - rr > 40) bluish++;
      if (rr - b > 40) reddish++;
    }
    expect(ink).toBeGreaterThan(20_000); // text, tables and charts were drawn
    expect(bluish).toBeGreaterThan(5_000);
    expect(reddish).toBeGreaterThan(1_000);
  });
});
