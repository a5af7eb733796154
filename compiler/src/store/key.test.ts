/**
 * The stage memo's key inputs (key.ts) for the file groups of stages/reads.ts, on real files:
 * in particular verify's own samples (`nx-ptq.verify.data_dir`), hashed for verify only.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseConfig, PtqConfig } from '../config';
import { StageName, STAGE_NAMES } from '../stages';
import { READS_YAML } from '../stages/reads.test.util';
import { stageKeyParts } from './key';
import { InputHash, memoKey } from './store';

const YAML = READS_YAML;

const withVerify = (block: string): string => `${YAML}nx-ptq:\n  verify:\n${block}`;
const env = { NX_PTQ_MEMO_TOOLCHAIN: 'key-test' };
const sha = (text: string): string => crypto.createHash('sha256').update(text).digest('hex');

let root: string;
let modelDir: string;
const cfgOf = (text: string): PtqConfig => parseConfig(text, { dir: modelDir });
const write = (rel: string, text: string): void => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
};

function inputsOf(stage: StageName, cfg: PtqConfig): InputHash[] {
  const r = stageKeyParts(stage, cfg, () => [], env);
  if (!r.ok) throw new Error(r.reason);
  return r.parts.inputs;
}

function keys(cfg: PtqConfig): Record<StageName, string> {
  return Object.fromEntries(
    STAGE_NAMES.map((s) => {
      const r = stageKeyParts(s, cfg, () => [], env);
      if (!r.ok) throw new Error(`${s}: ${r.reason}`);
      return [s, memoKey(r.parts)];
    }),
  ) as Record<StageName, string>;
}

const changed = (a: Record<StageName, string>, b: Record<StageName, string>): StageName[] => STAGE_NAMES.filter((s) => a[s] !== b[s]);

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-key-'));
  modelDir = path.join(root, 'models', 'm1');
  write('models/m1/ops/my_op.py', 'op');
  write('shared/net.onnx', 'model bytes');
  write('cal/a.bin', 'a');
  write('cal/b.bin', 'b');
  write('cal/sub/c.bin', 'c');
  write('vdata/x.bin', 'x');
  write('vdata/sub/y.bin', 'y');
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe("stageKeyParts: verify's own samples (nx-ptq.verify.data_dir)", () => {
  // verify's inputs before data_dir became a file group (computed with that code): unchanged without data_dir
  const VERIFY_INPUTS: InputHash[] = [
    { name: 'model:onnx_model', sha256: sha('model bytes') },
    { name: 'cal_data_dir[0]:a.bin', sha256: sha('a') },
    { name: 'cal_data_dir[0]:b.bin', sha256: sha('b') },
    { name: 'custom_op:my_op.py', sha256: sha('op') },
  ];

  it('without data_dir, verify hashes exactly what it hashed before (no verify_data_dir entry)', () => {
    expect(inputsOf('verify', cfgOf(YAML))).toEqual(VERIFY_INPUTS);
    // a verify block without data_dir neither
    expect(inputsOf('verify', cfgOf(withVerify('    samples: 3\n')))).toEqual(VERIFY_INPUTS);
  });

  it('with data_dir, verify also hashes the files directly inside it, named verify_data_dir[<i>]:<file>; no other stage does', () => {
    const plain = cfgOf(YAML);
    const cfg = cfgOf(withVerify("    data_dir: '../../vdata'\n"));
    expect(inputsOf('verify', cfg)).toEqual([...VERIFY_INPUTS, { name: 'verify_data_dir[0]:x.bin', sha256: sha('x') }]);
    for (const s of STAGE_NAMES) if (s !== 'verify') expect(inputsOf(s, cfg)).toEqual(inputsOf(s, plain));
    // the key of every other stage is the one without data_dir (its slice does not hold nx-ptq either)
    expect(changed(keys(plain), keys(cfg))).toEqual(['verify']);
  });

  it("editing, adding or removing a file inside data_dir changes verify's key and no other stage's; a sub-folder's files do not", () => {
    const cfg = cfgOf(withVerify("    data_dir: '../../vdata'\n"));
    const k0 = keys(cfg);
    write('vdata/x.bin', 'x, edited');
    const k1 = keys(cfg);
    expect(changed(k0, k1)).toEqual(['verify']);
    write('vdata/w.bin', 'w');
    const k2 = keys(cfg);
    expect(changed(k1, k2)).toEqual(['verify']);
    expect(inputsOf('verify', cfg).filter((i) => i.name.startsWith('verify_data_dir')).map((i) => i.name)).toEqual(['verify_data_dir[0]:w.bin', 'verify_data_dir[0]:x.bin']);
    write('vdata/sub/y.bin', 'y, edited');
    write('vdata/sub/z.bin', 'z');
    expect(keys(cfg)).toEqual(k2);
    fs.rmSync(path.join(root, 'vdata', 'w.bin'));
    write('vdata/x.bin', 'x');
    expect(keys(cfg)).toEqual(k0);
  });

  it('one folder per input: each listed under its own index', () => {
    write('vdata2/p.bin', 'p');
    const cfg = cfgOf(withVerify("    data_dir: '../../vdata; ../../vdata2'\n"));
    expect(inputsOf('verify', cfg).slice(VERIFY_INPUTS.length)).toEqual([
      { name: 'verify_data_dir[0]:x.bin', sha256: sha('x') },
      { name: 'verify_data_dir[1]:p.bin', sha256: sha('p') },
    ]);
  });

  it('a missing data_dir or an invalid nx-ptq.verify block: verify runs unmemoised (ok: false), the other stages keep their keys', () => {
    for (const block of ["    data_dir: '../../nowhere'\n", '    samples: 0\n']) {
      const cfg = cfgOf(withVerify(block));
      const r = stageKeyParts('verify', cfg, () => [], env);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(block.includes('nowhere') ? /^cannot list .*nowhere \(ENOENT\)$/ : /^nx-ptq\.verify is invalid \(.*samples/);
      for (const s of STAGE_NAMES) if (s !== 'verify') expect(stageKeyParts(s, cfg, () => [], env).ok).toBe(true);
    }
  });
});
