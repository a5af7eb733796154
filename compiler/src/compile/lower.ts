import { PtqError } from '../errors';
import { convGeometry } from '../kernels/iconv';
import { requantMultipliers } from '../kernels/requant';
import { resolveWindow, windowAttrs } from '../kernels/window';
import { DType, dtypeFromOnnx } from '../onnx/dtype';
import { Attribute, Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor } from '../onnx/tensor';
import { findOp, ValueFacts } from '../ops/registry';
import { readPreprocessRecords } from '../preprocess/hz-preprocess';
import { QUANT_INFO_KEY, QuantizedModelInfo } from '../quantize/spec';
import { runStep } from '../runtime/reference';
import { attr, Device, Names, NX_DOMAIN, PInput, POp, Program, PValue } from './program';
import type { BinAttr } from './bin-format';

/**
 * Lowering of `***_quantized_model.onnx` (the patterns listed at the top of
 * quantize/quantized.ts) to the compiler's program (program.ts): one op per recognised
 * pattern, every value keeping its name in the quantized model (so a `.bin` value can be
 * compared with what the ReferenceEngine computes for it).
 *
 *  - constants: a node whose inputs are all constants (DequantizeLinear of weights and
 *    biases, shape arithmetic) is evaluated here with the same kernel the ReferenceEngine runs
 *  - QLinearConv (2-D, zero points 0)                        → Conv (int8 weights [M, kh, kw, C/g])
 *  - Reshape → 1×1 QLinearConv → Reshape (Gemm/MatMul)        → FC (weights [N, K])
 *  - Cast → Conv|ConvTranspose → Mul(M) → QuantizeLinear(1)   → ConvFloatAcc (int8)
 *  - Cast → Conv → Mul(M) → Round → Clip → Cast(int16)        → ConvFloatAcc (int16)
 *  - Cast(int32) → Add(128) → Gather(table)                   → Lut
 *  - DequantizeLinear… → float op → QuantizeLinear (or → Div → Round → Clip → Cast int16):
 *    Add/Sub/Mul → Eltwise, GlobalAveragePool → GlobalAvgPool, AveragePool → AvgPool,
 *    Concat → Concat, any other op → Requant (the op's own float kernel between the two)
 *  - int8 Clip → Clip; int8 MaxPool → MaxPool; ReduceMax over H, W → GlobalMaxPool;
 *    int8 Concat → Concat; other ops on int8 values → the ONNX op itself (passive, BPU)
 *  - the int16 patterns of node_info nodes (bayes; `markInt16` lists them) → their ONNX ops
 *    as they are, on the BPU: the check stage places these nodes there, and none of our fused
 *    ops takes an int16 operand
 *  - image inputs → Preprocess (input_type_rt bytes → int8 x − 128); QuantizeLinear of a
 *    float value → Quantize; DequantizeLinear read by CPU nodes or outputs → Dequantize
 *  - anything else → the ONNX op on the CPU, in float
 */

export interface LowerInput {
  /** input_type_rt (default: from the model's HzPreprocess record, else featuremap) */
  typeRt?: string;
  typeTrain?: string;
  /** input_layout_train */
  layoutTrain?: string;
  /** input_layout_rt (default: the training layout) */
  layoutRt?: string;
  spaceAndRange?: string;
  /** input_source (default pyramid for nv12, ddr otherwise) */
  source?: string;
}

export interface LowerOptions {
  /** the `.bin` model's name (default: the graph's) */
  name?: string;
  /** nodes the check stage placed on the CPU (check.json): their float ops stay on the CPU */
  cpuNodes?: ReadonlySet<string>;
  inputs?: Record<string, LowerInput>;
}

function compileError(what: string, subject: string, fix: string): PtqError {
  return new PtqError('E_COMPILE', what, { subject, fix });
}

const REQUANT_ELTWISE = new Set(['Add', 'Sub', 'Mul']);
/** ONNX ops whose int8 form only moves or selects values (run on the BPU as they are). */
const RANDOM_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/** A node of the default ONNX domain. */
function isOnnx(n: Node): boolean {
  return !n.domain || n.domain === 'ai.onnx';
}

/** `n` is a default-domain node of type `type`. */
function is(n: Node | undefined, type: string): n is Node {
  return !!n && n.opType === type && isOnnx(n);
}

interface Group {
  anchor: Node;
  members: Node[];
  emit: () => void;
}

export function lowerQuantizedModel(model: Model, opts: LowerOptions = {}): Program {
  return new Lowering(model, opts).run();
}

class Lowering {
  private readonly g: Model['graph'];
  private readonly facts: Map<string, ValueFacts>;
  private readonly consts = new Map<string, Tensor>();
  private readonly producer = new Map<string, Node>();
  private readonly readers = new Map<string, Node[]>();
  private readonly graphOutputs: Set<string>;
  private readonly info: QuantizedModelInfo;
  private readonly p: Program;
  private readonly names: Names;
  private readonly grouped = new Map<Node, Group>();
  private readonly cpuNodes: ReadonlySet<string>;
  /** DequantizeLinear outputs read directly (as int8) by BPU ops */
  private readonly absorbedDq = new Set<Node>();
  /** nodes of the int16 (node_info) patterns: ONNX ops kept as they are, on the BPU (markInt16) */
  private readonly bpuInt16 = new Set<Node>();
  /** int8/int16 results of those patterns whose scale the pattern tells: the value, or the value whose scale it keeps */
  private readonly int16Scale = new Map<string, number | string>();

  constructor(private readonly model: Model, private readonly opts: LowerOptions) {
    this.g = model.graph;
    this.facts = inferShapes(model, { apply: false });
    for (const [k, t] of this.g.initializers) this.consts.set(k, t);
    for (const n of this.g.nodes) {
      for (const o of n.outputs) if (o) this.producer.set(o, n);
      for (const i of new Set(n.inputs)) if (i) (this.readers.get(i) ?? this.readers.set(i, []).get(i)!).push(n);
    }
    this.graphOutputs = new Set(this.g.outputs.map((o) => o.name));
    this.info = JSON.parse(model.metadataProps[QUANT_INFO_KEY] ?? '{"inputs":[],"outputs":[]}') as QuantizedModelInfo;
    this.cpuNodes = opts.cpuNodes ?? new Set();
    this.p = {
      name: opts.name ?? (this.g.name || 'model'),
      graphName: this.g.name || 'model',
      values: new Map(),
      consts: new Map(),
      ops: [],
      inputs: [],
      outputs: [],
      deleted: [],
      notes: [],
      preprocessNodes: new Set(readPreprocessRecords(model).flatMap((r) => r.nodes)),
    };
    this.names = new Names();
    for (const n of this.g.nodes) {
      if (n.name) this.names.claim(n.name);
      for (const o of n.outputs) if (o) this.names.claim(o);
    }
    for (const v of this.g.inputs) this.names.claim(v.name);
    for (const k of this.g.initializers.keys()) this.names.claim(k);
  }

