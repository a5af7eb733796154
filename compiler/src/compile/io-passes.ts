import type { BinAttr } from './bin-format';
import { PtqError } from '../errors';
import { attr, attrFloat, attrInts, attrStr, consumers, Names, NX_DOMAIN, POp, Program, pruneProgram } from './program';

/**
 * Passes on the model's boundary: `output_nodes` (which values the application reads),
 * `layer_out_dump` (a dequantized extra output per convolution) and
 * `remove_node_type` / `remove_node_name` (boundary ops the application does itself).
 */

/** Ops whose output layer_out_dump exposes. */
const DUMPED = new Set(['Conv', 'FC', 'ConvFloatAcc']);

/**
 * layer_out_dump: every convolution's (int8) output also leaves the model, dequantized to
 * float32, as an output named after the value. Returns the dumped values (kept out of fusions).
 */
export function addLayerDumps(p: Program): Set<string> {
  const names = new Names(p);
  // output names are a namespace of their own: a dump output is named after its value
  const outNames = new Names();
  for (const o of p.outputs) outNames.claim(o.name);
  const outs = new Set(p.outputs.map((o) => o.value));
  const dumped = new Set<string>();
  const added: POp[] = [];
  // values the application already gets, dequantized
  for (const op of p.ops) if (op.domain === NX_DOMAIN && op.type === 'Dequantize' && op.outputs.some((o) => outs.has(o))) outs.add(op.inputs[0]);
  for (const op of p.ops) {
    if (op.domain !== NX_DOMAIN || !DUMPED.has(op.type)) continue;
    // the input normalisation (HzPreprocess) is not a layer of the model
    if (op.sources.length && op.sources.every((s) => p.preprocessNodes.has(s))) continue;
    const v = op.outputs[0];
    const pv = p.values.get(v);
    if (!pv || outs.has(v) || !pv.scale) continue;
    const f = names.fresh(`${v}_dump`);
    p.values.set(f, { name: f, dtype: 'float32', dims: pv.dims.slice(), scale: 0, layout: 'plain' });
    added.push({ name: names.fresh(`${v}_HzDequantize`), type: 'Dequantize', domain: NX_DOMAIN, device: 'cpu', inputs: [v], outputs: [f], attrs: [attr.f('scale', pv.scale)], sources: [] });
    p.outputs.push({ name: outNames.fresh(v), value: f });
    dumped.add(v);
  }
  p.ops.push(...added);
  if (dumped.size) p.notes.push(`layer_out_dump: ${dumped.size} convolution output(s) added as dequantized model outputs`);
  return dumped;
}

/**
 * output_nodes: the check stage cut the float model at the named nodes, so the quantized
 * model's outputs already are theirs. Here a named node that still exists (by its name in the
 * quantized model) gets its outputs exposed if they are not (dequantized to float32 when
 * int8); a name the optimiser folded into another node (a Gemm that became a Conv) is
 * left to the check stage's cut.
 */
export function applyOutputNodes(p: Program, nodes: readonly string[]): void {
  if (!nodes.length) return;
  const wanted: string[] = [];
  for (const name of nodes) {
    const op = p.ops.find((o) => o.name === name) ?? p.ops.find((o) => o.sources.includes(name));
    if (!op) {
      p.notes.push(`output_nodes: '${name}' is not a node of the quantized model (the check stage cut the model there already)`);
      continue;
    }
    for (const o of op.outputs) if (o) wanted.push(o);
  }
  const current = new Set(p.outputs.map((o) => o.value));
  // an output reached through a Dequantize / Identity of the wanted value counts as that value
  for (const op of p.ops) if (op.outputs.some((o) => current.has(o))) for (const i of op.inputs) if (i) current.add(i);
  const missing = wanted.filter((w) => !current.has(w) && !p.outputs.some((o) => o.name === w));
  for (const w of missing) {
    const v = p.values.get(w)!;
    if (v.scale && (v.dtype === 'int8' || v.dtype === 'int16')) {
      const names = new Names(p);
      const f = names.fresh(`${w}_dequantized`);
      p.values.set(f, { name: f, dtype: 'float32', dims: v.dims.slice(), scale: 0, layout: 'plain' });
      p.ops.push({ name: names.fresh(`${w}_HzDequantize`), type: 'Dequantize', domain: NX_DOMAIN, device: 'cpu', inputs: [w], outputs: [f], attrs: [attr.f('scale', v.scale)], sources: [] });
      p.outputs.push({ name: w, value: f });
    } else p.outputs.push({ name: w, value: w });
  }
}

/** The op type a user names in remove_node_type (Quantize, Dequantize, Transpose, Cast, Reshape, Softmax). */
export function removableType(op: Pick<POp, 'domain' | 'type'>): string | undefined {
  if (op.domain === NX_DOMAIN) {
    if (op.type === 'Quantize' || op.type === 'Dequantize') return op.type;
    if (op.type === 'LayoutConvert') return 'Transpose';
    return undefined;
  }
  if (op.domain !== '') return undefined;
  if (op.type === 'Transpose' || op.type === 'Cast' || op.type === 'Softmax') return op.type;
  if (op.type === 'Reshape' || op.type === 'Flatten') return 'Reshape';
  return undefined;
}

