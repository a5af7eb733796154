import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vm from 'vm';
import { KeyParts, Manifest, MemoStore, memoKey } from './store';
import { detachOutputs, memoEnabled, storeDir } from './memo';
import { sourceFingerprint, toolchainId } from './toolchain';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-store-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const sha = (b: string | Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

function parts(over: Partial<KeyParts> = {}): KeyParts {
  return {
    stage: 'calibrate',
    toolchain: '0.1.0',
    slice: { march: 'bernoulli2', calibration_type: 'max' },
    inputs: [
      { name: 'model:onnx_model', sha256: sha('model') },
      { name: 'check:m_optimized_float_model.onnx', sha256: sha('opt') },
    ],
    outputs: ['m_calibrated_model.onnx', 'calibration_data'],
    ...over,
  };
}

/** A working dir holding the outputs of `parts()`: a file and a folder with an empty sub-folder. */
function writeOutputs(dir: string, seed = 'a'): void {
  fs.mkdirSync(path.join(dir, 'calibration_data', 'data'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'calibration_data', 'empty'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'm_calibrated_model.onnx'), `calibrated ${seed}`);
  fs.writeFileSync(path.join(dir, 'calibration_data', 'data', '0.npy'), Buffer.from([1, 2, 3, seed.charCodeAt(0)]));
  fs.writeFileSync(path.join(dir, 'calibration_data', 'data', '1.npy'), Buffer.alloc(5000, 7));
}

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out[`${r}/`] = 'dir';
        walk(r);
      } else out[r] = sha(fs.readFileSync(path.join(dir, r)));
    }
  };
  walk('');
  return out;
}

describe('memoKey', () => {
  it('depends on every part, not on the order of the inputs', () => {
    const k = memoKey(parts());
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(memoKey(parts({ inputs: [...parts().inputs].reverse() }))).toBe(k);
    expect(memoKey(parts({ stage: 'quantize' }))).not.toBe(k);
    expect(memoKey(parts({ toolchain: '0.1.1' }))).not.toBe(k);
    expect(memoKey(parts({ slice: { march: 'bernoulli2', calibration_type: 'kl' } }))).not.toBe(k);
    // key order inside the slice does not matter (canonical JSON)
    expect(memoKey(parts({ slice: { calibration_type: 'max', march: 'bernoulli2' } }))).toBe(k);
    expect(memoKey(parts({ inputs: [{ name: 'model:onnx_model', sha256: sha('model2') }, parts().inputs[1]] }))).not.toBe(k);
    expect(memoKey(parts({ outputs: ['n_calibrated_model.onnx', 'calibration_data'] }))).not.toBe(k);
  });
});

