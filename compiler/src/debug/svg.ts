/**
 * The debugger's charts as self-contained SVG documents: no scripts, no external fonts or
 * references, no ids (several charts can be inlined into one HTML page), every text from the
 * model escaped. Coordinates are written with two decimals, so the same data gives the same
 * bytes. Three kinds: a line chart over named categories (cumulative error), stacked
 * histogram panels with marker lines (distributions), and box plots (channel-wise data).
 */

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const BLUE = PALETTE[0];
export const ORANGE = PALETTE[1];
export const GREEN = PALETTE[2];
export const RED = PALETTE[3];

const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';
const CHAR_W = 6.4; // average glyph width at 11 px, for layout

/** Text for XML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** A coordinate: two decimals, no trailing zeros. */
export function num(v: number): string {
  if (!Number.isFinite(v)) return '0';
  const s = v.toFixed(2).replace(/\.?0+$/, '');
  return s === '-0' || s === '' ? '0' : s;
}

/** About `target` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A tick label: as few digits as the tick step needs, exponents for very large/small values. */
export function tickLabel(v: number, ticks: number[]): string {
  if (v === 0) return '0';
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(v);
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(Math.max(0, Math.min(6, -Math.floor(Math.log10(step / a)))));
  const digits = Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(digits);
}

interface Frame {
  x: number;
  y: number;
  w: number;
  h: number;
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
}

const px = (f: Frame, v: number): number => f.x + ((v - f.xmin) / (f.xmax - f.xmin || 1)) * f.w;
const py = (f: Frame, v: number): number => f.y + f.h - ((v - f.ymin) / (f.ymax - f.ymin || 1)) * f.h;
const clampY = (f: Frame, y: number): number => Math.min(f.y + f.h, Math.max(f.y, y));

function svgDoc(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${num(width)}" height="${num(height)}" viewBox="0 0 ${num(width)} ${num(height)}" ${FONT} font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${num(width)}" height="${num(height)}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${num(x)}" y="${num(y)}"${attrs ? ` ${attrs}` : ''}>${esc(s)}</text>`;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Axes, grid and y ticks of a frame; x ticks are numeric unless `categories` are given. */
function axes(out: string[], f: Frame, o: { xLabel?: string; yLabel?: string; xTicks?: boolean }): void {
  const yt = niceTicks(f.ymin, f.ymax, 5);
  for (const v of yt) {
    const y = py(f, v);
    out.push(`<line x1="${num(f.x)}" y1="${num(y)}" x2="${num(f.x + f.w)}" y2="${num(y)}" stroke="#e5e5e5" stroke-width="1"/>`);
    out.push(text(f.x - 6, y + 4, tickLabel(v, yt), 'text-anchor="end" fill="#333333"'));
  }
  if (o.xTicks !== false) {
    const xt = niceTicks(f.xmin, f.xmax, Math.max(3, Math.round(f.w / 90)));
    for (const v of xt) {
      const x = px(f, v);
      out.push(`<line x1="${num(x)}" y1="${num(f.y + f.h)}" x2="${num(x)}" y2="${num(f.y + f.h + 4)}" stroke="#333333" stroke-width="1"/>`);
      out.push(text(x, f.y + f.h + 16, tickLabel(v, xt), 'text-anchor="middle" fill="#333333"'));
    }
  }
  out.push(`<rect x="${num(f.x)}" y="${num(f.y)}" width="${num(f.w)}" height="${num(f.h)}" fill="none" stroke="#333333" stroke-width="1"/>`);
  if (o.xLabel) out.push(text(f.x + f.w / 2, f.y + f.h + 34, o.xLabel, 'text-anchor="middle" fill="#111111"'));
  if (o.yLabel) out.push(text(0, 0, o.yLabel, `text-anchor="middle" fill="#111111" transform="translate(${num(f.x - 52)},${num(f.y + f.h / 2)}) rotate(-90)"`));
}

function legend(out: string[], f: Frame, items: { name: string; color: string; dash?: boolean; marker?: 'triangle' | 'box' }[]): void {
  if (!items.length) return;
  const w = Math.min(340, Math.max(...items.map((i) => truncate(i.name, 48).length)) * CHAR_W + 34);
  const x = f.x + f.w - w - 8;
  const y = f.y + 8;
  out.push(`<rect x="${num(x)}" y="${num(y)}" width="${num(w)}" height="${num(items.length * 16 + 8)}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`);
  items.forEach((it, k) => {
    const cy = y + 12 + k * 16;
    if (it.marker === 'triangle') out.push(triangle(x + 15, cy + 3, it.color));
    else if (it.marker === 'box') out.push(`<rect x="${num(x + 8)}" y="${num(cy - 5)}" width="14" height="10" fill="${it.color}" fill-opacity="0.5" stroke="${it.color}"/>`);
    else out.push(`<line x1="${num(x + 6)}" y1="${num(cy)}" x2="${num(x + 24)}" y2="${num(cy)}" stroke="${it.color}" stroke-width="2"${it.dash ? ' stroke-dasharray="5,3"' : ''}/>`);
    out.push(text(x + 30, cy + 4, truncate(it.name, 48), 'fill="#111111"'));
  });
}