  run(): Program {
    const order = this.g.topoSort();
    this.foldConstants(order);
    const live = order.filter((n) => !n.outputs.every((o) => !o || this.consts.has(o)));
    this.markInt16(live);
    for (const n of live) this.match(n);
    this.lowerInputs();
    for (const n of live) {
      const grp = this.grouped.get(n);
      if (grp) {
        if (grp.anchor === n) grp.emit();
        continue;
      }
      this.lowerNode(n);
    }
    for (const o of this.g.outputs) {
      if (!this.p.values.has(o.name)) {
        if (this.consts.has(o.name)) throw compileError(`model output '${o.name}' is a constant`, o.name, 'a .bin output must be computed from the inputs; remove the output');
        this.value(o.name);
      }
      this.p.outputs.push({ name: o.name, value: o.name });
      // an integer output's scale, as the quantizer recorded it
      const pv = this.p.values.get(o.name) as PValue;
      const s = this.info.outputs.find((x) => x.name === o.name)?.scale;
      if (s && pv.dtype !== 'float32') pv.scale = s;
    }
    return this.p;
  }

  // ---------------------------------------------------------------- values and constants

  private dims(v: string): number[] {
    const s = this.facts.get(v)?.shape ?? this.g.typeOf(v)?.shape;
    if (!s || !s.every((d): d is number => typeof d === 'number' && d >= 0)) {
      throw compileError(`value '${v}' has no static shape ([${(s ?? ['?']).join(',')}])`, v, 'give every input a fixed shape (input_shape) and re-run the conversion');
    }
    return s.slice();
  }

  private dtype(v: string): DType {
    const d = this.facts.get(v)?.dtype ?? this.g.typeOf(v)?.dtype;
    if (!d) throw compileError(`value '${v}' has no known element type`, v, 'check the quantized model (shape inference could not type this value)');
    return d;
  }

  /** The program value for an ONNX value (created on first use). */
  private value(v: string, scale = 0, dtype?: DType, dims?: number[]): PValue {
    let pv = this.p.values.get(v);
    if (!pv) {
      pv = { name: v, dtype: dtype ?? this.dtype(v), dims: dims ?? this.dims(v), scale, layout: 'plain' };
      this.p.values.set(v, pv);
    } else if (scale && !pv.scale) pv.scale = scale;
    return pv;
  }

  /** A constant of the program (model initializer or folded value). */
  private constant(v: string): string {
    const t = this.consts.get(v);
    if (!t) throw new Error(`'${v}' is not a constant`);
    this.p.consts.set(v, t);
    return v;
  }

  private newConst(base: string, t: Tensor): string {
    const name = this.names.fresh(base);
    this.p.consts.set(name, t);
    this.consts.set(name, t);
    return name;
  }

  private isConst(v: string | undefined): boolean {
    return !!v && this.consts.has(v);
  }

  private scalar(v: string | undefined, def?: number): number | undefined {
    if (!v) return def;
    const t = this.consts.get(v);
    if (!t || t.size !== 1) return undefined;
    return Number(t.toNumbers()[0]);
  }

  private only(v: string): Node | undefined {
    const rs = this.readers.get(v) ?? [];
    return rs.length === 1 && !this.graphOutputs.has(v) ? rs[0] : undefined;
  }

  private push(op: Omit<POp, 'domain' | 'attrs' | 'sources'> & Partial<Pick<POp, 'domain' | 'attrs' | 'sources'>>): POp {
    const full: POp = { domain: NX_DOMAIN, attrs: [], sources: [], ...op };
    this.p.ops.push(full);
    return full;
  }

  private opName(n: Node): string {
    if (n.name) return n.name;
    return this.names.fresh(n.opType);
  }

  // ---------------------------------------------------------------- constant folding

  private foldConstants(order: Node[]): void {
    for (const n of order) {
      if (RANDOM_OPS.has(n.opType) || !n.outputs.some((o) => o)) continue;
      const ins = n.inputs.filter((i) => i);
      if (!ins.every((i) => this.consts.has(i))) continue;
      if (n.opType === 'Constant' || ins.length > 0) {
        const op = findOp(n.domain, n.opType);
        if (!op || (n.domain && n.domain !== 'ai.onnx')) continue;
        if (n.outputs.some((o) => this.graphOutputs.has(o))) continue;
        const opset = this.model.opset(n.domain) ?? 1;
        const outs = runStep({ node: n, op, opset }, n.inputs.map((i) => (i ? this.consts.get(i) : undefined)));
        n.outputs.forEach((o, k) => {
          if (o && outs[k]) this.consts.set(o, outs[k]);
        });
      }
    }
  }

  // ---------------------------------------------------------------- pattern matching

  private group(anchor: Node, members: Node[], emit: () => void): void {
    const grp: Group = { anchor, members, emit };
    for (const m of members) this.grouped.set(m, grp);
  }

  private free(n: Node | undefined): n is Node {
    return !!n && !this.grouped.has(n);
  }

  private match(n: Node): void {
    if (this.grouped.has(n) || this.bpuInt16.has(n) || (n.domain && n.domain !== 'ai.onnx')) return;
    switch (n.opType) {
      case 'QLinearConv':
        this.matchQLinearConv(n);
        return;
      case 'Gather':
        this.matchLut(n);
        return;
      case 'Conv':
      case 'ConvTranspose':
        if (this.matchFloatAccConv(n)) return;
        break;
      default:
        break;
    }
    this.matchRequant(n);
  }

  private matchQLinearConv(n: Node): void {
    if (!this.nativeConv(n)) return;
    // FC: Reshape(x, [-1, K, 1, 1]) → 1×1 QLinearConv → Reshape(y, [-1, …, N])
    const r1 = this.producer.get(n.inputs[0]);
    const y = n.outputs[0];
    const r2 = this.only(y);
    const w = this.consts.get(n.inputs[3]) as Tensor;
    const [M, K, kh, kw] = w.dims;
    const fcLike = kh === 1 && kw === 1 && n.int('group', 1) === 1 && (n.ints('strides') ?? [1, 1]).every((s) => s === 1) && (n.ints('pads') ?? [0, 0, 0, 0]).every((p) => p === 0);
    if (fcLike && this.free(r1) && r1.opType === 'Reshape' && !r1.domain && this.only(r1.outputs[0]) === n && this.free(r2) && r2.opType === 'Reshape' && !r2.domain && r2.inputs[0] === y) {
      const x0 = r1.inputs[0];
      const xd = this.dims(x0);
      const od = this.dims(r2.outputs[0]);
      if (xd.length >= 1 && xd[xd.length - 1] === K && od[od.length - 1] === M && this.dtype(x0) === 'int8') {
        this.group(n, [r1, n, r2], () => this.emitConv(n, x0, r2.outputs[0], [r1, n, r2], true));
        return;
      }
    }
    this.group(n, [n], () => this.emitConv(n, n.inputs[0], y, [n], false));
  }

