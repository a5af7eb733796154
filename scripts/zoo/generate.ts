import * as fs from 'fs';
import * as path from 'path';
import { fileSha256, modelInfo, sha256, writeZoo, zooFiles } from './zoo';

/**
 * Regenerates the example zoo's generated models and calibration sets, byte for byte:
 *   node -r @swc-node/register scripts/zoo/generate.ts [--out DIR] [--check] [--filter TEXT]
 * --out DIR   write under DIR instead of the repository root (DIR/models/…, DIR/calibration/…)
 * --check     write nothing: compare the files the generator would write with those under the
 *             root (or --out) and exit 1 when any differs or is missing
 * --filter    only the files whose path contains TEXT
 * Prints one JSON line per model (parameters, MACs) and a summary line.
 */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

async function main(argv: string[]): Promise<number> {
  let root = REPO_ROOT;
  let check = false;
  let filter: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') root = path.resolve(argv[++i] ?? '');
    else if (a === '--check') check = true;
    else if (a === '--filter') filter = argv[++i];
    else if (a === '-h' || a === '--help') return usage(0);
    else return usage(2, `unknown argument '${a}'`);
  }
  const keep = (p: string): boolean => filter === undefined || p.includes(filter);
  if (check) {
    let bad = 0;
    let n = 0;
    for (const f of zooFiles()) {
      if (!keep(f.path)) continue;
      n++;
      const file = path.join(root, f.path);
      const want = sha256(await f.make());
      const have = fs.existsSync(file) ? fileSha256(file) : undefined;
      if (have !== want) {
        bad++;
        console.log(`${have === undefined ? 'MISSING' : 'DIFFERS'} ${f.path}`);
      }
    }
    console.log(bad ? `ERROR ${bad} of ${n} file(s) differ from the generator's output` : `OK ${n} file(s) identical`);
    return bad ? 1 : 0;
  }
  const written = await writeZoo(root, keep);
  for (const m of modelInfo()) if (keep(`models/${m.project}/`)) console.log(JSON.stringify(m));
  const bytes = written.reduce((s, f) => s + f.bytes, 0);
  console.log(JSON.stringify({ root, files: written.length, bytes }));
  return 0;
}

function usage(code: number, msg?: string): number {
  if (msg) console.error(`ERROR ${msg}`);
  console.error('usage: generate.ts [--out DIR] [--check] [--filter TEXT]');
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`ERROR ${(e as Error).message}`);
    process.exitCode = 2;
  },
);
