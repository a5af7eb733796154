import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { isPtqError } from '../../errors';
import { checked, smallSplitModel, Fixture } from './fixtures.test.util';
import { HOST_SIMULATOR_LABEL, HostProfile, NO_LAYER_INFO_WARNING, renderPerfReport, structureFromPlacement, svgToPng, writePerfReport } from './index';
import { GraphBuilder } from '../../onnx/builder';
import type { PerfEstimate } from '../types';
import type { ModelStructure } from './structure';
import { writeDirAtomic } from './write';

/**
 * The report's files: names, numbers (against the estimate and independent sums), escaping,
 * self-containment, debug vs no debug, the host-simulator labelling, determinism and the PNG.
 */

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-perf-report-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const MB = 2 ** 20;
const split = checked(smallSplitModel());
const host: HostProfile = { engine: 'nx-ptq host runtime', frames: 20, threads: 1, averageMs: 7.25, minMs: 7, maxMs: 8, nodes: [{ name: 'conv1', type: 'Conv', device: 'BPU', averageMs: 1.5 }] };

function structureOf(f: Fixture) {
  return structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate);
}

async function files(f: Fixture, opts: { name?: string; debug?: boolean; host?: HostProfile } = {}): Promise<Map<string, Buffer>> {
  const r = await renderPerfReport(f.estimate, { modelName: opts.name ?? 'small', debug: opts.debug ?? false, structure: structureOf(f), ...(opts.host ? { hostProfile: opts.host } : {}) });
  return new Map(r.files.map(([n, d]) => [n, Buffer.from(d)]));
}

const text = (m: Map<string, Buffer>, name: string): string => {
  const b = m.get(name);
  if (!b) throw new Error(`no file '${name}' (have ${[...m.keys()].join(', ')})`);
  return b.toString('utf8');
};

/** Dark cyan (BPU) and gray (CPU) pixels of a PNG. */
async function colourCounts(png: Buffer): Promise<{ width: number; height: number; cyan: number; gray: number; white: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let cyan = 0;
  let gray = 0;
  let white = 0;
  for (let i = 0; i < data.length; i += 3) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (r < 20 && Math.abs(g - 139) < 12 && Math.abs(b - 139) < 12) cyan++;
    else if (Math.abs(r - 160) < 6 && r === g && g === b) gray++;
    else if (r > 250 && g > 250 && b > 250) white++;
  }
  return { width: info.width, height: info.height, cyan, gray, white };
}

describe('the fixture', () => {
  it('has two BPU subgraphs around a CPU Softmax', () => {
    expect(split.estimate.subgraphs).toHaveLength(2);
    expect(split.estimate.ops.find((o) => o.name === 'soft')!.on).toBe('CPU');
  });
});

