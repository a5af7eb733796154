import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq model-verifier -q Q.onnx -b M.bin [-i INPUT]... [-d DIGITS]` (hb_model_verifier): runs
 * the quantized model (nx-ptq's engine), the .bin (host runtime) and onnxruntime on one input
 * and compares them pairwise to DIGITS decimals.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'quanti_model', alias: 'q', type: 'string', value: 'FILE', required: true, description: 'the quantized model (***_quantized_model.onnx)' },
  { name: 'bin_model', alias: 'b', type: 'string', value: 'FILE', required: true, description: 'the .bin model compiled from it' },
  { name: 'input-img', alias: 'i', type: 'list', value: 'FILE', description: 'input data, one per model input in order: an image (JPEG/PNG/BMP), a .npy, or raw .bin bytes (default: seeded random data)' },
  { name: 'compare_digits', alias: 'd', type: 'string', value: 'N', default: '5', description: 'decimals the results must agree to' },
  { name: 'model', alias: 'm', type: 'string', value: 'NAME', description: 'the model of a packed .bin' },
  { name: 'arm-board-ip', alias: 'a', type: 'string', value: 'IP', description: 'accepted for hb_model_verifier compatibility: nx-ptq has no board runtime' },
  { name: 'seed', type: 'string', value: 'TEXT', description: 'seed of the random input data (default: model-verifier)' },
];

export const command: Command = {
  summary: 'check that a .bin reproduces its quantized model (hb_model_verifier)',
  help: () =>
    [
      'Usage: ptq model-verifier -q QUANTI_MODEL -b BIN_MODEL [-i INPUT]... [-d DIGITS]',
      '',
      'Runs the quantized model in nx-ptq\'s engine ("Quanti onnx"), the .bin in the host runtime',
      '("Bin runtime") and the quantized model in onnxruntime ("Onnxruntime") on the same input and',
      'compares the results pairwise, every output, to DIGITS decimals. Prints',
      '"<A> and <B> result Strict check PASSED", or the mismatch counts (line_miss, line_diff,',
      'line_nan, total, mismatch rate). Onnxruntime may differ by one quantisation step (tolerated).',
      'Exit code 0 when everything agrees, 2 otherwise.',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const { options, positionals } = parseArgs(argv, OPTIONS, 'model-verifier');
    if (positionals.length) {
      throw new PtqError('E_CLI_ARGS', `model-verifier: unexpected argument '${positionals[0]}'`, { fix: 'usage: ptq model-verifier -q Q.onnx -b M.bin [-i INPUT] [-d DIGITS]' });
    }
    const digitsText = options.compare_digits as string;
    const digits = /^\d+$/.test(digitsText) ? Number(digitsText) : NaN;
    if (!Number.isInteger(digits) || digits > 20) {
      throw new PtqError('E_CLI_ARGS', `model-verifier: --compare_digits must be a whole number 0…20, got '${digitsText}'`, { fix: 'use e.g. -d 5' });
    }
    if (options['arm-board-ip']) io.err(`WARNING --arm-board-ip ${String(options['arm-board-ip'])}: nx-ptq has no board runtime; the .bin runs in the host runtime`);
    const { modelVerifier } = await import('../../verify/model-verifier');
    const { defaultBinEngine } = await import('../../verify/bin-runtime');
    await modelVerifier({
      quantizedFile: options.quanti_model as string,
      binFile: options.bin_model as string,
      modelName: options.model as string | undefined,
      inputs: (options['input-img'] as string[] | undefined) ?? [],
      digits,
      seed: options.seed as string | undefined,
      binEngine: defaultBinEngine(),
      out: (l) => io.out(l),
    });
    return 0;
  },
};
