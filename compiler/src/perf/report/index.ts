import * as path from 'path';
import type { PerfEstimate } from '../types';
import { modelJson, NO_LAYER_INFO_WARNING, PerfReportOptions, subgraphJson } from './data';
import { safeFileName } from './escape';
import { mainPage, subgraphPage } from './html';
import { layoutStructure } from './layout';
import { collapseSubgraphs, COLLAPSE_ABOVE } from './structure';
import { renderSvg } from './svg';
import { ReportFile, writeDirAtomic } from './write';

/**
 * The hb_perf report of one model (`hb_perf_result/<name>/`):
 *   <name>.html   Model Performance Summary, Details, CPU-side estimates, host simulator profile
 *                 (when given), BIN Model Structure (inline SVG), Layer Details (debug only)
 *   <name>.json   the same numbers, machine-readable
 *   <name>.svg    the structure picture; <name>.png the same, rendered by librsvg (sharp)
 *   <subgraph>.html / <subgraph>.json   one pair per BPU subgraph
 * Everything is a function of the inputs (byte-identical on a rerun), except the host profile,
 * which is a measurement.
 */

export { HOST_SIMULATOR_LABEL, NO_LAYER_INFO_WARNING, CPU_ESTIMATE_LABEL } from './data';
export type { HostProfile, HostProfileNode, PerfReportOptions } from './data';
export { structureFromBin, structureFromPlacement, collapseSubgraphs } from './structure';
export type { ModelStructure, StructureEdge, StructureNode, StructureNodeKind } from './structure';
export { layoutStructure } from './layout';
export { renderSvg } from './svg';
export { writeDirAtomic } from './write';
export type { ReportFile } from './write';

export interface RenderedReport {
  /** the folder name (the model name made safe for a file system) */
  folder: string;
  /** files relative to the folder */
  files: ReportFile[];
  /** lines to print (the reference's warning without debug) */
  warnings: string[];
}

export interface PerfReportResult {
  dir: string;
  /** absolute paths of the files written */
  files: string[];
  warnings: string[];
}

/** Render SVG to PNG bytes with librsvg (through sharp). Deterministic for the same SVG. */
export async function svgToPng(svg: string): Promise<Buffer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- sharp is native and heavy: load it only to render
  const sharp = require('sharp') as typeof import('sharp');
  return sharp(Buffer.from(svg, 'utf8'), { density: 72, limitInputPixels: false }).png({ compressionLevel: 9, adaptiveFiltering: false, palette: false }).toBuffer();
}

/** The report's files in memory. */
export async function renderPerfReport(estimate: PerfEstimate, opts: PerfReportOptions): Promise<RenderedReport> {
  const base = safeFileName(opts.modelName);
  const used = new Set([`${base}.html`, `${base}.json`, `${base}.svg`, `${base}.png`].map((f) => f.toLowerCase()));
  const pages = new Map<number, string>();
  for (const s of estimate.subgraphs) {
    let stem = safeFileName(s.name);
    for (let k = 2; used.has(`${stem}.html`.toLowerCase()) || used.has(`${stem}.json`.toLowerCase()); k++) stem = `${safeFileName(s.name)}_${k}`;
    used.add(`${stem}.html`.toLowerCase());
    used.add(`${stem}.json`.toLowerCase());
    pages.set(s.id, stem);
  }
  const warnings = opts.debug ? [] : [...NO_LAYER_INFO_WARNING];
  const files: ReportFile[] = [];
  let svgInline: string | undefined;
  if (opts.structure) {
    const shown = opts.structure.nodes.length > COLLAPSE_ABOVE ? collapseSubgraphs(opts.structure) : opts.structure;
    const layout = layoutStructure(shown);
    const title = `BIN Model Structure: ${opts.modelName}`;
    const svgFile = renderSvg(layout, { title, standalone: true });
    svgInline = renderSvg(layout, { title });
    files.push([`${base}.svg`, svgFile], [`${base}.png`, await svgToPng(svgFile)]);
  }
  const htmlPages = new Map([...pages].map(([id, stem]) => [id, `${stem}.html`] as const));
  files.push([`${base}.html`, mainPage(estimate, opts, { subgraphPages: htmlPages, svg: svgInline, png: opts.structure ? `${base}.png` : undefined })]);
  files.push([`${base}.json`, `${JSON.stringify(modelJson(estimate, opts, htmlPages, warnings), null, 2)}\n`]);
  for (const s of estimate.subgraphs) {
    const stem = pages.get(s.id)!;
    files.push([`${stem}.html`, subgraphPage(estimate, s, opts, `${base}.html`)]);
    files.push([`${stem}.json`, `${JSON.stringify(subgraphJson(estimate, s, opts, `${stem}.html`), null, 2)}\n`]);
  }
  files.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { folder: base, files, warnings };
}

/**
 * Write the report of one model into `outDir` (the model's own folder, e.g.
 * `hb_perf_result/<name>`), replacing it atomically.
 */
export async function writePerfReport(outDir: string, estimate: PerfEstimate, opts: PerfReportOptions): Promise<PerfReportResult> {
  const r = await renderPerfReport(estimate, opts);
  writeDirAtomic(outDir, r.files);
  return { dir: path.resolve(outDir), files: r.files.map(([f]) => path.resolve(outDir, f)), warnings: r.warnings };
}