interface Candidate {
  op: POp;
  position: 'input' | 'output';
  io: string;
}

/** Where `op` may be deleted: it is the only reader of a model input, or it only feeds model outputs. */
function boundary(p: Program, op: POp): Candidate | undefined {
  const readers = consumers(p);
  const data = op.inputs.filter((i) => i && p.values.has(i));
  const outs = op.outputs.filter((o) => o);
  if (data.length !== 1 || outs.length !== 1) return undefined;
  const input = p.inputs.find((i) => i.value === data[0]);
  if (input && (readers.get(data[0]) ?? []).length === 1) return { op, position: 'input', io: input.name };
  const output = p.outputs.find((o) => o.value === outs[0]);
  if (output && (readers.get(outs[0]) ?? []).length === 0 && !p.inputs.some((i) => i.value === data[0])) return { op, position: 'output', io: output.name };
  return undefined;
}

function describe(c: Candidate, p: Program): { attrs: BinAttr[]; info: string } {
  const { op } = c;
  const t = removableType(op) ?? op.type;
  const attrs: BinAttr[] = [];
  if (op.type === 'Quantize' || op.type === 'Dequantize') {
    attrs.push(attr.f('scale', attrFloat(op, 'scale') ?? 0), attr.i('zero_point', 0));
  } else if (op.type === 'LayoutConvert') {
    attrs.push(attr.s('from', attrStr(op, 'from') ?? ''), attr.s('to', attrStr(op, 'to') ?? ''), attr.ints('perm', attrStr(op, 'to') === 'NHWC' ? [0, 2, 3, 1] : [0, 3, 1, 2]));
  } else if (op.type === 'Transpose') {
    attrs.push(attr.ints('perm', attrInts(op, 'perm') ?? []));
  } else if (op.type === 'Cast') {
    attrs.push(attr.i('to', op.attrs.find((a) => a.name === 'to')?.i ?? 0));
  } else if (removableType(op) === 'Reshape') {
    const v = p.values.get(op.outputs[0]);
    attrs.push(attr.ints('shape', v?.dims ?? []));
  }
  const kv = attrs.map((a) => `${a.name}=${a.f ?? a.i ?? a.s ?? `[${(a.ints ?? a.floats ?? []).join(',')}]`}`).join(' ');
  return { attrs, info: `${op.name} ${t} ${c.position}=${c.io}${kv ? ` ${kv}` : ''}` };
}

function remove(p: Program, c: Candidate): void {
  const { op } = c;
  const { attrs, info } = describe(c, p);
  const data = op.inputs.find((i) => i && p.values.has(i)) as string;
  if (c.position === 'input') {
    const inp = p.inputs.find((i) => i.name === c.io)!;
    inp.value = op.outputs.find((o) => o) as string;
  } else {
    for (const o of p.outputs) if (o.value === op.outputs[0]) o.value = data;
  }
  p.ops.splice(p.ops.indexOf(op), 1);
  p.deleted.push({ name: op.name, opType: removableType(op) ?? op.type, position: c.position, io: c.io, attrs, info });
  pruneProgram(p);
}

/**
 * remove_node_type then remove_node_name, in the given order, each deletion changing the
 * boundary for the next: a type removes every op of it at an input or output (repeatedly,
 * while one is there); a name must be at an input or output when its turn comes.
 */
export function removeNodes(p: Program, types: readonly string[], names: readonly string[]): void {
  for (const t of types) {
    for (;;) {
      const c = p.ops.map((op) => (removableType(op) === t ? boundary(p, op) : undefined)).find((x): x is Candidate => !!x);
      if (!c) break;
      remove(p, c);
    }
  }
  for (const name of names) {
    const op = p.ops.find((o) => o.name === name) ?? p.ops.find((o) => o.sources.includes(name));
    const removable = p.ops.map((o) => boundary(p, o)).filter((x): x is Candidate => !!x && removableType(x.op) !== undefined).map((x) => x.op.name);
    if (!op) {
      throw new PtqError('E_CONFIG', `model_parameters: remove_node_name names '${name}', which is not a node of the compiled model`, {
        subject: 'model_parameters.remove_node_name',
        fix: removable.length ? `nodes that can be removed now: ${removable.join(', ')}` : 'no node of this model can be removed',
      });
    }
    const c = boundary(p, op);
    if (!c || !removableType(op)) {
      throw new PtqError('E_CONFIG', `model_parameters: remove_node_name: node '${name}' (${op.type}) is not a Quantize, Dequantize, Transpose, Cast or Reshape node next to a model input or output`, {
        subject: 'model_parameters.remove_node_name',
        fix: removable.length ? `nodes that can be removed now: ${removable.join(', ')} (order matters: each deletion changes the boundary)` : 'no node of this model can be removed',
      });
    }
    remove(p, c);
  }
  if (p.deleted.length) p.notes.push(`deleted ${p.deleted.length} boundary node(s): ${p.deleted.map((d) => d.name).join(', ')}`);
}