describe('files and numbers', () => {
  let m: Map<string, Buffer>;
  beforeAll(async () => {
    m = await files(split, { debug: true });
  });

  it('writes the reference\'s files: <name>.html/.png (+ .json, .svg) and a page and JSON per subgraph', () => {
    expect([...m.keys()]).toEqual(['small.html', 'small.json', 'small.png', 'small.svg', 'small_subgraph_0.html', 'small_subgraph_0.json', 'small_subgraph_1.html', 'small_subgraph_1.json']);
  });

  it('summarises the BPU estimate: latency = Σ subgraphs, DDR MB = (loaded + stored) / 2^20', () => {
    const j = JSON.parse(text(m, 'small.json'));
    const e = split.estimate;
    const sgMs = e.subgraphs.reduce((a, s) => a + s.latencyMs, 0);
    const loaded = e.ops.filter((o) => o.on === 'BPU').reduce((a, o) => a + o.loadedBytes, 0);
    const stored = e.ops.filter((o) => o.on === 'BPU').reduce((a, o) => a + o.storedBytes, 0);
    expect(j.bpu.summary.modelName).toBe('small');
    expect(j.bpu.summary.modelLatencyMs).toBeCloseTo(sgMs, 6);
    expect(j.bpu.summary.loadedBytesPerFrame).toBe(loaded);
    expect(j.bpu.summary.storedBytesPerFrame).toBe(stored);
    expect(j.bpu.summary.totalDdrMBPerFrame).toBeCloseTo((loaded + stored) / MB, 6);
    expect(j.bpu.subgraphs.map((s: { name: string; file: string }) => [s.name, s.file])).toEqual([
      ['small_subgraph_0', 'small_subgraph_0.html'],
      ['small_subgraph_1', 'small_subgraph_1.html'],
    ]);
    for (const [k, s] of e.subgraphs.entries()) {
      expect(j.bpu.subgraphs[k].opsPerFrame).toBe(s.ops);
      expect(j.bpu.subgraphs[k].ddrMBPerFrame).toBeCloseTo((s.loadedBytes + s.storedBytes) / MB, 6);
    }
    // the CPU side is separate and labelled
    expect(j.cpuEstimate.ops.map((o: { name: string }) => o.name)).toContain('soft');
    expect(j.cpuEstimate.endToEndMs).toBeGreaterThan(j.bpu.summary.modelLatencyMs);
    expect(j.hostSimulator).toBeUndefined();
  });

  it('shows the summary rows of hb_perf and the subgraph table with links', () => {
    const html = text(m, 'small.html');
    for (const h of ['Model Performance Summary', 'Model Name', 'Model Latency (ms)', 'Total DDR (loaded+stored) bytes per frame (MB per frame)', 'Loaded Bytes per Frame', 'Stored Bytes per Frame', 'Details', 'Model Subgraph Calculation Load (OPpf)', 'Model Subgraph DDR Occupation (Mbpf)', 'Model Subgraph Latency (ms)', 'BIN Model Structure', 'Layer Details']) {
      expect(html).toContain(h);
    }
    expect(html).toContain(`<span id="model-latency">${split.estimate.totals.bpuMs.toFixed(3)}</span>`);
    expect(html).toContain('href="small_subgraph_1.html"');
    expect(html).toContain('<svg ');
  });

  it('with debug: Layer Details list every BPU op with compute and data movement time', () => {
    const j = JSON.parse(text(m, 'small.json'));
    const bpu = split.estimate.ops.filter((o) => o.on === 'BPU');
    expect(j.bpu.layers.map((l: { name: string }) => l.name)).toEqual(bpu.map((o) => o.name));
    const conv2 = j.bpu.layers.find((l: { name: string }) => l.name === 'conv2');
    const est = bpu.find((o) => o.name === 'conv2')!;
    expect([conv2.computeMs, conv2.dataMs, conv2.opsPerFrame]).toEqual([expect.closeTo(est.computeMs, 6), expect.closeTo(est.dataMs, 6), est.ops]);
    const page = text(m, 'small_subgraph_0.html');
    expect(page).toContain('Compute time (ms)');
    expect(page).toContain('Data movement time (ms)');
    expect(page).toContain('conv2');
    expect(page).not.toContain('conv3'); // in subgraph 1
    const sj = JSON.parse(text(m, 'small_subgraph_1.json'));
    expect(sj.layers.map((l: { name: string }) => l.name)).toEqual(bpu.filter((o) => o.subgraph === 1).map((o) => o.name));
  });
});

describe('without debug', () => {
  it('prints the reference\'s warning, and has no layer details', async () => {
    const r = await renderPerfReport(split.estimate, { modelName: 'small', debug: false, structure: structureOf(split) });
    expect(r.warnings).toEqual([
      "WARNING bpu model don't have per-layer perf info.",
      'WARNING if you need per-layer perf info, please enable [compiler_parameters.debug:True] when using makertbin.',
    ]);
    const m = new Map(r.files.map(([n, d]) => [n, Buffer.from(d).toString('utf8')]));
    const j = JSON.parse(m.get('small.json')!);
    expect(j.bpu.layers).toBeUndefined();
    expect(j.warnings).toEqual([...NO_LAYER_INFO_WARNING]);
    expect(JSON.parse(m.get('small_subgraph_0.json')!).layers).toBeUndefined();
    for (const page of ['small.html', 'small_subgraph_0.html']) {
      expect(m.get(page)).not.toContain('Compute time (ms)');
      expect(m.get(page)).toContain('bpu model don&#39;t have per-layer perf info.');
    }
    // the overall numbers do not depend on debug
    const withDebug = JSON.parse(text(await files(split, { debug: true }), 'small.json'));
    expect(j.bpu.summary).toEqual(withDebug.bpu.summary);
  });
});

