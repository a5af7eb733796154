/**
 * WebAssembly SIMD kernels of the `.bin` runtime, assembled here byte by byte (no toolchain):
 * the requantisation epilogues, the NHWC depthwise convolution and the im2row packing of NHWC
 * convolutions for the float GEMM, the loops that cost most in JavaScript. Each engine instantiates the module on its own memory (its arena, scratch and
 * constants); pointers are byte offsets into it.
 *
 * The arithmetic is the contract's, lane by lane: i32 sums (wrapping), f32x4.convert_i32x4_s
 * = fround, f32x4.mul/add/div = correctly rounded float32 ops = fround of the exact result,
 * f32x4.nearest = round half to even, clamping to integer bounds (the same as clamping after
 * rounding), i32x4.trunc_sat of an integral value = the value.
 */

import { functionBody, section, sleb, uleb, vec, wasmName as str } from '../kernels/wasm-binary';

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const EMPTY = 0x40;

/** A function body under construction (a tiny assembler: one method per instruction used). */
class Fn {
  readonly code: number[] = [];
  private readonly localTypes: number[] = [];
  constructor(readonly params: number[]) {}
  local(type: number): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }
  private op(...b: number[]): this {
    for (const x of b) this.code.push(x);
    return this;
  }
  private simd(code: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(code), ...imm);
  }
  get(i: number): this { return this.op(0x20, ...uleb(i)); }
  set(i: number): this { return this.op(0x21, ...uleb(i)); }
  tee(i: number): this { return this.op(0x22, ...uleb(i)); }
  i32(v: number): this { return this.op(0x41, ...sleb(v)); }
  add(): this { return this.op(0x6a); }
  sub(): this { return this.op(0x6b); }
  mul(): this { return this.op(0x6c); }
  and(): this { return this.op(0x71); }
  ltU(): this { return this.op(0x49); }
  ltS(): this { return this.op(0x48); }
  geS(): this { return this.op(0x4e); }
  eqz(): this { return this.op(0x45); }
  block(): this { return this.op(0x02, EMPTY); }
  loop(): this { return this.op(0x03, EMPTY); }
  if(): this { return this.op(0x04, EMPTY); }
  end(): this { return this.op(0x0b); }
  br(d: number): this { return this.op(0x0c, ...uleb(d)); }
  brIf(d: number): this { return this.op(0x0d, ...uleb(d)); }
  loadI32(off = 0): this { return this.op(0x28, 2, ...uleb(off)); }
  loadF32(off = 0): this { return this.op(0x2a, 2, ...uleb(off)); }
  loadI8(off = 0): this { return this.op(0x2c, 0, ...uleb(off)); }
  storeI32(off = 0): this { return this.op(0x36, 2, ...uleb(off)); }
  storeI8(off = 0): this { return this.op(0x3a, 0, ...uleb(off)); }
  storeF32(off = 0): this { return this.op(0x38, 2, ...uleb(off)); }
  divU(): this { return this.op(0x6e); }
  f32FromI32(): this { return this.op(0xb2); }
  f32Mul(): this { return this.op(0x94); }
  f32Add(): this { return this.op(0x92); }
  f32Div(): this { return this.op(0x95); }
  f32Min(): this { return this.op(0x96); }
  f32Max(): this { return this.op(0x97); }
  f32Nearest(): this { return this.op(0x90); }
  i32TruncSatF32(): this { return this.op(0xfc, 0x00); }
  vload(off = 0): this { return this.simd(0x00, 4, ...uleb(off)); }
  vstore(off = 0): this { return this.simd(0x0b, 4, ...uleb(off)); }
  vload32zero(off = 0): this { return this.simd(0x5c, 2, ...uleb(off)); }
  f32x4Splat(): this { return this.simd(0x13); }
  i32x4ExtractLane(l: number): this { return this.simd(0x1b, l); }
  i8x16NarrowI16(): this { return this.simd(0x65); }
  i16x8NarrowI32(): this { return this.simd(0x85); }
  i16x8ExtendLowI8(): this { return this.simd(0x87); }
  i32x4ExtendLowI16(): this { return this.simd(0xa7); }
  i32x4Add(): this { return this.simd(0xae); }
  i32x4Mul(): this { return this.simd(0xb5); }
  f32x4Nearest(): this { return this.simd(0x6a); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f32x4Div(): this { return this.simd(0xe7); }
  f32x4Min(): this { return this.simd(0xe8); }
  f32x4Max(): this { return this.simd(0xe9); }
  i32x4TruncSatF32(): this { return this.simd(0xf8); }
  f32x4FromI32(): this { return this.simd(0xfa); }
  /** local += c */
  inc(l: number, c: number): this { return this.get(l).i32(c).add().set(l); }
  body(): number[] {
    return functionBody(this.localTypes, this.code);
  }
}

