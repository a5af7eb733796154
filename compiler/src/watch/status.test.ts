import { formatDuration, StatusBoard } from './status';

function sink(isTTY: boolean): { text: string; write(t: string): void; isTTY: boolean; columns: number } {
  return { text: '', isTTY, columns: 60, write(t: string) { this.text += t; } };
}

describe('StatusBoard', () => {
  it('off a terminal: one plain line per result, nothing while running', () => {
    const s = sink(false);
    const b = new StatusBoard(s, ['m1', 'm2']);
    b.log('ptq watch: 2 model(s)');
    b.running('m1', 'verify', 'running compile, perf, verify');
    b.result('m1', true, 'verify', '1.2s  compiler_parameters changed · ran compile, perf, verify');
    b.result('m2', false, 'calibrate', '0.4s  ERROR bad (fix: good)');
    expect(s.text).toBe(
      'ptq watch: 2 model(s)\n' +
        '[m1] verify ✓ 1.2s  compiler_parameters changed · ran compile, perf, verify\n' +
        '[m2] calibrate ✗ 0.4s  ERROR bad (fix: good)\n',
    );
    expect(s.text).not.toContain('\x1b');
  });

  it('on a terminal: a board of one line per model, redrawn in place and cut to the width', () => {
    const s = sink(true);
    const b = new StatusBoard(s, ['m1', 'm2']);
    b.running('m1', 'verify', 'running compile, perf, verify');
    b.result('m1', true, 'verify', `1.2s  ${'x'.repeat(100)}`);
    const frames = s.text.split('\x1b[2A\x1b[J');
    expect(frames).toHaveLength(2); // drawn, then erased (2 lines up) and drawn again
    // eslint-disable-next-line no-control-regex
    const last = frames[1].replace(/\x1b\[[0-9;]*m/g, '').split('\n');
    expect(last[0]).toMatch(/^\[m1\] verify ✓ 1\.2s  x+…$/);
    expect(last[0]).toHaveLength(59);
    expect(last[1]).toBe('[m2] waiting ·');
    b.log('ERROR above the board');
    expect(s.text.endsWith('\n')).toBe(true);
    expect(s.text).toContain('\x1b[2A\x1b[JERROR above the board\n');
  });

  it('formats durations', () => {
    expect([formatDuration(850), formatDuration(1234), formatDuration(125_000)]).toEqual(['850ms', '1.2s', '2m05s']);
  });
});
