import { BIN_FORMAT_VERSION, BinFile } from '../compile/bin-format';
import { PtqError } from '../errors';

/**
 * `ptq pack` (hb_pack): several `.bin` models in one file (`packed`). The models are kept as
 * they are, in the order given; `ptq model-info -m NAME` and `ptq perf -m NAME` read one of them.
 * A packed file is never packed again (the reference's refusal), two models may not share a
 * name (it is how -m finds them), and all must target one march (one board runs the file).
 */

export interface PackInput {
  /** the file as the user named it (messages) */
  file: string;
  bin: BinFile;
}

export function packBins(inputs: readonly PackInput[]): BinFile {
  if (inputs.length < 2) {
    throw new PtqError('E_CLI_ARGS', `pack: ${inputs.length === 0 ? 'no model given' : 'one model given'}; packing needs at least two .bin files`, {
      fix: 'usage: ptq pack A.bin B.bin [...] -o C.bin',
    });
  }
  for (const { file, bin } of inputs) {
    if (bin.packed) {
      throw new PtqError('E_PACK_PACKED', `model: ${file} is a packed model, it can not be packed again!`, {
        subject: file,
        fix: 'pack the original (unpacked) .bin files together',
      });
    }
  }
  const owner = new Map<string, string>();
  for (const { file, bin } of inputs) {
    for (const m of bin.models) {
      const other = owner.get(m.name);
      if (other !== undefined) {
        throw new PtqError('E_PACK_NAME', `the models of '${other}' and '${file}' are both named '${m.name}'`, {
          subject: m.name,
          fix: 'give each model its own output_model_file_prefix and compile again (ptq model-info shows the names)',
        });
      }
      owner.set(m.name, file);
    }
  }
  const first = inputs[0];
  for (const { file, bin } of inputs) {
    for (const m of bin.models) {
      if (m.march !== first.bin.models[0].march) {
        throw new PtqError('E_PACK_MARCH', `'${file}' is compiled for march '${m.march}', '${first.file}' for '${first.bin.models[0].march}'`, {
          subject: file,
          fix: 'pack only models compiled for the same march',
        });
      }
    }
  }
  return { formatVersion: BIN_FORMAT_VERSION, packed: true, models: inputs.flatMap((x) => x.bin.models) };
}
