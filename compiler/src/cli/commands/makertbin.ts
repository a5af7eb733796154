import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq makertbin --config model.yaml --model-type onnx`: hb_mapper makertbin. Runs the
 * conversion stages in order (preprocess → check → calibrate → quantize → compile), writing
 * the reference's files into working_dir. `--fast-perf --model M --model-type T [--proto P]
 * --march X`: the reference's fast-perf mode (stages/fast-perf.ts), then the perf report.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'config', alias: 'c', type: 'string', value: 'FILE', description: 'the model YAML (hb_mapper format)' },
  { name: 'model-type', type: 'string', choices: ['onnx', 'caffe'], value: 'TYPE', description: 'onnx or caffe (default: from the YAML keys)' },
  { name: 'fast-perf', type: 'boolean', description: 'build the highest-performance .bin of --model without a YAML or data, and report its perf' },
  { name: 'model', type: 'string', value: 'FILE', description: 'fast-perf: the ONNX model or the Caffe caffemodel' },
  { name: 'proto', type: 'string', value: 'FILE', description: 'fast-perf: the Caffe prototxt' },
  { name: 'march', type: 'string', choices: ['bernoulli2', 'bayes'], value: 'MARCH', description: 'fast-perf: bernoulli2 (RDK X3) or bayes (RDK Ultra)' },
];

/** fast-perf deletes these boundary ops (the reference: Quantize/Dequantize, Transpose, Cast, Reshape). */
const FAST_PERF_DELETE = ['Quantize', 'Dequantize', 'Transpose', 'Cast', 'Reshape'];

export const command: Command = {
  summary: 'convert a float model as the YAML says (hb_mapper makertbin)',
  help: () =>
    [
      'Usage: ptq makertbin --config model.yaml [--model-type onnx|caffe]',
      '       ptq makertbin --fast-perf --model MODEL --model-type onnx|caffe [--proto PROTOTXT] --march bernoulli2|bayes',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const args = parseArgs(argv, OPTIONS, 'makertbin').options;
    if (args['fast-perf'] === true) return fastPerf(args, io);
    if (typeof args.config !== 'string') {
      throw new PtqError('E_CLI_ARGS', 'makertbin needs --config (the model YAML)', { fix: 'ptq makertbin --config model.yaml --model-type onnx, or --fast-perf --model M --march X' });
    }
    const { runStage, implementedStages, STAGE_NAMES } = await import('../../stages');
    const ctx = {
      configFile: args.config,
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

async function fastPerf(args: Record<string, unknown>, io: CliIO): Promise<number> {
  const need = (k: string, fix: string): string => {
    if (typeof args[k] !== 'string') throw new PtqError('E_CLI_ARGS', `--fast-perf needs --${k}`, { fix });
    return args[k] as string;
  };
  const model = need('model', 'add --model model.onnx (or the .caffemodel)');
  const modelType = need('model-type', 'add --model-type onnx or caffe') as 'onnx' | 'caffe';
  const march = need('march', 'add --march bernoulli2 (RDK X3) or bayes (RDK Ultra)') as 'bernoulli2' | 'bayes';
  const { writeFastPerfConfig } = await import('../../stages/fast-perf');
  const { runStage, stageOutputPaths } = await import('../../stages');
  const { loadConfig } = await import('../../config');
  const configFile = writeFastPerfConfig({ model, modelType, march, proto: args.proto as string | undefined });
  io.out(`INFO fast-perf: configuration written to ${configFile}`);
  const ctx = { configFile, modelType, log: (line: string) => io.out(line) };
  for (const stage of ['preprocess', 'check', 'calibrate', 'quantize', 'compile'] as const) {
    io.out(`INFO Start ${stage}`);
    await runStage(stage, ctx);
  }
  const binFile = stageOutputPaths('compile', loadConfig(configFile))[0];
  const { readBinFile, writeBinFile } = await import('../../compile/bin-format');
  const { deletableOps, modifyBin } = await import('../../tools');
  const compiled = readBinFile(binFile);
  const deletable = new Set(deletableOps(compiled.models[0]).map((b) => b.type));
  const actions = FAST_PERF_DELETE.filter((t) => deletable.has(t)).map((type) => ({ kind: 'all' as const, type }));
  if (actions.length > 0) {
    const { bin, result } = modifyBin(compiled, actions, binFile);
    for (const d of result.removed) io.out(`INFO fast-perf: deleted boundary node '${d.name}' (${d.opType})`);
    writeBinFile(binFile, bin);
  }
  io.out('INFO Convert to runtime bin file successfully!');
  io.out('INFO Start perf');
  await runStage('perf', ctx);
  io.out('INFO End Model Convert');
  return 0;
}

function prev(stage: string): string {
  const order = ['preprocess', 'check', 'calibrate', 'quantize', 'compile'];
  const i = order.indexOf(stage);
  if (i <= 0) throw new PtqError('E_STAGE', `no stage before ${stage}`);
  return order[i - 1];
}
