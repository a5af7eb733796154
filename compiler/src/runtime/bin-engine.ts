import { attrOf, BinAttr, BinFile, BinModel, BinOp, BinValue, decodeBin, readBinFile, selectModel } from '../compile/bin-format';
import { PtqError } from '../errors';
import { stridedOffsets, stridesOf } from '../kernels/shape';
import { arrayCtor, bytesPerElement, DType, TypedArray } from '../onnx/dtype';
import { Attribute, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { findOp, OpDef, ValueFacts } from '../ops/registry';
import { RELABEL_OPS, transposeIsRelabel } from '../compile/layout';
import { sameBytes } from '../compile/program';
import { Engine, RunOptions } from './engine';
import {
  AddEpilogue, avgPoolNhwc, convOutSize, ConvGeometry2d, depthwiseConv, depthwiseExact, dequantTable, gemmConv, GemmConv, globalAvgPoolNhwc,
  globalMaxPoolNhwc, maxPoolNhwc, needsAcc, PoolGeometry, poolTaps, prepareDepthwise, prepareGemmConv, quantizeOne, requantRows,
} from './bin-kernels';
import { runStep } from './reference';
import { depthBlock, PanelPacker } from '../kernels/gemm';
import { BinWasm, binWasmAvailable, instantiateBinWasm } from './bin-wasm';

/**
 * The `.bin` host runtime: executes one model of a `.bin` (compile/bin-format.ts) on the host
 * with the integer kernels of bin-kernels.ts and, for CPU ops and the ONNX ops the BPU runs as
 * they are, the op registry's kernels — the same arithmetic as the ReferenceEngine running
 * `***_quantized_model.onnx`, bit for bit.
 *
 * Loading checks every op (known type, attributes present and in range, input and output
 * shapes consistent) and refuses a bad file with one E_BIN_OP PtqError; then everything is
 * prepared once: the activation arena of the memory plan (one ArrayBuffer, values are views
 * at their offsets), constants decoded, weights packed, index tables and scratch buffers
 * allocated. A run copies the feeds in, runs the steps and copies the outputs out; the
 * fused BPU kernels allocate nothing (the registry-run ops allocate their results).
 */

const NX = 'nx_ptq';
/** Largest arena / value the runtime accepts (bytes). */
const MAX_BYTES = 2 ** 31 - 1;

type Layout = 'plain' | 'nhwc';

interface Slot {
  value: BinValue;
  layout: Layout;
  /** physical dims (as stored) */
  dims: number[];
  /** logical (ONNX) dims */
  logical: number[];
  data: TypedArray;
}

export interface BinStep {
  name: string;
  type: string;
  domain: string;
  segment: string;
  kind: 'bpu' | 'cpu';
  outputs: string[];
  run: () => void;
}

class OpError extends Error {}

function bad(msg: string): never {
  throw new OpError(msg);
}

function product(d: readonly number[]): number {
  let n = 1;
  for (const x of d) n *= x;
  return n;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Logical → physical index map, and physical → logical (for NHWC values). */
function logicalOfNhwc(phys: readonly number[]): number[] {
  return [phys[0], phys[3], phys[1], phys[2]];
}

/** For each element in logical order, its physical index (layout nhwc of rank 4). */
function logicalToPhysicalMap(logical: readonly number[]): Int32Array {
  const [N, C, H, W] = logical;
  // physical strides of [N, H, W, C]
  return stridedOffsets(logical, [H * W * C, 1, W * C, C]);
}

/** The storage order of a value's elements as a gather map from logical order; undefined when plain. */
function gatherMap(s: Slot): Int32Array | undefined {
  return s.layout === 'nhwc' ? logicalToPhysicalMap(s.logical) : undefined;
}

/** Copy `src` (physical, layout `from`) into `dst` (physical, layout `to`), rank-4 dims given logically. */
export function convertLayout(src: TypedArray, from: Layout, dst: TypedArray, to: Layout, logical: readonly number[]): void {
  if (from === to || logical.length !== 4) {
    (dst as Float32Array).set(src as Float32Array);
    return;
  }
  const [N, C, H, W] = logical;
  const plane = H * W;
  const s = src as Float32Array;
  const d = dst as Float32Array;
  if (from === 'nhwc') {
    // NHWC → NCHW
    for (let n = 0; n < N; n++) {
      const sb = n * plane * C;
      for (let c = 0; c < C; c++) {
        const db = (n * C + c) * plane;
        for (let p = 0, q = sb + c; p < plane; p++, q += C) d[db + p] = s[q];
      }
    }
  } else {
    for (let n = 0; n < N; n++) {
      const db = n * plane * C;
      for (let c = 0; c < C; c++) {
        const sb = (n * C + c) * plane;
        for (let p = 0, q = db + c; p < plane; p++, q += C) d[q] = s[sb + p];
      }
    }
  }
}

function toAttribute(a: BinAttr): Attribute {
  if (a.f !== undefined) return { type: 'float', value: a.f };
  if (a.i !== undefined) return { type: 'int', value: a.i };
  if (a.s !== undefined) return { type: 'string', value: a.s };
  if (a.floats !== undefined) return { type: 'floats', value: a.floats.slice() };
  return { type: 'ints', value: (a.ints ?? []).slice() };
}

/**
 * Where a loaded engine keeps its arrays: one buffer (the WebAssembly kernels' memory when they
 * are available) holding the activation arena, the inputs and outputs, per-op constants and
 * one scratch region shared by all ops. Sized by a first build pass, never grown.
 */
class Heap {
  private top = 0;
  private sharedMax = 0;
  private sharedBase = 0;
  constructor(readonly buffer: ArrayBuffer | undefined, sharedBytes = 0) {
    if (buffer) {
      this.sharedBase = 0;
      this.top = Math.ceil(sharedBytes / 64) * 64;
    }
  }

  get bytes(): number {
    return this.top + Math.ceil(this.sharedMax / 64) * 64 + 64;
  }

  get shared(): number {
    return this.sharedMax;
  }

  alloc<T extends TypedArray>(Ctor: { new (n: number): T; new (b: ArrayBuffer, off: number, n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
    const off = Math.ceil(this.top / 64) * 64;
    this.top = off + n * Ctor.BYTES_PER_ELEMENT;
    if (!this.buffer) return new Ctor(n);
    return new Ctor(this.buffer, off, n);
  }

  /** Like alloc, but the sizing pass gets an empty array (nothing is written before the real pass). */
  reserve<T extends TypedArray>(Ctor: { new (n: number): T; new (b: ArrayBuffer, off: number, n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
    if (this.buffer) return this.alloc(Ctor, n);
    this.top = Math.ceil(this.top / 64) * 64 + n * Ctor.BYTES_PER_ELEMENT;
    return new Ctor(0);
  }

  get sizing(): boolean {
    return !this.buffer;
  }

  /** Views of the shared scratch region (valid during one op's run only), laid out one after the other. */
  scratch(parts: [{ new (n: number): TypedArray; new (b: ArrayBuffer, off: number, n: number): TypedArray; BYTES_PER_ELEMENT: number }, number][]): TypedArray[] {
    let off = 0;
    const views: TypedArray[] = [];
    for (const [Ctor, n] of parts) {
      off = Math.ceil(off / 64) * 64;
      views.push(this.buffer ? new Ctor(this.buffer, this.sharedBase + off, n) : new Ctor(0));
      off += n * Ctor.BYTES_PER_ELEMENT;
    }
    this.sharedMax = Math.max(this.sharedMax, off);
    return views;
  }
}

export interface BinEngineOptions {
  /** name the file in messages */
  source?: string;
}

export class BinEngine implements Engine {
  readonly name = 'bin';
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly steps: BinStep[] = [];
  private readonly slots = new Map<string, Slot>();
  private readonly consts = new Map<string, Tensor>();
  private readonly source: string;
  private current?: BinOp;
  private heap!: Heap;
  private arenaBase = 0;
  private useWasm = false;
  private wasm?: BinWasm;
  /** prepared weights by op name (the first build pass packs them, the second reuses them) */
  private readonly prepared = new Map<string, unknown>();

  /** Load a model of a `.bin` file (path), bytes, or decoded file; `modelName` picks one of a packed file. */
  static load(file: string | Uint8Array | BinFile, modelName?: string, opts: BinEngineOptions = {}): BinEngine {
    const source = opts.source ?? (typeof file === 'string' ? file : '<bin>');
    const bin = typeof file === 'string' ? readBinFile(file) : file instanceof Uint8Array ? decodeBin(file, source) : file;
    return new BinEngine(selectModel(bin, modelName, source), { source });
  }

  constructor(readonly model: BinModel, opts: BinEngineOptions = {}) {
    this.source = opts.source ?? '<bin>';
    this.inputNames = model.inputs.map((i) => i.name);
    this.outputNames = model.outputs.map((o) => o.name);
    try {
      if (!(model.arenaBytes >= 0 && model.arenaBytes <= MAX_BYTES && Number.isInteger(model.arenaBytes))) bad(`arena of ${model.arenaBytes} bytes`);
      // the arena is as large as the values placed in it (plus alignment), not more
      const end = model.values.reduce((e, v) => (v.offset >= 0 ? Math.max(e, v.offset + v.bytes) : e), 0);
      if (model.arenaBytes > end + 64 || model.arenaBytes < end) bad(`arena of ${model.arenaBytes} bytes for values ending at byte ${end}`);
      let outside = 0;
      for (const v of model.values) outside += v.offset < 0 ? product(v.shape) * bytesPerElement(v.dtype) : 0;
      if (outside > MAX_BYTES) bad(`inputs and outputs need ${outside} bytes`);
      for (const t of model.tensors) this.consts.set(t.name, Tensor.fromRaw(t.dtype, t.dims, t.raw));
      this.useWasm = binWasmAvailable();
      // pass 1 sizes the heap, pass 2 builds on it
      const sizing = new Heap(undefined);
      this.heap = sizing;
      this.buildAll();
      const total = sizing.bytes;
      if (total > MAX_BYTES) bad(`needs ${total} bytes of memory`);
      this.wasm = this.useWasm ? instantiateBinWasm(total) : undefined;
      if (this.useWasm && !this.wasm) bad(`cannot allocate ${total} bytes of WebAssembly memory`);
      this.heap = new Heap(this.wasm ? this.wasm.memory.buffer : new ArrayBuffer(total), sizing.shared);
      this.buildAll();
    } catch (e) {
      if (e instanceof PtqError) throw e;
      const where = this.current ? `op '${this.current.name}' (${this.current.domain ? `${this.current.domain}::` : ''}${this.current.type})` : 'its values';
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      throw new PtqError('E_BIN_OP', `model '${model.name}' in '${this.source}': ${where} cannot run: ${why}`, {
        subject: this.source,
        fix: 'the .bin is corrupted or was written by an incompatible nx-ptq; compile the model again (nx run <model>:compile or ptq makertbin)',
      });
    }
  }

  private buildAll(): void {
    this.steps.length = 0;
    this.slots.clear();
    this.current = undefined;
    const arena = this.heap.reserve(Uint8Array, this.model.arenaBytes);
    this.arenaBase = arena.byteOffset;
    for (const v of this.model.values) this.slots.set(v.name, this.makeSlot(v, arena));
    this.checkIo();
    for (const seg of this.model.segments) {
      for (const op of seg.ops) {
        this.current = op;
        const run = this.build(op);
        this.steps.push({ name: op.name, type: op.type, domain: op.domain, segment: seg.name, kind: seg.kind, outputs: op.outputs.filter((o) => o), run });
      }
    }
    this.current = undefined;
  }

  // ---------------------------------------------------------------- storage

  private makeSlot(v: BinValue, arena: Uint8Array): Slot {
    const layout: Layout = v.layout === 'NHWC' ? 'nhwc' : 'plain';
    if (layout === 'nhwc' && v.shape.length !== 4) bad(`value '${v.name}' is NHWC with rank ${v.shape.length}`);
    if (v.dtype === 'string') bad(`value '${v.name}' has string elements`);
    const n = product(v.shape);
    const bpe = bytesPerElement(v.dtype);
    if (n * bpe > MAX_BYTES) bad(`value '${v.name}' needs ${n * bpe} bytes`);
    const Ctor = arrayCtor(v.dtype);
    let data: TypedArray;
    if (v.bytes !== n * bpe) bad(`value '${v.name}' records ${v.bytes} bytes, its ${v.dtype}[${v.shape}] has ${n * bpe}`);
    if (v.offset >= 0) {
      if (!Number.isInteger(v.offset) || v.offset % bpe !== 0 || v.offset + n * bpe > this.model.arenaBytes) bad(`value '${v.name}' at offset ${v.offset} (${n * bpe} bytes) is outside the ${this.model.arenaBytes}-byte arena`);
      data = this.heap.sizing ? new Ctor(n) : new Ctor(arena.buffer, arena.byteOffset + v.offset, n);
    } else data = this.heap.alloc(Ctor as never, n);
    return { value: v, layout, dims: v.shape.slice(), logical: layout === 'nhwc' ? logicalOfNhwc(v.shape) : v.shape.slice(), data };
  }

  private checkIo(): void {
    const seen = new Set<string>();
    for (const io of [...this.model.inputs, ...this.model.outputs]) {
      const s = this.slots.get(io.value);
      if (!s) bad(`input/output '${io.name}' binds to unknown value '${io.value}'`);
      if (s.value.dtype !== io.dtype || !sameDims(s.dims, io.shape)) bad(`input/output '${io.name}' is ${io.dtype}[${io.shape}], its value '${io.value}' is ${s.value.dtype}[${s.dims}]`);
    }
    for (const io of this.model.inputs) {
      if (seen.has(io.value)) bad(`two inputs bind value '${io.value}'`);
      seen.add(io.value);
      if ((this.slots.get(io.value) as Slot).value.offset >= 0) bad(`input value '${io.value}' lies in the arena`);
    }
  }

  private slot(name: string, what = 'input'): Slot {
    const s = this.slots.get(name);
    if (!s) bad(`${what} '${name}' is not a value`);
    return s;
  }

  private constTensor(name: string): Tensor {
    const t = this.consts.get(name);
    if (!t) bad(`'${name}' is not a constant`);
    return t;
  }

  // ---------------------------------------------------------------- running

  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    return this.runSync(feeds, opts);
  }

  /** Run once. `profile[i]` accumulates the milliseconds of step i. */
  runSync(feeds: Record<string, Tensor>, opts: RunOptions & { profile?: Float64Array } = {}): Record<string, Tensor> {
    this.feed(feeds);
    const fetch = new Set(opts.fetch ?? []);
    for (const f of fetch) if (!this.slots.has(f)) throw new PtqError('E_VALUE_UNKNOWN', `value '${f}' is not a value of the .bin model`, { subject: f, fix: 'ask for a value name of the model (ptq model-info lists them)' });
    const fetched: Record<string, Tensor> = {};
    const prof = opts.profile;
    const now = (): number => performance.now();
    let i = 0;
    try {
      for (; i < this.steps.length; i++) {
        const st = this.steps[i];
        if (prof) {
          const t0 = now();
          st.run();
          prof[i] += now() - t0;
        } else st.run();
        if (fetch.size) for (const o of st.outputs) if (fetch.has(o)) fetched[o] = this.logicalTensor(o);
      }
    } catch (e) {
      if (e instanceof PtqError) throw e;
      const st = this.steps[i];
      throw new PtqError('E_BIN_RUN', `model '${this.model.name}' in '${this.source}': op '${st?.name}' (${st?.type}) failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, {
        subject: this.source,
        fix: 'the .bin does not match this runtime; compile the model again with this version of nx-ptq',
      });
    }
    for (const f of fetch) if (!fetched[f]) fetched[f] = this.logicalTensor(f);
    const out: Record<string, Tensor> = {};
    for (const io of this.model.outputs) {
      const s = this.slots.get(io.value) as Slot;
      out[io.name] = new Tensor(io.dtype, io.shape, s.data.slice());
    }
    return { ...out, ...fetched };
  }

  /** Copy the feeds into the input values (checked against the model's input descriptions). */
  private feed(feeds: Record<string, Tensor>): void {
    for (const io of this.model.inputs) {
      const t = feeds[io.name];
      if (!t) {
        throw new PtqError('E_INPUT_MISSING', `model input '${io.name}' was not given`, { subject: io.name, fix: `provide one tensor per model input (${this.inputNames.join(', ')})` });
      }
      if (t.dtype !== io.dtype) {
        throw new PtqError('E_INPUT_TYPE', `model input '${io.name}' expects ${io.dtype}${io.typeRt ? ` (input_type_rt ${io.typeRt})` : ''}, got ${t.dtype}`, { subject: io.name, fix: `convert the data to ${io.dtype}` });
      }
      if (!sameDims(t.dims, io.shape)) {
        throw new PtqError('E_INPUT_SHAPE', `model input '${io.name}' expects shape [${io.shape.join(',')}]${io.layout ? ` (${io.layout})` : ''}, got [${t.dims.join(',')}]`, {
          subject: io.name,
          fix: 'reshape the data to the model input shape',
        });
      }
      ((this.slots.get(io.value) as Slot).data as Float32Array).set(t.data as Float32Array);
    }
  }

  /** A value as a tensor in the logical (ONNX) order. */
  private logicalTensor(name: string): Tensor {
    const s = this.slots.get(name) as Slot;
    const dst = new (arrayCtor(s.value.dtype))(s.data.length);
    convertLayout(s.data, s.layout, dst, 'plain', s.logical);
    return new Tensor(s.value.dtype, s.logical, dst);
  }

  async dispose(): Promise<void> {
    /* everything lives on the JS heap */
  }

  // ---------------------------------------------------------------- op builders

  private build(op: BinOp): () => void {
    for (const i of op.inputs) if (i && !this.slots.has(i) && !this.consts.has(i)) bad(`reads unknown '${i}'`);
    for (const o of op.outputs) if (o && !this.slots.has(o)) bad(`writes unknown '${o}'`);
    if (op.domain === NX) {
      switch (op.type) {
        case 'Conv':
          return this.conv(op, false);
        case 'FC':
          return this.conv(op, true);
        case 'ConvFloatAcc':
          return this.convFloatAcc(op);
        case 'Lut':
          return this.lut(op);
        case 'Clip':
          return this.clip(op);
        case 'Eltwise':
          return this.eltwise(op);
        case 'AvgPool':
        case 'MaxPool':
          return this.pool(op);
        case 'GlobalAvgPool':
        case 'GlobalMaxPool':
          return this.globalPool(op);
        case 'Concat':
          return this.concat(op);
        case 'Requant':
          return this.requant(op);
        case 'Quantize':
          return this.quantize(op);
        case 'Dequantize':
          return this.dequantize(op);
        case 'LayoutConvert':
          return this.layoutConvert(op);
        case 'Preprocess':
          return this.preprocess(op);
        default:
          return bad(`unknown op type '${op.type}'`);
      }
    }
    return this.onnxOp(op);
  }

  // attribute readers
  private int(op: BinOp, name: string, def?: number): number {
    const a = attrOf(op.attrs, name);
    const v = a?.i ?? def;
    if (v === undefined || !Number.isInteger(v)) bad(`attribute '${name}' is missing or not an integer`);
    return v;
  }

  private float(op: BinOp, name: string, def?: number): number {
    const a = attrOf(op.attrs, name);
    const v = a?.f ?? def;
    if (v === undefined || !Number.isFinite(v)) bad(`attribute '${name}' is missing or not a finite number`);
    return v;
  }

  private scale(op: BinOp, name: string): number {
    const v = this.float(op, name);
    if (!(v > 0)) bad(`attribute '${name}' = ${v} is not a positive scale`);
    return v;
  }

  private str(op: BinOp, name: string, choices: string[], def?: string): string {
    const v = attrOf(op.attrs, name)?.s ?? def;
    if (v === undefined || !choices.includes(v)) bad(`attribute '${name}' must be one of ${choices.join(', ')} (got '${v ?? ''}')`);
    return v;
  }

  private ints(op: BinOp, name: string, len: number, min: number, max = 1 << 20, def?: number[]): number[] {
    const v = attrOf(op.attrs, name)?.ints ?? def;
    if (!v || v.length !== len || v.some((x) => !Number.isInteger(x) || x < min || x > max)) bad(`attribute '${name}' must be ${len} integers in [${min}, ${max}] (got [${v ?? ''}])`);
    return v;
  }

  private clampOf(op: BinOp, name: string, dtype: DType): [number, number] {
    const [lo, hi] = dtype === 'int16' ? [-32768, 32767] : [-128, 127];
    const c = this.ints(op, name, 2, lo, hi, [lo, hi]);
    if (c[0] > c[1]) bad(`attribute '${name}' [${c}] is empty`);
    return [c[0], c[1]];
  }

  private io(op: BinOp, nIn: [number, number], nOut = 1): { ins: string[]; outs: string[] } {
    if (op.inputs.length < nIn[0] || op.inputs.length > nIn[1]) bad(`has ${op.inputs.length} inputs, expected ${nIn[0]}${nIn[1] !== nIn[0] ? `–${nIn[1]}` : ''}`);
    const outs = op.outputs;
    if (outs.length !== nOut || outs.some((o) => !o)) bad(`has ${outs.length} outputs, expected ${nOut}`);
    return { ins: op.inputs, outs };
  }

  private typed(s: Slot, dtypes: DType[], what: string): void {
    if (!dtypes.includes(s.value.dtype)) bad(`${what} '${s.value.name}' is ${s.value.dtype}, expected ${dtypes.join(' or ')}`);
  }

  private conv(op: BinOp, fc: boolean): () => void {
    const { ins, outs } = this.io(op, [4, 5]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8'], 'input');
    this.typed(y, ['int8'], 'output');
    const w = this.constTensor(ins[1]);
    if (w.dtype !== 'int8') bad('weight is not int8');
    const mult = this.constTensor(ins[3]);
    if (mult.dtype !== 'float32') bad('multiplier is not float32');
    let geo: ConvGeometry2d;
    if (fc) {
      if (w.rank !== 2) bad(`FC weight has rank ${w.rank}`);
      const [M, K] = w.dims;
      if (x.layout === 'nhwc' && !(x.dims[1] === 1 && x.dims[2] === 1)) bad('FC input is NHWC with H, W > 1');
      const rows = K > 0 ? product(x.dims) / K : 0;
      if (!Number.isInteger(rows) || rows < 1 || x.dims[x.dims.length - 1] !== K) bad(`FC input [${x.dims}] has no rows of ${K}`);
      if (product(y.dims) !== rows * M || y.dims[y.dims.length - 1] !== M) bad(`FC output [${y.dims}] is not ${rows} rows of ${M}`);
      geo = { N: rows, H: 1, W: 1, C: K, M, OH: 1, OW: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0, group: 1 };
    } else {
      if (x.layout !== 'nhwc' || y.layout !== 'nhwc') bad('Conv input and output must be NHWC');
      if (w.rank !== 4) bad(`Conv weight has rank ${w.rank}`);
      const [N, H, W, C] = x.dims;
      const [M, kh, kw, Cg] = w.dims;
      const [k0, k1] = this.ints(op, 'kernel', 2, 1);
      const [sh, sw] = this.ints(op, 'strides', 2, 1);
      const [dh, dw] = this.ints(op, 'dilations', 2, 1);
      const [pt, pl, pb, pr] = this.ints(op, 'pads', 4, 0);
      const group = this.int(op, 'group', 1);
      if (k0 !== kh || k1 !== kw) bad(`kernel [${k0},${k1}] does not match the weight [${w.dims}]`);
      if (group < 1 || C !== Cg * group || M % group !== 0) bad(`group ${group} does not fit ${C} input / ${M} output channels (weight [${w.dims}])`);
      const OH = convOutSize(H, kh, sh, dh, pt, pb);
      const OW = convOutSize(W, kw, sw, dw, pl, pr);
      if (OH < 1 || OW < 1 || !sameDims(y.dims, [N, OH, OW, M])) bad(`output [${y.dims}] should be [${N},${OH},${OW},${M}]`);
      if (pt >= (kh - 1) * dh + 1 + H || pl >= (kw - 1) * dw + 1 + W) bad('pads larger than the window and input');
      geo = { N, H, W, C, M, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group };
    }
    const M = geo.M;
    if (mult.size !== M) bad(`multiplier has ${mult.size} values, expected ${M}`);
    const multF = mult.data as Float32Array;
    let bias: Int32Array | undefined;
    if (ins[2]) {
      const b = this.constTensor(ins[2]);
      if (b.dtype !== 'int32' || b.size !== M) bad(`bias must be int32[${M}]`);
      bias = b.data as Int32Array;
    }
    const [lo, hi] = this.clampOf(op, 'clamp', 'int8');
    let add: AddEpilogue | undefined;
    if (ins[4]) {
      const r = this.slot(ins[4]);
      this.typed(r, ['int8'], 'input');
      if (r.layout !== y.layout || !sameDims(r.dims, y.dims)) bad(`residual '${r.value.name}' [${r.dims}] does not match the output [${y.dims}]`);
      this.str(op, 'add', ['Add']);
      const [alo, ahi] = this.clampOf(op, 'add_clamp', 'int8');
      add = {
        self: dequantTable(this.scale(op, 'out_scale')), other: dequantTable(this.scale(op, 'add_other_scale')), residual: r.data as Int8Array,
        outScale: this.scale(op, 'add_out_scale'), lo: alo, hi: ahi,
      };
    }
    const xd = x.data as Int8Array;
    const yd = y.data as Int8Array;
    const wd = w.data as Int8Array;
    const P = geo.N * geo.OH * geo.OW;
    // per-op constants on the heap (the WebAssembly kernels read them there)
    const biasH = this.heap.alloc(Int32Array, M);
    if (bias) biasH.set(bias);
    const multH = this.heap.alloc(Float32Array, M);
    multH.set(multF);
    const depthwise = !fc && geo.C === geo.group && geo.M === geo.C;
    if (depthwise && this.useWasm && geo.C % 4 === 0 && !add) {
      // i32 weights [kh·kw][C]
      const taps = geo.kh * geo.kw;
      const wi = this.heap.alloc(Int32Array, taps * geo.C);
      for (let c = 0; c < geo.C; c++) for (let t = 0; t < taps; t++) wi[t * geo.C + c] = wd[c * taps + t];
      const g = geo;
      return () => (this.wasm as BinWasm).dw(xd.byteOffset, wi.byteOffset, biasH.byteOffset, multH.byteOffset, yd.byteOffset, g.N, g.H, g.W, g.C, g.OH, g.OW, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, lo, hi);
    }
    if (!fc && depthwiseExact(geo) && geo.C === geo.group) {
      const dw = this.cached(op, 'dw', () => prepareDepthwise(geo, wd));
      const [xf, yf] = this.heap.scratch([[Float32Array, geo.N * geo.C * geo.H * geo.W], [Float32Array, geo.N * geo.M * geo.OH * geo.OW]]) as Float32Array[];
      return () => depthwiseConv(dw, xd, xf, yf, bias, multF, lo, hi, yd, add);
    }
    const gc: GemmConv = this.cached(op, 'gemm', () => prepareGemmConv(geo, wd));
    const chunked = needsAcc(gc);
    const Pp = Math.ceil(P / 4) * 4;
    const kcMax = Math.max(...gc.groups.flatMap((g) => g.chunks.map((ch) => depthBlock(ch.k1 - ch.k0))));
    const parts: [typeof Float32Array | typeof Int32Array, number][] = [[Float32Array, P * M], [Float32Array, this.useWasm ? Pp * kcMax : 0]];
    if (chunked) parts.push([Int32Array, P * M]);
    const [out, packBuf, acc] = this.heap.scratch(parts) as [Float32Array, Float32Array, Int32Array | undefined];
    if (this.useWasm) {
      // im2row by the WebAssembly kernel: per output pixel and tap the address of the input pixel (or of zeros)
      const taps = geo.kh * geo.kw;
      const zeros = this.heap.alloc(Int8Array, geo.C + 16);
      const tab = this.heap.alloc(Int32Array, Pp * taps);
      if (!this.heap.sizing) {
        const zeroAddr = zeros.byteOffset;
        const base = xd.byteOffset;
        for (let p = 0; p < Pp; p++) {
          for (let t = 0; t < taps; t++) {
            const e = p >= P ? -1 : gc.taps ? gc.taps[p * taps + t] : p * geo.C;
            tab[p * taps + t] = e < 0 ? zeroAddr : base + e;
          }
        }
      }
      const Cg = geo.C / geo.group;
      // (the kernels exist from the second build pass on; nothing runs before)
      const k = this.wasm as BinWasm;
      const packAddr = packBuf.byteOffset;
      // one packer per group and depth chunk, made once (a run allocates nothing here)
      const packers = new Map<number, PanelPacker>();
      for (let gi = 0; gi < geo.group; gi++) {
        for (const ch of gc.groups[gi].chunks) {
          const kBase = ch.k0;
          packers.set(gi * gc.K + kBase, (dst, off, k0, kc, i0, n) => {
            const np = Math.ceil(n / 4);
            k.im2row(tab.byteOffset, taps, Cg, gi * Cg, k0 + kBase, kc, i0, np, packAddr);
            dst.set(packBuf.subarray(0, np * kc * 4), off);
          });
        }
      }
      const packer = (gi: number, kBase: number): PanelPacker => packers.get(gi * gc.K + kBase) as PanelPacker;
      const rq = chunked ? (...a: Parameters<BinWasm['rqI']>) => k.rqI(...a) : (...a: Parameters<BinWasm['rqF']>) => k.rqF(...a);
      const rqAdd = chunked ? (...a: Parameters<BinWasm['rqAddI']>) => k.rqAddI(...a) : (...a: Parameters<BinWasm['rqAddF']>) => k.rqAddF(...a);
      const res = add ? (add.residual as Int8Array) : undefined;
      const sSelf = this.scaleOr(op, 'out_scale');
      const sOther = this.scaleOr(op, 'add_other_scale');
      const sOut = this.scaleOr(op, 'add_out_scale');
      return () => {
        const sums = gemmConv(gc, xd, out, acc, packer);
        if (add && res) rqAdd(sums.byteOffset, biasH.byteOffset, multH.byteOffset, yd.byteOffset, P, M, lo, hi, res.byteOffset, sSelf, sOther, sOut, add.lo, add.hi);
        else rq(sums.byteOffset, biasH.byteOffset, multH.byteOffset, yd.byteOffset, P, M, lo, hi);
      };
    }
    return () => {
      const sums = gemmConv(gc, xd, out, acc);
      requantRows(sums, P, M, bias, multF, lo, hi, yd, add);
    };
  }

  /** A scale attribute when present (0 otherwise). */
  private scaleOr(op: BinOp, name: string): number {
    return attrOf(op.attrs, name)?.f ?? 0;
  }

  /** Prepared (packed) weights of an op, built once for both build passes. */
  private cached<T>(op: BinOp, kind: string, make: () => T): T {
    const key = `${kind}\u0000${op.name}`;
    let v = this.prepared.get(key) as T | undefined;
    if (v === undefined) {
      v = make();
      this.prepared.set(key, v);
    }
    return v;
  }

  private convFloatAcc(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [4, 4]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8'], 'input');
    const outDtype = this.str(op, 'out_dtype', ['int8', 'int16']) as 'int8' | 'int16';
    this.typed(y, [outDtype], 'output');
    const convType = this.str(op, 'conv', ['Conv', 'ConvTranspose']);
    const w = this.constTensor(ins[1]);
    const b = ins[2] ? this.constTensor(ins[2]) : undefined;
    const mult = this.constTensor(ins[3]);
    if (w.dtype !== 'float32' || mult.dtype !== 'float32' || (b && b.dtype !== 'float32')) bad('weights, bias and multiplier must be float32');
    const node = this.innerNode(op, convType, [ins[0], ins[1], ins[2] ?? ''], [outs[0]]);
    const opset = this.int(op, 'op_opset', 13);
    const def = this.registryOp(node, opset);
    const xf = new Float32Array(x.data.length);
    const xt = new Tensor('float32', x.logical, xf);
    const facts = def.infer({ node, opset }, [{ dtype: 'float32', shape: x.logical }, { dtype: 'float32', shape: w.dims, value: w }, b ? { dtype: 'float32', shape: b.dims, value: b } : undefined]);
    const od = facts[0]?.shape;
    if (!od || !sameDims(od as number[], y.logical)) bad(`output [${y.logical}] (logical) should be [${od ?? '?'}]`);
    const M = y.logical[1];
    if (mult.size !== 1 && mult.size !== M) bad(`multiplier has ${mult.size} values for ${M} channels`);
    const m = mult.data as Float32Array;
    const [lo, hi] = this.clampOf(op, 'clamp', outDtype);
    const map = gatherMap(y);
    const plane = product(y.logical.slice(2));
    const yd = y.data as Int8Array;
    const fround = Math.fround;
    const MAGIC = 6755399441055744;
    return () => {
      convertLayout(x.data, x.layout, xf, 'plain', x.logical);
      const acc = runStep({ node, op: def, opset }, [xt, w, b])[0].data as Float32Array;
      const n = acc.length;
      for (let i = 0; i < n; i++) {
        const c = m.length === 1 ? 0 : ((i / plane) | 0) % M;
        const v = fround(acc[i] * m[c]);
        const q = v !== v ? lo : v < lo ? lo : v > hi ? hi : v + MAGIC - MAGIC;
        yd[map ? map[i] : i] = q;
      }
    };
  }

  private lut(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [2, 2]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8'], 'input');
    this.typed(y, ['int8'], 'output');
    const t = this.constTensor(ins[1]);
    if (t.dtype !== 'int8' || t.size !== 256) bad('table must be int8[256]');
    if (x.layout !== y.layout || !sameDims(x.dims, y.dims)) bad('input and output differ in shape or layout');
    const table = t.data as Int8Array;
    const xd = x.data as Int8Array;
    const yd = y.data as Int8Array;
    return () => {
      for (let i = 0; i < xd.length; i++) yd[i] = table[xd[i] + 128];
    };
  }

  private clip(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8'], 'input');
    this.typed(y, ['int8'], 'output');
    if (x.layout !== y.layout || !sameDims(x.dims, y.dims)) bad('input and output differ in shape or layout');
    const [lo, hi] = this.clampOf(op, 'clamp', 'int8');
    const xd = x.data as Int8Array;
    const yd = y.data as Int8Array;
    return () => {
      for (let i = 0; i < xd.length; i++) {
        const v = xd[i];
        yd[i] = v < lo ? lo : v > hi ? hi : v;
      }
    };
  }

  /** For every output element (physical order), the physical index of input `s` broadcast to it; undefined = same index. */
  private broadcastMap(s: Slot, y: Slot): Int32Array | undefined {
    if (s.layout === y.layout && sameDims(s.dims, y.dims)) return undefined;
    const r = y.logical.length;
    if (s.logical.length > r) bad(`input [${s.logical}] has a higher rank than the output [${y.logical}]`);
    // logical strides of s in its physical storage
    const physStrides = stridesOf(s.dims);
    const logicalStride = s.layout === 'nhwc' ? [physStrides[0], physStrides[3], physStrides[1], physStrides[2]] : physStrides;
    const step = new Array<number>(r).fill(0);
    for (let d = 0; d < r; d++) {
      const k = d - (r - s.logical.length);
      if (k < 0) continue;
      const n = s.logical[k];
      if (n !== 1 && n !== y.logical[d]) bad(`input [${s.logical}] does not broadcast to [${y.logical}]`);
      step[d] = n === 1 ? 0 : logicalStride[k];
    }
    const outPhysAxes = y.layout === 'nhwc' ? [0, 2, 3, 1] : Array.from({ length: r }, (_, i) => i);
    return stridedOffsets(y.dims, outPhysAxes.map((l) => step[l]));
  }

  private eltwise(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [2, 2]);
    const kind = this.str(op, 'op', ['Add', 'Sub', 'Mul']);
    const outDtype = this.str(op, 'out_dtype', ['int8', 'int16'], 'int8') as 'int8' | 'int16';
    const y = this.slot(outs[0], 'output');
    this.typed(y, [outDtype], 'output');
    const scales = attrOf(op.attrs, 'in_scales')?.floats ?? [];
    if (scales.length !== 2) bad('in_scales must have 2 values');
    const outScale = this.scale(op, 'out_scale');
    const [lo, hi] = this.clampOf(op, 'clamp', outDtype);
    type Operand = { ints?: Int8Array; deq?: Float32Array; floats?: Float32Array; map?: Int32Array; scalar: boolean };
    const operand = (k: number): Operand => {
      const name = ins[k];
      if (this.consts.has(name)) {
        const t = this.constTensor(name);
        if (t.dtype !== 'float32') bad(`constant operand '${name}' is ${t.dtype}, expected float32`);
        const plainY: Slot = { ...y, layout: 'plain', dims: y.logical };
        const cs: Slot = { value: { ...y.value, name }, layout: 'plain', dims: t.dims, logical: t.dims, data: t.data as Float32Array };
        // constants are in logical order: map output physical → logical → constant index
        const toLogical = y.layout === 'nhwc' ? logicalToPhysicalMap(y.logical) : undefined;
        let map = this.broadcastMap(cs, plainY);
        if (toLogical) {
          const inv = new Int32Array(toLogical.length);
          for (let i = 0; i < toLogical.length; i++) inv[toLogical[i]] = i;
          const base = map;
          map = new Int32Array(inv.length);
          for (let j = 0; j < inv.length; j++) map[j] = base ? base[inv[j]] : inv[j];
        }
        return { floats: t.data as Float32Array, map, scalar: t.size === 1 };
      }
      const s = this.slot(name);
      this.typed(s, ['int8'], 'input');
      if (!(scales[k] > 0)) bad(`in_scales[${k}] is not a positive scale`);
      return { ints: s.data as Int8Array, deq: dequantTable(scales[k]), map: this.broadcastMap(s, y), scalar: false };
    };
    const a = operand(0);
    const b = operand(1);
    const yd = y.data as Int8Array;
    const n = yd.length;
    const fround = Math.fround;
    const MAGIC = 6755399441055744;
    const value = (o: Operand, i: number): number => {
      const j = o.scalar ? 0 : o.map ? o.map[i] : i;
      return o.ints ? (o.deq as Float32Array)[o.ints[j] + 128] : (o.floats as Float32Array)[j];
    };
    if (a.ints && b.ints && !a.map && !b.map && kind === 'Add') {
      const ai = a.ints, bi = b.ints, ad = a.deq as Float32Array, bd = b.deq as Float32Array;
      return () => {
        for (let i = 0; i < n; i++) {
          const t = fround(fround(ad[ai[i] + 128] + bd[bi[i] + 128]) / outScale);
          yd[i] = t !== t ? lo : t < lo ? lo : t > hi ? hi : t + MAGIC - MAGIC;
        }
      };
    }
    const f = kind === 'Add' ? (p: number, q: number) => p + q : kind === 'Sub' ? (p: number, q: number) => p - q : (p: number, q: number) => p * q;
    return () => {
      for (let i = 0; i < n; i++) yd[i] = quantizeOne(fround(f(value(a, i), value(b, i))), outScale, lo, hi);
    };
  }

  private pool(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8'], 'input');
    this.typed(y, ['int8'], 'output');
    if (x.layout !== 'nhwc' || y.layout !== 'nhwc') bad('input and output must be NHWC');
    const [N, H, W, C] = x.dims;
    const [kh, kw] = this.ints(op, 'kernel', 2, 1);
    const [sh, sw] = this.ints(op, 'strides', 2, 1);
    const [dh, dw] = this.ints(op, 'dilations', 2, 1, 1 << 20, [1, 1]);
    const [pt, pl, pb, pr] = this.ints(op, 'pads', 4, 0);
    const [, OH, OW, OC] = y.dims;
    if (y.dims[0] !== N || OC !== C || OH < 1 || OW < 1) bad(`output [${y.dims}] does not fit input [${x.dims}]`);
    // the output size follows from the pads (floor, or ceil_mode resolved at compile time)
    const fits = (n: number, out: number, k: number, st: number, d: number, b0: number, b1: number): boolean => {
      const span = d * (k - 1) + 1;
      if (span > n + b0 + b1 || b0 >= span || b1 >= span) return false;
      const lo = Math.floor((n + b0 + b1 - span) / st) + 1;
      return out === lo || out === lo + 1;
    };
    if (!fits(H, OH, kh, sh, dh, pt, pb) || !fits(W, OW, kw, sw, dw, pl, pr)) bad(`window ${kh}x${kw} (strides ${sh},${sw}, pads ${pt},${pl},${pb},${pr}) does not give [${OH},${OW}] from [${H},${W}]`);
    const g: PoolGeometry = { N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr };
    const th = poolTaps(OH, sh, dh, kh, H, pt, pb);
    const tw = poolTaps(OW, sw, dw, kw, W, pl, pr);
    const xd = x.data as Int8Array;
    const yd = y.data as Int8Array;
    const buf = new Float64Array(C);
    if (op.type === 'MaxPool') return () => maxPoolNhwc(g, th, tw, xd, yd, buf);
    const scales = attrOf(op.attrs, 'in_scales')?.floats ?? [];
    if (scales.length !== 1 || !(scales[0] > 0)) bad('in_scales must be one positive scale');
    const deq = dequantTable(scales[0]);
    const outScale = this.scale(op, 'out_scale');
    const [lo, hi] = this.clampOf(op, 'clamp', 'int8');
    const includePad = this.int(op, 'count_include_pad', 0) !== 0;
    return () => avgPoolNhwc(g, th, tw, includePad, xd, deq, outScale, lo, hi, yd, buf);
  }

  private globalPool(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8'], 'input');
    this.typed(y, ['int8'], 'output');
    if (x.layout !== 'nhwc') bad('input must be NHWC');
    const [N, H, W, C] = x.dims;
    if (!sameDims(y.logical, [N, C, 1, 1])) bad(`output [${y.logical}] should be [${N},${C},1,1]`);
    const xd = x.data as Int8Array;
    const yd = y.data as Int8Array;
    if (op.type === 'GlobalMaxPool') return () => globalMaxPoolNhwc(N, H * W, C, xd, yd);
    const scales = attrOf(op.attrs, 'in_scales')?.floats ?? [];
    if (scales.length !== 1 || !(scales[0] > 0)) bad('in_scales must be one positive scale');
    const deq = dequantTable(scales[0]);
    const outScale = this.scale(op, 'out_scale');
    const [lo, hi] = this.clampOf(op, 'clamp', 'int8');
    const buf = new Float64Array(C);
    return () => globalAvgPoolNhwc(N, H * W, C, xd, deq, outScale, lo, hi, yd, buf);
  }

  private concat(op: BinOp): () => void {
    if (op.inputs.length < 1 || op.outputs.length !== 1) bad('needs inputs and one output');
    const y = this.slot(op.outputs[0], 'output');
    this.typed(y, ['int8'], 'output');
    const rank = y.logical.length;
    const axis = this.int(op, 'axis');
    if (axis < 0 || axis >= rank) bad(`axis ${axis} is outside rank ${rank}`);
    const phys = y.layout === 'nhwc' ? [0, 3, 1, 2][axis] : axis;
    const scales = attrOf(op.attrs, 'in_scales')?.floats ?? [];
    if (scales.length !== op.inputs.length || scales.some((s) => !(s > 0))) bad('in_scales must have one positive scale per input');
    const outScale = this.scale(op, 'out_scale');
    const [lo, hi] = this.clampOf(op, 'clamp', 'int8');
    const outer = product(y.dims.slice(0, phys));
    let total = 0;
    const parts = op.inputs.map((name, k) => {
      const s = this.slot(name);
      this.typed(s, ['int8'], 'input');
      if (s.layout !== y.layout || s.dims.length !== y.dims.length || s.dims.some((d, i) => i !== phys && d !== y.dims[i])) bad(`input '${name}' [${s.dims}] does not fit the output [${y.dims}] along axis ${axis}`);
      total += s.dims[phys];
      const inner = product(s.dims.slice(phys));
      // requantisation table (identity when the scales agree and the clamp is the full range)
      let table: Int8Array | undefined;
      if (scales[k] !== outScale || lo !== -128 || hi !== 127) {
        const deq = dequantTable(scales[k]);
        table = new Int8Array(256);
        for (let q = 0; q < 256; q++) table[q] = quantizeOne(deq[q], outScale, lo, hi);
      }
      return { data: s.data as Int8Array, inner, table };
    });
    if (total !== y.dims[phys]) bad(`inputs add up to ${total} along axis ${axis}, the output has ${y.dims[phys]}`);
    const yd = y.data as Int8Array;
    const rowOut = product(y.dims.slice(phys));
    return () => {
      let off = 0;
      for (const part of parts) {
        const { data, inner, table } = part;
        for (let o = 0; o < outer; o++) {
          const src = o * inner;
          const dst = o * rowOut + off;
          if (!table) yd.set(data.subarray(src, src + inner), dst);
          else for (let i = 0; i < inner; i++) yd[dst + i] = table[data[src + i] + 128];
        }
        off += inner;
      }
    };
  }

  /** An ONNX node from an op's `op:`-prefixed attributes (the inner op of Requant / ConvFloatAcc). */
  private innerNode(op: BinOp, type: string, inputs: string[], outputs: string[], domain = ''): Node {
    const attrs = new Map<string, Attribute>();
    for (const a of op.attrs) if (a.name.startsWith('op:')) attrs.set(a.name.slice(3), toAttribute(a));
    return new Node({ opType: type, domain, name: op.name, inputs, outputs, attrs });
  }

  private registryOp(node: Node, opset: number): OpDef {
    const def = findOp(node.domain, node.opType);
    if (!def || (def.sinceOpset ?? 1) > opset) bad(`operator ${node.domain ? `${node.domain}::` : ''}${node.opType} (opset ${opset}) is not available in this runtime`);
    if (opset < 1 || opset > 1000) bad(`opset ${opset} is out of range`);
    return def;
  }

  private requant(op: BinOp): () => void {
    if (op.outputs.length !== 1 || !op.inputs.length) bad('needs inputs and one output');
    const y = this.slot(op.outputs[0], 'output');
    const outDtype = this.str(op, 'out_dtype', ['int8', 'int16']) as 'int8' | 'int16';
    this.typed(y, [outDtype], 'output');
    const type = attrOf(op.attrs, 'op_type')?.s ?? bad('op_type is missing');
    const domain = attrOf(op.attrs, 'op_domain')?.s ?? '';
    const opset = this.int(op, 'op_opset', 13);
    const node = this.innerNode(op, type, op.inputs, op.outputs, domain);
    const def = this.registryOp(node, opset);
    const scales = attrOf(op.attrs, 'in_scales')?.floats ?? [];
    if (scales.length !== op.inputs.length) bad('in_scales must have one value per input');
    const outScale = this.scale(op, 'out_scale');
    const [lo, hi] = this.clampOf(op, 'clamp', outDtype);
    const feeds: (Tensor | undefined)[] = [];
    const facts: (ValueFacts | undefined)[] = [];
    const fills: (() => void)[] = [];
    op.inputs.forEach((name, k) => {
      if (!name) {
        feeds.push(undefined);
        facts.push(undefined);
        return;
      }
      if (this.consts.has(name)) {
        const t = this.constTensor(name);
        feeds.push(t);
        facts.push({ dtype: t.dtype, shape: t.dims, value: t });
        return;
      }
      const s = this.slot(name);
      this.typed(s, ['int8'], 'input');
      if (!(scales[k] > 0)) bad(`in_scales[${k}] is not a positive scale`);
      const deq = dequantTable(scales[k]);
      const f = new Float32Array(s.data.length);
      const map = gatherMap(s);
      const src = s.data as Int8Array;
      fills.push(() => {
        if (map) for (let i = 0; i < f.length; i++) f[i] = deq[src[map[i]] + 128];
        else for (let i = 0; i < f.length; i++) f[i] = deq[src[i] + 128];
      });
      feeds.push(new Tensor('float32', s.logical, f));
      facts.push({ dtype: 'float32', shape: s.logical });
    });
    this.checkInfer(def, node, opset, facts, [{ dtype: 'float32', dims: y.logical }]);
    const map = gatherMap(y);
    const yd = y.data as Int8Array;
    return () => {
      for (const fill of fills) fill();
      const r = runStep({ node, op: def, opset }, feeds)[0];
      const v = r.data as Float32Array;
      if (r.dtype !== 'float32' || v.length !== yd.length) throw new Error(`${type} returned ${r.dtype}[${r.dims}]`);
      if (map) for (let i = 0; i < v.length; i++) yd[map[i]] = quantizeOne(v[i], outScale, lo, hi);
      else for (let i = 0; i < v.length; i++) yd[i] = quantizeOne(v[i], outScale, lo, hi);
    };
  }

  /** Shape inference of a registry op must agree with the declared outputs (catches corrupted attributes). */
  private checkInfer(def: OpDef, node: Node, opset: number, facts: (ValueFacts | undefined)[], want: ({ dtype: DType; dims: number[] } | undefined)[]): void {
    let got: ValueFacts[];
    try {
      got = def.infer({ node, opset }, facts);
    } catch (e) {
      bad(e instanceof Error ? e.message : String(e));
    }
    want.forEach((w, k) => {
      const g = got[k];
      if (!g || !w) return;
      if (g.dtype && g.dtype !== w.dtype) bad(`output ${k} would be ${g.dtype}, the file says ${w.dtype}`);
      if (g.shape && g.shape.every((d) => typeof d === 'number') && !sameDims(g.shape as number[], w.dims)) bad(`output ${k} would be [${g.shape}], the file says [${w.dims}]`);
    });
  }

  private quantize(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['float32'], 'input');
    const dtype = this.str(op, 'out_dtype', ['int8', 'int16'], 'int8') as 'int8' | 'int16';
    this.typed(y, [dtype], 'output');
    if (!sameDims(x.dims, y.dims) || x.layout !== y.layout) bad('input and output differ in shape or layout');
    const s = this.scale(op, 'scale');
    const [lo, hi] = dtype === 'int16' ? [-32768, 32767] : [-128, 127];
    const xd = x.data as Float32Array;
    const yd = y.data as Int8Array;
    return () => {
      for (let i = 0; i < xd.length; i++) yd[i] = quantizeOne(xd[i], s, lo, hi);
    };
  }

  private dequantize(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['int8', 'int16', 'int32'], 'input');
    this.typed(y, ['float32'], 'output');
    if (!sameDims(x.dims, y.dims) || x.layout !== y.layout) bad('input and output differ in shape or layout');
    const s = this.float(op, 'scale');
    const xd = x.data as Int32Array;
    const yd = y.data as Float32Array;
    const fround = Math.fround;
    if (x.value.dtype === 'int8') {
      const t = dequantTable(s);
      return () => {
        for (let i = 0; i < xd.length; i++) yd[i] = t[xd[i] + 128];
      };
    }
    return () => {
      for (let i = 0; i < xd.length; i++) yd[i] = fround(fround(xd[i]) * s);
    };
  }

  private layoutConvert(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    if (x.value.dtype !== y.value.dtype) bad('input and output types differ');
    const from = this.str(op, 'from', ['NCHW', 'NHWC']);
    const to = this.str(op, 'to', ['NCHW', 'NHWC']);
    if ((from === 'NHWC') !== (x.layout === 'nhwc') || (to === 'NHWC') !== (y.layout === 'nhwc')) bad(`from/to ${from} → ${to} do not match the values' layouts`);
    if (!sameDims(x.logical, y.logical)) bad(`input [${x.logical}] and output [${y.logical}] differ`);
    if (x.data.buffer === y.data.buffer && x.data.byteOffset === y.data.byteOffset) {
      if (sameBytes(x.logical, x.layout, y.layout)) return () => undefined;
      bad('converts in place');
    }
    return () => convertLayout(x.data, x.layout, y.data, y.layout, x.logical);
  }

  private preprocess(op: BinOp): () => void {
    const { ins, outs } = this.io(op, [1, 1]);
    const x = this.slot(ins[0]);
    const y = this.slot(outs[0], 'output');
    this.typed(x, ['uint8'], 'input');
    this.typed(y, ['int8'], 'output');
    const typeRt = this.str(op, 'type_rt', ['nv12', 'yuv444', 'rgb', 'bgr', 'gray']);
    const order = this.str(op, 'order', ['NCHW', 'NHWC']);
    if (y.logical.length !== 4) bad('output must have rank 4');
    const [N, C, H, W] = order === 'NCHW' ? y.logical : [y.logical[0], y.logical[3], y.logical[1], y.logical[2]];
    let src: (n: number, c: number, h: number, w: number) => number;
    if (typeRt === 'nv12') {
      if (C !== 3 || H % 2 || W % 2 || !sameDims(x.dims, [N, (H * 3) / 2, W])) bad(`nv12 input [${x.dims}] does not fit [${N},${(H * 3) / 2},${W}]`);
      const img = (H * W * 3) / 2;
      src = (n, c, h, w) => (c === 0 ? n * img + h * W + w : n * img + H * W + (h >> 1) * W + (w >> 1) * 2 + (c - 1));
    } else {
      const layoutRt = this.str(op, 'layout_rt', ['NCHW', 'NHWC']);
      const want = layoutRt === 'NHWC' ? [N, H, W, C] : [N, C, H, W];
      if ((typeRt === 'gray') !== (C === 1) || !sameDims(x.dims, want)) bad(`${typeRt} input [${x.dims}] does not fit ${layoutRt} [${want}]`);
      src = layoutRt === 'NHWC' ? (n, c, h, w) => ((n * H + h) * W + w) * C + c : (n, c, h, w) => ((n * C + c) * H + h) * W + w;
    }
    // gather map in the output's physical order
    const map = new Int32Array(y.data.length);
    const pd = y.dims;
    let i = 0;
    for (let a = 0; a < pd[0]; a++) {
      for (let b = 0; b < pd[1]; b++) {
        for (let c = 0; c < pd[2]; c++) {
          for (let d = 0; d < pd[3]; d++, i++) {
            // logical coords of this physical element
            const l = y.layout === 'nhwc' ? [a, d, b, c] : [a, b, c, d];
            const [n, ch, h, w] = order === 'NCHW' ? l : [l[0], l[3], l[1], l[2]];
            map[i] = src(n, ch, h, w);
          }
        }
      }
    }
    const xd = x.data as Uint8Array;
    const yd = y.data as Int8Array;
    return () => {
      for (let k = 0; k < map.length; k++) yd[k] = xd[map[k]] - 128;
    };
  }

  /** An ONNX op run by the op registry on logical-order tensors (converting NHWC values in and out). */
  private onnxOp(op: BinOp): () => void {
    const opset = this.int(op, '_opset', 13);
    const attrs = new Map<string, Attribute>();
    for (const a of op.attrs) if (a.name !== '_opset') attrs.set(a.name, toAttribute(a));
    const node = new Node({ opType: op.type, domain: op.domain, name: op.name, inputs: op.inputs, outputs: op.outputs, attrs });
    const def = this.registryOp(node, opset);
    const feeds: (Tensor | undefined)[] = [];
    const facts: (ValueFacts | undefined)[] = [];
    const fills: (() => void)[] = [];
    for (const name of op.inputs) {
      if (!name) {
        feeds.push(undefined);
        facts.push(undefined);
      } else if (this.consts.has(name)) {
        const t = this.constTensor(name);
        feeds.push(t);
        facts.push({ dtype: t.dtype, shape: t.dims, value: t });
      } else {
        const s = this.slot(name);
        if (s.layout === 'nhwc') {
          const buf = new (arrayCtor(s.value.dtype))(s.data.length);
          fills.push(() => convertLayout(s.data, 'nhwc', buf, 'plain', s.logical));
          feeds.push(new Tensor(s.value.dtype, s.logical, buf));
        } else feeds.push(new Tensor(s.value.dtype, s.logical, s.data));
        facts.push({ dtype: s.value.dtype, shape: s.logical });
      }
    }
    const outs = op.outputs.map((o) => (o ? this.slot(o, 'output') : undefined));
    if (!outs.length || !outs[0]) bad('has no output');
    this.checkInfer(def, node, opset, facts, outs.map((s) => (s ? { dtype: s.value.dtype, dims: s.logical } : undefined)));
    // a relabel of the same bytes into the same storage: nothing to do
    const x0 = op.inputs[0] && this.slots.get(op.inputs[0]);
    const y0 = outs[0];
    if (x0 && outs.length === 1 && x0.data.buffer === y0.data.buffer && x0.data.byteOffset === y0.data.byteOffset) {
      const perm = attrOf(op.attrs, 'perm')?.ints ?? Array.from({ length: x0.logical.length }, (_, i) => x0.logical.length - 1 - i);
      const relabel = op.domain === '' && x0.value.dtype === y0.value.dtype && x0.data.byteLength === y0.data.byteLength &&
        (op.type === 'Transpose'
          ? perm.length === x0.logical.length && transposeIsRelabel(perm, x0.logical, x0.layout, y0.layout)
          : RELABEL_OPS.has(op.type) && sameBytes(x0.logical, x0.layout, 'plain') && sameBytes(y0.logical, y0.layout, 'plain'));
      if (!relabel) bad('shares storage with its input but moves bytes');
      return () => undefined;
    }
    return () => {
      for (const fill of fills) fill();
      const r = runStep({ node, op: def, opset }, feeds);
      outs.forEach((s, k) => {
        if (!s) return;
        const t = r[k];
        if (!t || t.dtype !== s.value.dtype || t.size !== s.data.length) throw new Error(`${op.type} returned ${t ? `${t.dtype}[${t.dims}]` : 'nothing'} for '${s.value.name}'`);
        convertLayout(t.data as TypedArray, 'plain', s.data, s.layout, s.logical);
      });
    };
  }
}
