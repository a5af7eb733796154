import type { PerfEstimate, SubgraphPerf } from '../types';
import { CPU_ESTIMATE_LABEL, HOST_SIMULATOR_LABEL, HostProfile, layerRows, LayerRow, NO_LAYER_INFO_WARNING, PerfReportOptions } from './data';
import { escapeXml as esc } from './escape';
import { COLORS } from './svg';

/**
 * The HTML pages of the report: `<name>.html` (Model Performance Summary, Details per BPU
 * subgraph, the CPU-side estimates, the host simulator's profile when given, the BIN Model
 * Structure picture inline, Layer Details) and one page per subgraph. Self-contained: inline CSS,
 * no scripts, no external resources; every model-derived string is escaped.
 */

const round = Math.round;
const MB = 2 ** 20;

/** An integer with thousands separators (locale-independent). */
export function fmtInt(n: number): string {
  const s = String(round(Math.abs(n)));
  const grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${grouped}` : grouped;
}

export function fmtMs(n: number): string {
  return n.toFixed(3);
}

function fmtMB(bytes: number): string {
  return (bytes / MB).toFixed(3);
}

function fmtOps(n: number): string {
  const g = n / 1e9;
  return `${fmtInt(n)}${n >= 1e6 ? ` <span class="dim">(${g >= 1 ? `${g.toFixed(2)} G` : `${(n / 1e6).toFixed(2)} M`})</span>` : ''}`;
}

const CSS = `
body{font-family:"DejaVu Sans",Verdana,Arial,Helvetica,sans-serif;margin:24px;color:#1d1d1d;background:#fff;font-size:14px;line-height:1.4}
h1{font-size:22px;margin:0 0 12px}h2{font-size:18px;margin:28px 0 10px;border-bottom:2px solid #9aa5a5;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px}th,td{border:1px solid #c8c8c8;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef6f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv th{width:22em}.dim{color:#666}.note{color:#444;font-size:13px;max-width:60em}
.warn{background:#fff6d6;border:1px solid #e0c060;padding:8px 12px;font-family:"DejaVu Sans Mono",monospace;font-size:12px;max-width:70em;white-space:pre-wrap}
.host{border:2px dashed #b36b00;padding:6px 14px;margin-top:8px;background:#fffaf2}.host h2{border-color:#b36b00}
.picture{overflow:auto;border:1px solid #c8c8c8;max-width:100%;max-height:900px;background:#fff}
.legend span{display:inline-block;padding:2px 10px;margin-right:10px;border:1px solid #666;border-radius:3px;font-size:12px}
.name{font-family:"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
`;

function page(title: string, body: string[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function table(head: string[], rows: string[][], numeric: boolean[] = []): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`);
  return `<table>\n<thead><tr>${th}</tr></thead>\n<tbody>\n${tr.join('\n')}\n</tbody>\n</table>`;
}

function kv(rows: [string, string][], id?: string): string {
  return `<table class="kv"${id ? ` id="${id}"` : ''}>\n${rows.map(([k, v]) => `<tr><th>${k}</th><td class="num">${v}</td></tr>`).join('\n')}\n</table>`;
}

function optionsLine(e: PerfEstimate): string {
  const o = e.options;
  return `march ${esc(e.march)}, compile_mode ${esc(o.compileMode)}, optimize_level ${esc(o.optimizeLevel)}, core_num ${o.coreNum}, max_time_per_fc ${o.maxTimePerFc} µs`;
}

function noLayerInfo(): string {
  return `<div class="warn">${NO_LAYER_INFO_WARNING.map(esc).join('\n')}</div>`;
}

function layerTable(rows: LayerRow[]): string {
  return table(
    ['Layer', 'Type', 'Function call', 'OPs per frame', 'Compute time (ms)', 'Data movement time (ms)', 'Latency (ms)', 'Loaded bytes', 'Stored bytes', 'MAC utilization', 'Note'],
    rows.map((r) => [
      `<span class="name">${esc(r.name)}</span>`,
      `${esc(r.type)}${r.type !== r.op ? ` <span class="dim">(${esc(r.op)})</span>` : ''}`,
      String(r.functionCall),
      fmtInt(r.opsPerFrame),
      fmtMs(r.computeMs),
      fmtMs(r.dataMs),
      fmtMs(r.latencyMs),
      fmtInt(r.loadedBytes),
      fmtInt(r.storedBytes),
      r.utilization > 0 ? `${(r.utilization * 100).toFixed(1)} %` : '',
      [r.fusedInto !== undefined ? `fused into <span class="name">${esc(r.fusedInto)}</span>` : '', r.inPlace ? 'written in place' : '', r.tiling ? `tiled by ${esc(r.tiling)}` : ''].filter(Boolean).join('; '),
    ]),
    [false, false, true, true, true, true, true, true, true, true, false],
  );
}

function hostSection(h: HostProfile): string {
  const rows: [string, string][] = [
    ['Engine', esc(h.engine)],
    ['Frames', fmtInt(h.frames)],
    ['Threads', fmtInt(h.threads)],
    ['Average wall time per frame (ms)', fmtMs(h.averageMs)],
  ];
  if (h.minMs !== undefined) rows.push(['Minimum (ms)', fmtMs(h.minMs)]);
  if (h.maxMs !== undefined) rows.push(['Maximum (ms)', fmtMs(h.maxMs)]);
  if (h.fps !== undefined) rows.push(['Frames per second', h.fps.toFixed(2)]);
  const out = [
    '<section class="host" id="host-simulator">',
    `<h2>Measured on the ${esc(HOST_SIMULATOR_LABEL)}</h2>`,
    '<p class="note">Wall time of the nx-ptq host runtime executing this model on this machine. It is a property of the simulator, not of the BPU: do not compare it with the Model Latency above.</p>',
    kv(rows),
  ];
  if (h.nodes?.length) {
    out.push(
      table(
        ['Node', 'Type', 'Device', 'Average (ms)'],
        h.nodes.map((n) => [`<span class="name">${esc(n.name)}</span>`, esc(n.type ?? ''), esc(n.device ?? ''), fmtMs(n.averageMs)]),
        [false, false, false, true],
      ),
    );
  }
  out.push('</section>');
  return out.join('\n');
}

export interface MainPageParts {
  /** subgraph id → page file name (with .html) */
  subgraphPages: ReadonlyMap<number, string>;
  /** inline SVG of the structure, and the PNG file name beside it */
  svg?: string;
  png?: string;
}

/** `<name>.html`. */
export function mainPage(e: PerfEstimate, opts: PerfReportOptions, parts: MainPageParts): string {
  const t = e.totals;
  const name = esc(opts.modelName);
  const body: string[] = [
    '<h1>Model Performance Summary</h1>',
    kv(
      [
        ['Model Name', `<span class="name" id="model-name">${name}</span>`],
        ['Model Latency (ms)', `<span id="model-latency">${fmtMs(t.bpuMs)}</span>`],
        ['Total DDR (loaded+stored) bytes per frame (MB per frame)', fmtMB(t.ddrBytes)],
        ['Loaded Bytes per Frame', fmtInt(t.loadedBytes)],
        ['Stored Bytes per Frame', fmtInt(t.storedBytes)],
      ],
      'summary',
    ),
    `<p class="note">Static estimate of the BPU part of the model (${optionsLine(e)})${opts.source ? ` from <span class="name">${esc(opts.source)}</span>` : ''}. CPU operators are not included: see the CPU-side estimates below.</p>`,
    '<h2>Details</h2>',
    table(
      ['Model Subgraph Name', 'Model Subgraph Calculation Load (OPpf)', 'Model Subgraph DDR Occupation (Mbpf)', 'Model Subgraph Latency (ms)', 'Function calls'],
      e.subgraphs.map((s) => [
        `<a class="name" href="${esc(parts.subgraphPages.get(s.id)!)}">${esc(s.name)}</a>`,
        fmtOps(s.ops),
        fmtMB(s.ddrBytes),
        fmtMs(s.latencyMs),
        String(s.functionCalls),
      ]),
      [false, true, true, true, true],
    ),
  ];
  if (!e.subgraphs.length) body.push('<p class="note">The model has no BPU subgraph.</p>');

  body.push('<h2>BIN Model Structure</h2>');
  if (parts.svg) {
    body.push(
      `<p class="legend"><span style="background:${COLORS.bpu};color:${COLORS.bpuText}">BPU node</span><span style="background:${COLORS.cpu};color:${COLORS.cpuText}">CPU node</span><span style="background:${COLORS.cluster};border-style:dashed;border-color:${COLORS.clusterStroke}">BPU subgraph</span>${parts.png ? `<a href="${esc(parts.png)}">PNG</a>` : ''}</p>`,
      `<div class="picture" id="structure">\n${parts.svg}</div>`,
    );
  } else body.push('<p class="note">No structure was given: the picture is not available.</p>');


  body.push('<h2>CPU side (estimates, not in the Model Latency)</h2>', `<p class="note">${esc(CPU_ESTIMATE_LABEL)}.</p>`);
  body.push(
    kv([
      ['CPU operators (ms)', fmtMs(t.cpuMs)],
      ['Quantize / Dequantize / layout conversions (ms)', fmtMs(t.borderMs)],
      ['Input conversion (ms)', fmtMs(t.inputMs)],
      ['Runtime overhead (ms)', fmtMs(t.runtimeMs)],
      ['Estimated end-to-end latency, one frame, one thread (ms)', fmtMs(t.endToEndMs)],
    ]),
  );
  const cpu = e.ops.filter((o) => o.on === 'CPU');
  if (cpu.length) {
    body.push('<h3>CPU operators</h3>', table(['Node', 'Op', 'OPs per frame', 'Estimated latency (ms)'], cpu.map((o) => [`<span class="name">${esc(o.name)}</span>`, esc(o.op), fmtInt(o.ops), fmtMs(o.latencyMs)]), [false, false, true, true]));
  }
  if (e.borders.length) {
    body.push('<h3>Subgraph borders and input conversion</h3>', table(['Name', 'Kind', 'Value', 'Elements', 'Estimated latency (ms)'], e.borders.map((b) => [`<span class="name">${esc(b.name)}</span>`, esc(b.kind), `<span class="name">${esc(b.value)}</span>`, fmtInt(b.elements), fmtMs(b.latencyMs)]), [false, false, false, true, true]));
  }

  if (opts.hostProfile) body.push(hostSection(opts.hostProfile));

  body.push('<h2>Layer Details</h2>');
  if (opts.debug) {
    for (const s of e.subgraphs) body.push(`<h3 class="name">${esc(s.name)}</h3>`, layerTable(layerRows(e, s.id)));
  } else body.push(noLayerInfo());

  if (e.notes.length) body.push('<h2>Notes</h2>', `<ul>${e.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  return page(`${opts.modelName} - Model Performance`, body);
}

/** `<subgraph>.html`. */
export function subgraphPage(e: PerfEstimate, s: SubgraphPerf, opts: PerfReportOptions, mainFile: string): string {
  const borders = e.borders.filter((b) => b.subgraph === s.id);
  const body: string[] = [
    `<p><a href="${esc(mainFile)}">&larr; ${esc(opts.modelName)}</a></p>`,
    `<h1>Subgraph <span class="name">${esc(s.name)}</span></h1>`,
    kv(
      [
        ['Model Subgraph Name', `<span class="name">${esc(s.name)}</span>`],
        ['Model Subgraph Calculation Load (OPpf)', fmtOps(s.ops)],
        ['Model Subgraph DDR Occupation (Mbpf)', fmtMB(s.ddrBytes)],
        ['Model Subgraph Latency (ms)', fmtMs(s.latencyMs)],
        ['Loaded Bytes per Frame', fmtInt(s.loadedBytes)],
        ['Stored Bytes per Frame', fmtInt(s.storedBytes)],
        ['BPU function calls', String(s.functionCalls)],
        ['Nodes', String(s.nodes)],
      ],
      'summary',
    ),
    `<p class="note">Static estimate (${optionsLine(e)}).</p>`,
  ];
  if (borders.length) {
    body.push(
      '<h2>Borders (CPU side, estimates)</h2>',
      table(['Name', 'Kind', 'Value', 'Elements', 'Estimated latency (ms)'], borders.map((b) => [`<span class="name">${esc(b.name)}</span>`, esc(b.kind), `<span class="name">${esc(b.value)}</span>`, fmtInt(b.elements), fmtMs(b.latencyMs)]), [false, false, false, true, true]),
    );
  }
  body.push('<h2>Layer Details</h2>');
  body.push(opts.debug ? layerTable(layerRows(e, s.id)) : noLayerInfo());
  return page(`${s.name} - ${opts.modelName}`, body);
}