describe('MemoStore', () => {
  it('save then lookup: a verified hit that restores byte-identical outputs, empty folders included', () => {
    const store = new MemoStore(path.join(root, 'store'));
    const work = path.join(root, 'work');
    writeOutputs(work);
    const before = tree(work);
    const key = memoKey(parts());
    expect(store.lookup(key)).toEqual({ status: 'miss' });
    const m = store.save(key, parts(), work, { lines: ['INFO line 1', 'INFO line 2'], model: 'm1' });
    expect(m.files.map((f) => f.path)).toEqual(['calibration_data/data/0.npy', 'calibration_data/data/1.npy', 'm_calibrated_model.onnx']);
    expect(m.dirs).toEqual(['calibration_data', 'calibration_data/data', 'calibration_data/empty']);
    expect(fs.readdirSync(path.join(root, 'store', 'tmp'))).toEqual([]);

    const found = store.lookup(key);
    expect(found.status).toBe('hit');
    const manifest = (found as { manifest: Manifest }).manifest;
    expect(manifest.lines).toEqual(['INFO line 1', 'INFO line 2']);

    const other = path.join(root, 'other');
    // stale files in the way are replaced; unrelated files stay
    fs.mkdirSync(path.join(other, 'calibration_data', 'stale'), { recursive: true });
    fs.writeFileSync(path.join(other, 'keep.txt'), 'mine');
    const restored = store.restore(manifest, other);
    expect(restored).toEqual([path.join(other, 'm_calibrated_model.onnx'), path.join(other, 'calibration_data')]);
    expect(tree(other)).toEqual({ ...before, 'keep.txt': sha('mine') });
    expect(fs.readdirSync(other).filter((n) => n.startsWith('.nx-ptq'))).toEqual([]);
  });

  it('a second save of the same key (another process got there first) keeps one entry', () => {
    const store = new MemoStore(path.join(root, 'store'));
    const work = path.join(root, 'work');
    writeOutputs(work);
    const key = memoKey(parts());
    store.save(key, parts(), work, { lines: [] });
    store.save(key, parts(), work, { lines: [] });
    expect(store.list()).toHaveLength(1);
    expect(store.lookup(key).status).toBe('hit');
    expect(fs.readdirSync(path.join(root, 'store', 'tmp'))).toEqual([]);
  });

  it('refuses to store when an output is missing, leaving nothing behind', () => {
    const store = new MemoStore(path.join(root, 'store'));
    const work = path.join(root, 'work');
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, 'm_calibrated_model.onnx'), 'x');
    expect(() => store.save(memoKey(parts()), parts(), work, { lines: [] })).toThrow(/did not write calibration_data/);
    expect(store.list()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'store', 'tmp'))).toEqual([]);
  });

  describe('corruption is detected on read', () => {
    const cases: [string, (entry: string) => void, RegExp][] = [
      ['a flipped byte', (e) => fs.writeFileSync(path.join(e, 'files', 'calibration_data', 'data', '1.npy'), Buffer.alloc(5000, 8)), /1\.npy does not match its sha256/],
      ['a truncated file', (e) => fs.truncateSync(path.join(e, 'files', 'm_calibrated_model.onnx'), 3), /has 3 bytes, the manifest says/],
      ['a missing file', (e) => fs.rmSync(path.join(e, 'files', 'calibration_data', 'data', '0.npy')), /missing file calibration_data\/data\/0\.npy/],
      ['an extra file', (e) => fs.writeFileSync(path.join(e, 'files', 'calibration_data', 'x.npy'), 'x'), /unexpected file calibration_data\/x\.npy/],
      ['a missing empty folder', (e) => fs.rmdirSync(path.join(e, 'files', 'calibration_data', 'empty')), /missing file calibration_data\/empty/],
      ['a manifest that is not JSON', (e) => fs.writeFileSync(path.join(e, 'manifest.json'), '{"format": 1,'), /not valid JSON/],
      ['a missing manifest', (e) => fs.rmSync(path.join(e, 'manifest.json')), /cannot read manifest\.json/],
      [
        'a manifest edited consistently except its integrity',
        (e) => {
          const m = JSON.parse(fs.readFileSync(path.join(e, 'manifest.json'), 'utf8')) as Manifest;
          m.lines = ['forged'];
          fs.writeFileSync(path.join(e, 'manifest.json'), JSON.stringify(m));
        },
        /integrity/,
      ],
      [
        'a manifest moved under another key',
        (e) => {
          const m = JSON.parse(fs.readFileSync(path.join(e, 'manifest.json'), 'utf8')) as Manifest;
          m.slice = { march: 'bayes' };
          fs.writeFileSync(path.join(e, 'manifest.json'), JSON.stringify(m));
        },
        /does not hash to its key/,
      ],
    ];
    it.each(cases)('%s', (_name, damage, reason) => {
      const store = new MemoStore(path.join(root, 'store'));
      const work = path.join(root, 'work');
      writeOutputs(work);
      const key = memoKey(parts());
      store.save(key, parts(), work, { lines: [] });
      damage(store.entryDir(key));
      const found = store.lookup(key);
      expect(found.status).toBe('corrupt');
      expect((found as { reason: string }).reason).toMatch(reason);
      store.discard(key);
      expect(store.lookup(key)).toEqual({ status: 'miss' });
      expect(fs.existsSync(store.entryDir(key))).toBe(false);
    });

    it('a manifest naming a path outside the working dir', () => {
      const store = new MemoStore(path.join(root, 'store'));
      const work = path.join(root, 'work');
      writeOutputs(work);
      const evil = parts({ outputs: ['../escape'] });
      const key = memoKey(evil);
      const entry = store.entryDir(key);
      fs.mkdirSync(path.join(entry, 'files'), { recursive: true });
      const m = { format: 1, key, ...evil, files: [], dirs: [], lines: [], integrity: '' };
      fs.writeFileSync(path.join(entry, 'manifest.json'), JSON.stringify(m));
      expect(store.lookup(key).status).toBe('corrupt');
    });
  });

  it('restored files are hard links to the store; detachOutputs gives them their own inode before a rewrite', () => {
    const store = new MemoStore(path.join(root, 'store'));
    const work = path.join(root, 'work');
    writeOutputs(work);
    const key = memoKey(parts());
    store.save(key, parts(), work, { lines: [] });
    const other = path.join(root, 'other');
    store.restore((store.lookup(key) as { manifest: Manifest }).manifest, other);
    const f = path.join(other, 'calibration_data', 'data', '1.npy');
    expect(fs.statSync(f).nlink).toBeGreaterThan(1);
    detachOutputs([path.join(other, 'calibration_data'), path.join(other, 'm_calibrated_model.onnx'), path.join(other, 'absent')]);
    expect(fs.statSync(f).nlink).toBe(1);
    fs.writeFileSync(f, 'rewritten in place');
    expect(store.lookup(key).status).toBe('hit');
  });

  it('prune: abandoned writes, broken entries, --older-than, then least recently used down to --max-size', () => {
    const store = new MemoStore(path.join(root, 'store'));
    const work = path.join(root, 'work');
    writeOutputs(work);
    const DAY = 24 * 3600 * 1000;
    const now = Date.now();
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = parts({ toolchain: `v${i}` });
      const k = memoKey(p);
      keys.push(k);
      store.save(k, p, work, { lines: [], model: `m${i}` });
      // entry i last used i days ago... from the oldest: k0 used 40 days ago, k1 20, k2 2, k3 1
      const t = new Date(now - [40, 20, 2, 1][i] * DAY);
      fs.utimesSync(path.join(store.entryDir(k), 'manifest.json'), t, t);
    }
    const entrySize = store.list()[0].size;
    expect(entrySize).toBeGreaterThan(5000);
    expect(store.list().map((e) => e.key)).toEqual(keys);
    // a broken entry and an abandoned write
    fs.mkdirSync(path.join(root, 'store', 'entries', 'zz', 'zz-broken'), { recursive: true });
    const stale = path.join(root, 'store', 'tmp', 'abandoned');
    fs.mkdirSync(stale, { recursive: true });
    fs.utimesSync(stale, new Date(now - 2 * 3600 * 1000), new Date(now - 2 * 3600 * 1000));
    const fresh = path.join(root, 'store', 'tmp', 'in-progress');
    fs.mkdirSync(fresh);
    fs.utimesSync(fresh, new Date(now - 60 * 1000), new Date(now - 60 * 1000));

    let r = store.prune({ olderThanDays: 30, now });
    expect(r.removed).toBe(2); // k0 (40 days) and the broken entry
    expect(r.kept).toBe(3);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(fresh)).toBe(true);
    expect(fs.existsSync(path.join(root, 'store', 'entries', 'zz'))).toBe(false);
    expect(store.lookup(keys[0])).toEqual({ status: 'miss' });

    // a hit refreshes the last use: k1 becomes the most recent
    store.touch(keys[1]);
    r = store.prune({ maxSize: Math.floor(entrySize * 1.5) });
    expect(r.removed).toBe(2);
    expect(r.kept).toBe(1);
    expect(r.size).toBe(entrySize);
    expect(store.list().map((e) => e.key)).toEqual([keys[1]]);

    r = store.prune({ all: true });
    expect(r).toMatchObject({ removed: 1, kept: 0, size: 0 });
    expect(store.list()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'store', 'tmp'))).toEqual([]);
  });
});

