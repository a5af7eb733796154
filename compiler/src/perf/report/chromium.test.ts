import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { checked, smallSplitModel } from './fixtures.test.util';
import { structureFromPlacement, writePerfReport } from './index';

/**
 * The report page in a real browser: headless Chromium (Debian `chromium`) renders it with every
 * host name unresolvable, so what shows comes from the file alone (the page has no scripts:
 * report.test.ts checks; Chromium's --dump-dom itself needs scripting, so it stays on).
 * The screenshot must show the summary and the structure picture (dark cyan BPU nodes, a gray
 * CPU node); the rendered DOM must hold the summary's text. Skipped, with a message, when
 * Chromium is not installed (CI installs it).
 */

const CHROMIUM = process.env.PTQ_CHROMIUM ?? '/usr/bin/chromium';
const HAVE = fs.existsSync(CHROMIUM);
if (!HAVE) process.stderr.write(`chromium.test.ts: SKIPPED — no Chromium at ${CHROMIUM} (apt-get install chromium, or set PTQ_CHROMIUM)\n`);
const maybe = HAVE ? describe : describe.skip;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-perf-chromium-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function chromium(args: string[]): { stdout: string; status: number | null } {
  const r = spawnSync(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--host-resolver-rules=MAP * ~NOTFOUND',
      `--user-data-dir=${path.join(root, `profile-${args[0].replace(/[^a-z]/g, '')}`)}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 2 ** 20 },
  );
  if (r.error) throw r.error;
  return { stdout: r.stdout, status: r.status };
}

/** Rows holding a horizontal run of `[lo, hi]` pixels of colour `is`: solid node boxes, not text or rules. */
function rowsWithRun(data: Buffer, width: number, height: number, is: (r: number, g: number, b: number) => boolean, lo: number, hi: number): number[] {
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    let run = 0;
    let hit = false;
    for (let x = 0; x <= width; x++) {
      const i = (y * width + x) * 3;
      if (x < width && is(data[i], data[i + 1], data[i + 2])) run++;
      else {
        if (run >= lo && run <= hi) hit = true;
        run = 0;
      }
    }
    if (hit) rows.push(y);
  }
  return rows;
}

maybe('the report in headless Chromium', () => {
  const f = checked(smallSplitModel());
  const modelName = 'small <model>';
  let html: string;

  beforeAll(async () => {
    const structure = structureFromPlacement(f.checked.optimized, f.checked.placement, f.estimate);
    const r = await writePerfReport(path.join(root, 'hb_perf_result', 'small'), f.estimate, { modelName, debug: false, structure });
    html = r.files.find((x) => x.endsWith('.html') && !x.includes('subgraph'))!;
  });

  it('renders the summary and the structure picture: dark cyan BPU nodes, a gray CPU node', async () => {
    const shot = path.join(root, 'shot.png');
    const r = chromium([`--screenshot=${shot}`, '--window-size=1200,1400', '--hide-scrollbars', `file://${html}`]);
    expect(r.status).toBe(0);
    const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([1200, 1400]);
    // not blank: dark text on a white page
    const stats = await sharp(shot).stats();
    expect(stats.channels[0].stdev).toBeGreaterThan(15);
    const cyan = (r0: number, g: number, b: number): boolean => r0 < 20 && Math.abs(g - 139) < 14 && Math.abs(b - 139) < 14;
    const gray = (r0: number, g: number, b: number): boolean => Math.abs(r0 - 160) < 8 && Math.abs(g - 160) < 8 && Math.abs(b - 160) < 8;
    const dark = (r0: number, g: number, b: number): boolean => r0 < 80 && g < 80 && b < 80;
    // node boxes are 180 px wide: solid runs of 120-190 px (text breaks some rows; legend swatches are shorter)
    const bpuRows = rowsWithRun(data, info.width, info.height, cyan, 120, 190);
    const cpuRows = rowsWithRun(data, info.width, info.height, gray, 120, 190);
    // 4 BPU nodes (conv1, relu1, conv2, conv3) and one CPU node (soft), 34 px tall each
    expect(bpuRows.length).toBeGreaterThanOrEqual(4 * 8);
    expect(cpuRows.length).toBeGreaterThanOrEqual(8);
    expect(cpuRows.length).toBeLessThanOrEqual(34);
    // the summary (text) comes first, the picture below it; the CPU node sits between BPU nodes
    const textRows = rowsWithRun(data, info.width, info.height, dark, 1, 40);
    expect(textRows[0]).toBeLessThan(60);
    expect(Math.min(...bpuRows)).toBeGreaterThan(200);
    expect(Math.min(...cpuRows)).toBeGreaterThan(Math.min(...bpuRows));
    expect(Math.max(...cpuRows)).toBeLessThan(Math.max(...bpuRows));
  }, 120_000);

  it('the rendered DOM holds the summary, the subgraph table and the picture', () => {
    const r = chromium(['--dump-dom', `file://${html}`]);
    expect(r.status).toBe(0);
    const dom = r.stdout;
    expect(dom).toContain('<h1>Model Performance Summary</h1>');
    expect(dom).toContain('small &lt;model&gt;');
    expect(dom).toContain(`<span id="model-latency">${f.estimate.totals.bpuMs.toFixed(3)}</span>`);
    expect(dom).toContain('Total DDR (loaded+stored) bytes per frame (MB per frame)');
    for (const s of f.estimate.subgraphs) expect(dom).toContain(`>${s.name}</a>`);
    expect(dom).toMatch(/<svg [^>]*aria-label="BIN Model Structure: small &lt;model&gt;"/);
    expect((dom.match(/<g class="node BPU">/g) ?? []).length).toBe(f.estimate.ops.filter((o) => o.on === 'BPU').length);
    expect(dom).toContain('<g class="node CPU">');
    expect(dom).toContain('bpu model don\'t have per-layer perf info.');
  }, 120_000);
});