  /** A QLinearConv our NHWC kernel runs: 2-D, int8, zero points 0, constant parameters. */
  private nativeConv(n: Node): boolean {
    const [x, xs, xz, w, ws, wz, ys, yz, b] = n.inputs;
    if (this.dtype(x) !== 'int8' || this.dims(x).length !== 4) return false;
    const wt = this.consts.get(w);
    if (!wt || wt.dtype !== 'int8' || wt.rank !== 4) return false;
    for (const s of [xs, ys]) if (this.scalar(s) === undefined) return false;
    for (const z of [xz, yz]) if (z && (this.scalar(z) !== 0 || this.consts.get(z)?.dtype !== 'int8')) return false;
    const wst = this.consts.get(ws);
    if (!wst || (wst.size !== 1 && wst.size !== wt.dims[0])) return false;
    if (wz) {
      const zt = this.consts.get(wz);
      if (!zt || zt.dtype !== 'int8' || zt.toNumbers().some((v) => v !== 0)) return false;
    }
    if (b) {
      const bt = this.consts.get(b);
      if (!bt || bt.dtype !== 'int32' || bt.size !== wt.dims[0]) return false;
    }
    return this.dims(n.outputs[0]).length === 4;
  }

  /** Cast(int32) → Add(128) → Gather(table int8[256], axis 0). */
  private matchLut(n: Node): void {
    const [table, idx] = n.inputs;
    const tt = this.consts.get(table);
    if (!tt || tt.dtype !== 'int8' || tt.size !== 256 || n.int('axis', 0) !== 0) return this.matchRequant(n);
    const add = this.producer.get(idx);
    if (!this.free(add) || add.opType !== 'Add' || add.domain || this.only(add.outputs[0]) !== n) return;
    const [a0, a1] = add.inputs;
    const castIn = this.isConst(a1) ? a0 : a1;
    const off = this.isConst(a1) ? a1 : a0;
    if (this.scalar(off) !== 128) return;
    const cast = this.producer.get(castIn);
    if (!this.free(cast) || cast.opType !== 'Cast' || this.only(cast.outputs[0]) !== add) return;
    const x = cast.inputs[0];
    if (this.dtype(x) !== 'int8' || this.isConst(x)) return;
    this.group(n, [cast, add, n], () => {
      const o = this.value(n.outputs[0], this.scaleOfInt8(n.outputs[0]), 'int8');
      this.value(x);
      this.push({ name: this.opName(n), type: 'Lut', device: 'bpu', inputs: [x, this.constant(table)], outputs: [o.name], sources: [cast.label, add.label, n.label] });
    });
  }

  /** Cast → Conv|ConvTranspose (integer values in float) → Mul(M) → QuantizeLinear(1) | Round → Clip → Cast(int16). */
  private matchFloatAccConv(n: Node): boolean {
    const cast = this.producer.get(n.inputs[0]);
    if (!this.free(cast) || cast.opType !== 'Cast' || cast.int('to', 0) !== 1 || this.only(cast.outputs[0]) !== n) return false;
    const x = cast.inputs[0];
    if (this.dtype(x) !== 'int8' || this.isConst(x)) return false;
    if (!this.isConst(n.inputs[1]) || (n.inputs[2] && !this.isConst(n.inputs[2]))) return false;
    if (this.dims(x).length !== 4) return false;
    const mul = this.only(n.outputs[0]);
    if (!this.free(mul) || mul.opType !== 'Mul' || mul.inputs[0] !== n.outputs[0] || !this.isConst(mul.inputs[1])) return false;
    const next = this.only(mul.outputs[0]);
    if (!this.free(next)) return false;
    let members: Node[];
    let out: string;
    let outDtype: 'int8' | 'int16';
    if (next.opType === 'QuantizeLinear' && this.scalar(next.inputs[1]) === 1 && (!next.inputs[2] || (this.scalar(next.inputs[2]) === 0 && this.consts.get(next.inputs[2])?.dtype === 'int8'))) {
      members = [cast, n, mul, next];
      out = next.outputs[0];
      outDtype = 'int8';
    } else if (next.opType === 'Round') {
      const tail = this.int16Tail(next);
      if (!tail) return false;
      members = [cast, n, mul, ...tail.nodes];
      out = tail.out;
      outDtype = 'int16';
    } else return false;
    const M = this.consts.get(mul.inputs[1]) as Tensor;
    const channels = n.opType === 'Conv' ? (this.consts.get(n.inputs[1]) as Tensor).dims[0] : (this.consts.get(n.inputs[1]) as Tensor).dims[1] * n.int('group', 1)!;
    if (M.size !== 1 && M.size !== channels) return false;
    this.group(n, members, () => {
      this.value(x);
      // (the int8 result comes from a QuantizeLinear of scale 1 — the accumulator is already
      // requantised — so its scale is the one its readers dequantize it with)
      const o = this.value(out, outDtype === 'int8' ? this.readerScale(out, 0) || this.scaleOfOutput(out) : this.scaleOfOutput(out), outDtype);
      const inputs = [x, this.constant(n.inputs[1]), n.inputs[2] ? this.constant(n.inputs[2]) : '', this.constant(mul.inputs[1])];
      const inner = onnxAttrs(n).map((a) => ({ ...a, name: `op:${a.name}` }));
      const attrs: BinAttr[] = [attr.s('conv', n.opType), attr.s('out_dtype', outDtype), attr.ints('clamp', outDtype === 'int8' ? [-128, 127] : [-32768, 32767]), attr.i('op_opset', this.model.opset('') ?? 13), ...inner];
      this.push({ name: this.opName(n), type: 'ConvFloatAcc', device: 'bpu', inputs, outputs: [o.name], attrs, sources: members.map((m) => m.label) });
    });
    return true;
  }

  /** Round → Clip(−32768, 32767) → Cast(int16): the int16 output tail. */
  private int16Tail(round: Node): { nodes: Node[]; out: string } | undefined {
    const clip = this.only(round.outputs[0]);
    if (!this.free(clip) || clip.opType !== 'Clip' || this.scalar(clip.inputs[1]) !== -32768 || this.scalar(clip.inputs[2]) !== 32767) return undefined;
    const cast = this.only(clip.outputs[0]) ?? (this.readers.get(clip.outputs[0])?.length === 1 ? this.readers.get(clip.outputs[0])![0] : undefined);
    if (!this.free(cast) || cast.opType !== 'Cast' || dtypeFromOnnx(cast.int('to', 0)!) !== 'int16') return undefined;
    return { nodes: [round, clip, cast], out: cast.outputs[0] };
  }