/** Requantise an i32x4 on the stack: (v · mult) rounded, clamped to [vlo, vhi] → i32x4 on the stack. */
function requantVec(f: Fn, mult: () => void, vlo: number, vhi: number): void {
  f.f32x4FromI32();
  mult();
  f.f32x4Mul().f32x4Nearest().get(vlo).f32x4Max().get(vhi).f32x4Min().i32x4TruncSatF32();
}

/** The fused add on an i32x4 q (the conv's int8 result) on the stack; residual bytes at `res`. */
function addVec(f: Fn, res: () => void, sSelf: number, sOther: number, sOut: number, alo: number, ahi: number): void {
  f.f32x4FromI32().get(sSelf).f32x4Mul();
  res();
  f.vload32zero().i16x8ExtendLowI8().i32x4ExtendLowI16().f32x4FromI32().get(sOther).f32x4Mul();
  f.f32x4Add().get(sOut).f32x4Div().f32x4Nearest().get(alo).f32x4Max().get(ahi).f32x4Min().i32x4TruncSatF32();
}

/** Store the low 4 lanes of an i32x4 (values in int8 range) as 4 bytes at the address below it. */
function store4(f: Fn, v: number): void {
  f.get(v).get(v).i16x8NarrowI32().get(v).get(v).i16x8NarrowI32().i8x16NarrowI16().i32x4ExtractLane(0).storeI32();
}

/**
 * rq*(pAcc, pBias, pMult, pY, P, M, lo, hi[, pRes, sSelf, sOther, sOut, alo, ahi]):
 * y[p·M + m] = clamp(nearest((acc[p·M + m] + bias[m]) · mult[m]), lo, hi) [then the fused add].
 * `acc` is f32 (exact integers) or i32.
 */
