import { dtypeToOnnx } from '../onnx/dtype';
import { Attribute, Graph, Model, Node, ValueInfo } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp } from '../ops/registry';
import { buildLut, dequantizeValue, quantizeValue, requantMultiplier, roundHalfEven } from '../kernels/requant';
import { cloneNode, cloneValueInfo, Namer } from './names';
import { withGraph } from '../onnx/clone';
import { INT8_PASSIVE, inputRoles, planQuantization, QuantPlan, WeightQuant, weightFor } from './plan';
import { activationScale, int16Scale, QUANT_INFO_KEY, QuantizedModelInfo, QuantizeSpec } from './spec';

/**
 * `***_quantized_model.onnx`: the integer model of the numerics contract (shared/DESIGN.md §3)
 * in standard ONNX ops (opset ≥ 13), runnable by onnxruntime and by our ReferenceEngine,
 * whose run of it is the exact simulation the `.bin` must reproduce. Representation:
 *
 * - activations: int8, zero point 0, one float32 scale per tensor (`<t>_scale`); the int8 value
 *   keeps the float tensor's name (a model output's int8 value is `<t>_quantized`)
 * - Conv (constant weights): QLinearConv — int8 weights per output channel (axis 0), int32
 *   bias with scale s_in·s_w[c], output scale of the tensor (or of the Relu/Clip it feeds)
 * - Gemm / MatMul with a constant 2-D weight: Reshape(int8, [-1, K, 1, 1]) → 1×1 QLinearConv
 *   (bias int32 as for Conv; Gemm alpha folded into the weight scale) → Reshape back
 * - Relu / Clip: Clip on int8 with the quantized bounds (Relu = Clip(0, 127)); after an
 *   active op this is the contract's fused clamp clamp(rne(acc·M), lo, hi)
 * - other passive ops (MaxPool, Reshape, Transpose, Slice, nearest Resize, Pad, …) run on
 *   the int8 values and keep the input scale; GlobalMaxPool becomes ReduceMax, Dropout Identity
 * - LUT ops (Sigmoid, Tanh, …): table[q + 128] as Cast(int32) → Add(128) → Gather(int8 [256])
 * - Concat: int8 Concat when all inputs already have the output scale, else as below
 * - ConvTranspose (constant weights): the integer transposed convolution written in float ops
 *   on integer values — Cast(int8 → float) → ConvTranspose(int8 weights as floats, int32 bias
 *   as floats) → Mul(M[c]) → QuantizeLinear(scale 1): the contract's
 *   clamp(rne(fround(fround(acc)·M))) exactly while every partial sum stays below 2^24
 * - other active ops (Add, Sub, Mul, AveragePool, GlobalAveragePool, ReduceMean, linear Resize,
 *   …): DequantizeLinear → float op → QuantizeLinear(output scale); weights are int8
 *   initializers behind a DequantizeLinear, a Conv/Gemm bias is int32 (scale s_in·s_w[c])
 *   behind a DequantizeLinear, constant operands are int8 per tensor
 * - CPU nodes: DequantizeLinear → float node → QuantizeLinear where a BPU node reads the result.
 *   A CPU Conv/ConvTranspose/Gemm reads its input through a per-axis DequantizeLinear (the
 *   scale repeated along axis 1): onnxruntime quantizes the float weights of such a node itself
 *   when its input comes from a per-tensor DequantizeLinear (WeightBiasQuantization, even at
 *   optimisation level 'basic'), which would no longer be the float CPU op
 * - image inputs: int8 (x − 128); NHWC on bernoulli2 (a Transpose to NCHW on int8 follows),
 *   the HzPreprocess Cast disappears (its readers see the int8 input with scale 1)
 * - featuremap inputs: float32 → QuantizeLinear
 * - outputs: DequantizeLinear to float32 (default), the int8 value (`int8`), or int16
 *   (`int16`, bayes: a Conv/Gemm output is requantised straight to int16 by the integer
 *   convolution written in float ops — Cast → Conv on integer values → Mul(M) → Round → Clip →
 *   Cast(int16) — exact while |acc| < 2^24; a requantising op's output is Div(s_out) → Round →
 *   Clip → Cast; other producers widen their int8 value, keeping its scale)
 * - int16 values (bayes node_info, QuantizeSpec.int16Nodes; plan.int16): int16, zero point 0,
 *   scale fround(threshold / 32767). A Conv (or Gemm/MatMul as a 1×1 Conv) writing or reading
 *   one computes its int32 accumulator exactly with ConvInteger: int8 input x → ConvInteger(x,
 *   W_int8); int16 input → x = 256·hi + lo (lo = x mod 256 as uint8, hi = (x − lo)/256 as int8;
 *   Cast/Mod/Sub/Div) and 256·ConvInteger(hi, W) + ConvInteger(lo, W); then Add(int32 bias) →
 *   Cast(float) → Mul(M) → Round → Clip → Cast(int16), or → QuantizeLinear(scale 1) for an
 *   int8 output: the contract's requantisation. A ConvTranspose reading one: Cast(float) →
 *   ConvTranspose on integer values (exact while |acc| < 2^24). Any other active, LUT or
 *   Concat node writing one: … → float op → Div(s) → Round → Clip → Cast(int16). Read by a
 *   passive op as Cast(float) → the op → Cast(int16) (exact; the output is int16 with the same
 *   scale); by a requantising, LUT, Concat or CPU node as Cast(float) → Mul(s)
 *   (DequantizeLinear takes int16 only from opset 21). A model output that is an int16 value
 *   leaves as int16 (set_model_output_int16), requantised to int8 (QuantizeLinear), or
 *   dequantized (Cast → Mul). The int8 patterns above are unchanged for everything else.
 */
export function emitQuantizedModel(model: Model, spec: QuantizeSpec): Model {
  return quantizedFromPlan(planQuantization(model, spec));
}

export function quantizedFromPlan(plan: QuantPlan): Model {
  return new QuantizedEmitter(plan).emit();
}

