/**
 * Progress of loops over samples (calibration data, eval preprocessing, calibration runs):
 * on a terminal a bar redrawn in place with `\r`; elsewhere (CI logs, pipes) one line every
 * `everyPercent` % of the work or every `everyMs` milliseconds, whichever comes first, and a
 * final line. Output goes to stderr unless told otherwise, so stdout stays machine-readable.
 */

/** Where progress is written: process.stderr, or anything with write + isTTY. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** default process.stderr */
  stream?: ProgressStream;
  /** override the stream's isTTY */
  tty?: boolean;
  /** non-TTY: a line at least every this many percent (default 10) */
  everyPercent?: number;
  /** non-TTY: and at least every this many ms while running (default 5000) */
  everyMs?: number;
  /** TTY: bar width in characters (default 30) */
  width?: number;
  /** clock, for tests */
  now?: () => number;
}

export interface ProgressReporter {
  /** `done` of `total` items finished (total may change, e.g. when it becomes known). */
  update(done: number, total?: number): void;
  /** One more item finished. */
  tick(): void;
  /** Finish the display (final line / newline after the bar). Idempotent. */
  finish(): void;
  /** Stop without a final line (the work failed): ends a bar's line so an error can follow. */
  abort(): void;
}

/** A reporter that prints nothing. */
export const silentProgress: ProgressReporter = { update() {}, tick() {}, finish() {}, abort() {} };

export function createProgress(label: string, total: number, opts: ProgressOptions = {}): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const everyPercent = opts.everyPercent ?? 10;
  const everyMs = opts.everyMs ?? 5000;
  const width = opts.width ?? 30;
  const now = opts.now ?? Date.now;
  const start = now();
  let done = 0;
  let lastDrawn = -Infinity;
  let lastPercent = -Infinity;
  let lastDone = -1;
  let finished = false;

  const rate = (): string => {
    const secs = (now() - start) / 1000;
    if (secs <= 0 || done === 0) return '';
    const r = done / secs;
    const eta = total > done ? ` eta ${formatSecs((total - done) / r)}` : '';
    return ` ${r >= 10 ? r.toFixed(0) : r.toFixed(1)}/s${eta}`;
  };
  const percent = (): number => (total > 0 ? Math.floor((100 * Math.min(done, total)) / total) : 100);

  const draw = (final: boolean): void => {
    const t = now();
    if (tty) {
      if (!final && t - lastDrawn < 100 && done < total) return;
      const filled = total > 0 ? Math.round((width * Math.min(done, total)) / total) : width;
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      stream.write(`\r${label} [${bar}] ${done}/${total} ${String(percent()).padStart(3)}%${final ? ` ${formatSecs((t - start) / 1000)}` : rate()}\x1b[K${final ? '\n' : ''}`);
      lastDrawn = t;
      return;
    }
    const p = percent();
    // the line for the last item is the final one
    const due = final || (done !== lastDone && done < total && (p >= lastPercent + everyPercent || t - lastDrawn >= everyMs));
    if (!due) return;
    stream.write(`${label}: ${done}/${total} (${p}%)${final ? ` done in ${formatSecs((t - start) / 1000)}` : rate()}\n`);
    lastDrawn = t;
    lastPercent = p - (p % everyPercent);
    lastDone = done;
  };

  return {
    update(d: number, tot?: number) {
      if (finished) return;
      done = d;
      if (tot !== undefined) total = tot;
      draw(false);
    },
    tick() {
      this.update(done + 1);
    },
    finish() {
      if (finished) return;
      finished = true;
      draw(true);
    },
    abort() {
      if (finished) return;
      finished = true;
      if (tty && lastDrawn > -Infinity) stream.write('\n');
    },
  };
}

function formatSecs(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}
