/**
 * The hot loops of GEMM and convolution as a WebAssembly SIMD module, written out byte by
 * byte here (no toolchain): JavaScript has no vector arithmetic, but Node's WebAssembly has
 * 128-bit f32x4, about ten times the throughput of the best scalar JS loop. Callers fall
 * back to JS loops where WebAssembly SIMD is missing (or NX_PTQ_NO_WASM=1).
 *
 * The module imports its memory (`env.mem`); all pointers are byte offsets into it, and the
 * data a kernel reads is copied into that memory first.
 */

import { functionBody, section, sleb, uleb, vec, wasmName as name } from './wasm-binary';

/** Rows of A and columns of B per GEMM micro-tile (MR × NR/4 vector accumulators). */
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
 * macro(kc, nA, nB, pa, pb, bK, bP, pc, ldc, mode, pBias): for each of nB B panels and each
 * of nA packed A panels (kc × MR floats, k-major, consecutive), the MR × NR tile at
 * pc + ia·MR·ldc + jb·NR·4 (row stride ldc bytes) = A-panel · B-panel, stored (mode 0), added
 * to what C holds (mode 1), or stored plus a per-row bias read from pBias + 4·row (mode 2).
 * B panel jb starts at pb + jb·bP and its k-th row of NR floats is bK bytes after the
 * previous one (packed: bK = NR·4, bP = kc·NR·4; row-major: bK = ld, bP = NR·4).
 * kc, nA, nB ≥ 1.
 */
export type MacroKernel = (kc: number, nA: number, nB: number, pa: number, pb: number, bK: number, bP: number, pc: number, ldc: number, mode: number, pBias: number) => void;

/**
 * dw1 / dw2(pIn, inStep, pOut, outRow, rows, nVec, pW, pTaps, nTaps, bias): depthwise stencil
 * for horizontal stride 1 / 2 over a zero-padded plane. For output row r (pOut + r·outRow)
 * and each group of 8 outputs v < nVec: out = bias + Σ_t W[t] · in[pIn + r·inStep +
 * v·8·stride·4 + taps[t] + 4·stride·lane] (W and taps: nTaps f32 / i32 at pW / pTaps).
 * Writes whole groups of 8 (up to 7 floats past the row end).
 */
export type DepthwiseKernel = (pIn: number, inStep: number, pOut: number, outRow: number, rows: number, nVec: number, pW: number, pTaps: number, nTaps: number, bias: number) => void;

/**
 * im2col(pX, H, W, sh, sw, ph, pw, OW, pTab, k0, kc, j0, nc, pDst, ld): rows k0… of the
 * im2col matrix of a 2-D image (columns j0 … j0+nc of the output positions), row-major at
 * pDst with row stride ld bytes. Row k is described by four i32 at pTab + 16k: the input
 * float offset of its channel and tap (c·H·W + ty·W + tx), ty, and the valid output column
 * range [lo, hi) of its tap.
 */
export type Im2colKernel = (pX: number, H: number, W: number, sh: number, sw: number, ph: number, pw: number, OW: number, pTab: number, k0: number, kc: number, j0: number, nc: number, pDst: number, ld: number) => void;

/** padcopy(pSrc, rows, rowBytes, pDst, dstRow): copy rows of rowBytes to a wider row stride. */
export type PadCopyKernel = (pSrc: number, rows: number, rowBytes: number, pDst: number, dstRow: number) => void;

export interface WasmKernels {
  memory: WasmMemory;
  macro: MacroKernel;
  dw1: DepthwiseKernel;
  dw2: DepthwiseKernel;
  im2col: Im2colKernel;
  padcopy: PadCopyKernel;
}

// --- the module (binary encoders in kernels/wasm-binary.ts) ---

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const EMPTY = 0x40;