class QuantizedEmitter {
  private readonly src: Graph;
  private readonly g: Graph;
  private readonly names: Namer;
  private readonly nodeNames: Namer;
  private readonly int8Name = new Map<string, string>();
  private readonly floatName = new Map<string, string>();
  /** per-axis dequantized values for CPU Conv/ConvTranspose/Gemm readers */
  private readonly floatPerAxis = new Map<string, string>();
  /** dequantized int8 value of a float-domain tensor (what a BPU op computing in float sees) */
  private readonly bpuFloat = new Map<string, string>();
  private readonly scaleName = new Map<string, string>();
  private readonly zeroName = new Map<string, string>();
  private readonly weightNames = new Map<WeightQuant, { q: string; scale: string; zp: string }>();
  private readonly outputs: Set<string>;
  private readonly int16Outputs = new Set<string>();
  private readonly info: QuantizedModelInfo;

  constructor(private readonly plan: QuantPlan) {
    this.src = plan.model.graph;
    this.names = new Namer(this.src);
    this.nodeNames = new Namer(this.src, 'nodes');
    this.g = new Graph({ name: this.src.name, docString: this.src.docString, initializers: new Map(this.src.initializers) });
    this.g.extra = this.src.extra;
    this.outputs = new Set(this.src.outputs.map((o) => o.name));
    this.info = { march: plan.spec.march, inputs: [], outputs: [] };
  }

  emit(): Model {
    const { plan, src, g } = this;
    this.emitInputs();
    const readers = src.consumers();
    if (plan.spec.outputType === 'int16') {
      for (const node of src.nodes) {
        const o = node.outputs[0];
        const kind = plan.kinds.get(node);
        if (o && this.outputs.has(o) && plan.int8.has(o) && !readers.get(o)?.length && (kind === 'conv' || kind === 'fc' || kind === 'deconv' || kind === 'requant')) this.int16Outputs.add(o);
      }
    }
    for (const node of src.topoSort()) {
      switch (plan.kinds.get(node) ?? 'float') {
        case 'float': this.emitFloat(node); break;
        case 'input-cast': this.int8Name.set(node.outputs[0], this.int8(node.inputs[0])); break;
        case 'passive': if (plan.int16.has(node.inputs[0])) this.emitPassive16(node); else this.emitPassive(node); break;
        case 'lut': if (this.touchesInt16(node)) this.emitRequant(node); else this.emitLut(node); break;
        case 'concat': if (this.touchesInt16(node)) this.emitRequant(node); else this.emitConcat(node); break;
        case 'conv': this.emitConv(node); break;
        case 'fc': this.emitFc(node); break;
        case 'deconv': this.emitDeconv(node); break;
        case 'requant': this.emitRequant(node); break;
      }
    }
    this.emitOutputs();
    g.pruneUnused();
    if (plan.int16Ignored.length) this.info.int16NodesIgnored = plan.int16Ignored.slice();
    if (plan.int16.size) this.info.int16Values = [...plan.int16].sort();
    if (plan.spec.biasCorrection) this.info.biasCorrected = Object.keys(plan.spec.biasCorrection).sort();
    if (plan.spec.channelScales) this.info.equalized = Object.keys(plan.spec.channelScales).sort();
    return withGraph(plan.model, g, {
      producerName: 'nx-ptq',
      metadataProps: { ...plan.model.metadataProps, [QUANT_INFO_KEY]: JSON.stringify(this.info) },
    });
  }

  // ------------------------------------------------------------------ inputs and outputs

  private emitInputs(): void {
    const { plan, src, g } = this;
    for (const v of src.inputs) {
      const layout = plan.imageInputs.get(v.name);
      if (!layout || src.initializers.has(v.name)) {
        g.inputs.push(cloneValueInfo(v));
        if (!src.initializers.has(v.name)) this.info.inputs.push({ name: v.name, dtype: v.type?.dtype ?? 'float32', note: 'featuremap: quantized by QuantizeLinear where the BPU reads it' });
        continue;
      }
      const s = v.type?.shape;
      if (plan.spec.march === 'bernoulli2' && layout === 'NCHW') {
        const nhwc = s && s.length === 4 ? [s[0], s[2], s[3], s[1]] : s;
        g.inputs.push({ ...cloneValueInfo(v), type: { dtype: 'int8', shape: nhwc?.slice() }, docString: `${v.docString ?? ''}${v.docString ? '; ' : ''}NHWC on bernoulli2` });
        const t = this.names.fresh(`${v.name}_nchw`);
        this.push('Transpose', `${v.name}_to_nchw`, [v.name], [t], { perm: ints([0, 3, 1, 2]) }, 'image input NHWC → NCHW (int8)');
        this.int8Name.set(v.name, t);
        this.info.inputs.push({ name: v.name, dtype: 'int8', layout: 'NHWC', scale: 1, note: 'image (x − 128), NHWC' });
      } else {
        g.inputs.push(cloneValueInfo(v));
        this.int8Name.set(v.name, v.name);
        this.info.inputs.push({ name: v.name, dtype: 'int8', layout, scale: 1, note: `image (x − 128), ${layout}` });
      }
    }
  }