function requantFn(intAcc: boolean, withAdd: boolean): Fn {
  const params = [I32, I32, I32, I32, I32, I32, I32, I32];
  if (withAdd) params.push(I32, F32, F32, F32, I32, I32);
  const f = new Fn(params);
  const [ACC, BIAS, MULT, Y, P, M, LO, HI, RES, SSELF, SOTHER, SOUT, ALO, AHI] = params.map((_, i) => i);
  const p = f.local(I32), m = f.local(I32), a = f.local(I32), y = f.local(I32), m4 = f.local(I32), r = f.local(I32), t = f.local(I32);
  const vlo = f.local(V128), vhi = f.local(V128), v = f.local(V128), vs = f.local(V128), vo = f.local(V128), vout = f.local(V128), valo = f.local(V128), vahi = f.local(V128);
  const flo = f.local(F32), fhi = f.local(F32), x = f.local(F32);
  f.get(LO).f32FromI32().tee(flo).f32x4Splat().set(vlo);
  f.get(HI).f32FromI32().tee(fhi).f32x4Splat().set(vhi);
  if (withAdd) {
    f.get(SSELF).f32x4Splat().set(vs).get(SOTHER).f32x4Splat().set(vo).get(SOUT).f32x4Splat().set(vout);
    f.get(ALO).f32FromI32().f32x4Splat().set(valo).get(AHI).f32FromI32().f32x4Splat().set(vahi);
    f.get(RES).set(r);
  }
  f.get(M).i32(-4).and().set(m4);
  f.get(ACC).set(a).get(Y).set(y).i32(0).set(p);
  f.block();
  f.get(P).i32(1).ltS().brIf(0);
  f.loop(); // rows
  f.i32(0).set(m);
  f.block();
  f.get(m4).eqz().brIf(0);
  f.loop(); // 4 channels at a time
  f.get(y).get(m).add(); // store address
  f.get(a).get(m).i32(4).mul().add().vload();
  if (!intAcc) f.i32x4TruncSatF32();
  f.get(BIAS).get(m).i32(4).mul().add().vload().i32x4Add();
  requantVec(f, () => f.get(MULT).get(m).i32(4).mul().add().vload(), vlo, vhi);
  if (withAdd) addVec(f, () => f.get(r).get(m).add(), vs, vo, vout, valo, vahi);
  f.set(v);
  store4(f, v);
  f.get(m).i32(4).add().tee(m).get(m4).ltU().brIf(0);
  f.end();
  f.end();
  // the channels left over (M not a multiple of 4)
  f.block();
  f.get(m).get(M).geS().brIf(0);
  f.loop();
  if (intAcc) f.get(a).get(m).i32(4).mul().add().loadI32();
  else f.get(a).get(m).i32(4).mul().add().loadF32().i32TruncSatF32();
  f.get(BIAS).get(m).i32(4).mul().add().loadI32().add();
  f.f32FromI32().get(MULT).get(m).i32(4).mul().add().loadF32().f32Mul().f32Nearest().get(flo).f32Max().get(fhi).f32Min().set(x);
  if (withAdd) {
    f.get(x).get(SSELF).f32Mul();
    f.get(r).get(m).add().loadI8().f32FromI32().get(SOTHER).f32Mul().f32Add().get(SOUT).f32Div().f32Nearest();
    f.get(ALO).f32FromI32().f32Max().get(AHI).f32FromI32().f32Min().set(x);
  }
  f.get(y).get(m).add().get(x).i32TruncSatF32().storeI8();
  f.get(m).i32(1).add().tee(m).get(M).ltS().brIf(0);
  f.end();
  f.end();
  f.get(a).get(M).i32(4).mul().add().set(a);
  f.get(y).get(M).add().set(y);
  if (withAdd) f.get(r).get(M).add().set(r);
  f.get(p).i32(1).add().tee(p).get(P).ltU().brIf(0);
  f.end();
  f.end();
  void t;
  return f;
}

/**
 * dw(pX, pW, pBias, pMult, pY, N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl, lo, hi):
 * depthwise NHWC int8 convolution (one output channel per input channel, C a multiple of 4),
 * i32 sums of x · w (weights i32 [kh·kw][C]) plus the bias, requantised.
 */
