import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { binEdges, boxStats, channelValues, histogram, rangeOf } from './stats';
import { boxChart, esc, histogramChart, lineChart, niceTicks, num, tickLabel } from './svg';

const PY = '/usr/bin/python3';

/** Parse with Python's XML parser (when there): the documents must be well-formed. */
function wellFormed(docs: string[]): string | undefined {
  if (!fs.existsSync(PY)) return undefined;
  const r = spawnSync(PY, ['-c', 'import sys, json, xml.dom.minidom\nfor d in json.load(sys.stdin): xml.dom.minidom.parseString(d)'], { input: JSON.stringify(docs), encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr;
}

const HOSTILE = `a<b>&"c'</text><script>alert(1)</script>`;

describe('svg charts', () => {
  const line = lineChart({ title: HOSTILE, categories: ['conv<1>', 'relu&1', HOSTILE], series: [{ name: HOSTILE, values: [1, 0.5, Infinity] }, { name: 'b', values: [NaN, 0.9, 0.8] }], xLabel: 'node', yLabel: 'cos' });
  const hist = histogramChart({
    title: HOSTILE,
    panels: [{ title: HOSTILE, edges: binEdges(-1, 1, 4), series: [{ name: HOSTILE, counts: [1, 2, 3, 4], color: '#000' }], lines: [{ x: 0.5, color: 'red', label: HOSTILE }], markers: [{ x: -0.9, color: 'blue', label: 'max' }] }],
  });
  const box = boxChart({ title: HOSTILE, boxes: [{ label: '0', ...boxStats(Float32Array.of(1, 2, 3, 4, 100)) }] });

  it('escape every text and hold no script, id or external reference', () => {
    for (const svg of [line, hist, box]) {
      expect(svg).not.toContain('<script');
      expect(svg).not.toContain(HOSTILE);
      expect(svg).toContain(esc(HOSTILE).slice(0, 20));
      expect(svg).not.toMatch(/\sid=|href=|url\(/);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    }
    const problems = wellFormed([line, hist, box]);
    if (problems !== undefined) expect(problems).toBe('');
  });

  it('are deterministic and skip non-finite points', () => {
    expect(lineChart({ title: 't', categories: ['a', 'b', 'c'], series: [{ name: 's', values: [1, 0.5, Infinity] }] })).toBe(
      lineChart({ title: 't', categories: ['a', 'b', 'c'], series: [{ name: 's', values: [1, 0.5, Infinity] }] }),
    );
    // two finite points → one path with two vertices, two dots
    const one = lineChart({ title: 't', categories: ['a', 'b', 'c'], series: [{ name: 's', values: [1, 0.5, Infinity] }] });
    expect(one.match(/<circle /g)?.length).toBe(2);
    expect(one).toMatch(/<path d="M[\d.]+,[\d.]+ L[\d.]+,[\d.]+"/);
  });

  it('number helpers', () => {
    expect(num(1.005)).toBe('1');
    expect(num(12.5)).toBe('12.5');
    expect(num(-0.001)).toBe('0');
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
    expect(niceTicks(-3, 7, 5)).toEqual([-2, 0, 2, 4, 6]);
    expect(tickLabel(0.6000000000000001, [0, 0.2])).toBe('0.6');
    expect(tickLabel(4000, [0, 1000])).toBe('4000');
  });
});

describe('stats', () => {
  it("box statistics use numpy's linear quantiles and Tukey whiskers", () => {
    // numpy.percentile([1, 2, 3, 4, 100], [25, 50, 75]) = [2, 3, 4]; IQR 2 → whiskers within [-1, 7]
    const s = boxStats(Float32Array.of(100, 3, 1, 4, 2));
    expect(s).toEqual({ min: 1, q1: 2, median: 3, q3: 4, max: 100, mean: 22, whiskerLow: 1, whiskerHigh: 4, count: 5 });
    // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) = [1.75, 2.5, 3.25]
    const t = boxStats(Float64Array.of(4, 1, 3, 2));
    expect([t.q1, t.median, t.q3]).toEqual([1.75, 2.5, 3.25]);
  });

  it('histograms count every value once, the last bin closed', () => {
    const edges = binEdges(0, 4, 4);
    expect(edges).toEqual([0, 1, 2, 3, 4]);
    expect(histogram([Float32Array.of(0, 0.5, 1, 3.99, 4, 5, -1)], edges)).toEqual([2, 1, 0, 2]);
    expect(binEdges(2, 2, 2)).toEqual([1.5, 2, 2.5]);
    expect(rangeOf([Float32Array.of(-5, 3, NaN)])).toEqual({ min: -5, max: 3, maxAbs: -5, count: 2 });
  });

  it('split channels along any axis, samples concatenated', () => {
    const a = { dims: [1, 2, 2], data: Float32Array.of(1, 2, 3, 4) };
    const b = { dims: [1, 2, 2], data: Float32Array.of(5, 6, 7, 8) };
    expect(channelValues([a, b], 1).map((c) => Array.from(c))).toEqual([[1, 2, 5, 6], [3, 4, 7, 8]]);
    expect(channelValues([a], 2).map((c) => Array.from(c))).toEqual([[1, 3], [2, 4]]);
  });
});
