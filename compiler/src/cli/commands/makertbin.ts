import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq makertbin --config model.yaml --model-type onnx`: hb_mapper makertbin. Runs the
 * conversion stages in order, writing the reference's files into working_dir, and stops with
 * a clear message at the first stage this version does not implement yet.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'config', alias: 'c', type: 'string', required: true, value: 'FILE', description: 'the model YAML (hb_mapper format)' },
  { name: 'model-type', type: 'string', choices: ['onnx', 'caffe'], value: 'TYPE', description: 'onnx or caffe (default: from the YAML keys)' },
];

export const command: Command = {
  summary: 'convert a float model as the YAML says (hb_mapper makertbin)',
  help: () => ['Usage: ptq makertbin --config model.yaml [--model-type onnx|caffe]', '', 'Options:', formatOptions(OPTIONS)].join('\n'),
  async run(argv, io: CliIO) {
    const args = parseArgs(argv, OPTIONS, 'makertbin').options;
    const { runStage, implementedStages, STAGE_NAMES } = await import('../../stages');
    const ctx = {
      configFile: args.config as string,
      modelType: args['model-type'] as 'onnx' | 'caffe' | undefined,
      log: (line: string) => io.out(line),
    };
    const available = new Set(implementedStages());
    for (const stage of STAGE_NAMES) {
      if (stage === 'perf' || stage === 'verify') continue; // separate tools (ptq perf, the verify target)
      if (!available.has(stage)) {
        io.out(`INFO the ${stage} stage is not implemented in this version of nx-ptq: stopping after ${prev(stage)}`);
        return 0;
      }
      io.out(`INFO Start ${stage}`);
      await runStage(stage, ctx);
    }
    io.out('INFO Convert to runtime bin file successfully!');
    io.out('INFO End Model Convert');
    return 0;
  },
};

function prev(stage: string): string {
  const order = ['preprocess', 'check', 'calibrate', 'quantize', 'compile'];
  const i = order.indexOf(stage);
  if (i <= 0) throw new PtqError('E_STAGE', `no stage before ${stage}`);
  return order[i - 1];
}