function depthwiseFn(): Fn {
  const f = new Fn(new Array<number>(21).fill(I32));
  const [X, WT, BIAS, MULT, Y, N, H, W, C, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, LO, HI] = Array.from({ length: 21 }, (_, i) => i);
  const n = f.local(I32), oy = f.local(I32), ox = f.local(I32), c = f.local(I32), ky = f.local(I32), kx = f.local(I32);
  const iy = f.local(I32), ix = f.local(I32), y = f.local(I32), img = f.local(I32), rowIn = f.local(I32), wRow = f.local(I32);
  const acc = f.local(V128), vlo = f.local(V128), vhi = f.local(V128), v = f.local(V128);
  f.get(LO).f32FromI32().f32x4Splat().set(vlo);
  f.get(HI).f32FromI32().f32x4Splat().set(vhi);
  f.get(Y).set(y);
  f.i32(0).set(n);
  f.loop(); // images
  f.get(X).get(n).get(H).mul().get(W).mul().get(C).mul().add().set(img);
  f.i32(0).set(oy);
  f.loop(); // output rows
  f.i32(0).set(ox);
  f.loop(); // output columns
  f.i32(0).set(c);
  f.loop(); // channel groups of 4
  f.get(BIAS).get(c).i32(4).mul().add().vload().set(acc);
  f.i32(0).set(ky);
  f.loop(); // kernel rows
  f.get(oy).get(SH).mul().get(PT).sub().get(ky).get(DH).mul().add().tee(iy).get(H).ltU().if();
  f.get(img).get(iy).get(W).mul().get(C).mul().add().set(rowIn);
  f.get(WT).get(ky).get(KW).mul().get(C).mul().get(c).add().i32(4).mul().add().set(wRow);
  f.i32(0).set(kx);
  f.loop(); // kernel columns
  f.get(ox).get(SW).mul().get(PL).sub().get(kx).get(DW).mul().add().tee(ix).get(W).ltU().if();
  f.get(acc);
  f.get(rowIn).get(ix).get(C).mul().add().get(c).add().vload32zero().i16x8ExtendLowI8().i32x4ExtendLowI16();
  f.get(wRow).get(kx).get(C).mul().i32(4).mul().add().vload().i32x4Mul().i32x4Add().set(acc);
  f.end();
  f.get(kx).i32(1).add().tee(kx).get(KW).ltU().brIf(0);
  f.end();
  f.end();
  f.get(ky).i32(1).add().tee(ky).get(KH).ltU().brIf(0);
  f.end();
  f.get(y).get(c).add();
  f.get(acc);
  requantVec(f, () => f.get(MULT).get(c).i32(4).mul().add().vload(), vlo, vhi);
  f.set(v);
  store4(f, v);
  f.get(c).i32(4).add().tee(c).get(C).ltU().brIf(0);
  f.end();
  f.get(y).get(C).add().set(y);
  f.get(ox).i32(1).add().tee(ox).get(OW).ltU().brIf(0);
  f.end();
  f.get(oy).i32(1).add().tee(oy).get(OH).ltU().brIf(0);
  f.end();
  f.get(n).i32(1).add().tee(n).get(N).ltU().brIf(0);
  f.end();
  return f;
}

/**
 * im2row(pTab, taps, Cg, cOff, k0, kc, i0, nPanels, pDst): A-operand panels of an NHWC
 * convolution for the float GEMM (kernels/gemm.ts layout: per panel of 4 output pixels, kc
 * groups of 4 floats, k-major). Row p's taps are absolute byte addresses at pTab + 4·(p·taps + t)
 * (padding taps point at zero bytes); depth k = t·Cg + c reads the int8 at address + cOff + c.
 */
function im2rowFn(): Fn {
  const f = new Fn(new Array<number>(9).fill(I32));
  const [TAB, TAPS, CG, COFF, K0, KC, I0, NP, DST] = Array.from({ length: 9 }, (_, i) => i);
  const pnl = f.local(I32), d = f.local(I32), row = f.local(I32), t = f.local(I32), ch = f.local(I32), k = f.local(I32), q = f.local(I32), stride = f.local(I32), t0 = f.local(I32), c0 = f.local(I32);
  const a = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const loadTaps = (): void => {
    for (let r = 0; r < 4; r++) f.get(row).get(stride).i32(r).mul().add().get(t).i32(4).mul().add().loadI32().set(a[r]);
  };
  f.get(K0).get(CG).divU().set(t0);
  f.get(K0).get(t0).get(CG).mul().sub().set(c0);
  f.get(TAPS).i32(4).mul().set(stride);
  f.get(DST).set(d);
  f.i32(0).set(pnl);
  f.block();
  f.get(NP).eqz().brIf(0);
  f.loop(); // panels
  f.get(TAB).get(I0).get(pnl).i32(4).mul().add().get(stride).mul().add().set(row);
  f.get(t0).set(t).get(c0).set(ch);
  loadTaps();
  f.i32(0).set(k);
  f.block();
  f.get(KC).eqz().brIf(0);
  f.loop(); // depth
  f.get(COFF).get(ch).add().set(q);
  for (let r = 0; r < 4; r++) f.get(d).get(a[r]).get(q).add().loadI8().f32FromI32().storeF32(4 * r);
  f.inc(d, 16);
  f.get(ch).i32(1).add().tee(ch).get(CG).ltU().eqz().if();
  f.i32(0).set(ch);
  f.get(t).i32(1).add().tee(t).get(TAPS).ltU().if();
  loadTaps();
  f.end();
  f.end();
  f.get(k).i32(1).add().tee(k).get(KC).ltU().brIf(0);
  f.end();
  f.end();
  f.get(pnl).i32(1).add().tee(pnl).get(NP).ltU().brIf(0);
  f.end();
  f.end();
  return f;
}

