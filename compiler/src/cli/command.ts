/** Where a command writes: the process streams, or buffers in tests. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

/**
 * One `ptq` subcommand = one file in cli/commands/ exporting `command`. The file name is the
 * command name (`commands/exec.ts` → `ptq exec`). Keep the top of the file light (import heavy
 * modules inside `run`) so `ptq --help`, which loads every command, stays fast.
 */
export interface Command {
  /** one line for `ptq --help` */
  summary: string;
  /** full help text for `ptq <name> --help` */
  help(): string;
  /** Returns the exit code. PtqErrors thrown here become `ERROR …` lines and exit code 2. */
  run(argv: string[], io: CliIO): Promise<number>;
}