describe('settings', () => {
  it('storeDir: NX_PTQ_STORE, else the nearest workspace with an nx.json, else the cwd', () => {
    const ws = path.join(root, 'ws');
    fs.mkdirSync(path.join(ws, 'models', 'm1'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'nx.json'), '{}');
    expect(storeDir(path.join(ws, 'models', 'm1'), {}, '/elsewhere')).toBe(path.join(ws, '.nx-ptq', 'store'));
    expect(storeDir(path.join(ws, 'models', 'm1'), { NX_PTQ_STORE: 'rel/store' }, '/here')).toBe(path.resolve('/here', 'rel/store'));
    const loose = path.join(root, 'loose');
    fs.mkdirSync(loose);
    expect(storeDir(loose, {}, loose)).toBe(path.join(loose, '.nx-ptq', 'store'));
    expect(storeDir(loose, {}, path.join(ws, 'models'))).toBe(path.join(ws, '.nx-ptq', 'store'));
  });

  it('memoEnabled: on by default, off with NX_PTQ_NO_MEMO (whatever else is set)', () => {
    expect(memoEnabled({})).toBe(true);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: '1' })).toBe(false);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: 'true' })).toBe(false);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: 'yes' })).toBe(false);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: '0' })).toBe(true);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: 'FALSE' })).toBe(true);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: '' })).toBe(true);
    expect(memoEnabled({ NX_PTQ_NO_MEMO: '1', NX_PTQ_STORE: '/s' })).toBe(false);
    // the product does not know about test runners: jest.setup.js turns the memo off instead
    expect(memoEnabled({ JEST_WORKER_ID: '1' })).toBe(true);
  });

  it('jest.setup.js: memo off under jest unless a store is named; an explicit NX_PTQ_NO_MEMO wins', () => {
    const setup = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'jest.setup.js'), 'utf8');
    const after = (env: Record<string, string>): Record<string, string> => {
      const proc = { env: { ...env } };
      vm.runInNewContext(setup, { process: proc });
      return proc.env;
    };
    expect(after({})).toEqual({ NX_PTQ_NO_MEMO: '1' });
    expect(memoEnabled(after({}))).toBe(false);
    expect(after({ NX_PTQ_STORE: '/s' })).toEqual({ NX_PTQ_STORE: '/s' });
    expect(memoEnabled(after({ NX_PTQ_STORE: '/s' }))).toBe(true);
    expect(after({ NX_PTQ_NO_MEMO: '0' })).toEqual({ NX_PTQ_NO_MEMO: '0' });
  });
});

