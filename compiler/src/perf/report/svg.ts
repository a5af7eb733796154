import { escapeXml, truncate } from './escape';
import type { Layout, PlacedNode, Point } from './layout';

/**
 * The BIN Model Structure picture as SVG: BPU nodes dark cyan, CPU nodes gray, model inputs and
 * outputs white, each BPU subgraph in a dashed box named after it. Plain SVG 1.1 (no scripts, no
 * external references), rendered the same by browsers and by librsvg (the PNG beside it).
 */

export const COLORS = {
  bpu: '#008b8b', // CSS darkcyan
  bpuStroke: '#005f5f',
  bpuText: '#ffffff',
  cpu: '#a0a0a0',
  cpuStroke: '#6b6b6b',
  cpuText: '#000000',
  io: '#ffffff',
  ioStroke: '#555555',
  ioText: '#222222',
  cluster: '#e3f3f3',
  clusterStroke: '#008b8b',
  clusterText: '#005f5f',
  edge: '#555555',
  background: '#ffffff',
} as const;

const FONT = 'DejaVu Sans, Verdana, Arial, Helvetica, sans-serif';
const round = Math.round;

function f(n: number): string {
  return String(round(n * 10) / 10);
}

export interface SvgOptions {
  /** `<title>` of the picture */
  title: string;
  /** a standalone `.svg` file (XML declaration and namespace) rather than inline in HTML */
  standalone?: boolean;
  /** extra tooltip line per node id (e.g. an estimated latency) */
  notes?: ReadonlyMap<string, string>;
}

export function renderSvg(layout: Layout, opts: SvgOptions): string {
  const w = round(layout.width);
  const h = round(layout.height);
  const out: string[] = [];
  if (opts.standalone) out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<svg${opts.standalone ? ' xmlns="http://www.w3.org/2000/svg"' : ''} width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="${FONT}" role="img" aria-label="${escapeXml(opts.title)}">`,
    `<title>${escapeXml(opts.title)}</title>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">' +
      `<path d="M0,0 L10,5 L0,10 z" fill="${COLORS.edge}"/></marker></defs>`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="${COLORS.background}"/>`,
  );
  for (const c of layout.clusters) {
    out.push(
      `<g class="subgraph"><title>${escapeXml(`BPU subgraph ${c.name}`)}</title>` +
        `<rect x="${f(c.x)}" y="${f(c.y)}" width="${f(c.w)}" height="${f(c.h)}" rx="6" fill="${COLORS.cluster}" stroke="${COLORS.clusterStroke}" stroke-width="1.5" stroke-dasharray="6 3"/>` +
        `<text x="${f(c.x + 8)}" y="${f(c.y + 13)}" font-size="11" font-weight="bold" fill="${COLORS.clusterText}">${escapeXml(truncate(c.name, Math.max(8, Math.floor((c.w - 16) / 7))))}</text></g>`,
    );
  }
  for (const e of layout.edges) {
    out.push(`<path d="${edgePath(e.points)}" fill="none" stroke="${COLORS.edge}" stroke-width="1.2" marker-end="url(#arrow)"><title>${escapeXml(e.edge.value)}</title></path>`);
  }
  for (const n of layout.nodes) out.push(node(n, opts.notes?.get(n.node.id)));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function edgePath(p: Point[]): string {
  const parts = [`M${f(p[0].x)},${f(p[0].y)}`];
  for (let i = 1; i < p.length; i++) {
    const a = p[i - 1];
    const b = p[i];
    // odd steps run between layers (curves), even steps through a dummy's row (straight)
    if (i % 2 === 1) {
      const my = (a.y + b.y) / 2;
      parts.push(`C${f(a.x)},${f(my)} ${f(b.x)},${f(my)} ${f(b.x)},${f(b.y)}`);
    } else parts.push(`L${f(b.x)},${f(b.y)}`);
  }
  return parts.join(' ');
}

function node(p: PlacedNode, note: string | undefined): string {
  const n = p.node;
  const [fill, stroke, text] =
    n.kind === 'BPU' ? [COLORS.bpu, COLORS.bpuStroke, COLORS.bpuText] : n.kind === 'CPU' ? [COLORS.cpu, COLORS.cpuStroke, COLORS.cpuText] : [COLORS.io, COLORS.ioStroke, COLORS.ioText];
  const rx = n.kind === 'input' || n.kind === 'output' ? p.h / 2 : 4;
  const where = n.kind === 'BPU' ? `BPU${n.subgraph ? `, ${n.subgraph}` : ''}` : n.kind;
  const second = n.members !== undefined ? `${n.members} ops` : n.kind === 'input' || n.kind === 'output' ? n.kind : n.type;
  const tip = [`${n.label} (${n.type})`, where, ...(note ? [note] : [])].join('\n');
  const cx = p.x + p.w / 2;
  const chars = Math.floor((p.w - 10) / 6.6);
  return (
    `<g class="node ${n.kind}"><title>${escapeXml(tip)}</title>` +
    `<rect x="${f(p.x)}" y="${f(p.y)}" width="${f(p.w)}" height="${f(p.h)}" rx="${f(rx)}" fill="${fill}" stroke="${stroke}" stroke-width="1"/>` +
    `<text x="${f(cx)}" y="${f(p.y + 14)}" font-size="11" font-weight="bold" text-anchor="middle" fill="${text}">${escapeXml(truncate(n.label, chars))}</text>` +
    `<text x="${f(cx)}" y="${f(p.y + 27)}" font-size="10" text-anchor="middle" fill="${text}">${escapeXml(truncate(second, chars + 2))}</text></g>`
  );
}
