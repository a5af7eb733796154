import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq pack [OPTIONS] BIN_FILE1 BIN_FILE2 ... -o comb.bin` (hb_pack): several `.bin` models in
 * one file; `ptq model-info -m NAME` and `ptq perf -m NAME` read one model of it. A packed file
 * cannot be packed again.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'output_name', alias: 'o', type: 'string', value: 'FILE', required: true, description: 'the packed model file to write' },
  { name: 'version', type: 'boolean', description: 'print the version and exit' },
];

export const command: Command = {
  summary: 'pack several .bin models into one file (hb_pack)',
  help: () =>
    [
      'Usage: ptq pack [OPTIONS] BIN_FILE1 BIN_FILE2 [BIN_FILE3 ...] -o comb.bin',
      '',
      'Writes one .bin holding every model given, in order. The models keep their names',
      '(output_model_file_prefix), which must differ, and must share one march. ptq model-info',
      'and ptq perf read a model of the packed file with -m NAME. A packed file cannot be packed again.',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    if (argv.includes('--version')) {
      const { version } = await import('../main');
      io.out(version());
      return 0;
    }
    const { options, positionals } = parseArgs(argv, OPTIONS, 'pack');
    if (positionals.length < 2) {
      throw new PtqError('E_CLI_ARGS', `pack: ${positionals.length === 0 ? 'no BIN_FILE given' : 'one BIN_FILE given'}; packing needs at least two`, {
        fix: 'usage: ptq pack A.bin B.bin [...] -o comb.bin',
      });
    }
    const out = options.output_name as string;
    const { readBinFile, writeBinFile } = await import('../../compile/bin-format');
    const { packBins } = await import('../../tools/pack');
    const packed = packBins(positionals.map((file) => ({ file, bin: readBinFile(file) })));
    writeBinFile(out, packed);
    io.out(`INFO packed ${packed.models.length} models (${packed.models.map((m) => m.name).join(', ')}) into ${out}`);
    return 0;
  },
};
