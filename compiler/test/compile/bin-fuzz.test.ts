/**
 * Fuzzing the `.bin` reader and the tools that read a `.bin`: 1000 mutations (fixed seed) of
 * valid files — byte flips, truncations, insertions, and field-level mutations made on the
 * decoded protobuf message and encoded again (names made empty, repeated or dangling, dims and
 * element types out of range, constants' bytes cut or grown, list entries dropped or
 * repeated, enums and versions out of range, ...). Each case must either decode and then go
 * through everything a tool does with a model (model-info, the modifier's listing and
 * deletions, encoding it again, loading it in the host runtime, one run, its deleted-node
 * records applied), or fail with a PtqError; never another exception, never a hang (each case
 * is timed). The bases: hand-built models (one, and a packed pair) and compiled ones
 * (featuremap, nv12, a model-modifier output). A second test edits every op of the compiled
 * models systematically. Other seeds: FUZZ_SEED=<n>; the refusal messages: FUZZ_MESSAGES=1.
 */
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { BinFile, BinModel, decodeBin, encodeBin } from '../../src/compile/bin-format';
import { isPtqError } from '../../src/errors';
import { Tensor } from '../../src/onnx/tensor';
import { Rng } from '../../src/kernels/random';
import { boundaryModel } from '../../src/tools/fixtures.test.util';
import { modelInfoReport } from '../../src/tools/model-info';
import { deletableNames, modifyModel } from '../../src/tools/modifier';
import { DELETABLE_TYPES } from '../../src/tools/boundary';
import { fromBinOutputs } from '../../src/verify/feeds';
import { compiledFixture } from '../../src/verify/fixtures.test.util';
import { BinEngine } from '../../src/runtime/bin-engine';

jest.setTimeout(120_000);

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20240611;
const PER_KIND = 250;
/** a case slower than this is a failure (the machine is shared: generous) */
const CASE_LIMIT_MS = 3000;

const root = protobuf.loadSync(path.join(__dirname, '..', '..', 'proto', 'bin.proto'));
const BinFileType = root.lookupType('nxptq.bin.BinFile');

/* eslint-disable @typescript-eslint/no-explicit-any -- protobuf plain objects */
type Obj = Record<string, any>;

function bases(hooks: RuntimeHooks): { name: string; bytes: Uint8Array }[] {
  const one = (m: BinModel): BinFile => ({ formatVersion: 1, packed: false, models: [m] });
  const out = [
    { name: 'boundary', bytes: encodeBin(one(boundaryModel())) },
    { name: 'packed', bytes: encodeBin({ formatVersion: 1, packed: true, models: [boundaryModel('a'), boundaryModel('b')] }) },
  ];
  for (const b of hooks.compiledBins()) out.push(b);
  // plain Uint8Arrays: Buffer#slice would be a view, and a mutation would change the base
  return out.map((b) => ({ name: b.name, bytes: new Uint8Array(b.bytes) }));
}

// ------------------------------------------------------------------ the host runtime

interface RuntimeHooks {
  /** compiled .bin files to mutate besides the hand-built ones */
  compiledBins(): { name: string; bytes: Uint8Array }[];
  /** load a model of a decoded file in the runtime, run it once on zero inputs, apply its deleted-node records */
  loadAndRun(bin: BinFile, m: BinModel): Promise<void>;
}

function loadRuntime(): RuntimeHooks {
  return {
    compiledBins: () => {
      const fm = compiledFixture('featuremap').bin;
      // a model-modifier output too: its deleted-node records get mutated and applied
      const modified = modifyModel(fm, DELETABLE_TYPES.map((type) => ({ kind: 'all' as const, type })), 'fm.bin').model;
      return [
        { name: 'compiled-featuremap', bytes: encodeBin({ formatVersion: 1, packed: false, models: [fm] }) },
        { name: 'compiled-nv12', bytes: encodeBin({ formatVersion: 1, packed: false, models: [compiledFixture('nv12').bin] }) },
        { name: 'compiled-modified', bytes: encodeBin({ formatVersion: 1, packed: false, models: [modified] }) },
      ];
    },
    async loadAndRun(_bin, m) {
      const engine = new BinEngine(m, { source: 'fuzz.bin' });
      const feeds: Record<string, Tensor> = {};
      for (const io of m.inputs) {
        const n = io.shape.reduce((a, b) => a * b, 1);
        if (n > 1 << 24) return; // loading such a model is the test; 16M+ zeros of feed are not
        feeds[io.name] = new Tensor(io.dtype, io.shape);
      }
      // the outputs as the application turns them back into the original model's (deleted nodes applied)
      fromBinOutputs(await engine.run(feeds), m);
    },
  };
}