/** Instruction emitter for one function body (locals numbered after the params). */
class Asm {
  readonly b: number[] = [];
  private readonly locals: number[] = [];
  constructor(private readonly nParams: number) {}
  /** declare a local of `type`, returning its index */
  local(type: number): number {
    this.locals.push(type);
    return this.nParams + this.locals.length - 1;
  }
  get(i: number): this { return this.op(0x20, ...uleb(i)); }
  set(i: number): this { return this.op(0x21, ...uleb(i)); }
  tee(i: number): this { return this.op(0x22, ...uleb(i)); }
  i32(v: number): this { return this.op(0x41, ...sleb(v)); }
  add(): this { return this.op(0x6a); }
  sub(): this { return this.op(0x6b); }
  mul(): this { return this.op(0x6c); }
  divU(): this { return this.op(0x6e); }
  eq(): this { return this.op(0x46); }
  ltS(): this { return this.op(0x48); }
  ltU(): this { return this.op(0x49); }
  geS(): this { return this.op(0x4e); }
  or(): this { return this.op(0x72); }
  select(): this { return this.op(0x1b); }
  /** a b → min(a, b) (signed), using scratch locals */
  min(a: number, b: number): this { return this.get(a).get(b).get(a).get(b).ltS().select(); }
  max(a: number, b: number): this { return this.get(a).get(b).get(a).get(b).geS().select(); }
  block(): this { return this.op(0x02, EMPTY); }
  loop(): this { return this.op(0x03, EMPTY); }
  if(): this { return this.op(0x04, EMPTY); }
  else(): this { return this.op(0x05); }
  end(): this { return this.op(0x0b); }
  br(depth: number): this { return this.op(0x0c, ...uleb(depth)); }
  brIf(depth: number): this { return this.op(0x0d, ...uleb(depth)); }
  loadI32(off = 0): this { return this.op(0x28, 2, ...uleb(off)); }
  loadF32(off = 0): this { return this.op(0x2a, 2, ...uleb(off)); }
  storeF32(off = 0): this { return this.op(0x38, 2, ...uleb(off)); }
  /** memory.copy(dst, src, n) and memory.fill(dst, byte, n) (bulk memory) */
  memcopy(): this { return this.op(0xfc, 10, 0, 0); }
  memfill(): this { return this.op(0xfc, 11, 0); }
  private simd(code: number, ...imm: number[]): this { return this.op(0xfd, ...uleb(code), ...imm); }
  vload(off = 0): this { return this.simd(0, 4, ...uleb(off)); }
  vstore(off = 0): this { return this.simd(11, 4, ...uleb(off)); }
  /** v128.load32_splat: one float from memory in all four lanes */
  splatLoad(off = 0): this { return this.simd(9, 2, ...uleb(off)); }
  splatF32(): this { return this.simd(19); }
  vzero(): this { return this.simd(12, ...new Array<number>(16).fill(0)); }
  /** the even floats of two vectors: [a0, a2, b0, b2] */
  evens(): this { return this.simd(13, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27); }
  fadd(): this { return this.simd(228); }
  fmul(): this { return this.simd(230); }
  /** acc += a ⊙ b (v128 locals) */
  madd(acc: number, a: number, b: number): this { return this.get(a).get(b).fmul().get(acc).fadd().set(acc); }
  /** local += v (i32) */
  inc(l: number, v: number): this { return this.get(l).i32(v).add().set(l); }
  incBy(l: number, by: number): this { return this.get(l).get(by).add().set(l); }
  op(...bytes: number[]): this {
    for (const x of bytes) this.b.push(x);
    return this;
  }
  /** the encoded body: local declarations (grouped by runs of one type) + code + end */
  body(): number[] {
    return functionBody(this.locals, this.b);
  }
}