export type Im2rowKernel = (pTab: number, taps: number, Cg: number, cOff: number, k0: number, kc: number, i0: number, nPanels: number, pDst: number) => void;

export type RequantKernel = (pAcc: number, pBias: number, pMult: number, pY: number, P: number, M: number, lo: number, hi: number) => void;
export type RequantAddKernel = (
  pAcc: number, pBias: number, pMult: number, pY: number, P: number, M: number, lo: number, hi: number,
  pRes: number, sSelf: number, sOther: number, sOut: number, alo: number, ahi: number,
) => void;
export type DepthwiseKernel = (
  pX: number, pW: number, pBias: number, pMult: number, pY: number, N: number, H: number, W: number, C: number, OH: number, OW: number,
  kh: number, kw: number, sh: number, sw: number, dh: number, dw: number, pt: number, pl: number, lo: number, hi: number,
) => void;

interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum?: number }) => WasmMemory;
}

const wasmApi = (): WasmApi | undefined => (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

export interface BinWasm {
  memory: WasmMemory;
  rqF: RequantKernel;
  rqI: RequantKernel;
  rqAddF: RequantAddKernel;
  rqAddI: RequantAddKernel;
  dw: DepthwiseKernel;
  im2row: Im2rowKernel;
}

export function binModuleBytes(): Uint8Array {
  const fns: { name: string; fn: Fn }[] = [
    { name: 'rqF', fn: requantFn(false, false) },
    { name: 'rqI', fn: requantFn(true, false) },
    { name: 'rqAddF', fn: requantFn(false, true) },
    { name: 'rqAddI', fn: requantFn(true, true) },
    { name: 'dw', fn: depthwiseFn() },
    { name: 'im2row', fn: im2rowFn() },
  ];
  const types = section(1, vec(fns.map((x) => [0x60, ...vec(x.fn.params.map((p) => [p])), ...vec([])])));
  const imports = section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x00, ...uleb(1)]]));
  const funcs = section(3, vec(fns.map((_, i) => uleb(i))));
  const exports = section(7, vec(fns.map((x, i) => [...str(x.name), 0x00, ...uleb(i)])));
  const code = section(10, vec(fns.map((x) => x.fn.body())));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...funcs, ...exports, ...code]);
}

let compiled: object | null | undefined;

/** The compiled module, or undefined without WebAssembly SIMD (or with NX_PTQ_NO_WASM=1). */
function binModule(): object | undefined {
  if (compiled !== undefined) return compiled ?? undefined;
  compiled = null;
  const wa = wasmApi();
  if (process.env.NX_PTQ_NO_WASM === '1' || !wa) return undefined;
  try {
    const bytes = binModuleBytes();
    if (wa.validate(bytes)) compiled = new wa.Module(bytes);
  } catch {
    compiled = null;
  }
  return compiled ?? undefined;
}

export function binWasmAvailable(): boolean {
  return binModule() !== undefined;
}

/** The kernels on a new memory of at least `bytes` bytes (never grown: views on it stay valid). */
export function instantiateBinWasm(bytes: number): BinWasm | undefined {
  const mod = binModule();
  if (!mod) return undefined;
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  if (pages > 65536) return undefined;
  const wa = wasmApi() as WasmApi;
  const memory = new wa.Memory({ initial: pages, maximum: pages });
  const e = new wa.Instance(mod, { env: { mem: memory } }).exports;
  return { memory, rqF: e.rqF as RequantKernel, rqI: e.rqI as RequantKernel, rqAddF: e.rqAddF as RequantAddKernel, rqAddI: e.rqAddI as RequantAddKernel, dw: e.dw as DepthwiseKernel, im2row: e.im2row as Im2rowKernel };
}
