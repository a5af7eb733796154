import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BinFile, writeBinFile } from '../../src/compile/bin-format';
import { main } from '../../src/cli/main';
import { boundaryModel } from '../../src/tools/fixtures.test.util';

/** Helpers of the model-tool CLI tests: hand-built .bin files in a temp folder, and `ptq` run in-process. */

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A one-model .bin (the tools' boundary fixture) at `dir/name.bin`. */
export function writeFixtureBin(dir: string, name: string, march = 'bernoulli2'): string {
  const file = path.join(dir, `${name}.bin`);
  const bin: BinFile = { formatVersion: 1, packed: false, models: [boundaryModel(name, march)] };
  writeBinFile(file, bin);
  return file;
}

export interface InProcess {
  code: number;
  out: string[];
  err: string[];
}

/** `ptq <argv>` in this process (fast; the spawned binary is tested once per command). */
export async function ptq(argv: string[]): Promise<InProcess> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}
