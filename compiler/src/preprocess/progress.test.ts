import { createProgress } from './progress';

function stream(isTTY: boolean): { isTTY: boolean; text: string; write(s: string): void } {
  return {
    isTTY,
    text: '',
    write(s: string) {
      this.text += s;
    },
  };
}

describe('progress', () => {
  it('prints a line every 10 % (and a final one) when not on a terminal', () => {
    const s = stream(false);
    let t = 0;
    const p = createProgress('calibration data', 50, { stream: s, now: () => t });
    for (let i = 1; i <= 50; i++) {
      t += 10;
      p.update(i);
    }
    p.finish();
    p.finish(); // idempotent
    const lines = s.text.trimEnd().split('\n');
    expect(lines).toHaveLength(11); // the first item, 10 %, 20 %, … 90 %, then the final line
    expect(lines[0]).toBe('calibration data: 1/50 (2%) 100/s eta 0.5s');
    expect(lines[1]).toBe('calibration data: 5/50 (10%) 100/s eta 0.5s');
    expect(lines[9]).toMatch(/^calibration data: 45\/50 \(90%\)/);
    expect(lines[10]).toBe('calibration data: 50/50 (100%) done in 0.5s');
  });

  it('also prints when time passes without reaching the next step', () => {
    const s = stream(false);
    let t = 0;
    const p = createProgress('x', 1000, { stream: s, now: () => t, everyMs: 1000 });
    p.update(1);
    t = 500;
    p.update(2);
    t = 1200;
    p.update(3);
    t = 1300;
    p.update(3); // nothing new: no line
    expect(s.text.split('\n').filter(Boolean)).toEqual([expect.stringMatching(/^x: 1\/1000 \(0%\)/), expect.stringMatching(/^x: 3\/1000 \(0%\)/)]);
  });

  it('redraws a bar in place on a terminal and ends it with a newline', () => {
    const s = stream(true);
    let t = 0;
    const p = createProgress('eval', 4, { stream: s, now: () => t, width: 8 });
    for (let i = 1; i <= 4; i++) {
      t += 200;
      p.tick();
    }
    p.finish();
    const frames = s.text.split('\r').filter(Boolean);
    expect(frames[0]).toMatch(/^eval \[##------\] 1\/4 {2}25%/);
    expect(frames[frames.length - 1]).toMatch(/^eval \[########\] 4\/4 100% 0\.8s\x1b\[K\n$/);
    expect(s.text.indexOf('\n')).toBe(s.text.length - 1);
  });

  it('abort ends a bar line without a final report', () => {
    const s = stream(true);
    const p = createProgress('eval', 4, { stream: s, now: () => 0 });
    p.update(1);
    p.abort();
    p.finish();
    expect(s.text.endsWith('\n')).toBe(true);
    expect(s.text).not.toMatch(/4\/4/);
    const q = stream(false);
    createProgress('x', 4, { stream: q }).abort();
    expect(q.text).toBe('');
  });
});