  /** DequantizeLinear… → float op F → QuantizeLinear, or → Div → Round → Clip → Cast(int16). */
  private matchRequant(f: Node): void {
    if (f.domain && f.domain !== 'ai.onnx') return;
    if (f.opType === 'QuantizeLinear' || f.opType === 'DequantizeLinear') return;
    const op = findOp(f.domain, f.opType);
    if (!op || op.quant === 'cpu' || this.cpuNodes.has(f.name) || this.cpuNodes.has(f.label)) return;
    const o = f.outputs[0];
    if (!o || f.outputs.slice(1).some((x) => x && ((this.readers.get(x)?.length ?? 0) > 0 || this.graphOutputs.has(x)))) return;
    const next = this.only(o);
    if (!this.free(next)) return;
    let members: Node[];
    let out: string;
    let outDtype: 'int8' | 'int16';
    let outScale: number | undefined;
    if (next.opType === 'QuantizeLinear' && !next.domain) {
      const s = this.scalar(next.inputs[1]);
      const zt = next.inputs[2] ? this.consts.get(next.inputs[2]) : undefined;
      if (s === undefined || (next.inputs[2] && (!zt || zt.dtype !== 'int8' || this.scalar(next.inputs[2]) !== 0)) || !next.inputs[2]) return;
      members = [f, next];
      out = next.outputs[0];
      outDtype = 'int8';
      outScale = s;
    } else if (next.opType === 'Div' && !next.domain && next.inputs[0] === o && this.scalar(next.inputs[1]) !== undefined) {
      const round = this.only(next.outputs[0]);
      if (!this.free(round) || round.opType !== 'Round') return;
      const tail = this.int16Tail(round);
      if (!tail) return;
      members = [f, next, ...tail.nodes];
      out = tail.out;
      outDtype = 'int16';
      outScale = this.scalar(next.inputs[1]);
    } else return;
    // every input: a constant or the DequantizeLinear of a computed int8 value (per-tensor scale, zero point 0)
    const ins: { value: string; scale: number }[] = [];
    let data = 0;
    for (const i of f.inputs) {
      if (!i) {
        ins.push({ value: '', scale: 0 });
        continue;
      }
      if (this.isConst(i)) {
        ins.push({ value: i, scale: 0 });
        continue;
      }
      const dq = this.producer.get(i);
      if (!dq || dq.opType !== 'DequantizeLinear' || dq.domain) return;
      const q = dq.inputs[0];
      const s = this.scalar(dq.inputs[1]);
      if (this.isConst(q) || this.dtype(q) !== 'int8' || s === undefined || (dq.inputs[2] && this.scalar(dq.inputs[2]) !== 0) || this.dims(q).length !== this.dims(i).length) return;
      ins.push({ value: q, scale: s });
      data++;
    }
    if (!data) return;
    for (const i of f.inputs) {
      const dq = i ? this.producer.get(i) : undefined;
      if (dq && dq.opType === 'DequantizeLinear') this.absorbedDq.add(dq);
    }
    this.group(f, members, () => this.emitRequant(f, ins, out, outDtype, outScale as number, members));
  }

  // ---------------------------------------------------------------- int16 (node_info) patterns

  /**
   * The patterns quantize/quantized.ts writes for node_info int16 nodes (bayes). check.json
   * places these nodes on the BPU, which computes them in int16; none of our fused ops takes an
   * int16 operand, so the pattern's ONNX ops — the exact integer steps the ReferenceEngine
   * runs — are kept as they are, on the BPU (the runtime runs ONNX ops with the registry's
   * kernels on either side):
   *  - Conv / Gemm (as a 1×1 Conv) reading or writing int16: [an int16 input split, x = 256·hi +
   *    lo: Cast(int32) → Mod(256) → Cast(uint8), Sub → Div(256) → Cast(int8)] → ConvInteger
   *    [→ Mul(256) → Add(the low-byte ConvInteger)] [→ Add(int32 bias)] → Cast(float) → Mul(M) →
   *    QuantizeLinear(1) | Round → Clip → Cast(int16)
   *  - Conv / ConvTranspose reading int16: Cast(float) → Conv|ConvTranspose → Mul(M) → the same tail
   *  - a passive op on int16: Cast(float) → the op → Cast(int16)
   *  - a requantising, LUT or Concat node reading int16: each operand a constant,
   *    DequantizeLinear(int8) or Cast(float) → Mul(s) of an int16 value, read by the node
   *    alone, at least one int16 → the float op → QuantizeLinear(s) | Div(s) → Round → Clip →
   *    Cast(int16) (with int8 operands only it is matchRequant's, an int16 result included)
   * CPU nodes (check.json) are never part of one: an int16 value they read is dequantized on the CPU.
   */
  private markInt16(live: Node[]): void {
    for (const n of live) {
      if (this.bpuInt16.has(n) || !isOnnx(n)) continue;
      let members: Node[] | undefined;
      if (n.opType === 'ConvInteger') members = this.int16ConvInteger(n);
      else if (n.opType === 'Conv' || n.opType === 'ConvTranspose') members = this.int16FloatConv(n);
      else if (n.opType === 'Cast') members = this.int16Passive(n);
      else members = this.int16Requant(n);
      if (members) for (const m of members) this.bpuInt16.add(m);
    }
  }

  private onBpu(n: Node): boolean {
    return !this.cpuNodes.has(n.name) && !this.cpuNodes.has(n.label);
  }

  private castTo(n: Node | undefined, dtype: DType): n is Node {
    return is(n, 'Cast') && dtypeFromOnnx(n.int('to', 0)!) === dtype;
  }

  /** A computed int16 value. */
  private int16Value(v: string | undefined): v is string {
    return !!v && !this.isConst(v) && this.dtype(v) === 'int16';
  }

  /** Mul(v, M) → QuantizeLinear(scale 1) | Round → Clip → Cast(int16): the requantisation of an integer accumulator. */
  private accTail(v: string): Node[] | undefined {
    const mul = this.only(v);
    if (!is(mul, 'Mul') || mul.inputs[0] !== v || !this.isConst(mul.inputs[1])) return undefined;
    const next = this.only(mul.outputs[0]);
    if (is(next, 'QuantizeLinear') && this.scalar(next.inputs[1]) === 1 && this.int8Zero(next.inputs[2])) return [mul, next];
    const tail = is(next, 'Round') ? this.int16Tail(next) : undefined;
    return tail ? [mul, ...tail.nodes] : undefined;
  }

  private int8Zero(z: string | undefined): boolean {
    return !!z && this.scalar(z) === 0 && this.consts.get(z)?.dtype === 'int8';
  }

  /** ConvInteger(x int8, W) … → tail, with the int16 input split before it when there is one. */
  private int16ConvInteger(ci: Node): Node[] | undefined {
    const [x, w] = ci.inputs;
    // the low-byte ConvInteger (uint8 input) is found from the high-byte one
    if (!x || this.isConst(x) || this.dtype(x) !== 'int8' || !this.isConst(w) || ci.inputs.slice(2).some((z) => z) || !this.onBpu(ci)) return undefined;
    const members: Node[] = [ci];
    let acc = ci.outputs[0];
    const hi256 = this.only(acc);
    if (is(hi256, 'Mul') && hi256.inputs[0] === acc && this.scalar(hi256.inputs[1]) === 256) {
      const split = this.int16Split(ci, hi256);
      if (!split) return undefined;
      members.push(...split.nodes);
      acc = split.sum;
    }
    let next = this.only(acc);
    if (is(next, 'Add') && next.inputs[0] === acc && this.isConst(next.inputs[1])) {
      members.push(next);
      acc = next.outputs[0];
      next = this.only(acc);
    }
    if (!this.castTo(next, 'float32')) return undefined;
    const tail = this.accTail(next.outputs[0]);
    return tail ? [...members, next, ...tail] : undefined;
  }

