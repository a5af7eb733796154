import * as fs from 'fs';
import * as path from 'path';
import { OpDef, registerOp } from './registry';

/**
 * Loads every operator module in this folder: a new operator is one file exporting
 * `ops: OpDef[]`. Files are loaded in name order so registration is deterministic.
 */
const SKIP = /(^index\.|^registry\.|\.test\.|\.d\.ts$|\.map$)/;
for (const f of fs.readdirSync(__dirname).sort()) {
  if (!/\.(ts|js)$/.test(f) || SKIP.test(f)) continue;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.join(__dirname, f)) as { ops?: OpDef[] };
  if (!Array.isArray(mod.ops)) throw new Error(`operator module ${f} does not export 'ops'`);
  for (const def of mod.ops) registerOp(def, f);
}