describe('toolchain id', () => {
  it('changes with a source, proto or package.json edit, not with tests, snapshots or docs', () => {
    const pkg = path.join(root, 'compiler');
    const w = (rel: string, text: string): void => {
      fs.mkdirSync(path.dirname(path.join(pkg, rel)), { recursive: true });
      fs.writeFileSync(path.join(pkg, rel), text);
    };
    w('package.json', '{"name":"@nx-ptq/compiler","version":"0.1.0"}');
    w('src/stages/index.ts', 'export {};');
    w('src/ops/conv.ts', 'export const a = 1;');
    w('proto/bin.proto', 'syntax = "proto3";');
    const base = sourceFingerprint(pkg);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    w('src/ops/conv.test.ts', 'it("x", () => {});');
    w('src/ops/conv.test.util.ts', 'export {};');
    w('src/ops/__snapshots__/conv.test.ts.snap', 'x');
    w('src/custom/README.md', '# docs');
    expect(sourceFingerprint(pkg)).toBe(base);
    for (const [rel, text] of [['src/ops/conv.ts', 'export const a = 2;'], ['proto/bin.proto', 'syntax = "proto2";'], ['package.json', '{"name":"@nx-ptq/compiler","version":"0.1.1"}']]) {
      const old = fs.readFileSync(path.join(pkg, rel), 'utf8');
      w(rel, text);
      expect([rel, sourceFingerprint(pkg)]).not.toEqual([rel, base]);
      w(rel, old);
      expect(sourceFingerprint(pkg)).toBe(base);
    }
  });

  it('this checkout: version + source fingerprint; NX_PTQ_MEMO_TOOLCHAIN replaces it', () => {
    expect(toolchainId({})).toMatch(/^\d+\.\d+\.\d+\+src\.[0-9a-f]{12}$/);
    expect(toolchainId({ NX_PTQ_MEMO_TOOLCHAIN: 'pinned' })).toBe('pinned');
  });
});