  private emitOutputs(): void {
    const { plan, src, g } = this;
    const type = plan.spec.outputType ?? 'float32';
    for (const v of src.outputs) {
      const o = v.name;
      if (!plan.int8.has(o)) {
        g.outputs.push(cloneValueInfo(v));
        this.info.outputs.push({ name: o, dtype: v.type?.dtype ?? 'float32' });
        continue;
      }
      const shape = v.type?.shape?.slice();
      const scale = plan.scales.get(o) as number;
      if (this.int16Outputs.has(o)) {
        g.outputs.push({ name: o, type: { dtype: 'int16', shape } });
        this.info.outputs.push({ name: o, dtype: 'int16', scale: this.scale16(o) });
        continue;
      }
      if (plan.int16.has(o)) {
        // an int16 value (node_info): dequantized, requantised to int8, or as it is
        const v = this.int8Name.get(o) as string;
        if (type === 'int16') {
          if (v !== o) this.push('Identity', `${o}_output`, [v], [o]);
          g.outputs.push({ name: o, type: { dtype: 'int16', shape } });
          this.info.outputs.push({ name: o, dtype: 'int16', scale });
        } else if (type === 'int8') {
          this.push('QuantizeLinear', `${o}_QuantizeLinear`, [this.float(o), this.constant(`${o}_scale_int8`, tensorFrom('float32', [], [activationScale(this.threshold(o))])), this.zero('int8')], [o], {}, 'int16 value requantised to the int8 output');
          g.outputs.push({ name: o, type: { dtype: 'int8', shape } });
          this.info.outputs.push({ name: o, dtype: 'int8', scale: activationScale(this.threshold(o)) });
        } else {
          this.dequantize16(v, o, o);
          g.outputs.push({ name: o, type: { dtype: 'float32', shape } });
          this.info.outputs.push({ name: o, dtype: 'float32' });
        }
        continue;
      }
      const q = this.int8(o);
      if (type === 'float32') {
        this.push('DequantizeLinear', `${o}_DequantizeLinear`, [q, this.scale(o), this.zero('int8')], [o], {}, 'model output');
        g.outputs.push({ name: o, type: { dtype: 'float32', shape } });
        this.info.outputs.push({ name: o, dtype: 'float32' });
      } else if (type === 'int8') {
        if (q !== o) this.push('Identity', `${o}_output`, [q], [o]);
        g.outputs.push({ name: o, type: { dtype: 'int8', shape } });
        this.info.outputs.push({ name: o, dtype: 'int8', scale });
      } else {
        // int16 requested, int8 producer (passive / LUT / Concat): widen, same scale
        this.push('Cast', `${o}_to_int16`, [q], [o], { to: int(dtypeToOnnx('int16')) }, 'int8 output widened to int16 (scale unchanged)');
        g.outputs.push({ name: o, type: { dtype: 'int16', shape } });
        this.info.outputs.push({ name: o, dtype: 'int16', scale });
      }
    }
  }

  // ------------------------------------------------------------------ node kinds

  private emitFloat(node: Node): void {
    const c = cloneNode(node);
    const convLike = !node.domain && (node.opType === 'Conv' || node.opType === 'ConvTranspose' || node.opType === 'Gemm');
    c.inputs = c.inputs.map((v, k) => (v && this.plan.int8.has(v) ? (convLike && k === 0 ? this.floatPerAxis_(v) : this.float(v)) : v));
    this.g.nodes.push(c);
  }

  private emitPassive(node: Node): void {
    const x = this.int8(node.inputs[0]);
    const s = this.plan.scales.get(node.inputs[0]) as number;
    const outs = node.outputs.map((o, k) => (o && (k === 0 || node.opType === 'Split') ? this.int8Target(o) : ''));
    while (outs.length && outs[outs.length - 1] === '') outs.pop();
    if (!INT8_PASSIVE.has(node.opType)) {
      // no int8 kernel in onnxruntime: the op on the dequantized values, requantised to the same scale (exact for ops that move values)
      const c = cloneNode(node);
      c.inputs[0] = this.float(node.inputs[0]);
      c.outputs = c.outputs.map((o, k) => (outs[k] ? this.names.fresh(`${o}_float`) : ''));
      this.g.nodes.push(c);
      c.outputs.forEach((f, k) => f && this.push('QuantizeLinear', `${node.outputs[k]}_QuantizeLinear`, [f, this.scale(node.inputs[0]), this.zero('int8')], [outs[k]]));
      node.outputs.forEach((o, k) => outs[k] && this.int8Name.set(o, outs[k]));
      return;
    }
    const name = this.nodeName(node);
    const q = (v: number): string => this.constant(`${name}_q`, tensorFrom('int8', [], [v]));
    switch (node.opType) {
      case 'Relu':
        this.push('Clip', name, [x, q(0), q(127)], outs, {}, 'Relu as an int8 clamp', true);
        break;
      case 'Clip': {
        const bound = (k: number, def: number): string => {
          const v = node.inputs[k];
          if (!v) return q(def);
          const b = (this.src.initializers.get(v) as Tensor).toFloat32()[0];
          return q(quantizeValue(b, s, 0, -128, 127));
        };
        this.push('Clip', name, [x, bound(1, -128), bound(2, 127)], outs, {}, 'Clip as an int8 clamp', true);
        break;
      }
      case 'GlobalMaxPool': {
        const rank = this.plan.facts.get(node.inputs[0])?.shape?.length ?? 4;
        const axes = Array.from({ length: rank - 2 }, (_, i) => i + 2);
        if ((this.plan.model.opset('') ?? 13) >= 18) this.push('ReduceMax', name, [x, this.constant(`${name}_axes`, tensorFrom('int64', [axes.length], axes))], outs, { keepdims: int(1) }, 'GlobalMaxPool on int8', true);
        else this.push('ReduceMax', name, [x], outs, { axes: ints(axes), keepdims: int(1) }, 'GlobalMaxPool on int8', true);
        break;
      }
      case 'Dropout':
        this.push('Identity', name, [x], outs.slice(0, 1), {}, 'Dropout (inference)', true);
        break;
      case 'Pad': {
        const c = cloneNode(node);
        c.inputs[0] = x;
        const mode = node.str('mode', 'constant');
        if (mode === 'constant') {
          const v = node.inputs[2] ? (this.src.initializers.get(node.inputs[2]) as Tensor).toFloat32()[0] : 0;
          while (c.inputs.length < 3) c.inputs.push('');
          c.inputs[2] = q(quantizeValue(v, s, 0, -128, 127));
        }
        c.outputs = outs;
        this.g.nodes.push(c);
        break;
      }
      default: {
        const c = cloneNode(node);
        c.inputs[0] = x;
        c.outputs = outs;
        this.g.nodes.push(c);
      }
    }
    node.outputs.forEach((o, k) => outs[k] && this.int8Name.set(o, outs[k]));
  }