// ------------------------------------------------------------------ byte-level mutations

function flip(rng: Rng, b: Uint8Array): Uint8Array {
  const out = b.slice();
  const n = 1 + rng.int(8);
  for (let k = 0; k < n; k++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
}

function truncate(rng: Rng, b: Uint8Array): Uint8Array {
  return b.slice(0, rng.int(b.length));
}

function insert(rng: Rng, b: Uint8Array): Uint8Array {
  const at = rng.int(b.length + 1);
  const n = 1 + rng.int(16);
  const extra = Uint8Array.from({ length: n }, () => (rng.int(4) === 0 ? 0xff : rng.int(256)));
  const out = new Uint8Array(b.length + n);
  out.set(b.subarray(0, at), 0);
  out.set(extra, at);
  out.set(b.subarray(at), at + n);
  return out;
}

// ------------------------------------------------------------------ field-level mutations

interface Slot {
  parent: Obj | unknown[];
  key: string | number;
  value: unknown;
}

/** Every field and list entry of the decoded message, and every string in it. */
function slots(o: unknown, out: Slot[], strings: string[], parent?: Obj | unknown[], key?: string | number): void {
  if (parent !== undefined && key !== undefined) out.push({ parent, key, value: o });
  if (typeof o === 'string') strings.push(o);
  if (o instanceof Uint8Array || o === null || typeof o !== 'object') return;
  if (Array.isArray(o)) o.forEach((v, i) => slots(v, out, strings, o, i));
  else for (const [k, v] of Object.entries(o)) slots(v, out, strings, o as Obj, k);
}

const NUMBERS = [0, -1, 1, 2, 3, 7, 8, 16, 17, 255, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53, -(2 ** 31), 1e-30, 1e30, NaN, Infinity, -Infinity, 0.5];

function mutateField(rng: Rng, bytes: Uint8Array): Uint8Array | undefined {
  const msg = BinFileType.toObject(BinFileType.decode(bytes), { longs: Number, enums: Number, bytes: Uint8Array as unknown as typeof String, arrays: true, defaults: true }) as Obj;
  const all: Slot[] = [];
  const strings: string[] = [];
  slots(msg, all, strings);
  const s = all[rng.int(all.length)];
  const set = (v: unknown): void => {
    (s.parent as Obj)[s.key as string] = v;
  };
  const v = s.value;
  if (typeof v === 'number') set(NUMBERS[rng.int(NUMBERS.length)]);
  else if (typeof v === 'string') {
    const pick = rng.int(4);
    set(pick === 0 ? '' : pick === 1 ? strings[rng.int(strings.length)] : pick === 2 ? `x${rng.int(1000)}` : v + v);
  } else if (typeof v === 'boolean') set(!v);
  else if (v instanceof Uint8Array) {
    const pick = rng.int(3);
    set(pick === 0 ? v.slice(0, rng.int(v.length + 1)) : pick === 1 ? Uint8Array.from([...v, ...v]) : flip(rng, v.length ? v : new Uint8Array(1)));
  } else if (Array.isArray(v)) {
    const pick = rng.int(4);
    if (pick === 0 || v.length === 0) set([]);
    else if (pick === 1) set(v.filter((_, i) => i !== rng.int(v.length)));
    else if (pick === 2) set([...v, v[rng.int(v.length)]]);
    else set(Array.from({ length: 20 }, () => v[0]));
  } else if (v && typeof v === 'object') {
    if (Array.isArray(s.parent)) (s.parent as unknown[]).splice(s.key as number, 1);
    else delete (s.parent as Obj)[s.key as string];
  } else return undefined;
  try {
    return BinFileType.encode(BinFileType.fromObject(msg)).finish();
  } catch {
    return undefined; // a value protobuf cannot encode in that field: not a file
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

// ------------------------------------------------------------------ what a tool does with a model

async function exercise(bin: BinFile, hooks: RuntimeHooks): Promise<void> {
  modelInfoReport(bin, undefined, 'fuzz.bin', '0.0.0');
  const again = decodeBin(encodeBin(bin), 'again.bin');
  expect(again.models.map((m) => m.name)).toEqual(bin.models.map((m) => m.name));
  for (const m of bin.models) {
    deletableNames(m);
    try {
      const r = modifyModel(m, DELETABLE_TYPES.map((type) => ({ kind: 'all' as const, type })), 'fuzz.bin');
      encodeBin({ formatVersion: 1, packed: false, models: [r.model] });
    } catch (e) {
      if (!isPtqError(e)) throw e;
    }
    await hooks.loadAndRun(bin, m);
  }
}

describe('.bin fuzzing', () => {
  it(`${4 * PER_KIND} mutated files: decoded and usable, or one PtqError; never a crash or a hang`, async () => {
    const hooks = loadRuntime();
    const rng = new Rng(SEED);
    const files = bases(hooks);
    const kinds: Record<string, (r: Rng, b: Uint8Array) => Uint8Array | undefined> = { flip, truncate, insert, field: mutateField };
    const tally: Record<string, { ok: number; refused: number }> = {};
    const messages = new Set<string>();
    const crashes: string[] = [];
    let slowest = 0;
    for (const [kind, mutate] of Object.entries(kinds)) {
      tally[kind] = { ok: 0, refused: 0 };
      for (let done = 0, tries = 0; done < PER_KIND; tries++) {
        if (tries > PER_KIND * 20) throw new Error(`${kind}: cannot make mutations`);
        const base = files[rng.int(files.length)];
        const bytes = mutate(rng, base.bytes);
        if (!bytes) continue;
        done++;
        const t0 = performance.now();
        try {
          const bin = decodeBin(bytes, 'fuzz.bin');
          await exercise(bin, hooks);
          tally[kind].ok++;
        } catch (e) {
          if (!isPtqError(e)) {
            // keep going: the list of every distinct crash site is what a fix needs
            const frame = e instanceof Error ? (e.stack ?? '').split('\n').find((l) => /^\s+at /.test(l))?.trim() ?? '' : '';
            crashes.push(`${kind} mutation ${done} of '${base.name}': ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} ${frame}`);
            continue;
          }
          const line = e.oneLine();
          expect(line).not.toMatch(/\n/);
          messages.add(line.replace(/'[^']*'/g, "'…'").slice(0, 60));
          tally[kind].refused++;
        }
        slowest = Math.max(slowest, performance.now() - t0);
        expect(performance.now() - t0).toBeLessThan(CASE_LIMIT_MS);
      }
    }
    expect(crashes).toEqual([]);
    // every kind hits the decoder's checks; field mutations also leave many files valid
    for (const kind of Object.keys(kinds)) expect(tally[kind].refused).toBeGreaterThan(0);
    expect(tally.field.ok).toBeGreaterThan(0);
    expect(tally.field.refused).toBeGreaterThan(50);
    expect(tally.truncate.refused).toBeGreaterThan(PER_KIND / 2);
    expect(messages.size).toBeGreaterThan(10);
    // eslint-disable-next-line no-console
    if (process.env.FUZZ_MESSAGES) console.log([...messages].join('\n'));
    // eslint-disable-next-line no-console
    console.log(`bin fuzz: ${JSON.stringify(tally)}; ${messages.size} distinct messages; slowest case ${slowest.toFixed(1)} ms`);
  });

  it('systematic op mutations of the compiled models (inputs emptied or dropped, attributes dropped): usable or one PtqError', async () => {
    const hooks = loadRuntime();
    const crashes: string[] = [];
    let cases = 0;
    for (const base of hooks.compiledBins()) {
      const msg = BinFileType.toObject(BinFileType.decode(base.bytes), { longs: Number, enums: Number, bytes: Uint8Array as unknown as typeof String, arrays: true, defaults: true }) as Obj;
      const segments = msg.models[0].segments as Obj[];
      const edits: Record<string, (o: Obj) => void> = {
        'input 0 emptied': (o) => { o.inputs = ['', ...o.inputs.slice(1)]; },
        'inputs dropped': (o) => { o.inputs = []; },
        'last input dropped': (o) => { o.inputs = o.inputs.slice(0, -1); },
        'attributes dropped': (o) => { o.attrs = []; },
      };
      for (let si = 0; si < segments.length; si++) {
        for (let oi = 0; oi < segments[si].ops.length; oi++) {
          for (const [what, edit] of Object.entries(edits)) {
            const copy = structuredClone(msg);
            const op = copy.models[0].segments[si].ops[oi] as Obj;
            edit(op);
            cases++;
            try {
              const back = decodeBin(BinFileType.encode(BinFileType.fromObject(copy)).finish(), 'fuzz.bin');
              await exercise(back, hooks);
            } catch (e) {
              if (!isPtqError(e)) crashes.push(`${base.name}: op '${op.name}' (${op.type}) ${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
            }
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(50);
    expect(crashes).toEqual([]);
  });
});
