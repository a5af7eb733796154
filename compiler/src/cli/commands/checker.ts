import * as path from 'path';
import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq checker`: hb_mapper checker. Checks that a float model can be converted for a march
 * and prints which nodes run on the BPU (Node  ON  Subgraph  Type), with the reasons for the
 * CPU ones. The log goes to `hb_mapper_checker.log` in the current folder, as the reference does.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'model-type', type: 'string', required: true, choices: ['onnx', 'caffe'], value: 'TYPE', description: 'onnx or caffe' },
  { name: 'march', type: 'string', required: true, choices: ['bernoulli2', 'bayes'], value: 'MARCH', description: 'bernoulli2 (RDK X3) or bayes (RDK Ultra)' },
  { name: 'model', type: 'string', required: true, value: 'FILE', description: 'the ONNX model (or the caffemodel with --proto)' },
  { name: 'proto', type: 'string', value: 'FILE', description: 'the Caffe prototxt (caffe only)' },
  { name: 'output', type: 'string', value: 'FILE', description: 'deprecated: the log always goes to hb_mapper_checker.log' },
];

export const command: Command = {
  summary: 'check that a float model can be converted and show its BPU/CPU placement (hb_mapper checker)',
  help: () =>
    [
      'Usage: ptq checker --model-type onnx|caffe --march bernoulli2|bayes --model M [--proto P] [--input-shape NAME SHAPE]...',
      '',
      'Options:',
      formatOptions(OPTIONS),
      '  --input-shape NAME SHAPE  fix the shape of input NAME, e.g. --input-shape data 1x3x224x224 (repeatable)',
    ].join('\n'),
  async run(argv, io: CliIO) {
    const { rest, shapes } = takeInputShapes(argv);
    const args = parseArgs(rest, OPTIONS, 'checker').options;
    if (args.output !== undefined) io.err('WARNING --output is deprecated; the log is written to hb_mapper_checker.log');
    const { checkModel } = await import('../../stages/check');
    const { formatCheckerTable, formatCpuReasons, formatCheckerLog } = await import('../../check');
    const { writeFileAtomic } = await import('../../onnx/encode');
    let model;
    if (args['model-type'] === 'caffe') {
      if (args.proto === undefined) {
        throw new PtqError('E_CLI_ARGS', 'checker: --model-type caffe needs --proto (the prototxt) besides --model (the caffemodel)', {
          subject: '--proto',
          fix: 'e.g. --model-type caffe --proto deploy.prototxt --model net.caffemodel',
        });
      }
      const { loadCaffeModel } = await import('../../caffe');
      model = loadCaffeModel(args.proto as string, args.model as string);
    } else {
      const { loadAndValidate } = await import('../../onnx/load');
      model = loadAndValidate(args.model as string);
    }
    const r = checkModel(model, { march: args.march as 'bernoulli2' | 'bayes', inputShapes: shapes });
    for (const n of r.notes) io.out(n);
    io.out(formatCheckerTable(r.placement));
    const reasons = formatCpuReasons(r.placement);
    if (reasons) io.out(reasons);
    writeFileAtomic(path.resolve('hb_mapper_checker.log'), `${[...r.notes, formatCheckerLog(r.placement)].join('\n')}\n`);
    return 0;
  },
};

/** `--input-shape NAME SHAPE` takes two values; pull those pairs out before the generic parser. */
function takeInputShapes(argv: readonly string[]): { rest: string[]; shapes: Record<string, number[]> } {
  const rest: string[] = [];
  const shapes: Record<string, number[]> = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '--input-shape') {
      rest.push(argv[i]);
      continue;
    }
    const name = argv[i + 1];
    const shape = argv[i + 2];
    if (name === undefined || shape === undefined || name.startsWith('--') || shape.startsWith('--')) {
      throw new PtqError('E_CLI_ARGS', 'checker: --input-shape needs a name and a shape', { fix: 'e.g. --input-shape data 1x3x224x224' });
    }
    const dims = shape.split('x').map((d) => Number(d));
    if (!dims.length || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new PtqError('E_CLI_ARGS', `checker: --input-shape ${name} ${shape}: the shape must be sizes joined by 'x'`, { fix: 'e.g. --input-shape data 1x3x224x224' });
    }
    shapes[name] = dims;
    i += 2;
  }
  return { rest, shapes };
}