  /** 256·ConvInteger(hi, W) + ConvInteger(lo, W) of x = 256·hi + lo (int16 x), from the high-byte conv and its Mul(256). */
  private int16Split(ci: Node, hi256: Node): { nodes: Node[]; sum: string } | undefined {
    const add = this.only(hi256.outputs[0]);
    if (!is(add, 'Add')) return undefined;
    const loAcc = add.inputs[0] === hi256.outputs[0] ? add.inputs[1] : add.inputs[0];
    const lo = this.producer.get(loAcc);
    if (!is(lo, 'ConvInteger') || this.only(loAcc) !== add || lo.inputs[1] !== ci.inputs[1] || lo.inputs.slice(2).some((z) => z)) return undefined;
    const castHi = this.producer.get(ci.inputs[0]);
    const castLo = this.producer.get(lo.inputs[0]);
    if (!this.castTo(castHi, 'int8') || this.only(ci.inputs[0]) !== ci || !this.castTo(castLo, 'uint8') || this.only(lo.inputs[0]) !== lo) return undefined;
    const div = this.producer.get(castHi.inputs[0]);
    if (!is(div, 'Div') || this.scalar(div.inputs[1]) !== 256 || this.only(div.outputs[0]) !== castHi) return undefined;
    const sub = this.producer.get(div.inputs[0]);
    const mod = this.producer.get(castLo.inputs[0]);
    if (!is(sub, 'Sub') || this.only(sub.outputs[0]) !== div || !is(mod, 'Mod') || this.scalar(mod.inputs[1]) !== 256) return undefined;
    const [xi, lo32] = sub.inputs;
    if (mod.outputs[0] !== lo32 || mod.inputs[0] !== xi) return undefined;
    const readOnlyBy = (v: string, ...ns: Node[]): boolean => !this.graphOutputs.has(v) && (this.readers.get(v) ?? []).every((r) => ns.includes(r));
    const castX = this.producer.get(xi);
    if (!readOnlyBy(lo32, sub, castLo) || !this.castTo(castX, 'int32') || !readOnlyBy(xi, sub, mod) || !this.int16Value(castX.inputs[0])) return undefined;
    return { nodes: [castX, mod, sub, div, castLo, castHi, lo, hi256, add], sum: add.outputs[0] };
  }

  /** Cast(int16 → float) → Conv|ConvTranspose (integer values as floats) → Mul(M) → tail. */
  private int16FloatConv(n: Node): Node[] | undefined {
    const cast = this.producer.get(n.inputs[0]);
    if (!this.castTo(cast, 'float32') || !this.int16Value(cast.inputs[0]) || this.only(cast.outputs[0]) !== n || !this.onBpu(n)) return undefined;
    if (!this.isConst(n.inputs[1]) || (n.inputs[2] && !this.isConst(n.inputs[2]))) return undefined;
    const tail = this.accTail(n.outputs[0]);
    return tail ? [cast, n, ...tail] : undefined;
  }

  /** Cast(int16 → float) → a passive op → Cast(int16) for each of its outputs. */
  private int16Passive(cast: Node): Node[] | undefined {
    const x = cast.inputs[0];
    if (!this.castTo(cast, 'float32') || !this.int16Value(x)) return undefined;
    const f = this.only(cast.outputs[0]);
    if (!f || !isOnnx(f) || findOp(f.domain, f.opType)?.quant !== 'passive' || !this.onBpu(f) || f.inputs[0] !== cast.outputs[0]) return undefined;
    if (f.inputs.slice(1).some((i) => i && !this.isConst(i))) return undefined;
    const back: Node[] = [];
    for (const o of f.outputs) {
      if (!o || (!this.readers.get(o)?.length && !this.graphOutputs.has(o))) continue;
      const c = this.only(o);
      if (!this.castTo(c, 'int16')) return undefined;
      back.push(c);
    }
    if (!back.length) return undefined;
    for (const c of back) this.int16Scale.set(c.outputs[0], x);
    return [cast, f, ...back];
  }

  /** A requantising / LUT / Concat node reading int16, with its operands' dequantization and its tail. */
  private int16Requant(f: Node): Node[] | undefined {
    const op = findOp(f.domain, f.opType);
    if (!op || op.quant === 'cpu' || !this.onBpu(f) || f.outputs.length !== 1 || !f.outputs[0]) return undefined;
    const next = this.only(f.outputs[0]);
    let tail: Node[];
    let outScale: number | undefined;
    let wide = false;
    if (is(next, 'QuantizeLinear') && next.inputs[0] === f.outputs[0] && this.int8Zero(next.inputs[2])) {
      tail = [next];
      outScale = this.scalar(next.inputs[1]);
    } else if (is(next, 'Div') && next.inputs[0] === f.outputs[0]) {
      const round = this.only(next.outputs[0]);
      const t = is(round, 'Round') ? this.int16Tail(round) : undefined;
      if (!t) return undefined;
      tail = [next, ...t.nodes];
      outScale = this.scalar(next.inputs[1]);
    } else return undefined;
    if (!outScale) return undefined;
    const deq: Node[] = [];
    let data = 0;
    for (const i of f.inputs) {
      if (!i || this.isConst(i)) continue;
      const d = this.producer.get(i);
      if (this.only(i) !== f || !d) return undefined;
      if (d.opType === 'DequantizeLinear' && isOnnx(d)) {
        const q = d.inputs[0];
        if (this.isConst(q) || this.dtype(q) !== 'int8' || !this.scalar(d.inputs[1]) || (d.inputs[2] && this.scalar(d.inputs[2]) !== 0)) return undefined;
        deq.push(d);
      } else if (d.opType === 'Mul' && isOnnx(d)) {
        const c = this.producer.get(d.inputs[0]);
        if (!this.castTo(c, 'float32') || !this.int16Value(c.inputs[0]) || this.only(c.outputs[0]) !== d || !this.scalar(d.inputs[1])) return undefined;
        deq.push(c, d);
        wide = true;
      } else return undefined;
      data++;
    }
    // int8 operands only: matchRequant's Requant / Eltwise / … (an int16 result included)
    if (!data || !wide) return undefined;
    this.int16Scale.set(tail[tail.length - 1].outputs[0], outScale);
    return [...deq, f, ...tail];
  }

  /** The scale of an int8/int16 result of an int16 pattern: what the pattern says, else what its readers dequantize it with (0: unknown). */
  private patternScale(v: string): number {
    const s = this.int16Scale.get(v);
    if (typeof s === 'number') return s;
    if (s !== undefined) return this.p.values.get(s)?.scale || this.readerScale(s, 0);
    return this.readerScale(v, 0);
  }