  /**
   * A passive op on an int16 value: the op on the integer values as floats (exact: the op only
   * moves or selects values, and int16 fits float32), Cast back to int16; Clip / Pad constants
   * quantized to the input's int16 scale.
   */
  private emitPassive16(node: Node): void {
    const s = this.plan.scales.get(node.inputs[0]) as number;
    const name = this.nodeName(node);
    const xf = this.names.fresh(`${node.inputs[0]}_int16_as_float`);
    this.push('Cast', `${name}_cast_in`, [this.int8(node.inputs[0])], [xf], { to: int(dtypeToOnnx('float32')) }, 'int16 values as floats');
    const q16 = (v: number): number => quantizeValue(v, s, 0, -32768, 32767);
    const c = cloneNode(node);
    c.name = name;
    c.inputs[0] = xf;
    if (node.opType === 'Clip') {
      for (const k of [1, 2]) {
        const v = node.inputs[k];
        if (v) c.inputs[k] = this.constant(`${name}_bound`, tensorFrom('float32', [], [q16((this.src.initializers.get(v) as Tensor).toFloat32()[0])]));
      }
    } else if (node.opType === 'Pad' && node.str('mode', 'constant') === 'constant' && node.inputs[2]) {
      c.inputs[2] = this.constant(`${name}_pad_value`, tensorFrom('float32', [], [q16((this.src.initializers.get(node.inputs[2]) as Tensor).toFloat32()[0])]));
    } else if (node.opType === 'Dropout') {
      c.opType = 'Identity';
      c.inputs = [xf];
      c.outputs = c.outputs.slice(0, 1);
      c.attrs = new Map();
    }
    c.outputs = c.outputs.map((o, k) => (o && (k === 0 || node.opType === 'Split') ? this.names.fresh(`${o}_as_float`) : ''));
    while (c.outputs.length && c.outputs[c.outputs.length - 1] === '') c.outputs.pop();
    c.docString = 'on int16 values (as floats)';
    this.g.nodes.push(c);
    c.outputs.forEach((f, k) => {
      if (!f) return;
      const o = node.outputs[k];
      const out = this.int16Target(o);
      this.push('Cast', `${name}_cast_out`, [f], [out], { to: int(dtypeToOnnx('int16')) }, 'back to int16 (scale unchanged)');
      this.int8Name.set(o, out);
    });
  }

  private emitLut(node: Node): void {
    const { plan } = this;
    const inp = node.inputs.find((v) => v) as string;
    const o = node.outputs[0];
    const sIn = plan.scales.get(inp) as number;
    const sOut = plan.scales.get(o) as number;
    // f on the 256 dequantized inputs, by the op's own float kernel (what the calibrated model computes)
    const xs = new Float32Array(256);
    for (let i = 0; i < 256; i++) xs[i] = dequantizeValue(i - 128, sIn, 0);
    const op = findOp(node.domain, node.opType);
    if (!op) throw new Error(`no kernel for ${node.opType}`);
    const ys = op.run({ node, opset: plan.model.opset(node.domain) ?? 13 }, node.inputs.map((v) => (v ? new Tensor('float32', [256], xs) : undefined)))[0].toFloat32();
    const byX = new Map<number, number>();
    for (let i = 0; i < 256; i++) byX.set(xs[i], ys[i]);
    const lut = buildLut((x) => byX.get(x) as number, 'int8', sIn, 0, 'int8', sOut, 0);
    const name = this.nodeName(node);
    const table = this.constant(`${name}_lut`, new Tensor('int8', [256], lut.table as Int8Array));
    const i32 = this.names.fresh(`${o}_lut_i32`);
    const idx = this.names.fresh(`${o}_lut_index`);
    this.push('Cast', `${name}_lut_cast`, [this.int8(inp)], [i32], { to: int(dtypeToOnnx('int32')) }, `HzLut ${node.opType}`);
    this.push('Add', `${name}_lut_offset`, [i32, this.constant(`${name}_lut_offset`, tensorFrom('int32', [], [128]))], [idx], {}, `HzLut ${node.opType}`);
    const out = this.int8Target(o);
    this.push('Gather', name, [table, idx], [out], { axis: int(0) }, `HzLut ${node.opType}: table[q + 128] = quantize(${node.opType}(dequantize(q)))`, true);
    this.int8Name.set(o, out);
  }

  private emitConcat(node: Node): void {
    const o = node.outputs[0];
    const s = this.plan.scales.get(o);
    const ins = node.inputs.filter((v) => v);
    if (ins.every((v) => this.plan.scales.get(v) === s && !this.plan.isConst(v))) {
      const c = cloneNode(node);
      c.inputs = c.inputs.map((v) => (v ? this.int8(v) : v));
      c.outputs = [this.int8Target(o)];
      c.docString = 'Concat on int8 (all inputs have the output scale)';
      this.g.nodes.push(c);
      this.int8Name.set(o, c.outputs[0]);
      return;
    }
    this.emitRequant(node);
  }

  private emitRequant(node: Node): void {
    const { plan } = this;
    const roles = inputRoles(node, plan.kinds.get(node) ?? 'requant', plan.isConst);
    const c = cloneNode(node);
    c.inputs = node.inputs.map((v, k) => {
      if (!v) return v;
      if (roles[k] === 'weight') return this.dequantizedWeight(weightFor(plan, node, k));
      if (roles[k] === 'data' && plan.scales.has(v)) return this.dequantized(v);
      if (roles[k] === 'bias' && roles[1] === 'weight' && plan.isConst(v)) return this.dequantizedBias(node, v) ?? v;
      return v;
    });
    const o = node.outputs[0];
    const f = this.names.fresh(`${o}_float`);
    c.outputs = [f, ...node.outputs.slice(1)];
    this.g.nodes.push(c);
    if (this.isInt16(o)) {
      const s16 = this.constant(`${o}_scale`, tensorFrom('float32', [], [this.scale16(o)]));
      const div = this.names.fresh(`${o}_div`);
      this.push('Div', `${o}_to_int16_scale`, [f, s16], [div], {}, 'x / s_out (int16)');
      const out = this.int16Outputs.has(o) ? o : this.int16Target(o);
      this.roundToInt16(div, out, `${o}_to_int16`);
      this.int8Name.set(o, out);
      return;
    }
    const out = this.int8Target(o);
    this.push('QuantizeLinear', `${o}_QuantizeLinear`, [f, this.scale(o), this.zero('int8')], [out]);
    this.int8Name.set(o, out);
  }

