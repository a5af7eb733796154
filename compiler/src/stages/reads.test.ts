/**
 * The file groups each stage reads (reads.ts) and the three places that follow them: the Nx
 * plugin's target inputs, the stage memo's key and the watcher's affected stages.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseConfig, PtqConfig } from '../config';
import { stageKeyParts } from '../store/key';
import { memoKey } from '../store/store';
import { affectedStages, FILE_READERS, stagesForFiles } from '../watch/affected';
import { buildTargets, TargetSettings } from '../../../plugins/nx-ptq/targets';
import { StageName, STAGE_NAMES, STAGE_UPSTREAM, stageOutputs } from './index';
import { FileGroup, fileGroups, FILE_GROUPS, readersOf, STAGE_READS, stagesReading, upstreamStages } from './reads';
import { READS_YAML } from './reads.test.util';

const ALL: FileGroup[] = ['model', 'calibration', 'customOp', 'verifyData'];

const YAML = READS_YAML;

/** The same model with verify's own samples (`nx-ptq.verify.data_dir`). */
const YAML_V = `${YAML}nx-ptq:
  verify:
    data_dir: '../../vdata'
`;

let root: string;
let modelDir: string;
const cfgOf = (text: string): PtqConfig => parseConfig(text, { dir: modelDir });
const sorted = <T>(xs: Iterable<T>): T[] => [...xs].sort();

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-reads-'));
  modelDir = path.join(root, 'models', 'm1');
  fs.mkdirSync(path.join(modelDir, 'ops'), { recursive: true });
  fs.mkdirSync(path.join(root, 'shared'));
  fs.mkdirSync(path.join(root, 'cal'));
  fs.writeFileSync(path.join(root, 'shared', 'net.onnx'), 'model bytes');
  fs.writeFileSync(path.join(root, 'cal', 'a.bin'), 'a');
  fs.writeFileSync(path.join(root, 'cal', 'b.bin'), 'b');
  fs.writeFileSync(path.join(modelDir, 'ops', 'my_op.py'), 'op');
  fs.mkdirSync(path.join(root, 'vdata', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'vdata', 'x.bin'), 'x');
  fs.writeFileSync(path.join(root, 'vdata', 'sub', 'y.bin'), 'y');
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the table', () => {
  it('names every stage, with known groups, each once', () => {
    expect(sorted(Object.keys(STAGE_READS))).toEqual(sorted(STAGE_NAMES));
    expect([...FILE_GROUPS]).toEqual(ALL);
    for (const s of STAGE_NAMES) {
      for (const g of STAGE_READS[s]) expect(ALL).toContain(g);
      expect(new Set(STAGE_READS[s]).size).toBe(STAGE_READS[s].length);
    }
  });

  it('upstreamStages: every stage before, each once, nearest first', () => {
    expect(upstreamStages('preprocess')).toEqual([]);
    expect(upstreamStages('check')).toEqual([]);
    expect(upstreamStages('calibrate')).toEqual(['preprocess', 'check']);
    expect(upstreamStages('verify')).toEqual(['compile', 'quantize', 'calibrate', 'preprocess', 'check']);
    for (const s of STAGE_NAMES) {
      const expected = new Set<StageName>();
      const visit = (t: StageName): void => STAGE_UPSTREAM[t].forEach((u) => (expected.add(u), visit(u)));
      visit(s);
      expect(sorted(upstreamStages(s))).toEqual(sorted(expected));
    }
  });

  it('fileGroups: what a stage reads itself plus what every stage before it reads, in FILE_GROUPS order', () => {
    expect([...fileGroups('preprocess')]).toEqual(['model', 'calibration']);
    expect([...fileGroups('check')]).toEqual(['model', 'customOp']);
    for (const s of ['calibrate', 'quantize', 'compile', 'perf'] as const) expect([...fileGroups(s)]).toEqual(['model', 'calibration', 'customOp']);
    expect([...fileGroups('verify')]).toEqual(ALL);
    for (const s of STAGE_NAMES) {
      const groups = fileGroups(s);
      expect([...groups]).toEqual(ALL.filter((g) => groups.has(g)));
      for (const g of STAGE_READS[s]) expect(groups.has(g)).toBe(true);
      // every stage reads at least what its upstream stages read
      for (const u of STAGE_UPSTREAM[s]) for (const g of fileGroups(u)) expect(groups.has(g)).toBe(true);
      for (const g of groups) expect([s, ...upstreamStages(s)].some((t) => STAGE_READS[t].includes(g))).toBe(true);
    }
  });

  it('readersOf / stagesReading: the readers, and the readers with everything downstream of them', () => {
    expect(readersOf('calibration')).toEqual(['preprocess']);
    expect(stagesReading('calibration')).toEqual(['preprocess', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(stagesReading('customOp')).toEqual(['check', 'calibrate', 'quantize', 'compile', 'perf', 'verify']);
    expect(stagesReading('model')).toEqual([...STAGE_NAMES]);
    expect(readersOf('verifyData')).toEqual(['verify']);
    expect(stagesReading('verifyData')).toEqual(['verify']);
    for (const g of ALL) for (const s of STAGE_NAMES) expect(stagesReading(g).includes(s)).toBe(fileGroups(s).has(g));
  });

  it('keeps what the three former tables meant (each closed over the upstream stages), plus verifyData for verify', () => {
    // plugins/nx-ptq/targets.ts STAGE_INFO.reads, store/key.ts READS, watch/affected.ts FILE_READERS before reads.ts;
    // verifyData was a special case of targets.ts only (the memo key and the watcher missed it)
    const targets: Partial<Record<StageName, FileGroup[]>> = { preprocess: ['model', 'calibration'], check: ['model', 'customOp'], verify: ['verifyData'] };
    const key: Partial<Record<StageName, FileGroup[]>> = { preprocess: ['model', 'calibration'], check: ['model', 'customOp'], verify: ['model'] };
    const watch: Record<FileGroup, StageName[]> = { model: ['preprocess', 'check', 'calibrate'], calibration: ['preprocess'], customOp: ['check', 'compile'], verifyData: [] };
    const closed = (own: (s: StageName) => FileGroup[], s: StageName): FileGroup[] => ALL.filter((g) => [s, ...upstreamStages(s)].some((t) => own(t).includes(g)));
    const fixed = (groups: FileGroup[], s: StageName): FileGroup[] => ALL.filter((g) => groups.includes(g) || (s === 'verify' && g === 'verifyData'));
    for (const s of STAGE_NAMES) {
      const now = [...fileGroups(s)];
      expect(closed((t) => targets[t] ?? [], s)).toEqual(now);
      expect(fixed(closed((t) => key[t] ?? [], s), s)).toEqual(now);
      expect(fixed(closed((t) => ALL.filter((g) => watch[g].includes(t)), s), s)).toEqual(now);
    }
  });
});