  /** The scale readers of `v` dequantize it with (DequantizeLinear, Cast → Mul, QLinearConv), looking through passive ops. */
  private readerScale(v: string, depth: number): number {
    if (depth > 8) return 0;
    for (const r of this.readers.get(v) ?? []) {
      if (r.inputs[0] !== v || !isOnnx(r)) continue;
      let s: number | undefined;
      if (r.opType === 'DequantizeLinear' || r.opType === 'QLinearConv') s = this.scalar(r.inputs[1]);
      else if (r.opType === 'Cast' && dtypeFromOnnx(r.int('to', 0)!) === 'float32') {
        const next = this.only(r.outputs[0]);
        if (is(next, 'Mul') && next.inputs[0] === r.outputs[0]) s = this.scalar(next.inputs[1]);
        else if (next && this.bpuInt16.has(next) && findOp(next.domain, next.opType)?.quant === 'passive') {
          // Cast → passive op → Cast(int16): the same scale
          for (const o of next.outputs) for (const c of o ? this.readers.get(o) ?? [] : []) if (this.castTo(c, 'int16')) s ||= this.readerScale(c.outputs[0], depth + 1);
        }
      } else if (findOp(r.domain, r.opType)?.quant === 'passive' && r.outputs[0] && this.dtype(r.outputs[0]) === this.dtype(v)) s = this.readerScale(r.outputs[0], depth + 1);
      if (s) return s;
    }
    return 0;
  }

  // ---------------------------------------------------------------- emission of groups

  private emitConv(n: Node, x: string, out: string, members: Node[], fc: boolean): void {
    const [, xs, , w, ws, , ys, , b] = n.inputs;
    const wt = this.consts.get(w) as Tensor;
    const [M, Cg, kh, kw] = wt.dims;
    const sIn = this.scalar(xs) as number;
    const sOut = this.scalar(ys) as number;
    const sW = (this.consts.get(ws) as Tensor).toFloat32();
    const perChannel = new Float32Array(M);
    for (let c = 0; c < M; c++) perChannel[c] = sW[sW.length > 1 ? c : 0];
    const mult = requantMultipliers(sIn, perChannel, sOut);
    const name = this.opName(n);
    const xv = this.value(x, sIn, 'int8');
    const o = this.value(out, sOut, 'int8');
    const src = wt.data as Int8Array;
    const inputs: string[] = [xv.name];
    if (fc) {
      inputs.push(this.newConst(`${name}_weight`, new Tensor('int8', [M, Cg], src.slice(0, M * Cg))));
    } else {
      // [M, C/g, kh, kw] → [M, kh, kw, C/g] (the order of an NHWC window)
      const dst = new Int8Array(src.length);
      for (let m = 0; m < M; m++) for (let c = 0; c < Cg; c++) for (let y = 0; y < kh; y++) for (let z = 0; z < kw; z++) dst[((m * kh + y) * kw + z) * Cg + c] = src[((m * Cg + c) * kh + y) * kw + z];
      inputs.push(this.newConst(`${name}_weight`, new Tensor('int8', [M, kh, kw, Cg], dst)));
    }
    inputs.push(b ? this.newConst(`${name}_bias`, new Tensor('int32', [M], (this.consts.get(b) as Tensor).data as Int32Array)) : '');
    inputs.push(this.newConst(`${name}_multiplier`, new Tensor('float32', [M], mult)));
    const attrs: BinAttr[] = [];
    if (!fc) {
      const g = convGeometry(n, this.dims(x), wt.dims);
      attrs.push(
        attr.ints('kernel', g.kernel), attr.ints('strides', g.strides), attr.ints('dilations', g.dilations),
        attr.ints('pads', [g.padsBegin[0], g.padsBegin[1], g.padsEnd[0], g.padsEnd[1]]), attr.i('group', g.group),
      );
    }
    attrs.push(attr.ints('clamp', [-128, 127]), attr.f('in_scale', sIn), attr.f('out_scale', sOut));
    this.push({ name, type: fc ? 'FC' : 'Conv', device: 'bpu', inputs, outputs: [o.name], attrs, sources: members.map((m) => m.label) });
  }

  private emitRequant(f: Node, ins: { value: string; scale: number }[], out: string, outDtype: 'int8' | 'int16', outScale: number, members: Node[]): void {
    const name = this.opName(f);
    for (const i of ins) if (i.value && !this.isConst(i.value)) this.value(i.value, i.scale, 'int8');
    const o = this.value(out, outScale, outDtype);
    const inputs = ins.map((i) => (i.value && this.isConst(i.value) ? this.floatConst(i.value) : i.value));
    const scales = ins.map((i) => i.scale);
    const sources = members.map((m) => m.label);
    const common = [attr.floats('in_scales', scales), attr.f('out_scale', outScale), attr.s('out_dtype', outDtype), attr.ints('clamp', outDtype === 'int8' ? [-128, 127] : [-32768, 32767])];
    const dataIns = ins.filter((i) => i.value);
    const rank4 = (v: string): boolean => !!v && this.dims(v).length === 4;
    if (REQUANT_ELTWISE.has(f.opType) && dataIns.length === 2 && ins.length === 2) {
      this.push({ name, type: 'Eltwise', device: 'bpu', inputs, outputs: [o.name], attrs: [attr.s('op', f.opType), ...common], sources });
      return;
    }
    if (f.opType === 'GlobalAveragePool' && rank4(ins[0].value) && ins[0].scale) {
      this.push({ name, type: 'GlobalAvgPool', device: 'bpu', inputs, outputs: [o.name], attrs: common, sources });
      return;
    }
    if (f.opType === 'AveragePool' && rank4(ins[0].value) && ins[0].scale) {
      const w = this.pool2d(f, ins[0].value);
      if (w) {
        this.push({ name, type: 'AvgPool', device: 'bpu', inputs, outputs: [o.name], attrs: [...w, attr.i('count_include_pad', f.int('count_include_pad', 0)!), ...common], sources });
        return;
      }
    }
    if (f.opType === 'Concat' && outDtype === 'int8' && ins.every((i) => i.value && i.scale)) {
      const rank = this.dims(out).length;
      let axis = f.int('axis', 1)!;
      if (axis < 0) axis += rank;
      this.push({ name, type: 'Concat', device: 'bpu', inputs, outputs: [o.name], attrs: [attr.i('axis', axis), ...common], sources });
      return;
    }
    const inner = onnxAttrs(f).map((a) => ({ ...a, name: `op:${a.name}` }));
    this.push({
      name, type: 'Requant', device: 'bpu', inputs, outputs: [o.name],
      attrs: [attr.s('op_type', f.opType), attr.s('op_domain', f.domain ?? ''), attr.i('op_opset', this.model.opset(f.domain) ?? 13), ...common, ...inner],
      sources,
    });
  }

  /** A constant input of a float op, as float32 (what the op reads after the DequantizeLinear). */
  private floatConst(v: string): string {
    return this.constant(v);
  }

  /** 2-D window attributes of a pool on `x` (resolved pads and output size), or undefined. */
  private pool2d(n: Node, x: string): BinAttr[] | undefined {
    const xd = this.dims(x);
    if (xd.length !== 4) return undefined;
    const w = windowAttrs(n, 2);
    const ceil = (this.model.opset('') ?? 13) >= 10 && n.int('ceil_mode', 0) !== 0;
    const r = resolveWindow(n, w, xd.slice(2), ceil);
    return [
      attr.ints('kernel', w.kernel), attr.ints('strides', w.strides), attr.ints('dilations', w.dilations),
      attr.ints('pads', [r.padsBegin[0], r.padsBegin[1], r.padsEnd[0], r.padsEnd[1]]),
    ];
  }