  private emitConv(node: Node): void {
    const w = weightFor(this.plan, node, 1);
    const attrs = new Map(node.attrs);
    this.emitIntegerConv(node, 'Conv', this.int8(node.inputs[0]), node.inputs[0], w, w.q, w.scales, node.inputs[2], 1, attrs, node.outputs[0], undefined);
  }

  /** ConvTranspose: always the integer convolution in float ops (ONNX has no QLinearConvTranspose). */
  private emitDeconv(node: Node): void {
    const w = weightFor(this.plan, node, 1);
    this.emitIntegerConv(node, 'ConvTranspose', this.int8(node.inputs[0]), node.inputs[0], w, w.q, w.scales, node.inputs[2], 1, new Map(node.attrs), node.outputs[0], undefined);
  }

  /** Gemm / MatMul with a constant weight as a 1×1 convolution between two int8 Reshapes. */
  private emitFc(node: Node): void {
    const { plan } = this;
    const w = weightFor(plan, node, 1);
    const b = plan.model.graph.initializers.get(node.inputs[1]) as Tensor;
    const nOut = node.opType === 'Gemm' ? b.dims[node.int('transB', 0) ? 0 : 1] : b.dims[1];
    const k = node.opType === 'Gemm' ? b.dims[node.int('transB', 0) ? 1 : 0] : b.dims[0];
    const rowMajorNK = node.opType === 'Gemm' && node.int('transB', 0) !== 0;
    const q = w.q.data as Int8Array;
    const wq = new Int8Array(nOut * k);
    for (let n = 0; n < nOut; n++) for (let j = 0; j < k; j++) wq[n * k + j] = rowMajorNK ? q[n * k + j] : q[j * nOut + n];
    let scales = w.scales;
    const alpha = node.opType === 'Gemm' ? node.float('alpha', 1) : 1;
    if (alpha !== 1) scales = scales.map((v) => Math.fround(v * alpha));
    const name = this.nodeName(node);
    const o = node.outputs[0];
    const a = plan.facts.get(node.inputs[0])?.shape ?? [];
    const mid = a.slice(1, -1) as number[];
    const xin = this.names.fresh(`${o}_fc_in`);
    this.push('Reshape', `${name}_reshape_in`, [this.int8(node.inputs[0]), this.constant(`${name}_shape_in`, tensorFrom('int64', [4], [-1, k, 1, 1]))], [xin], {}, `${node.opType} as a 1×1 convolution`);
    const y = this.names.fresh(`${o}_fc_out`);
    const beta = node.opType === 'Gemm' ? node.float('beta', 1) : 1;
    const attrs = new Map<string, Attribute>([['kernel_shape', ints([1, 1])]]);
    const out = this.emitIntegerConv(node, 'Conv', xin, node.inputs[0], w, new Tensor('int8', [nOut, k, 1, 1], wq), scales, node.opType === 'Gemm' ? node.inputs[2] : undefined, beta, attrs, o, y, name);
    const target = this.int16Outputs.has(o) ? o : this.isInt16(o) ? this.int16Target(o) : this.int8Target(o);
    this.push('Reshape', `${name}_reshape_out`, [out, this.constant(`${name}_shape_out`, tensorFrom('int64', [mid.length + 2], [-1, ...mid, nOut]))], [target], {}, `${node.opType} as a 1×1 convolution`);
    this.int8Name.set(o, target);
  }