function triangle(x: number, yBase: number, color: string): string {
  return `<path d="M${num(x - 5)},${num(yBase)} L${num(x + 5)},${num(yBase)} L${num(x)},${num(yBase - 9)} Z" fill="${color}"/>`;
}

/** y range of finite values, padded; [0, 1] when there are none. */
function yRange(values: number[], pad = 0.05): [number, number] {
  const fin = values.filter((v) => Number.isFinite(v));
  if (!fin.length) return [0, 1];
  let lo = Math.min(...fin);
  let hi = Math.max(...fin);
  if (hi === lo) {
    const d = Math.abs(hi) * 0.01 || 0.5;
    return [lo - d, hi + d];
  }
  const d = (hi - lo) * pad;
  lo -= d;
  hi += d;
  return [lo, hi];
}

export interface LineSeries {
  name: string;
  values: number[];
  color?: string;
}

/**
 * One line per series over the categories (node names, rotated below the axis; every k-th
 * when there are many). Non-finite points break the line.
 */
export function lineChart(o: { title: string; categories: string[]; series: LineSeries[]; xLabel?: string; yLabel?: string; width?: number; height?: number }): string {
  const n = o.categories.length;
  const width = o.width ?? Math.max(720, Math.min(1800, 160 + n * 14));
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor((width - 160) / 14))));
  const shown = o.categories.map((c, i) => (i % every === 0 ? truncate(c, 32) : ''));
  const labelH = Math.min(32, Math.max(4, ...shown.map((s) => s.length))) * CHAR_W * 0.87;
  const legendH = o.series.length * 16 + 12;
  const height = o.height ?? Math.round(380 + labelH + legendH);
  const [ymin, ymax] = yRange(o.series.flatMap((s) => s.values));
  const f: Frame = { x: 80, y: 40, w: width - 110, h: height - 40 - labelH - 56 - legendH, xmin: -0.5, xmax: Math.max(0.5, n - 0.5), ymin, ymax };
  const out: string[] = [text(width / 2, 24, o.title, 'text-anchor="middle" font-size="14" font-weight="bold" fill="#111111"')];
  axes(out, f, { yLabel: o.yLabel, xTicks: false });
  shown.forEach((s, i) => {
    if (!s) return;
    const x = px(f, i);
    out.push(`<line x1="${num(x)}" y1="${num(f.y + f.h)}" x2="${num(x)}" y2="${num(f.y + f.h + 4)}" stroke="#333333"/>`);
    out.push(text(x, f.y + f.h + 10, s, `text-anchor="end" fill="#333333" font-size="10" transform="rotate(-60 ${num(x)} ${num(f.y + f.h + 10)})"`));
  });
  if (o.xLabel) out.push(text(f.x + f.w / 2, height - legendH - 10, o.xLabel, 'text-anchor="middle" fill="#111111"'));
  o.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${num(px(f, i))},${num(clampY(f, py(f, v)))} `;
      pen = true;
    });
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    if (n <= 80) {
      s.values.forEach((v, i) => {
        if (Number.isFinite(v)) out.push(`<circle cx="${num(px(f, i))}" cy="${num(clampY(f, py(f, v)))}" r="2.2" fill="${color}"/>`);
      });
    }
  });
  // the legend below the chart: curves may run anywhere inside it
  o.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const y = height - legendH + 8 + k * 16;
    out.push(`<line x1="${num(f.x)}" y1="${num(y)}" x2="${num(f.x + 20)}" y2="${num(y)}" stroke="${color}" stroke-width="2"/>`);
    out.push(text(f.x + 26, y + 4, truncate(s.name, Math.floor((width - f.x - 40) / CHAR_W)), 'fill="#111111"'));
  });
  return svgDoc(width, height, o.title, out);
}

export interface HistSeries {
  name: string;
  counts: number[];
  color: string;
}

export interface HistPanel {
  title: string;
  edges: number[];
  series: HistSeries[];
  /** dashed vertical lines (thresholds) */
  lines?: { x: number; color: string; label: string }[];
  /** triangles on the x axis (the value of largest magnitude) */
  markers?: { x: number; color: string; label: string }[];
  xLabel?: string;
}

/** Histogram panels stacked vertically, series overlaid as translucent bars. */
export function histogramChart(o: { title: string; panels: HistPanel[]; width?: number; panelHeight?: number }): string {
  const width = o.width ?? 760;
  const ph = o.panelHeight ?? 260;
  const height = 40 + o.panels.length * (ph + 70);
  const out: string[] = [text(width / 2, 24, o.title, 'text-anchor="middle" font-size="14" font-weight="bold" fill="#111111"')];
  o.panels.forEach((p, k) => {
    const top = 40 + k * (ph + 70) + 22;
    let xmin = p.edges[0];
    let xmax = p.edges[p.edges.length - 1];
    for (const l of [...(p.lines ?? []), ...(p.markers ?? [])]) {
      if (Number.isFinite(l.x)) {
        xmin = Math.min(xmin, l.x);
        xmax = Math.max(xmax, l.x);
      }
    }
    const pad = (xmax - xmin) * 0.03 || 0.5;
    const ymax = Math.max(1, ...p.series.flatMap((s) => s.counts)) * 1.08;
    const f: Frame = { x: 80, y: top, w: width - 110, h: ph, xmin: xmin - pad, xmax: xmax + pad, ymin: 0, ymax };
    out.push(text(f.x, top - 8, p.title, 'font-size="12" font-weight="bold" fill="#111111"'));
    axes(out, f, { xLabel: p.xLabel, yLabel: 'count' });
    for (const s of p.series) {
      const bars: string[] = [];
      s.counts.forEach((c, i) => {
        if (!c) return;
        const x0 = px(f, p.edges[i]);
        const x1 = px(f, p.edges[i + 1]);
        const y = py(f, c);
        bars.push(`M${num(x0)},${num(f.y + f.h)} V${num(y)} H${num(Math.max(x1, x0 + 0.8))} V${num(f.y + f.h)} Z`);
      });
      if (bars.length) out.push(`<path d="${bars.join(' ')}" fill="${s.color}" fill-opacity="0.45" stroke="${s.color}" stroke-width="0.6"/>`);
    }
    for (const l of p.lines ?? []) {
      if (!Number.isFinite(l.x)) continue;
      const x = px(f, l.x);
      out.push(`<line x1="${num(x)}" y1="${num(f.y)}" x2="${num(x)}" y2="${num(f.y + f.h)}" stroke="${l.color}" stroke-width="1.4" stroke-dasharray="6,4"/>`);
    }
    for (const m of p.markers ?? []) {
      if (Number.isFinite(m.x)) out.push(triangle(px(f, m.x), f.y + f.h - 1, m.color));
    }
    const items: { name: string; color: string; dash?: boolean; marker?: 'triangle' | 'box' }[] = p.series.map((s) => ({ name: s.name, color: s.color, marker: 'box' }));
    const seen = new Set<string>();
    for (const l of p.lines ?? []) {
      if (seen.has(l.label)) continue;
      seen.add(l.label);
      items.push({ name: l.label, color: l.color, dash: true });
    }
    for (const m of p.markers ?? []) {
      if (seen.has(m.label)) continue;
      seen.add(m.label);
      items.push({ name: m.label, color: m.color, marker: 'triangle' });
    }
    legend(out, f, items);
  });
  return svgDoc(width, height, o.title, out);
}

export interface BoxItem {
  label: string;
  q1: number;
  median: number;
  q3: number;
  mean: number;
  whiskerLow: number;
  whiskerHigh: number;
  min: number;
  max: number;
}

/** Box plots: box q1–q3, whiskers, min/max dots, median solid red, mean dashed blue. */
export function boxChart(o: { title: string; boxes: BoxItem[]; xLabel?: string; yLabel?: string; width?: number; height?: number }): string {
  const n = o.boxes.length;
  const width = o.width ?? Math.max(720, Math.min(2400, 140 + n * 16));
  const height = o.height ?? 440;
  const [ymin, ymax] = yRange(o.boxes.flatMap((b) => [b.min, b.max]));
  const f: Frame = { x: 80, y: 40, w: width - 110, h: height - 110, xmin: -0.5, xmax: Math.max(0.5, n - 0.5), ymin, ymax };
  const out: string[] = [text(width / 2, 24, o.title, 'text-anchor="middle" font-size="14" font-weight="bold" fill="#111111"')];
  axes(out, f, { yLabel: o.yLabel, xLabel: o.xLabel, xTicks: false });
  const slot = f.w / Math.max(1, n);
  const bw = Math.max(1, Math.min(24, slot * 0.6));
  const every = Math.max(1, Math.ceil(n / Math.floor(f.w / 28)));
  o.boxes.forEach((b, i) => {
    const cx = px(f, i);
    if (i % every === 0) out.push(text(cx, f.y + f.h + 16, truncate(b.label, 8), 'text-anchor="middle" fill="#333333" font-size="10"'));
    if (!Number.isFinite(b.median)) return;
    const x0 = cx - bw / 2;
    out.push(`<line x1="${num(cx)}" y1="${num(py(f, b.whiskerLow))}" x2="${num(cx)}" y2="${num(py(f, b.whiskerHigh))}" stroke="#444444" stroke-width="1"/>`);
    for (const w of [b.whiskerLow, b.whiskerHigh]) out.push(`<line x1="${num(cx - bw / 4)}" y1="${num(py(f, w))}" x2="${num(cx + bw / 4)}" y2="${num(py(f, w))}" stroke="#444444" stroke-width="1"/>`);
    const top = py(f, b.q3);
    out.push(`<rect x="${num(x0)}" y="${num(top)}" width="${num(bw)}" height="${num(Math.max(0.5, py(f, b.q1) - top))}" fill="#dde8f3" stroke="#444444" stroke-width="0.8"/>`);
    for (const v of [b.min, b.max]) {
      if (v < b.whiskerLow || v > b.whiskerHigh) out.push(`<circle cx="${num(cx)}" cy="${num(py(f, v))}" r="1.8" fill="none" stroke="#444444" stroke-width="0.8"/>`);
    }
    out.push(`<line x1="${num(x0)}" y1="${num(py(f, b.median))}" x2="${num(x0 + bw)}" y2="${num(py(f, b.median))}" stroke="${RED}" stroke-width="1.6"/>`);
    out.push(`<line x1="${num(x0)}" y1="${num(py(f, b.mean))}" x2="${num(x0 + bw)}" y2="${num(py(f, b.mean))}" stroke="${BLUE}" stroke-width="1.4" stroke-dasharray="3,2"/>`);
  });
  legend(out, f, [
    { name: 'median', color: RED },
    { name: 'mean', color: BLUE, dash: true },
  ]);
  return svgDoc(width, height, o.title, out);
}
