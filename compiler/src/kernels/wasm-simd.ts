/**
 * The GEMM inner loops as a WebAssembly SIMD module, written out byte by byte (no toolchain
 * needed): JavaScript has no vector arithmetic, but Node's WebAssembly has 128-bit f32x4,
 * about ten times the throughput of the best scalar JS loop. kernels/gemm.ts falls back to
 * an equivalent JS loop where WebAssembly SIMD is missing.
 *
 * The module imports its memory (`env.mem`); all pointers are byte offsets into it.
 */

/** Rows of A and columns of B per micro-tile (the accumulators: MR × NR/4 vectors). */
export const MR = 4;
export const NR = 8;

interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum?: number }) => WasmMemory;
}

/**
 * macro(kc, nA, nB, pa, pb, pc, ldc, acc): for each of nB packed B panels (kc × NR floats,
 * k-major) and each of nA packed A panels (kc × MR floats, k-major), the MR × NR tile
 * C[pc + ia·MR·ldc + jb·NR·4] (row stride ldc bytes) = A-panel · B-panel, added to C when acc ≠ 0.
 * kc, nA, nB ≥ 1.
 */
export type MacroKernel = (kc: number, nA: number, nB: number, pa: number, pb: number, pc: number, ldc: number, acc: number) => void;

export interface GemmWasm {
  memory: WasmMemory;
  macro: MacroKernel;
}

// --- a minimal WebAssembly binary writer ---

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const T_I32 = 0x7f;
const T_V128 = 0x7b;
const EMPTY = 0x40;

/** Instruction emitter for one function body. */
class Asm {
  readonly b: number[] = [];
  get(i: number): this { return this.emit(0x20, ...uleb(i)); }
  set(i: number): this { return this.emit(0x21, ...uleb(i)); }
  tee(i: number): this { return this.emit(0x22, ...uleb(i)); }
  i32(v: number): this { return this.emit(0x41, ...sleb(v)); }
  add(): this { return this.emit(0x6a); }
  mul(): this { return this.emit(0x6c); }
  ltU(): this { return this.emit(0x49); }
  block(): this { return this.emit(0x02, EMPTY); }
  loop(): this { return this.emit(0x03, EMPTY); }
  if(): this { return this.emit(0x04, EMPTY); }
  else(): this { return this.emit(0x05); }
  end(): this { return this.emit(0x0b); }
  brIf(depth: number): this { return this.emit(0x0d, ...uleb(depth)); }
  private simd(op: number, ...imm: number[]): this { return this.emit(0xfd, ...uleb(op), ...imm); }
  /** v128.load with a 16-byte alignment hint */
  vload(off: number): this { return this.simd(0, 4, ...uleb(off)); }
  vstore(off: number): this { return this.simd(11, 4, ...uleb(off)); }
  /** v128.load32_splat: one float broadcast to four lanes */
  splat(off: number): this { return this.simd(9, 2, ...uleb(off)); }
  vzero(): this { return this.simd(12, ...new Array<number>(16).fill(0)); }
  fadd(): this { return this.simd(228, ...[]); }
  fmul(): this { return this.simd(230); }
  /** local += a ⊙ b for the v128 locals */
  madd(acc: number, a: number, b: number): this { return this.get(a).get(b).fmul().get(acc).fadd().set(acc); }
  emit(...bytes: number[]): this {
    for (const x of bytes) this.b.push(x);
    return this;
  }
}