  /**
   * The integer convolution of the contract. Conv to int8: QLinearConv. ConvTranspose, or an
   * int16 model output: the same arithmetic in float ops on integer values,
   * Cast → Conv/ConvTranspose → Mul(M) → QuantizeLinear(scale 1). Returns the output value
   * (`into`, or the tensor's int8 / int16 name).
   */
  private emitIntegerConv(
    node: Node, convOp: 'Conv' | 'ConvTranspose', x: string, xTensor: string, w: WeightQuant, wq: Tensor, wScales: Float32Array,
    bias: string | undefined, biasMul: number, attrs: Map<string, Attribute>, o: string, into: string | undefined, baseName?: string,
  ): string {
    const perChannel = wScales.length > 1;
    // output channels: weight dim 0 (Conv), dim 1 · group (ConvTranspose)
    const M = convOp === 'Conv' ? wq.dims[0] : wq.dims[1] * node.int('group', 1);
    const sIn = this.plan.scales.get(xTensor) as number;
    const name = baseName ?? this.nodeName(node);
    const channelScale = (c: number): number => wScales[perChannel ? (convOp === 'Conv' ? c : c % wq.dims[1]) : 0];
    let bq: Int32Array | undefined;
    if (bias) {
      const bt = (this.src.initializers.get(bias) as Tensor).toFloat32();
      bq = new Int32Array(M);
      for (let c = 0; c < M; c++) bq[c] = quantizeBias(biasMul * bt[bt.length > 1 ? c : 0], sIn, channelScale(c));
    }
    const int16 = this.isInt16(o);
    if (int16 || convOp === 'ConvTranspose' || this.plan.int16.has(xTensor)) {
      const sOut = int16 ? this.scale16(o) : (this.plan.scales.get(o) as number);
      const acc = this.names.fresh(`${o}_acc`);
      if (convOp === 'Conv' && (this.plan.int16.has(xTensor) || this.plan.int16.has(o))) {
        this.integerAccumulator(name, x, this.plan.int16.has(xTensor), wq, bq, attrs, o, acc);
      } else {
        const xf = this.names.fresh(`${o}_int_as_float`);
        const doc = 'integer convolution in float ops: exact while every partial sum stays below 2^24';
        this.push('Cast', `${name}_cast`, [x], [xf], { to: int(dtypeToOnnx('float32')) }, doc);
        const wf = this.constant(`${name}_weight_int`, new Tensor('float32', wq.dims, Float32Array.from(wq.data as Int8Array)));
        const ins = [xf, wf];
        if (bq) ins.push(this.constant(`${name}_bias_int`, new Tensor('float32', [M], Float32Array.from(bq))));
        this.push(convOp, name, ins, [acc], Object.fromEntries(attrs), 'int32 accumulation on integer-valued floats', true);
      }
      const mult = new Float32Array(perChannel ? M : 1);
      for (let c = 0; c < mult.length; c++) mult[c] = requantMultiplier(sIn, channelScale(c), sOut);
      const spatial = wq.rank - 2;
      const scaled = this.names.fresh(`${o}_scaled`);
      const mDims = perChannel ? [M, ...new Array<number>(spatial).fill(1)] : [];
      this.push('Mul', `${name}_requant`, [acc, this.constant(`${name}_multiplier`, new Tensor('float32', mDims, mult))], [scaled], {}, 'fround(acc · M), M = fround(fround(s_in · s_w) / s_out)');
      const out = into ?? (this.int16Outputs.has(o) ? o : int16 ? this.int16Target(o) : this.int8Target(o));
      if (int16) this.roundToInt16(scaled, out, `${name}_round`);
      else this.push('QuantizeLinear', `${name}_round`, [scaled, this.constant(`${name}_one`, tensorFrom('float32', [], [1])), this.zero('int8')], [out], {}, 'clamp(roundHalfEven(·)) to int8');
      if (!into) this.int8Name.set(o, out);
      return out;
    }
    const names = this.weightInits(w, wq, wScales, baseName ? `${name}_weight` : undefined);
    const ins = [x, this.scale(xTensor), this.zero('int8'), names.q, names.scale, names.zp, this.scale(o), this.zero('int8')];
    if (bq) ins.push(this.constant(`${bias}_quantized`, new Tensor('int32', [M], bq)));
    const out = into ?? this.int8Target(o);
    const fused = this.plan.fusedClamp.get(node);
    this.push('QLinearConv', name, ins, [out], Object.fromEntries(attrs), fused ? `output scale of ${fused.label} (fused clamp)` : undefined, true);
    if (!into) this.int8Name.set(o, out);
    return out;
  }