describe('the Nx plugin, the memo key and the watcher follow it', () => {
  const settings: TargetSettings = {
    names: Object.fromEntries(STAGE_NAMES.map((s) => [s, `ptq-${s}`])) as Record<StageName, string>,
    watchName: 'watch',
    ptq: './compiler/bin/ptq.js',
    executors: '@nx-ptq/executors',
    toolchain: 'toolchain',
  };
  /** The Nx inputs of each group for YAML_V (YAML: the same, without verifyData's). */
  const FILES: Record<FileGroup, string[]> = {
    model: ['{workspaceRoot}/shared/net.onnx'],
    calibration: ['{workspaceRoot}/cal/*'],
    customOp: ['{projectRoot}/ops/my_op.py'],
    verifyData: ['{workspaceRoot}/vdata/*'],
  };
  const env = { NX_PTQ_MEMO_TOOLCHAIN: 'reads-test' };

  it('target inputs: the toolchain, the files of fileGroups in order, the slice, upstream outputs when there are upstream stages', () => {
    for (const [yaml, files] of [
      [YAML_V, FILES],
      [YAML, { ...FILES, verifyData: [] }],
    ] as const) {
      const cfg = cfgOf(yaml);
      const targets = buildTargets({ root: 'models/m1', configFile: 'models/m1/model.yaml', workspaceRoot: root, cfg }, settings);
      for (const s of STAGE_NAMES) {
        const inputs = targets[settings.names[s]].inputs ?? [];
        expect(inputs[0]).toBe('toolchain');
        expect(inputs.slice(1).filter((i) => typeof i === 'string')).toEqual([...fileGroups(s)].flatMap((g) => files[g]));
        expect(inputs.some((i) => typeof i === 'object' && 'dependentTasksOutputFiles' in i)).toBe(upstreamStages(s).length > 0);
      }
    }
  });

  it('target inputs: verify alone also hashes nx-ptq.verify.data_dir, after its other files (as the former special case of targets.ts did)', () => {
    const cfg = cfgOf(YAML_V);
    const targets = buildTargets({ root: 'models/m1', configFile: 'models/m1/model.yaml', workspaceRoot: root, cfg }, settings);
    for (const s of STAGE_NAMES) {
      const files = (targets[settings.names[s]].inputs ?? []).slice(1).filter((i) => typeof i === 'string');
      const groups = (['model', 'calibration', 'customOp'] as const).filter((g) => fileGroups(s).has(g)).flatMap((g) => FILES[g]);
      expect(files).toEqual(s === 'verify' ? [...groups, '{workspaceRoot}/vdata/*'] : groups);
    }
  });

  it("memo key: a file edited inside verify's data_dir changes verify's key and no other stage's; a sub-folder's files are not read", () => {
    const cfg = cfgOf(YAML_V);
    const keys = (): Record<StageName, string> =>
      Object.fromEntries(
        STAGE_NAMES.map((s) => {
          const r = stageKeyParts(s, cfg, () => [], env);
          if (!r.ok) throw new Error(r.reason);
          return [s, memoKey(r.parts)];
        }),
      ) as Record<StageName, string>;
    const x = path.join(root, 'vdata', 'x.bin');
    const before = keys();
    try {
      fs.writeFileSync(x, 'x edited');
      const after = keys();
      expect(STAGE_NAMES.filter((s) => after[s] !== before[s])).toEqual(stagesReading('verifyData'));
      fs.writeFileSync(path.join(root, 'vdata', 'sub', 'y.bin'), 'y edited');
      expect(keys()).toEqual(after);
    } finally {
      fs.writeFileSync(x, 'x');
      fs.writeFileSync(path.join(root, 'vdata', 'sub', 'y.bin'), 'y');
    }
    expect(keys()).toEqual(before);
  });

  it('memo key: the file groups of fileGroups, then the outputs of upstreamStages in that order', () => {
    const cfg = cfgOf(YAML_V);
    const groupOf = (name: string): FileGroup | StageName => {
      if (name.startsWith('model:')) return 'model';
      if (name.startsWith('cal_data_dir[')) return 'calibration';
      if (name.startsWith('custom_op:')) return 'customOp';
      if (name.startsWith('verify_data_dir[')) return 'verifyData';
      return name.slice(0, name.indexOf(':')) as StageName;
    };
    const distinct = <T>(xs: T[]): T[] => xs.filter((x, i) => xs.indexOf(x) === i);
    for (const s of STAGE_NAMES) {
      const r = stageKeyParts(s, cfg, () => [], env);
      if (!r.ok) throw new Error(r.reason);
      expect(distinct(r.parts.inputs.map((i) => groupOf(i.name)))).toEqual([...fileGroups(s)]);
    }
    // with the upstream outputs in place
    for (const s of STAGE_NAMES) {
      for (const o of stageOutputs(s, cfg)) {
        const f = path.join(cfg.model.workingDir, o);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        if (!o.endsWith('/')) fs.writeFileSync(f, `${s} ${o}`);
      }
    }
    for (const s of STAGE_NAMES) {
      const r = stageKeyParts(s, cfg, (u) => stageOutputs(u, cfg), env);
      if (!r.ok) throw new Error(r.reason);
      expect(distinct(r.parts.inputs.map((i) => groupOf(i.name)))).toEqual([...fileGroups(s), ...upstreamStages(s).filter((u) => stageOutputs(u, cfg).length)]);
    }
  });

  it('watcher: FILE_READERS are the readers, and a group read by a stage (or its upstream) makes it affected', () => {
    for (const g of ALL) {
      expect(FILE_READERS[g]).toEqual(readersOf(g));
      expect(stagesForFiles([g])).toEqual(stagesReading(g));
      for (const s of STAGE_NAMES) expect(stagesForFiles([g]).includes(s)).toBe(fileGroups(s).has(g));
    }
    expect(sorted(Object.keys(FILE_READERS))).toEqual(sorted(ALL));
  });

  it('watcher: naming another file of a group in the YAML affects exactly the stages reading that group', () => {
    const edits: Record<FileGroup, [string, string]> = {
      model: ["onnx_model: '../../shared/net.onnx'", "onnx_model: '../../shared/net2.onnx'"],
      calibration: ["cal_data_dir: '../../cal'", "cal_data_dir: '../../cal2'"],
      customOp: ["op_register_files: 'my_op.py'", "op_register_files: 'my_op2.py'"],
      verifyData: ["data_dir: '../../vdata'", "data_dir: '../../vdata2'"],
    };
    for (const g of ALL) {
      const [from, to] = edits[g];
      expect(affectedStages(cfgOf(YAML_V), cfgOf(YAML_V.replace(from, to)))).toEqual(stagesReading(g));
    }
  });
});
