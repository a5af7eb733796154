import { PtqError } from '../../errors';
import type { ModifierAction } from '../../tools/modifier';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq model-modifier BIN_FILE [-r NODE]... [-a TYPE]... [-o OUT]` (hb_model_modifier):
 * without -r/-a, lists the nodes that can be deleted (Transpose/Quantize at the inputs;
 * Transpose/Dequantize/Cast/Reshape/Softmax at the outputs). Otherwise deletes them one by one
 * in the order given on the command line and writes `<name>_modified.bin` (or OUT).
 */
const OPTIONS: OptionSpec[] = [
  { name: 'model_file', type: 'string', value: 'FILE', description: 'the .bin model (or give it as the first argument)' },
  { name: 'remove', alias: 'r', type: 'list', value: 'NODE', description: 'delete this node (repeat -r for several; deleted in order)' },
  { name: 'all', alias: 'a', type: 'list', value: 'TYPE', description: 'delete every deletable node of this type (Transpose, Quantize, Dequantize, Cast, Reshape, Softmax; repeatable)' },
  { name: 'output', alias: 'o', type: 'string', value: 'FILE', description: 'the modified model (default: <BIN_FILE without .bin>_modified.bin)' },
];

/** -r / -a occurrences in command-line order (parseArgs has checked the syntax). */
function actionsInOrder(argv: readonly string[]): ModifierAction[] {
  const out: ModifierAction[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') break;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const kind = flag === '-r' || flag === '--remove' ? 'remove' : flag === '-a' || flag === '--all' ? 'all' : undefined;
    const takesValue = kind !== undefined || flag === '-o' || flag === '--output' || flag === '--model_file';
    if (!takesValue) continue;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (!kind) continue;
    for (const v of value.split(',').filter((x) => x !== '')) out.push(kind === 'remove' ? { kind, name: v } : { kind, type: v });
  }
  return out;
}

export const command: Command = {
  summary: 'delete Quantize/Transpose/Dequantize/... nodes at the edges of a .bin model (hb_model_modifier)',
  help: () =>
    [
      'Usage: ptq model-modifier BIN_FILE [-r NODE]... [-a TYPE]... [-o OUT]',
      '',
      'Without -r or -a: prints the nodes that can be deleted now (Transpose and Quantize nodes at',
      'the model inputs; Transpose, Dequantize, Cast, Reshape and Softmax nodes at the outputs).',
      'With them: deletes the nodes one by one, in order (deleting one can make the next one',
      'deletable), and writes the modified model. The model input/output then takes/gives what the',
      'deleted node took/gave; the application does the rest itself — for a Quantize,',
      'qx = clamp(round(x / scale) + zero_point, -128, 127); for a Dequantize,',
      'deqx = (x - zero_point) * scale. ptq model-info prints the deleted nodes with their',
      'scale/zero_point/perm and writes them to deleted_nodes_info.txt. Packed models are not supported.',
      '',
      'Options:',
      formatOptions(OPTIONS),
    ].join('\n'),
  async run(argv, io: CliIO) {
    const { options, positionals } = parseArgs(argv, OPTIONS, 'model-modifier');
    const files = [...(options.model_file ? [options.model_file as string] : []), ...positionals];
    if (files.length !== 1) {
      throw new PtqError('E_CLI_ARGS', files.length ? `model-modifier: one BIN_FILE expected, got ${files.length}` : 'model-modifier: missing BIN_FILE', {
        fix: 'usage: ptq model-modifier model.bin [-r NODE]... [-a TYPE]... [-o OUT]',
      });
    }
    const file = files[0];
    const { readBinFile, writeBinFile } = await import('../../compile/bin-format');
    const { deletableLine, modifiedName, modifyBin, packedNotSupported } = await import('../../tools/modifier');
    const bin = readBinFile(file);
    if (bin.packed) throw packedNotSupported(file);
    const actions = actionsInOrder(argv);
    if (actions.length === 0) {
      io.out(deletableLine(bin.models[0]));
      return 0;
    }
    const { bin: modified, result } = modifyBin(bin, actions, file);
    for (const line of result.lines) {
      if (line.startsWith('WARNING')) io.err(line);
      else io.out(line);
    }
    const out = (options.output as string | undefined) ?? modifiedName(file);
    writeBinFile(out, modified);
    io.out(`modified model saved as ${out}`);
    return 0;
  },
};
