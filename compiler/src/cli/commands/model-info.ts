import * as path from 'path';
import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq model-info [OPTIONS] BIN_FILE` (hb_model_info): the dependencies and compile-time
 * parameters of a `.bin`, its input/output types and deleted nodes (also written to
 * deleted_nodes_info.txt, one line per node). A packed file: every model, or `-m NAME`.
 */
const OPTIONS: OptionSpec[] = [
  { name: 'model', alias: 'm', type: 'string', value: 'NAME', description: 'with a packed BIN_FILE, print only this model (default: every model)' },
  { name: 'output-dir', alias: 'o', type: 'string', value: 'DIR', description: 'where deleted_nodes_info.txt goes (default: the current directory)' },
  { name: 'version', type: 'boolean', description: 'print the version and exit' },
];

export const command: Command = {
  summary: 'print the dependencies and compile parameters of a .bin model (hb_model_info)',
  help: () =>
    [
      'Usage: ptq model-info [OPTIONS] BIN_FILE',
      '',
      'Prints the model deps info, model_parameters, input_parameters (one block per input),',
      'calibration_parameters and compiler_parameters the .bin was compiled with, its input and',
      'output types and the nodes deleted from it (remove_node_type/remove_node_name or',
      'ptq model-modifier). Deleted nodes are also written to deleted_nodes_info.txt, one line each.',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const { options, positionals } = parseArgs(argv, OPTIONS, 'model-info');
    const { version } = await import('../main');
    if (options.version) {
      io.out(version());
      return 0;
    }
    if (positionals.length !== 1) {
      throw new PtqError('E_CLI_ARGS', positionals.length ? `model-info: one BIN_FILE expected, got ${positionals.length}` : 'model-info: missing BIN_FILE', {
        fix: 'usage: ptq model-info [-m NAME] model.bin',
      });
    }
    const file = positionals[0];
    const { readBinFile } = await import('../../compile/bin-format');
    const { modelInfoReport, writeDeletedNodesInfo } = await import('../../tools/model-info');
    const report = modelInfoReport(readBinFile(file), options.model as string | undefined, file, version());
    for (const line of report.lines) io.out(line);
    if (report.deleted.length) {
      const dir = (options['output-dir'] as string | undefined) ?? process.cwd();
      const written = writeDeletedNodesInfo(dir, report.deleted);
      io.out(`INFO deleted nodes info saved as ${path.relative(process.cwd(), written) || written}`);
    }
    return 0;
  },
};
