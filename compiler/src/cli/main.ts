import * as fs from 'fs';
import * as path from 'path';
import { isPtqError, PtqError } from '../errors';
import { CliIO, Command } from './command';

/**
 * The `ptq` command line: `ptq <command> [options]`. Each command is one file in
 * ./commands, found by name and loaded only when used (startup stays fast). PtqErrors
 * become one `ERROR …` line on stderr and exit code 2; anything else is a bug: stack, exit 1.
 */
const COMMANDS_DIR = path.join(__dirname, 'commands');
const COMMAND_FILE = /^([a-z][a-z0-9-]*)\.(ts|js)$/;

export const processIO: CliIO = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** The toolchain version (compiler/package.json). */
export function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function commandNames(): string[] {
  const names = new Set<string>();
  for (const f of fs.readdirSync(COMMANDS_DIR)) {
    const m = COMMAND_FILE.exec(f);
    if (m && !f.endsWith('.d.ts')) names.add(m[1]);
  }
  return [...names].sort();
}

export function loadCommand(name: string): Command | undefined {
  if (!commandNames().includes(name)) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- commands are discovered from the folder
  const mod = require(path.join(COMMANDS_DIR, name)) as { command?: Command };
  if (!mod.command) throw new Error(`cli/commands/${name} does not export 'command'`);
  return mod.command;
}

export function generalHelp(): string {
  const names = commandNames();
  const w = Math.max(...names.map((n) => n.length), 8) + 2;
  return [
    'Usage: ptq <command> [options]',
    '',
    'Post-training quantization of float CNN models (ONNX, Caffe) into int8 models for a BPU-style accelerator.',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(w)}${loadCommand(n)?.summary ?? ''}`),
    '',
    'Options:',
    '  -h, --help     show this help (ptq <command> --help for a command)',
    '  -V, --version  print the version',
  ].join('\n');
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
      io.out(generalHelp());
      return 0;
    }
    if (first === '--version' || first === '-V' || first === 'version') {
      io.out(version());
      return 0;
    }
    if (first === 'help') return await runCommand(rest[0], ['--help', ...rest.slice(1)], io);
    if (first.startsWith('-')) {
      throw new PtqError('E_CLI_ARGS', `unknown option '${first}'`, { fix: 'see `ptq --help`' });
    }
    return await runCommand(first, rest, io);
  } catch (e) {
    return reportError(e, io);
  }
}

async function runCommand(name: string, argv: string[], io: CliIO): Promise<number> {
  const cmd = loadCommand(name);
  if (!cmd) {
    throw new PtqError('E_CLI_COMMAND', `unknown command '${name}'`, { fix: `run \`ptq --help\` for the commands (${commandNames().join(', ')})` });
  }
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    io.out(cmd.help());
    return 0;
  }
  return cmd.run(argv, io);
}

/** PtqError → one line and exit 2; anything else → the stack and exit 1. */
export function reportError(e: unknown, io: CliIO): number {
  if (isPtqError(e)) {
    io.err(e.oneLine());
    return 2;
  }
  io.err(e instanceof Error ? (e.stack ?? String(e)) : `internal error: ${String(e)}`);
  return 1;
}
