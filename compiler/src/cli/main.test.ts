import { PtqError } from '../errors';
import { formatOptions, parseArgs, OptionSpec } from './args';
import { CliIO } from './command';
import { commandNames, main, reportError, version } from './main';

function io(): CliIO & { outLines: string[]; errLines: string[] } {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return { outLines, errLines, out: (l) => outLines.push(l), err: (l) => errLines.push(l) };
}

describe('cli main', () => {
  it('maps a PtqError to one ERROR line and exit 2', () => {
    const o = io();
    expect(reportError(new PtqError('E_X', 'bad\nthing', { fix: 'do it' }), o)).toBe(2);
    expect(o.errLines).toEqual(['ERROR bad thing (fix: do it)']);
  });

  it('maps any other error to its stack and exit 1', () => {
    const o = io();
    const e = new TypeError('boom');
    expect(reportError(e, o)).toBe(1);
    expect(o.errLines[0]).toMatch(/^TypeError: boom\n\s+at /);
  });

  it('discovers commands from the commands folder, and prints the version', async () => {
    expect(commandNames()).toContain('exec');
    const o = io();
    expect(await main(['--version'], o)).toBe(0);
    expect(o.outLines).toEqual([version()]);
    expect(version()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('parseArgs', () => {
  const specs: OptionSpec[] = [
    { name: 'model-file', alias: 'm', type: 'string', required: true, description: 'model' },
    { name: 'input-file', type: 'list', description: 'inputs' },
    { name: 'engine', type: 'string', choices: ['a', 'b'], default: 'a', description: 'engine' },
    { name: 'verbose', type: 'boolean', description: 'talk' },
  ];

  it('reads values, =values, aliases, lists (comma-separated and repeated) and booleans', () => {
    const r = parseArgs(['-m', 'x.onnx', '--input-file=a.npy,b.npy', '--input-file', 'c.pb', '--verbose', 'pos', '--', '--not-a-flag'], specs, 'cmd');
    expect(r.options).toEqual({ 'model-file': 'x.onnx', 'input-file': ['a.npy', 'b.npy', 'c.pb'], verbose: true, engine: 'a' });
    expect(r.positionals).toEqual(['pos', '--not-a-flag']);
  });

  it.each([
    [['--model-file'], /'--model-file' needs a value/],
    [['--model-file', '--verbose'], /'--model-file' needs a value/],
    [['--model-file='], /'--model-file' needs a value/],
    [['-m', 'a', '-m', 'b'], /given twice/],
    [['-m', 'a', '--engine', 'c'], /one of a, b \(got 'c'\)/],
    [['-m', 'a', '--verbose=1'], /takes no value/],
    [['-m', 'a', '-x'], /unknown option '-x'/],
    [[], /missing required option '--model-file'/],
  ])('%j is a PtqError', (argv, text) => {
    expect(() => parseArgs(argv as string[], specs, 'cmd')).toThrow(PtqError);
    expect(() => parseArgs(argv as string[], specs, 'cmd')).toThrow(text);
  });

  it('formats an options table', () => {
    const t = formatOptions(specs);
    expect(t).toMatch(/-m, --model-file VALUE\s+model \(required\)/);
    expect(t).toMatch(/--input-file VALUE\[,\.\.\.\]/);
    expect(t).toMatch(/default: a/);
  });
});
