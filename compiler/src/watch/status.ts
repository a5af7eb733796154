/**
 * The watcher's output: one status line per model. On a terminal the lines form a board
 * redrawn in place (a model's line shows it running, then its result; full error lines scroll
 * above the board). Elsewhere (pipes, CI logs, Nx's task output) each result is one plain
 * line, `[mobilenet] verify ✓ 4.1s  compiler_parameters changed · ran compile, perf, verify`.
 */

export interface StatusStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export type ModelState = 'waiting' | 'running' | 'ok' | 'failed';

const MARK: Record<ModelState, string> = { waiting: '·', running: '…', ok: '✓', failed: '✗' };
const COLOUR: Record<ModelState, string> = { waiting: '2', running: '36', ok: '32', failed: '31' };

export interface StatusLine {
  state: ModelState;
  /** what the mark is about: a stage, `model.yaml`, `up to date` */
  label: string;
  text: string;
}

export class StatusBoard {
  private readonly tty: boolean;
  private readonly lines = new Map<string, StatusLine>();
  private drawn = 0;

  constructor(
    private readonly stream: StatusStream,
    names: readonly string[],
    opts: { tty?: boolean } = {},
  ) {
    this.tty = opts.tty ?? Boolean(stream.isTTY);
    for (const n of names) this.lines.set(n, { state: 'waiting', label: 'waiting', text: '' });
  }

  /** Whether lines are redrawn in place (a terminal). */
  get isTTY(): boolean {
    return this.tty;
  }

  /** A line above the board (header, full error text). */
  log(line: string): void {
    if (!this.tty) {
      this.stream.write(`${line}\n`);
      return;
    }
    this.erase();
    this.stream.write(`${line}\n`);
    this.draw();
  }

  /** A model's line while it runs: shown on a terminal only. */
  running(name: string, label: string, text: string): void {
    this.set(name, { state: 'running', label, text }, false);
  }

  /** A model's result: redrawn on a terminal, one plain line elsewhere. */
  result(name: string, ok: boolean, label: string, text: string): void {
    this.set(name, { state: ok ? 'ok' : 'failed', label, text }, true);
  }

  /** The plain text of a model's line: `[name] label ✓ text`. */
  static format(name: string, line: StatusLine): string {
    return `[${name}] ${line.label} ${MARK[line.state]}${line.text ? ` ${line.text}` : ''}`;
  }

  private set(name: string, line: StatusLine, final: boolean): void {
    this.lines.set(name, line);
    if (!this.tty) {
      if (final) this.stream.write(`${StatusBoard.format(name, line)}\n`);
      return;
    }
    this.erase();
    this.draw();
  }

  private erase(): void {
    if (this.drawn) this.stream.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    const width = Math.max(20, (this.stream.columns ?? 100) - 1);
    let out = '';
    for (const [name, line] of this.lines) {
      const plain = StatusBoard.format(name, line);
      const text = plain.length > width ? `${plain.slice(0, width - 1)}…` : plain;
      const head = name.length + line.label.length + 5; // `[name] label ✓`
      out += `\x1b[${COLOUR[line.state]}m${text.slice(0, head)}\x1b[0m${text.slice(head)}\n`;
    }
    this.stream.write(out);
    this.drawn = this.lines.size;
  }
}

/** `1.2s`, `850ms`, `2m05s` */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