  /** Scale of an int8 value from the QuantizeLinear / QLinearConv that wrote it. */
  private scaleOfInt8(v: string): number {
    const n = this.producer.get(v);
    if (n?.opType === 'QuantizeLinear') return this.scalar(n.inputs[1]) ?? 0;
    if (n?.opType === 'QLinearConv') return this.scalar(n.inputs[6]) ?? 0;
    const known = this.p.values.get(v)?.scale;
    if (known) return known;
    // a table's output: the scale its readers dequantize it with, or the model output's
    for (const r of this.readers.get(v) ?? []) {
      if (r.opType === 'DequantizeLinear' && r.inputs[0] === v) {
        const s = this.scalar(r.inputs[1]) ?? this.uniform(r.inputs[1]);
        if (s) return s;
      }
    }
    return this.info.outputs.find((o) => o.name === v)?.scale ?? 0;
  }

  private scaleOfOutput(v: string): number {
    return this.info.outputs.find((o) => o.name === v)?.scale ?? 0;
  }

  // ---------------------------------------------------------------- inputs

  private lowerInputs(): void {
    const records = readPreprocessRecords(this.model);
    for (const v of this.g.realInputs) {
      const cfg = this.opts.inputs?.[v.name] ?? {};
      const rec = records.find((r) => r.input === v.name);
      const qi = this.info.inputs.find((i) => i.name === v.name);
      const dtype = this.dtype(v.name);
      const dims = this.dims(v.name);
      const typeRt = cfg.typeRt ?? rec?.typeRt ?? (dtype === 'int8' ? 'rgb' : 'featuremap');
      const typeTrain = cfg.typeTrain ?? rec?.typeTrain ?? (typeRt === 'featuremap' ? 'featuremap' : 'rgb');
      const spaceAndRange = cfg.spaceAndRange ?? rec?.spaceAndRange ?? 'regular';
      const source = cfg.source ?? (typeRt === 'nv12' ? 'pyramid' : 'ddr');
      if (typeRt === 'featuremap' || dtype !== 'int8') {
        const train = cfg.layoutTrain ?? 'NCHW';
        const layoutRt = dims.length === 4 ? cfg.layoutRt ?? train : '';
        const pv = this.value(v.name, 0, dtype, dims);
        // a featuremap given channels-last at run time for a model trained on NCHW: stored NHWC
        if (dims.length === 4 && train === 'NCHW' && layoutRt === 'NHWC') pv.layout = 'nhwc';
        else if (dims.length === 4 && layoutRt !== train) this.p.notes.push(`input '${v.name}': input_layout_rt ${layoutRt} of a featuremap trained ${train} is not converted; the .bin takes it ${train}`);
        this.p.inputs.push({ name: v.name, value: v.name, typeRt, typeTrain, layoutRt: dims.length === 4 && pv.layout !== 'nhwc' ? train : layoutRt, spaceAndRange, source });
        continue;
      }
      // image: the application gives uint8 (or NV12) data in input_type_rt / input_layout_rt
      if (dims.length !== 4) throw compileError(`image input '${v.name}' has shape [${dims}], an image input needs 4 dims`, v.name, 'use a featuremap input_type_rt for this input');
      const logical: 'NCHW' | 'NHWC' = (qi?.layout ?? rec?.layout) === 'NHWC' ? 'NHWC' : 'NCHW';
      const [N, C, H, W] = logical === 'NHWC' ? [dims[0], dims[3], dims[1], dims[2]] : dims;
      const layoutRt = typeRt === 'nv12' ? '' : cfg.layoutRt ?? rec?.layout ?? 'NCHW';
      if (typeRt === 'nv12' && (C !== 3 || H % 2 || W % 2)) {
        throw compileError(`input '${v.name}' is nv12, which needs 3 channels and an even height and width (got ${C}x${H}x${W})`, v.name, 'use an even input_shape or another input_type_rt');
      }
      const rawName = this.names.fresh(`${v.name}_${typeRt}`);
      const rawDims = typeRt === 'nv12' ? [N, (H * 3) / 2, W] : layoutRt === 'NHWC' ? [N, H, W, C] : [N, C, H, W];
      this.p.values.set(rawName, { name: rawName, dtype: 'uint8', dims: rawDims, scale: 0, layout: 'plain' });
      this.value(v.name, qi?.scale ?? 1, 'int8', dims);
      const input: PInput = { name: v.name, value: rawName, typeRt, typeTrain, layoutRt, spaceAndRange, source };
      this.p.inputs.push(input);
      this.push({
        name: this.names.fresh(this.g.realInputs.filter((x) => this.dtype(x.name) === 'int8').length > 1 ? `Preprocess_${v.name}` : 'Preprocess'),
        type: 'Preprocess', device: 'cpu', inputs: [rawName], outputs: [v.name],
        attrs: [attr.s('type_rt', typeRt), attr.s('layout_rt', layoutRt), attr.s('order', logical)],
        sources: [],
      });
    }
  }

  // ---------------------------------------------------------------- single nodes

