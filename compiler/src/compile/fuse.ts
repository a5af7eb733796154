import { attr, attrInts, attrFloat, attrFloats, attrStr, consumers, getAttr, NX_DOMAIN, outputValues, POp, Program, setAttr } from './program';

/**
 * Fusions (compiler_parameters.optimize_level; the layer fusion of the perf model's O1+):
 *  - O0: none — every operator of the quantized model is an op of its own
 *  - O1 and above:
 *    - clamp fusion: an int8 Clip (a Relu/Clip of the float model) after a requantising op
 *      (Conv, FC, Eltwise, AvgPool, GlobalAvgPool, Concat, Requant, ConvFloatAcc) becomes that
 *      op's output clamp: clamp(clamp(y, −128, 127), lo, hi) = clamp(y, max(lo, −128), min(hi, 127))
 *    - conv + elementwise add (+ relu): an Eltwise Add reading a Conv's output (its only
 *      reader) is done in the Conv's epilogue: the int8 conv result, dequantized, plus the
 *      dequantized other operand, requantised to the Add's scale and clamp — the same float
 *      steps as the separate ops, so the result is identical
 * A value read by anything else, a model output or a layer_out_dump value is never fused away.
 */

const CLAMPED = new Set(['Conv', 'FC', 'Eltwise', 'AvgPool', 'GlobalAvgPool', 'Concat', 'Requant', 'ConvFloatAcc']);

export type OptimizeLevel = 'O0' | 'O1' | 'O2' | 'O3';

export function levelNumber(level: OptimizeLevel | string | undefined): number {
  const n = /^O([0-3])$/.exec(level ?? 'O3');
  return n ? Number(n[1]) : 3;
}

/**
 * The fusions done at an optimize_level: `clamps` (a Relu/Clip into the requantising op
 * before it), `convAdd` (an elementwise Add into the conv producing an operand). The perf
 * model (perf/estimate.ts) forms its layers with the same decision.
 */
export function fusionsAt(level: OptimizeLevel | string | undefined): { clamps: boolean; convAdd: boolean } {
  const lv = levelNumber(level);
  return { clamps: lv >= 1, convAdd: lv >= 1 };
}

export function fuse(p: Program, level: OptimizeLevel, keep: ReadonlySet<string> = new Set()): void {
  const f = fusionsAt(level);
  if (f.clamps) fuseClamps(p, keep);
  if (f.convAdd) fuseConvAdd(p, keep);
}

/** The producer's single reader is `reader`, and the value is not visible outside. */
function private_(p: Program, v: string, reader: POp, keep: ReadonlySet<string>): boolean {
  const rs = consumers(p).get(v) ?? [];
  return rs.length === 1 && rs[0] === reader && !outputValues(p).has(v) && !keep.has(v);
}

function fuseClamps(p: Program, keep: ReadonlySet<string>): void {
  let n = 0;
  for (;;) {
    const prod = new Map<string, POp>();
    for (const op of p.ops) for (const o of op.outputs) if (o) prod.set(o, op);
    const clip = p.ops.find((op) => {
      if (op.domain !== NX_DOMAIN || op.type !== 'Clip') return false;
      const src = prod.get(op.inputs[0]);
      return !!src && src.domain === NX_DOMAIN && CLAMPED.has(src.type) && src.device === op.device && attrStr(src, 'out_dtype', 'int8') === 'int8' &&
        getAttr(src, 'clamp') !== undefined && src.outputs.length === 1 && private_(p, op.inputs[0], op, keep) &&
        p.values.get(op.inputs[0])?.layout === p.values.get(op.outputs[0])?.layout;
    });
    if (!clip) break;
    const src = prod.get(clip.inputs[0]) as POp;
    const [a, b] = attrInts(src, 'clamp') as number[];
    const [c, d] = attrInts(clip, 'clamp') as number[];
    // a fused add clamps after the add (add_clamp); otherwise the op's own output clamp
    const key = getAttr(src, 'add_clamp') ? 'add_clamp' : 'clamp';
    const [lo, hi] = key === 'add_clamp' ? (attrInts(src, 'add_clamp') as number[]) : [a, b];
    setAttr(src, attr.ints(key, [Math.max(lo, c), Math.min(hi, d)]));
    p.values.delete(src.outputs[0]);
    src.outputs = [clip.outputs[0]];
    src.sources.push(...clip.sources);
    p.ops.splice(p.ops.indexOf(clip), 1);
    n++;
  }
  if (n) p.notes.push(`fused ${n} clamp${n > 1 ? 's' : ''} (Relu/Clip) into the ops before them`);
}

function fuseConvAdd(p: Program, keep: ReadonlySet<string>): void {
  let n = 0;
  for (;;) {
    const prod = new Map<string, POp>();
    for (const op of p.ops) for (const o of op.outputs) if (o) prod.set(o, op);
    let found: { add: POp; conv: POp; k: number } | undefined;
    for (const op of p.ops) {
      if (op.domain !== NX_DOMAIN || op.type !== 'Eltwise' || attrStr(op, 'op') !== 'Add' || attrStr(op, 'out_dtype', 'int8') !== 'int8') continue;
      const [x, y] = op.inputs;
      const vx = p.values.get(x);
      const vy = p.values.get(y);
      if (!vx || !vy || vx.dims.join(',') !== vy.dims.join(',') || vx.layout !== vy.layout || vx.layout !== 'nhwc') continue;
      const scales = attrFloats(op, 'in_scales') as number[];
      if (!scales[0] || !scales[1]) continue;
      for (const k of [0, 1]) {
        const conv = prod.get(op.inputs[k]);
        if (!conv || conv.domain !== NX_DOMAIN || conv.type !== 'Conv' || conv.inputs.length > 4 || conv.device !== op.device) continue;
        if (op.inputs[0] === op.inputs[1] || !private_(p, op.inputs[k], op, keep)) continue;
        if (attrFloat(conv, 'out_scale') !== scales[k]) continue;
        found = { add: op, conv, k };
        break;
      }
      if (found) break;
    }
    if (!found) break;
    const { add, conv, k } = found;
    const other = add.inputs[1 - k];
    const scales = attrFloats(add, 'in_scales') as number[];
    while (conv.inputs.length < 4) conv.inputs.push('');
    conv.inputs.push(other);
    conv.attrs.push(
      attr.s('add', 'Add'),
      attr.f('add_other_scale', scales[1 - k]),
      attr.f('add_out_scale', attrFloat(add, 'out_scale') as number),
      attr.ints('add_clamp', attrInts(add, 'clamp') as number[]),
    );
    p.values.delete(conv.outputs[0]);
    conv.outputs = [add.outputs[0]];
    conv.sources.push(...add.sources);
    // the fused op runs where the Add ran (both operands are ready there)
    p.ops.splice(p.ops.indexOf(conv), 1);
    p.ops.splice(p.ops.indexOf(add), 1, conv);
    n++;
  }
  if (n) p.notes.push(`fused ${n} elementwise Add${n > 1 ? 's' : ''} into the convolutions before them`);
}