describe('host simulator profile', () => {
  it('is labelled as the host simulator, kept apart from the BPU numbers', async () => {
    const m = await files(split, { host });
    const j = JSON.parse(text(m, 'small.json'));
    expect(j.hostSimulator).toMatchObject({ label: HOST_SIMULATOR_LABEL, averageMs: 7.25, frames: 20, threads: 1 });
    expect(HOST_SIMULATOR_LABEL).toBe('host simulator (not BPU)');
    const without = JSON.parse(text(await files(split), 'small.json'));
    expect(j.bpu).toEqual(without.bpu);
    expect(j.bpu.summary.modelLatencyMs).not.toBeCloseTo(7.25, 3);
    const html = text(m, 'small.html');
    expect(html).toContain('Measured on the host simulator (not BPU)');
    // the summary table shows the BPU estimate, not the host time
    const summary = html.slice(html.indexOf('id="summary"'), html.indexOf('</table>', html.indexOf('id="summary"')));
    expect(summary).not.toContain('7.250');
  });
});

describe('escaping and self-containment', () => {
  const evil = '<script>alert("x")</script>&\'"';

  function evilFixture(): Fixture {
    const b = new GraphBuilder('g<b>&"', { seed: 5 });
    const x = b.input('in<put>', 'float32', [1, 3, 8, 8]);
    const y = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: `conv ${evil}` }), 'relu"&');
    b.output(b.conv(b.softmax(y, 1, '<soft>'), { outChannels: 4, kernel: 1, name: '</svg><img src=x>' }), 'out&');
    return checked(b.build());
  }

  it('escapes every model-derived string in HTML, SVG and file names', async () => {
    const f = evilFixture();
    const r = await renderPerfReport(f.estimate, { modelName: `../${evil}`, debug: true, structure: structureOf(f), hostProfile: { ...host, engine: '<b>engine</b>' }, source: '<x>.bin' });
    for (const [name, data] of r.files) {
      expect(name).toMatch(/^[A-Za-z0-9._-]+$/);
      expect(name.startsWith('.')).toBe(false);
      // JSON holds the names as data (checked below); HTML and SVG must escape them
      if (!name.endsWith('.html') && !name.endsWith('.svg')) continue;
      const s = Buffer.from(data).toString('utf8');
      expect(s).not.toContain('<script');
      expect(s).not.toContain('<img');
      expect(s).not.toContain('<b>');
      if (name.endsWith('.html')) {
        expect(s).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&quot;');
        // the main page holds exactly one svg element (names cannot close it early), subgraph pages none
        const main = name === r.files.find(([n]) => n.endsWith('.svg'))![0].replace(/\.svg$/, '.html');
        expect([s.split('<svg').length - 1, s.split('</svg>').length - 1]).toEqual(main ? [1, 1] : [0, 0]);
      }
    }
    // the escaped SVG is well-formed XML: librsvg renders it
    const svg = Buffer.from(r.files.find(([n]) => n.endsWith('.svg'))![1]).toString('utf8');
    expect((await sharp(Buffer.from(svg)).metadata()).width).toBeGreaterThan(0);
    const json = JSON.parse(Buffer.from(r.files.find(([n]) => n.endsWith('.json') && !n.includes('subgraph'))![1]).toString('utf8'));
    expect(json.model).toBe(`../${evil}`);
  });

  it('needs nothing from the network and no JavaScript', async () => {
    const m = await files(split, { debug: true, host });
    for (const [name, b] of m) {
      if (!name.endsWith('.html')) continue;
      const s = b.toString('utf8');
      expect(s).not.toMatch(/<script|<link|<iframe|<img|@import|javascript:|\bon[a-z]+=/i);
      expect(s).not.toMatch(/https?:\/\//);
      expect(s.match(/url\([^)]*\)/g) ?? []).toEqual(name === 'small.html' ? expect.arrayContaining(['url(#arrow)']) : []);
      for (const href of s.match(/href="[^"]*"/g) ?? []) expect(href).toMatch(/^href="[A-Za-z0-9._-]+\.(html|png)"$/);
    }
    // the standalone SVG names its namespace only
    expect(text(m, 'small.svg').match(/https?:\/\/[^"]*/g)).toEqual(['http://www.w3.org/2000/svg']);
  });
});

describe('the picture', () => {
  it('PNG: the SVG\'s size, dark cyan BPU nodes and gray CPU nodes, deterministic bytes', async () => {
    const m = await files(split);
    const png = m.get('small.png')!;
    const svg = text(m, 'small.svg');
    const [, w, h] = /width="(\d+)" height="(\d+)"/.exec(svg)!;
    const c = await colourCounts(png);
    expect([c.width, c.height]).toEqual([Number(w), Number(h)]);
    // 4 BPU nodes (conv1, relu1, conv2, conv3) of 180x34 px, mostly filled; 1 CPU node (soft)
    expect(c.cyan).toBeGreaterThan(4 * 180 * 34 * 0.5);
    expect(c.gray).toBeGreaterThan(180 * 34 * 0.5);
    expect(c.gray).toBeLessThan(180 * 34 * 1.1);
    expect(c.white).toBeGreaterThan(c.width * c.height * 0.3);
    expect((await svgToPng(svg)).equals(png)).toBe(true);
    expect((await files(split)).get('small.png')!.equals(png)).toBe(true);
  });

  it('a very large model is drawn one node per BPU subgraph', async () => {
    const nodes: ModelStructure['nodes'] = [{ id: 'input:x', label: 'x', type: 'input', kind: 'input' }];
    const edges: ModelStructure['edges'] = [];
    for (let i = 0; i < 450; i++) {
      const cpu = i === 200;
      nodes.push({ id: `op:n${i}`, label: `n${i}`, type: 'Conv', kind: cpu ? 'CPU' : 'BPU', ...(cpu ? {} : { subgraph: i < 200 ? 'big_subgraph_0' : 'big_subgraph_1' }) });
      edges.push({ from: nodes[nodes.length - 2].id, to: nodes[nodes.length - 1].id, value: `v${i}` });
    }
    const r = await renderPerfReport(split.estimate, { modelName: 'big', debug: false, structure: { nodes, edges, subgraphs: ['big_subgraph_0', 'big_subgraph_1'] } });
    const svg = Buffer.from(r.files.find(([n]) => n === 'big.svg')![1]).toString();
    expect(svg.match(/<g class="node BPU">/g)).toHaveLength(2);
    expect(svg).toContain('>200 ops</text>');
    expect(svg).toContain('>249 ops</text>');
    expect(svg.match(/<g class="node CPU">/g)).toHaveLength(1);
  });

  it('an all-BPU model has no gray node (only anti-aliasing grays)', async () => {
    const b = new GraphBuilder('allbpu', { seed: 2 });
    const x = b.input('x', 'float32', [1, 8, 8, 8]);
    b.output(b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'c' }), 'r'), 'y');
    const f = checked(b.build());
    const c = await colourCounts((await files(f)).get('small.png')!);
    expect(c.cyan).toBeGreaterThan(0);
    expect(c.gray).toBeLessThan(180 * 34 * 0.25);
  });
});

