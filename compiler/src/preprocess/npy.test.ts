import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PtqError } from '../errors';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { encodeNpy, parseNpy, readNpy, writeNpy } from './npy';

/** .npy against numpy itself: files numpy writes are read back, files we write numpy loads. */
const PYTHON = '/usr/bin/python3';
const hasNumpy = fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

function python(script: string, cwd: string): string {
  const r = spawnSync(PYTHON, ['-c', script], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}

/** One Python process writes every sample and a manifest of what each holds (values as text, exact). */
const WRITE_SAMPLES = String.raw`
import json, numpy as np
from numpy.lib import format as fmt
rs = np.random.RandomState(42)
m = {}
def put(name, a, version=None):
    with open(name + '.npy', 'wb') as f:
        if version is None: np.save(f, a)
        else: fmt.write_array(f, a, version=version)
    vals = [repr(float(x)) if a.dtype.kind == 'f' else (str(x) if a.dtype.kind == 'U' else str(int(x))) for x in a.flatten(order='C')]
    m[name] = {'shape': list(a.shape), 'dtype': a.dtype.str, 'values': vals}
for code in ['f4', 'f8', 'f2']:
    a = (rs.randn(2, 3) * 100).astype(code)
    a.flat[0] = np.inf; a.flat[1] = -0.0; a.flat[2] = np.finfo(code).max; a.flat[3] = np.finfo(code).tiny
    put(code, a)
for code in ['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8']:
    info = np.iinfo(code)
    a = np.array([info.min, info.max, 0, 1, info.max // 3, info.min // 3 if info.min else 7], dtype=code).reshape(3, 2)
    put(code, a)
put('b1', np.array([[True, False, True], [False, False, True]]))
put('scalar', np.array(3.5, np.float32))
put('empty', np.zeros((0, 4), np.float32))
put('vec', np.arange(5, dtype=np.int64))
put('rank4', rs.randn(1, 2, 3, 2).astype(np.float32))
put('v2', rs.randn(3, 4).astype(np.float32), (2, 0))
put('v3', rs.randn(2, 2).astype(np.float64), (3, 0))
put('unicode', np.array(['ab', 'c\u00e7\u00e9', '\U0001d11e']))
np.save('fortran.npy', np.asfortranarray(rs.randn(2, 3).astype(np.float32)))
np.save('fortran1d.npy', np.asfortranarray(np.arange(4, dtype=np.float32)))
np.save('bigendian.npy', np.arange(6, dtype='>f4').reshape(2, 3))
np.save('bigendian_i1.npy', np.arange(6, dtype='>i1'))
np.save('object.npy', np.array([1, 'a'], dtype=object), allow_pickle=True)
np.save('complex.npy', np.zeros(3, np.complex64))
print(json.dumps(m))
`;

const maybe = hasNumpy ? describe : describe.skip;

maybe('npy against numpy', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-npy-'));
  let manifest: Record<string, { shape: number[]; dtype: string; values: string[] }> = {};
  beforeAll(() => {
    manifest = JSON.parse(python(WRITE_SAMPLES, dir));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const expectValues = (t: Tensor, want: string[]): void => {
    if (t.dtype === 'string') return expect(t.data).toEqual(want);
    const got = t.dtype === 'int64' || t.dtype === 'uint64' ? Array.from(t.array as BigInt64Array, String) : t.toNumbers();
    want.forEach((w, i) => {
      if (typeof got[i] === 'string') expect(got[i]).toBe(w);
      else if (w === 'nan') expect(got[i]).toBeNaN();
      else if (/inf/.test(w)) expect(got[i]).toBe(w.startsWith('-') ? -Infinity : Infinity);
      else expect(Object.is(got[i], Number(w)) || got[i] === Number(w)).toBe(true);
    });
  };

  it('reads every dtype, shape and header version numpy writes', () => {
    const dtypes: Record<string, string> = {
      '<f4': 'float32', '<f8': 'float64', '<f2': 'float16', '|i1': 'int8', '|u1': 'uint8', '<i2': 'int16', '<u2': 'uint16',
      '<i4': 'int32', '<u4': 'uint32', '<i8': 'int64', '<u8': 'uint64', '|b1': 'bool',
    };
    expect(Object.keys(manifest).length).toBeGreaterThanOrEqual(19);
    for (const [name, m] of Object.entries(manifest)) {
      const t = readNpy(path.join(dir, `${name}.npy`));
      expect([name, t.dims]).toEqual([name, m.shape]);
      expect([name, t.dtype]).toEqual([name, m.dtype.startsWith('<U') ? 'string' : dtypes[m.dtype]]);
      expectValues(t, m.values);
    }
    // -0 survives
    expect(Object.is(readNpy(path.join(dir, 'f4.npy')).toNumbers()[1], -0)).toBe(true);
  });

  it('writes files numpy loads to the same values, byte-identical to numpy.save', () => {
    const out = path.join(dir, 'ours');
    fs.mkdirSync(out);
    for (const name of Object.keys(manifest)) {
      const t = readNpy(path.join(dir, `${name}.npy`));
      writeNpy(path.join(out, `${name}.npy`), t);
    }
    const check = python(
      String.raw`
import json, numpy as np, os
m = json.loads(open('manifest.json').read())
res = {}
for name, e in m.items():
    a = np.load(os.path.join('ours', name + '.npy'))
    ref = np.load(name + '.npy')
    same_bytes = open(os.path.join('ours', name + '.npy'), 'rb').read() == open(name + '.npy', 'rb').read()
    res[name] = [a.dtype == ref.dtype, a.shape == ref.shape, bool(np.array_equal(a, ref, equal_nan=a.dtype.kind == 'f')), same_bytes]
print(json.dumps(res))
`.replace("open('manifest.json').read()", `'${JSON.stringify(manifest).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`),
      dir,
    );
    const res = JSON.parse(check) as Record<string, boolean[]>;
    for (const [name, [dtype, shape, values, bytes]] of Object.entries(res)) {
      expect([name, dtype, shape, values]).toEqual([name, true, true, true]);
      // numpy writes v2/v3 only when asked; ours are 1.0 like numpy.save's
      if (!['v2', 'v3'].includes(name)) expect([name, bytes]).toEqual([name, true]);
    }
  });

  const rejects = (file: string, text: RegExp): void => {
    let err: unknown;
    try {
      readNpy(path.join(dir, file));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PtqError);
    const p = err as PtqError;
    expect(p.message).toContain(file);
    expect(p.message).toMatch(text);
    expect(p.oneLine()).not.toMatch(/\n/);
    expect(p.fix).toBeTruthy();
  };

  it('refuses Fortran order, big-endian, pickled objects and unsupported dtypes with a PtqError naming the file', () => {
    rejects('fortran.npy', /Fortran/);
    rejects('bigendian.npy', /big-endian/);
    rejects('object.npy', /dtype '\|O'/);
    rejects('complex.npy', /dtype '<c8'/);
    // a 1-D array has the same layout in both orders; single bytes have no byte order
    expect(readNpy(path.join(dir, 'fortran1d.npy')).toNumbers()).toEqual([0, 1, 2, 3]);
    expect(readNpy(path.join(dir, 'bigendian_i1.npy')).toNumbers()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('refuses bad magic, bad headers and truncated data', () => {
    const good = fs.readFileSync(path.join(dir, 'f4.npy'));
    const cases: [string, Uint8Array, RegExp][] = [
      ['magic.npy', Buffer.from('PK\x03\x04 not numpy at all'), /magic/],
      ['version.npy', Buffer.concat([good.subarray(0, 6), Buffer.from([9, 0]), good.subarray(8)]), /version 9\.0/],
      ['header.npy', Buffer.concat([good.subarray(0, 10), Buffer.from("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3"), Buffer.alloc(good.length - 10 - 56, 0x20)]), /header/],
      ['noshape.npy', Buffer.concat([good.subarray(0, 10), Buffer.from("{'descr': '<f4', 'fortran_order': False}".padEnd(118) + '\n')]), /shape/],
      ['truncated.npy', good.subarray(0, good.length - 5), /truncated/],
      ['short.npy', good.subarray(0, 40), /header is truncated/],
      ['trailing.npy', Buffer.concat([good, Buffer.from([1, 2, 3])]), /3 bytes after/],
    ];
    for (const [file, bytes] of cases) fs.writeFileSync(path.join(dir, file), bytes);
    for (const [file, , text] of cases) rejects(file, text);
    let err: unknown;
    try {
      readNpy(path.join(dir, 'does-not-exist.npy'));
    } catch (e) {
      err = e;
    }
    expect((err as PtqError).code).toBe('E_FILE');
  });
});

describe('npy encoding', () => {
  it('round-trips every dtype through encode/parse', () => {
    const ts = [
      tensorFrom('float32', [2, 2], [1, -2, 3.5, NaN]),
      tensorFrom('int8', [3], [-128, 0, 127]),
      new Tensor('int64', [2], BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n])),
      new Tensor('uint64', [1], BigUint64Array.from([2n ** 64n - 1n])),
      tensorFrom('bool', [2, 1], [1, 0]),
      tensorFrom('float16', [], [0.5]),
      new Tensor('string', [2], ['x', 'ü𝄞']),
    ];
    for (const t of ts) {
      const back = parseNpy(encodeNpy(t));
      expect(back.dtype).toBe(t.dtype);
      expect(back.dims).toEqual(t.dims);
      if (t.dtype === 'string') expect(back.data).toEqual(t.data);
      else expect(Buffer.from(back.rawBytes())).toEqual(Buffer.from(t.rawBytes()));
    }
  });

  it('pads the header to 64 bytes and refuses dtypes .npy cannot hold', () => {
    const b = encodeNpy(tensorFrom('float32', [3, 4], new Array(12).fill(0)));
    expect((10 + (b[8] | (b[9] << 8))) % 64).toBe(0);
    expect(() => encodeNpy(new Tensor('bfloat16', [1]), 'y')).toThrow(/'y' is bfloat16/);
  });
});