  private lowerNode(n: Node): void {
    const name = this.opName(n);
    if (this.bpuInt16.has(n)) return this.lowerOnnx(n, name, 'bpu');
    const outs = n.outputs;
    if (!n.domain || n.domain === 'ai.onnx') {
      switch (n.opType) {
        case 'DequantizeLinear': {
          if (this.absorbedDq.has(n) && (this.readers.get(n.outputs[0]) ?? []).every((r) => this.grouped.has(r)) && !this.graphOutputs.has(n.outputs[0])) return;
          const s = this.scalar(n.inputs[1]);
          const q = n.inputs[0];
          const perAxisSame = s === undefined ? this.uniform(n.inputs[1]) : s;
          const zeroOk = !n.inputs[2] || (this.consts.get(n.inputs[2])?.toNumbers().every((z) => z === 0) ?? false);
          if (perAxisSame !== undefined && zeroOk && ['int8', 'int16', 'int32'].includes(this.dtype(q))) {
            this.value(q, perAxisSame);
            const o = this.value(outs[0], 0, 'float32');
            const label = this.graphOutputs.has(outs[0]) ? outs[0] : q;
            this.push({ name: this.names.fresh(`${label}_HzDequantize`), type: 'Dequantize', device: 'cpu', inputs: [q], outputs: [o.name], attrs: [attr.f('scale', perAxisSame)], sources: [n.label] });
            return;
          }
          break;
        }
        case 'QuantizeLinear': {
          const s = this.scalar(n.inputs[1]);
          const zt = n.inputs[2] ? this.consts.get(n.inputs[2]) : undefined;
          const dtype = zt?.dtype ?? 'uint8';
          if (s !== undefined && (dtype === 'int8' || dtype === 'int16') && (!zt || this.scalar(n.inputs[2]) === 0) && this.dtype(n.inputs[0]) === 'float32') {
            this.value(n.inputs[0]);
            const o = this.value(outs[0], s, dtype);
            this.push({ name: this.names.fresh(`${n.inputs[0]}_HzQuantize`), type: 'Quantize', device: 'cpu', inputs: [n.inputs[0]], outputs: [o.name], attrs: [attr.f('scale', s), attr.s('out_dtype', dtype)], sources: [n.label] });
            return;
          }
          break;
        }
        case 'Clip': {
          const x = n.inputs[0];
          if (this.dtype(x) === 'int8' && !this.isConst(x)) {
            const lo = n.inputs[1] ? this.scalar(n.inputs[1]) : -128;
            const hi = n.inputs[2] ? this.scalar(n.inputs[2]) : 127;
            if (lo !== undefined && hi !== undefined) {
              const xv = this.value(x);
              const o = this.value(outs[0], xv.scale, 'int8');
              this.push({ name, type: 'Clip', device: 'bpu', inputs: [x], outputs: [o.name], attrs: [attr.ints('clamp', [Math.max(-128, lo), Math.min(127, hi)])], sources: [n.label] });
              return;
            }
          }
          break;
        }
        case 'MaxPool': {
          const x = n.inputs[0];
          if (this.dtype(x) === 'int8' && this.dims(x).length === 4 && !(outs[1] && (this.readers.get(outs[1])?.length || this.graphOutputs.has(outs[1])))) {
            const w = this.pool2d(n, x);
            if (w) {
              const xv = this.value(x);
              const o = this.value(outs[0], xv.scale, 'int8');
              this.push({ name, type: 'MaxPool', device: 'bpu', inputs: [x], outputs: [o.name], attrs: w, sources: [n.label] });
              return;
            }
          }
          break;
        }
        case 'ReduceMax': {
          const x = n.inputs[0];
          const axes = n.inputs[1] ? this.consts.get(n.inputs[1])?.toNumbers() : n.ints('axes');
          const norm = axes?.map((a) => (a < 0 ? a + 4 : a)).sort();
          if (this.dtype(x) === 'int8' && this.dims(x).length === 4 && n.int('keepdims', 1) === 1 && norm?.join(',') === '2,3') {
            const xv = this.value(x);
            const o = this.value(outs[0], xv.scale, 'int8');
            this.push({ name, type: 'GlobalMaxPool', device: 'bpu', inputs: [x], outputs: [o.name], sources: [n.label] });
            return;
          }
          break;
        }
        case 'Concat': {
          const ins = n.inputs.filter((i) => i);
          if (ins.every((i) => this.dtype(i) === 'int8' && !this.isConst(i))) {
            const scales = ins.map((i) => this.value(i).scale);
            const o = this.value(outs[0], scales[0], 'int8');
            const rank = o.dims.length;
            let axis = n.int('axis', 1)!;
            if (axis < 0) axis += rank;
            this.push({
              name, type: 'Concat', device: 'bpu', inputs: ins, outputs: [o.name],
              attrs: [attr.i('axis', axis), attr.floats('in_scales', scales), attr.f('out_scale', scales[0]), attr.s('out_dtype', 'int8'), attr.ints('clamp', [-128, 127])],
              sources: [n.label],
            });
            return;
          }
          break;
        }
        default:
          break;
      }
    }
    this.lowerOnnx(n, name);
  }

  /** The common value of a constant per-axis scale, or undefined. */
  private uniform(v: string | undefined): number | undefined {
    const t = v ? this.consts.get(v) : undefined;
    if (!t || t.size === 0) return undefined;
    const xs = t.toNumbers();
    return xs.every((x) => x === xs[0]) ? xs[0] : undefined;
  }

  /** An ONNX node kept as it is: on the BPU when it moves int8 values (or `device` says so), else on the CPU. */
  private lowerOnnx(n: Node, name: string, forced?: Device): void {
    if (!findOp(n.domain, n.opType) && (!n.domain || n.domain === 'ai.onnx')) {
      throw compileError(`node '${n.label}' (${n.opType}) has no kernel in nx-ptq`, n.label, 'replace the operator, or register it as a custom CPU operator');
    }
    for (const a of n.attrs.values()) {
      if (!['int', 'float', 'string', 'ints', 'floats'].includes(a.type)) {
        throw compileError(`node '${n.label}' (${n.opType}) has a ${a.type} attribute, which a .bin op cannot hold`, n.label, 'fold or replace the node before conversion');
      }
    }
    const data = n.inputs[0];
    const int8Data = !!data && !this.isConst(data) && (this.dtype(data) === 'int8' || this.dtype(data) === 'int16') && n.opType !== 'Cast' && n.opType !== 'DequantizeLinear' && n.opType !== 'QuantizeLinear';
    const device: Device = forced ?? (int8Data && (!n.domain || n.domain === 'ai.onnx') ? 'bpu' : 'cpu');
    const inputs = n.inputs.map((i) => {
      if (!i) return '';
      if (this.isConst(i)) return this.constant(i);
      this.value(i);
      return i;
    });
    const outputs = n.outputs.map((o) => {
      if (!o) return '';
      const used = (this.readers.get(o)?.length ?? 0) > 0 || this.graphOutputs.has(o);
      if (!used && n.outputs.indexOf(o) > 0) return '';
      const quantized = this.dtype(o) === 'int8' || this.dtype(o) === 'int16';
      // an int16 pattern's result: the scale the pattern tells; a passive op's: its input's
      const scale = !quantized ? 0 : forced ? this.patternScale(o) : device === 'bpu' && data ? this.p.values.get(data)?.scale ?? 0 : 0;
      this.value(o, scale);
      return o;
    });
    while (outputs.length && outputs[outputs.length - 1] === '') outputs.pop();
    this.push({
      name, type: n.opType, domain: n.domain && n.domain !== 'ai.onnx' ? n.domain : '', device, inputs, outputs, attrs: [...onnxAttrs(n), attr.i('_opset', this.model.opset(n.domain) ?? 1)], sources: [n.label],
      ...(this.bpuInt16.has(n) ? { int16Pattern: true } : {}),
    });
  }
}

/** The scalar/list attributes of an ONNX node as .bin attributes. */
export function onnxAttrs(n: Node): BinAttr[] {
  const out: BinAttr[] = [];
  for (const [name, a] of [...n.attrs.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
    out.push(toBinAttr(name, a, n));
  }
  return out;
}

function toBinAttr(name: string, a: Attribute, n: Node): BinAttr {
  switch (a.type) {
    case 'int':
      return attr.i(name, a.value);
    case 'float':
      return attr.f(name, a.value);
    case 'string':
      return attr.s(name, a.value);
    case 'ints':
      return attr.ints(name, a.value);
    case 'floats':
      return attr.floats(name, a.value);
    default:
      throw compileError(`node '${n.label}' (${n.opType}) has a ${a.type} attribute '${name}', which a .bin op cannot hold`, n.label, 'fold or replace the node before conversion');
  }
}