describe('determinism and writing', () => {
  it('renders byte-identical files twice', async () => {
    const a = await files(split, { debug: true });
    const b = await files(checked(smallSplitModel()), { debug: true });
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(b.get(k)!.equals(v)).toBe(true);
  });

  it('replaces the model folder atomically: stale files go, no temp folder stays', async () => {
    const dir = path.join(root, 'hb_perf_result', 'small');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'stale.html'), 'old');
    const r = await writePerfReport(dir, split.estimate, { modelName: 'small', debug: false, structure: structureOf(split) });
    expect(fs.readdirSync(dir).sort()).toEqual(r.files.map((f) => path.basename(f)).sort());
    expect(r.warnings).toHaveLength(2);
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['small']);
  });

  it('a folder that cannot be written is one E_FILE error, and the old folder stays', () => {
    const blocker = path.join(root, 'blocker');
    fs.writeFileSync(blocker, 'a file, not a folder');
    let code: string | undefined;
    try {
      writeDirAtomic(path.join(blocker, 'sub'), [['a.txt', 'x']]);
    } catch (e) {
      code = isPtqError(e) ? e.code : 'not a PtqError';
    }
    expect(code).toBe('E_FILE');
    const keep = path.join(root, 'keep');
    fs.mkdirSync(keep);
    fs.writeFileSync(path.join(keep, 'old.txt'), 'old');
    expect(() => writeDirAtomic(keep, [['../escape.txt', 'x']])).toThrow(/bad report file name/);
    expect(fs.readFileSync(path.join(keep, 'old.txt'), 'utf8')).toBe('old');
    expect(fs.readdirSync(root).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('without a structure: no picture, the rest of the report still written', async () => {
    const r = await renderPerfReport(split.estimate as PerfEstimate, { modelName: 'small', debug: false });
    expect(r.files.map(([n]) => n)).not.toContain('small.png');
    expect(Buffer.from(r.files.find(([n]) => n === 'small.html')![1]).toString()).toContain('the picture is not available');
  });
});