  /**
   * The int32 accumulator of a Conv of a node_info int16 value (read or written), as float32
   * fround(acc), exactly: ConvInteger (int32 accumulation, as the contract; |acc| < 2^31) +
   * bias, Cast. An int16 input x is split, x = 256·hi + lo with lo = x mod 256 (uint8) and
   * hi = (x − lo) / 256 (int8): acc = 256·ConvInteger(hi, W) + ConvInteger(lo, W) (zero padding
   * pads hi and lo with 0, i.e. x with 0). Unlike a float Conv on integer values, onnxruntime
   * cannot fold the requantising Mul into it, so both engines compute the same integers.
   */
  private integerAccumulator(name: string, x: string, int16Input: boolean, wq: Tensor, bq: Int32Array | undefined, attrs: Map<string, Attribute>, o: string, out: string): void {
    const w = this.constant(`${name}_weight_quantized`, wq);
    const convAttrs = Object.fromEntries([...attrs].filter(([k]) => ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'].includes(k)));
    const withBias = (sum: string): string => {
      if (!bq) return sum;
      const acc = this.names.fresh(`${o}_acc_biased`);
      const dims = [bq.length, ...new Array<number>(wq.rank - 2).fill(1)];
      this.push('Add', `${name}_bias`, [sum, this.constant(`${name}_bias_int32`, new Tensor('int32', dims, bq.slice()))], [acc], {}, 'int32 bias, scale s_in · s_w');
      return acc;
    };
    if (!int16Input) {
      const sum = this.names.fresh(`${o}_acc_int32`);
      this.push('ConvInteger', name, [x, w], [sum], convAttrs, 'int8 × int8 convolution, int32 accumulation', true);
      this.push('Cast', `${name}_acc_float`, [withBias(sum)], [out], { to: int(dtypeToOnnx('float32')) }, 'fround(acc)');
      return;
    }
    const doc = 'int16 × int8 convolution, exact: x = 256·hi + lo';
    const i32 = (v: number): string => this.constant(`${name}_int16_const`, tensorFrom('int32', [], [v]));
    const xi = this.names.fresh(`${o}_x_int32`);
    const lo32 = this.names.fresh(`${o}_x_lo_int32`);
    const rest = this.names.fresh(`${o}_x_hi_times_256`);
    const hi32 = this.names.fresh(`${o}_x_hi_int32`);
    const lo = this.names.fresh(`${o}_x_lo`);
    const hi = this.names.fresh(`${o}_x_hi`);
    this.push('Cast', `${name}_x_int32`, [x], [xi], { to: int(dtypeToOnnx('int32')) }, doc);
    this.push('Mod', `${name}_x_lo`, [xi, i32(256)], [lo32], { fmod: int(0) }, 'lo = x mod 256 (0…255)');
    this.push('Sub', `${name}_x_minus_lo`, [xi, lo32], [rest], {}, doc);
    this.push('Div', `${name}_x_hi`, [rest, i32(256)], [hi32], {}, 'hi = (x − lo) / 256 (−128…127, exact)');
    this.push('Cast', `${name}_lo_uint8`, [lo32], [lo], { to: int(dtypeToOnnx('uint8')) }, doc);
    this.push('Cast', `${name}_hi_int8`, [hi32], [hi], { to: int(dtypeToOnnx('int8')) }, doc);
    const accHi = this.names.fresh(`${o}_acc_hi`);
    const accLo = this.names.fresh(`${o}_acc_lo`);
    this.push('ConvInteger', name, [hi, w], [accHi], convAttrs, 'int32 accumulation of the high bytes', true);
    this.push('ConvInteger', `${name}_lo`, [lo, w], [accLo], convAttrs, 'int32 accumulation of the low bytes');
    const hiScaled = this.names.fresh(`${o}_acc_hi_256`);
    const sum = this.names.fresh(`${o}_acc_int32`);
    this.push('Mul', `${name}_hi_256`, [accHi, i32(256)], [hiScaled], {}, doc);
    this.push('Add', `${name}_hi_plus_lo`, [hiScaled, accLo], [sum], {}, doc);
    this.push('Cast', `${name}_acc_float`, [withBias(sum)], [out], { to: int(dtypeToOnnx('float32')) }, 'fround(acc)');
  }

  // ------------------------------------------------------------------ values

  /** The int8 value of tensor t (quantizing a float tensor or a constant on first use). */
  private int8(t: string): string {
    const have = this.int8Name.get(t);
    if (have) return have;
    const s = this.plan.scales.get(t);
    if (s === undefined) throw new Error(`quantize plan has no scale for '${t}'`);
    let name: string;
    if (this.plan.isConst(t)) {
      const v = (this.src.initializers.get(t) as Tensor);
      const f = v.toFloat32();
      const q = new Int8Array(f.length);
      for (let i = 0; i < f.length; i++) q[i] = quantizeValue(f[i], s, 0, -128, 127);
      name = this.constant(`${t}_quantized`, new Tensor('int8', v.dims, q));
    } else {
      name = this.names.fresh(`${t}_quantized`);
      this.push('QuantizeLinear', `${t}_QuantizeLinear`, [this.float(t), this.scale(t), this.zero('int8')], [name]);
    }
    this.int8Name.set(t, name);
    return name;
  }

  /** The float value of t as a CPU node reads it: dequantized when the tensor is int8 (image inputs stay int8, their type). */
  private float(t: string): string {
    const have = this.floatName.get(t);
    if (have) return have;
    if (!this.plan.int8.has(t)) return t;
    if (this.plan.imageInputs.has(t)) return this.int8(t);
    const name = this.names.fresh(`${t}_dequantized`);
    if (this.plan.int16.has(t)) this.dequantize16(this.int8(t), t, name);
    else this.push('DequantizeLinear', `${t}_DequantizeLinear`, [this.int8(t), this.scale(t), this.zero('int8')], [name]);
    this.floatName.set(t, name);
    return name;
  }

  /** An int16 value v of tensor t as float: Cast → Mul(scale) (DequantizeLinear takes int16 only from opset 21). */
  private dequantize16(v: string, t: string, out: string): void {
    const f = this.names.fresh(`${t}_int16_as_float`);
    this.push('Cast', `${t}_int16_cast`, [v], [f], { to: int(dtypeToOnnx('float32')) }, 'int16 dequantize');
    this.push('Mul', `${t}_int16_dequantize`, [f, this.scale(t)], [out], {}, 'int16 dequantize: q · s');
  }

  /** The int16 scale of t: the plan's (node_info values: from the fused clamp's threshold where there is one), else fround(threshold / 32767). */
  private scale16(t: string): number {
    return this.plan.int16.has(t) ? (this.plan.scales.get(t) as number) : int16Scale(this.threshold(t));
  }

  /** Whether tensor t is held in int16: a node_info int16 value, or an int16 model output. */
  private isInt16(t: string): boolean {
    return this.plan.int16.has(t) || this.int16Outputs.has(t);
  }

  /** A LUT or Concat node with an int16 input or output (it then computes as a requantising op, in float). */
  private touchesInt16(node: Node): boolean {
    return this.isInt16(node.outputs[0]) || node.inputs.some((v) => v && this.plan.int16.has(v));
  }

  /** Name of t's int16 value: its own, or `<t>_quantized` for a model output that leaves as another type. */
  private int16Target(t: string): string {
    if (this.outputs.has(t) && this.plan.spec.outputType !== 'int16') return this.names.fresh(`${t}_quantized`);
    this.names.claim(t);
    return t;
  }

  /**
   * clamp(roundHalfEven(v), −32768, 32767) as int16: Round (half to even) → Clip → Cast
   * (QuantizeLinear takes int16 only from opset 21).
   */
  private roundToInt16(v: string, out: string, base: string): void {
    const r = this.names.fresh(`${base}_rounded`);
    const c = this.names.fresh(`${base}_clamped`);
    this.push('Round', `${base}_round`, [v], [r], {}, 'roundHalfEven');
    this.push('Clip', `${base}_clamp`, [r, this.constant(`${base}_min`, tensorFrom('float32', [], [-32768])), this.constant(`${base}_max`, tensorFrom('float32', [], [32767]))], [c], {}, 'int16 range');
    this.push('Cast', `${base}_cast`, [c], [out], { to: int(dtypeToOnnx('int16')) }, 'int16 output');
  }

  /** The float value of t for a CPU Conv/ConvTranspose/Gemm: DequantizeLinear with the scale repeated along an axis. */
  private floatPerAxis_(t: string): string {
    if (this.plan.imageInputs.has(t)) return this.int8(t);
    if (this.plan.int16.has(t)) return this.float(t);
    const have = this.floatPerAxis.get(t);
    if (have) return have;
    const shape = this.plan.facts.get(t)?.shape;
    const axis = shape ? [1, ...shape.keys()].find((a) => a < shape.length && typeof shape[a] === 'number' && (shape[a] as number) > 1) : undefined;
    if (axis === undefined || !shape) return this.float(t);
    const n = shape[axis] as number;
    const s = this.plan.scales.get(t) as number;
    const name = this.names.fresh(`${t}_dequantized_per_axis`);
    this.push('DequantizeLinear', `${t}_DequantizeLinear_per_axis`, [this.int8(t), this.constant(`${t}_scale_per_axis`, new Tensor('float32', [n], new Float32Array(n).fill(s))), this.constant(`${t}_zero_point_per_axis`, new Tensor('int8', [n]))], [name], { axis: int(axis) },
      'per-axis (same scale) so that onnxruntime keeps the float CPU op as it is');
    this.floatPerAxis.set(t, name);
    return name;
  }

  /** A constant Conv/ConvTranspose/Gemm bias as int32 (scale s_in · s_w[c]) behind a DequantizeLinear; undefined when its shape does not allow it. */
  private dequantizedBias(node: Node, bias: string): string | undefined {
    const { plan } = this;
    const w = weightFor(plan, node, 1);
    const bt = (this.src.initializers.get(bias) as Tensor);
    const sIn = plan.scales.get(node.inputs[0]);
    if (sIn === undefined || bt.rank > 1) return undefined;
    const n = bt.size;
    const wt = this.src.initializers.get(node.inputs[1]) as Tensor;
    const wDim = w.axis === undefined ? 1 : wt.dims[w.axis];
    if (w.axis !== undefined && n !== wDim && n !== 1) return undefined;
    const len = w.axis === undefined ? n : Math.max(n, wDim);
    const b = bt.toFloat32();
    const scales = new Float32Array(len);
    const q = new Int32Array(len);
    for (let c = 0; c < len; c++) {
      const sw = w.scales[w.axis === undefined ? 0 : c];
      scales[c] = Math.fround(sIn * sw);
      q[c] = quantizeBias(b[n > 1 ? c : 0], sIn, sw);
    }
    const per = len > 1 && w.axis !== undefined;
    const uniform = !per;
    const qName = this.constant(`${bias}_quantized`, new Tensor('int32', uniform ? bt.dims : [len], uniform ? q.subarray(0, n).slice() : q));
    const sName = this.constant(`${bias}_scale`, new Tensor('float32', per ? [len] : [], per ? scales : scales.subarray(0, 1).slice()));
    const out = this.names.fresh(`${bias}_dequantized`);
    this.push('DequantizeLinear', `${bias}_DequantizeLinear`, [qName, sName], [out], per ? { axis: int(0) } : {}, 'int32 bias, scale s_in · s_w');
    return out;
  }

  /** The dequantized int8 value of t, what a BPU op computing in float reads. */
  private dequantized(t: string): string {
    if (this.plan.int8.has(t)) return this.float(t);
    const have = this.bpuFloat.get(t);
    if (have) return have;
    const name = this.names.fresh(`${t}_dequantized`);
    this.push('DequantizeLinear', `${t}_DequantizeLinear`, [this.int8(t), this.scale(t), this.zero('int8')], [name]);
    this.bpuFloat.set(t, name);
    return name;
  }

  private dequantizedWeight(w: WeightQuant): string {
    const names = this.weightInits(w, w.q, w.scales);
    const out = this.names.fresh(`${w.tensor}_dequantized`);
    this.push('DequantizeLinear', `${w.tensor}_DequantizeLinear`, [names.q, names.scale, names.zp], [out], w.axis === undefined ? {} : { axis: int(w.axis) });
    return out;
  }

  private weightInits(w: WeightQuant, q: Tensor, scales: Float32Array, base?: string): { q: string; scale: string; zp: string } {
    const reuse = q === w.q && scales === w.scales;
    const have = reuse ? this.weightNames.get(w) : undefined;
    if (have) return have;
    const b = base ?? w.tensor;
    const per = scales.length > 1 || w.axis !== undefined;
    const names = {
      q: this.constant(`${b}_quantized`, q),
      scale: this.constant(`${b}_scale`, new Tensor('float32', per ? [scales.length] : [], scales.slice())),
      zp: this.constant(`${b}_zero_point`, new Tensor('int8', per ? [scales.length] : [])),
    };
    if (reuse) this.weightNames.set(w, names);
    return names;
  }

  /** Name of t's int8 value: its own name, or `<t>_quantized` for a model output left as float32 / int16. */
  private int8Target(t: string): string {
    if (this.outputs.has(t) && this.plan.spec.outputType !== 'int8') return this.names.fresh(`${t}_quantized`);
    this.names.claim(t);
    return t;
  }

  private scale(t: string): string {
    let n = this.scaleName.get(t);
    if (!n) {
      n = this.constant(`${t}_scale`, tensorFrom('float32', [], [this.plan.scales.get(t) as number]));
      this.scaleName.set(t, n);
    }
    return n;
  }

  private zero(dtype: 'int8'): string {
    let n = this.zeroName.get(dtype);
    if (!n) {
      n = this.constant(`zero_point_${dtype}`, tensorFrom(dtype, [], [0]));
      this.zeroName.set(dtype, n);
    }
    return n;
  }

  private threshold(t: string): number {
    return this.plan.spec.activations[t]?.threshold ?? (this.plan.scales.get(t) as number) * 127;
  }

  private constant(base: string, t: Tensor): string {
    const name = this.names.fresh(base);
    this.g.initializers.set(name, t);
    if (this.plan.model.irVersion < 4) this.g.inputs.push({ name, type: { dtype: t.dtype, shape: t.dims.slice() } } as ValueInfo);
    return name;
  }

  /** Append a node; `exact` keeps `name` as it is (the node replacing the float node of that name). */
  private push(opType: string, name: string, inputs: string[], outputs: string[], attrs: Record<string, Attribute> = {}, doc?: string, exact = false): Node {
    const n = new Node({ opType, name: exact ? name : this.nodeNames.fresh(name), inputs, outputs, attrs, docString: doc });
    this.g.nodes.push(n);
    return n;
  }

  /** The name the emitted node replacing `node` takes: its own, or a fresh one for an unnamed node. */
  private nodeName(node: Node): string {
    return node.name || this.nodeNames.fresh(node.opType);
  }
}

/** int32 bias: clamp(rne(b / fround(s_in · s_w))). */
function quantizeBias(b: number, sIn: number, sW: number): number {
  const v = roundHalfEven(b / Math.fround(sIn * sW));
  return Math.max(-2147483648, Math.min(2147483647, v));
}

function int(v: number): Attribute {
  return { type: 'int', value: v };
}

function ints(v: number[]): Attribute {
  return { type: 'ints', value: v };
}