function macroBody(): number[] {
  // params
  const KC = 0, NA = 1, NB = 2, PA = 3, PB = 4, PC = 5, LDC = 6, ACC = 7;
  // i32 locals
  const JB = 8, IA = 9, PANEL_A = 10, TILE_C = 11, PANEL_B = 12, P = 13, Q = 14, END = 15, ROW = 16;
  const nI32 = 9;
  // v128 locals: accumulators c[i][h] (h = low/high four columns), then b0, b1, a
  const C0 = 8 + nI32;
  const acc = (i: number, h: number): number => C0 + 2 * i + h;
  const B0 = C0 + 2 * MR, B1 = B0 + 1, A = B0 + 2;
  const nV128 = 2 * MR + 3;
  const s = new Asm();
  s.i32(0).set(JB);
  s.loop(); // over B panels
  {
    s.get(PB).get(JB).get(KC).i32(NR * 4).mul().mul().add().set(PANEL_B);
    s.get(PC).get(JB).i32(NR * 4).mul().add().set(TILE_C);
    s.get(PA).set(PANEL_A);
    s.i32(0).set(IA);
    s.loop(); // over A panels
    {
      for (let i = 0; i < MR; i++) for (let h = 0; h < 2; h++) s.vzero().set(acc(i, h));
      s.get(PANEL_A).set(P).get(PANEL_B).set(Q);
      s.get(PANEL_A).get(KC).i32(MR * 4).mul().add().set(END);
      s.loop(); // over k
      {
        s.get(Q).vload(0).set(B0);
        s.get(Q).vload(16).set(B1);
        for (let i = 0; i < MR; i++) {
          s.get(P).splat(4 * i).set(A);
          s.madd(acc(i, 0), A, B0).madd(acc(i, 1), A, B1);
        }
        s.get(P).i32(MR * 4).add().set(P);
        s.get(Q).i32(NR * 4).add().set(Q);
        s.get(P).get(END).ltU().brIf(0);
      }
      s.end();
      s.get(TILE_C).set(ROW);
      s.get(ACC).if();
      for (let i = 0; i < MR; i++) {
        for (let h = 0; h < 2; h++) s.get(ROW).get(ROW).vload(16 * h).get(acc(i, h)).fadd().vstore(16 * h);
        s.get(ROW).get(LDC).add().set(ROW);
      }
      s.else();
      for (let i = 0; i < MR; i++) {
        for (let h = 0; h < 2; h++) s.get(ROW).get(acc(i, h)).vstore(16 * h);
        s.get(ROW).get(LDC).add().set(ROW);
      }
      s.end();
      s.get(END).set(PANEL_A);
      s.get(TILE_C).get(LDC).i32(MR).mul().add().set(TILE_C);
      s.get(IA).i32(1).add().tee(IA).get(NA).ltU().brIf(0);
    }
    s.end();
    s.get(JB).i32(1).add().tee(JB).get(NB).ltU().brIf(0);
  }
  s.end();
  s.end(); // function
  const locals = vec([[...uleb(nI32), T_I32], [...uleb(nV128), T_V128]]);
  const body = [...locals, ...s.b];
  return [...uleb(body.length), ...body];
}

/** The module's bytes (exported for tests and for inspection with wasm tools). */
export function gemmModuleBytes(): Uint8Array {
  const macroType = [0x60, ...vec(new Array<number[]>(8).fill([T_I32])), ...vec([])];
  const types = section(1, vec([macroType]));
  const imports = section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(1)]]));
  const funcs = section(3, vec([uleb(0)]));
  const exports = section(7, vec([[...name('macro'), 0x00, ...uleb(0)]]));
  const code = section(10, vec([macroBody()]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...funcs, ...exports, ...code]);
}

let cached: GemmWasm | null | undefined;

/**
 * The instantiated module with its own memory, or undefined when WebAssembly SIMD is not
 * available (or NX_PTQ_NO_WASM=1 asks for the JS kernels).
 */
export function gemmWasm(): GemmWasm | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  const wa = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wa || process.env.NX_PTQ_NO_WASM === '1') return undefined;
  try {
    const bytes = gemmModuleBytes();
    if (!wa.validate(bytes)) return undefined;
    const memory = new wa.Memory({ initial: 16 });
    const inst = new wa.Instance(new wa.Module(bytes), { env: { mem: memory } });
    cached = { memory, macro: inst.exports.macro as MacroKernel };
  } catch {
    cached = null;
  }
  return cached ?? undefined;
}