function macroFn(): Asm {
  const [KC, NA, NB, PA, PB, BK, BP, PC, LDC, MODE, BIAS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const s = new Asm(11);
  const jb = s.local(I32), ia = s.local(I32), panelA = s.local(I32), tile = s.local(I32), panelB = s.local(I32), bias = s.local(I32);
  const p = s.local(I32), q = s.local(I32), end = s.local(I32), row = s.local(I32);
  const acc: number[][] = [];
  for (let i = 0; i < MR; i++) acc.push([s.local(V128), s.local(V128)]);
  const b0 = s.local(V128), b1 = s.local(V128), a = s.local(V128);
  s.i32(0).set(jb);
  s.loop(); // B panels
  s.get(PB).get(jb).get(BP).mul().add().set(panelB);
  s.get(PC).get(jb).i32(NR * 4).mul().add().set(tile);
  s.get(PA).set(panelA);
  s.get(BIAS).set(bias);
  s.i32(0).set(ia);
  s.loop(); // A panels
  s.get(MODE).i32(2).eq().if();
  for (let i = 0; i < MR; i++) s.get(bias).splatLoad(4 * i).tee(acc[i][0]).set(acc[i][1]);
  s.else();
  for (let i = 0; i < MR; i++) for (let h = 0; h < 2; h++) s.vzero().set(acc[i][h]);
  s.end();
  s.inc(bias, MR * 4);
  s.get(panelA).set(p).get(panelB).set(q);
  s.get(panelA).get(KC).i32(MR * 4).mul().add().set(end);
  s.loop(); // k
  s.get(q).vload(0).set(b0);
  s.get(q).vload(16).set(b1);
  for (let i = 0; i < MR; i++) {
    s.get(p).splatLoad(4 * i).set(a);
    s.madd(acc[i][0], a, b0).madd(acc[i][1], a, b1);
  }
  s.inc(p, MR * 4).incBy(q, BK);
  s.get(p).get(end).ltU().brIf(0);
  s.end();
  s.get(tile).set(row);
  s.get(MODE).i32(1).eq().if();
  for (let i = 0; i < MR; i++) {
    for (let h = 0; h < 2; h++) s.get(row).get(row).vload(16 * h).get(acc[i][h]).fadd().vstore(16 * h);
    s.incBy(row, LDC);
  }
  s.else();
  for (let i = 0; i < MR; i++) {
    for (let h = 0; h < 2; h++) s.get(row).get(acc[i][h]).vstore(16 * h);
    s.incBy(row, LDC);
  }
  s.end();
  s.get(end).set(panelA);
  s.get(tile).get(LDC).i32(MR).mul().add().set(tile);
  s.get(ia).i32(1).add().tee(ia).get(NA).ltU().brIf(0);
  s.end();
  s.get(jb).i32(1).add().tee(jb).get(NB).ltU().brIf(0);
  s.end();
  return s;
}

function depthwiseFn(stride: 1 | 2): Asm {
  const [IN, STEP, OUT, OUTROW, ROWS, NVEC, PW, PT, NT, BIAS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const s = new Asm(10);
  const r = s.local(I32), v = s.local(I32), rowIn = s.local(I32), rowOut = s.local(I32), x = s.local(I32), t = s.local(I32), px = s.local(I32);
  const a0 = s.local(V128), a1 = s.local(V128), w = s.local(V128), x0 = s.local(V128), x1 = s.local(V128), bias = s.local(V128);
  s.get(BIAS).splatF32().set(bias);
  s.i32(0).set(r);
  s.get(IN).set(rowIn).get(OUT).set(rowOut);
  s.loop(); // rows
  s.i32(0).set(v);
  s.get(rowIn).set(x);
  s.loop(); // groups of 8 outputs
  s.get(bias).set(a0).get(bias).set(a1);
  s.i32(0).set(t);
  s.loop(); // taps
  s.get(PW).get(t).add().splatLoad().set(w);
  s.get(x).get(PT).get(t).add().loadI32().add().set(px);
  if (stride === 1) {
    s.get(px).vload(0).set(x0);
    s.get(px).vload(16).set(x1);
  } else {
    s.get(px).vload(0).get(px).vload(16).evens().set(x0);
    s.get(px).vload(32).get(px).vload(48).evens().set(x1);
  }
  s.madd(a0, w, x0).madd(a1, w, x1);
  s.get(t).i32(4).add().tee(t).get(NT).i32(4).mul().ltU().brIf(0);
  s.end();
  s.get(rowOut).get(v).i32(32).mul().add().get(a0).vstore(0);
  s.get(rowOut).get(v).i32(32).mul().add().get(a1).vstore(16);
  s.inc(x, 32 * stride);
  s.get(v).i32(1).add().tee(v).get(NVEC).ltU().brIf(0);
  s.end();
  s.incBy(rowIn, STEP).incBy(rowOut, OUTROW);
  s.get(r).i32(1).add().tee(r).get(ROWS).ltU().brIf(0);
  s.end();
  return s;
}

function im2colFn(): Asm {
  const [PX, H, W, SH, SW, PH, PWD, OW, TAB, K0, KC, J0, NC, DST, LD] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const s = new Asm(15);
  const kk = s.local(I32), t = s.local(I32), off = s.local(I32), ty = s.local(I32), lo = s.local(I32), hi = s.local(I32);
  const rowDst = s.local(I32), j = s.local(I32), jEnd = s.local(I32), oy = s.local(I32), ox0 = s.local(I32);
  const seg = s.local(I32), b = s.local(I32), d = s.local(I32), iy = s.local(I32), cl = s.local(I32), ch = s.local(I32);
  const src = s.local(I32), dd = s.local(I32), n = s.local(I32), tmp = s.local(I32), step = s.local(I32);
  const zero = (dst: () => void, count: () => void): void => {
    dst();
    s.i32(0);
    count();
    s.i32(4).mul().memfill();
  };
  s.get(SW).i32(4).mul().set(step);
  s.get(J0).get(NC).add().set(jEnd);
  s.i32(0).set(kk);
  s.loop(); // rows of the block
  s.get(TAB).get(K0).get(kk).add().i32(16).mul().add().set(t);
  s.get(t).loadI32(0).set(off).get(t).loadI32(4).set(ty).get(t).loadI32(8).set(lo).get(t).loadI32(12).set(hi);
  s.get(DST).get(kk).get(LD).mul().add().set(rowDst);
  s.get(J0).set(j);
  s.get(J0).get(OW).divU().set(oy);
  s.get(J0).get(oy).get(OW).mul().sub().set(ox0);
  s.block().loop(); // output-row segments
  // seg = min(OW − ox0, jEnd − j); b = ox0 + seg
  s.get(OW).get(ox0).sub().set(seg);
  s.get(jEnd).get(j).sub().set(tmp);
  s.min(seg, tmp).set(seg);
  s.get(ox0).get(seg).add().set(b);
  s.get(rowDst).get(j).get(J0).sub().i32(4).mul().add().set(d);
  s.get(oy).get(SH).mul().get(PH).sub().get(ty).add().set(iy);
  s.max(ox0, lo).set(cl);
  s.min(b, hi).set(ch);
  // the whole segment is padding when the row is outside the image or no column is inside
  s.get(iy).i32(0).ltS().get(iy).get(H).geS().or().get(cl).get(ch).geS().or();
  s.if();
  zero(() => s.get(d), () => s.get(seg));
  s.else();
  zero(() => s.get(d), () => s.get(cl).get(ox0).sub());
  zero(() => s.get(d).get(ch).get(ox0).sub().i32(4).mul().add(), () => s.get(b).get(ch).sub());
  // src = pX + 4·(off + (oy·sh − ph)·W + cl·sw − pw)
  s.get(PX).get(off).get(oy).get(SH).mul().get(PH).sub().get(W).mul().add().get(cl).get(SW).mul().add().get(PWD).sub().i32(4).mul().add().set(src);
  s.get(d).get(cl).get(ox0).sub().i32(4).mul().add().set(dd);
  s.get(ch).get(cl).sub().set(n);
  s.get(SW).i32(1).sub().if().else();
  s.get(dd).get(src).get(n).i32(4).mul().memcopy();
  s.end();
  s.get(SW).i32(1).sub().if();
  s.loop();
  s.get(dd).get(src).loadF32().storeF32();
  s.inc(dd, 4).incBy(src, step);
  s.get(n).i32(1).sub().tee(n).brIf(0);
  s.end();
  s.end();
  s.end();
  s.incBy(j, seg);
  s.inc(oy, 1);
  s.i32(0).set(ox0);
  s.get(j).get(jEnd).ltS().brIf(0);
  s.end().end();
  s.get(kk).i32(1).add().tee(kk).get(KC).ltU().brIf(0);
  s.end();
  return s;
}

function padCopyFn(): Asm {
  const [SRC, ROWS, BYTES, DST, DROW] = [0, 1, 2, 3, 4];
  const s = new Asm(5);
  const r = s.local(I32), src = s.local(I32), dst = s.local(I32);
  s.get(SRC).set(src).get(DST).set(dst).i32(0).set(r);
  s.block();
  s.get(ROWS).i32(1).ltS().brIf(0); // no rows
  s.loop();
  s.get(dst).get(src).get(BYTES).memcopy();
  s.incBy(src, BYTES).incBy(dst, DROW);
  s.get(r).i32(1).add().tee(r).get(ROWS).ltU().brIf(0);
  s.end();
  s.end();
  return s;
}

/** The module's bytes (exported for tests and for inspection with wasm tools). */
export function kernelModuleBytes(): Uint8Array {
  const fns: { name: string; params: number[]; asm: Asm }[] = [
    { name: 'macro', params: new Array<number>(11).fill(I32), asm: macroFn() },
    { name: 'dw1', params: [...new Array<number>(9).fill(I32), F32], asm: depthwiseFn(1) },
    { name: 'dw2', params: [...new Array<number>(9).fill(I32), F32], asm: depthwiseFn(2) },
    { name: 'im2col', params: new Array<number>(15).fill(I32), asm: im2colFn() },
    { name: 'padcopy', params: new Array<number>(5).fill(I32), asm: padCopyFn() },
  ];
  const types = section(1, vec(fns.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec([])])));
  const imports = section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(1)]]));
  const funcs = section(3, vec(fns.map((_, i) => uleb(i))));
  const exports = section(7, vec(fns.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])));
  const code = section(10, vec(fns.map((f) => f.asm.body())));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...funcs, ...exports, ...code]);
}

let instance: WasmKernels | null | undefined;

/**
 * The instantiated kernels with their memory, or undefined when WebAssembly SIMD is not
 * available (or NX_PTQ_NO_WASM=1 asks for the JS kernels).
 */
export function wasmKernels(): WasmKernels | undefined {
  if (instance !== undefined) return instance ?? undefined;
  instance = null;
  const wa = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wa || process.env.NX_PTQ_NO_WASM === '1') return undefined;
  try {
    const bytes = kernelModuleBytes();
    if (!wa.validate(bytes)) return undefined;
    const memory = new wa.Memory({ initial: 16 });
    const e = new wa.Instance(new wa.Module(bytes), { env: { mem: memory } }).exports;
    instance = {
      memory,
      macro: e.macro as MacroKernel,
      dw1: e.dw1 as DepthwiseKernel,
      dw2: e.dw2 as DepthwiseKernel,
      im2col: e.im2col as Im2colKernel,
      padcopy: e.padcopy as PadCopyKernel,
    };
  } catch {
    instance = null;
  }
  return instance ?? undefined;
}
