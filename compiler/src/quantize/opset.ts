import { PtqError } from '../errors';
import { Attribute, Graph, Model, Node } from '../onnx/ir';
import { inferShapes } from '../onnx/shape-inference';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { ValueFacts } from '../ops/registry';
import { Namer } from './names';

/**
 * Raise the default-domain opset of `model` (in place) to `target`, rewriting the nodes whose
 * signature changed on the way so that they compute the same thing:
 * - Clip (< 11): min/max attributes → inputs
 * - Pad (< 11): pads/value attributes → inputs
 * - Slice (< 10): starts/ends/axes attributes → inputs
 * - Split (< 13): split attribute → input; Squeeze/Unsqueeze (< 13): axes → input; ReduceSum (< 13): axes → input
 * - TopK (< 10): k attribute → input
 * - Reshape (< 5): shape attribute → input
 * - Dropout (any, inference): → Identity (refused when its mask output is read)
 * - BatchNormalization (< 9): `spatial` dropped (spatial = 0 is refused)
 * - Softmax/LogSoftmax/Hardmax (< 13): explicit axis when it is the last one; otherwise
 *   Reshape to 2-D → op → Reshape back (static shapes), or refused
 * - Upsample (7–9) and Resize-10 → Resize-13 (asymmetric coordinates; nearest: floor when
 *   enlarging, ceil when shrinking, as the old ops did)
 * Other operators kept their signature between opset 7 and 13. Models older than opset 7
 * (legacy broadcast attributes) are refused. Returns one note per rewrite kind, and the values
 * the rewrites added that hold the same numbers as an original value.
 */
export interface RaiseResult {
  notes: string[];
  /** values the rewrites added → the original value holding the same numbers (for thresholds) */
  aliases: Map<string, string>;
}

export function raiseOpset(model: Model, target: number): RaiseResult {
  const from = model.opset('');
  if (from === undefined) {
    throw new PtqError('E_MODEL_OPSET', 'the model imports no default-domain (ai.onnx) opset', { fix: 're-export the model with opset 11 or later' });
  }
  const aliases = new Map<string, string>();
  if (from >= target) return { notes: [], aliases };
  if (from < 7) {
    throw new PtqError('E_MODEL_OPSET', `the model uses opset ${from}; quantization needs opset ${target} and converts from opset 7 or later only`, {
      fix: 're-export the model with opset 11 or later',
    });
  }
  const facts = safeInfer(model);
  const notes = new Map<string, number>();
  const note = (what: string): void => void notes.set(what, (notes.get(what) ?? 0) + 1);
  convertGraph(model, model.graph, from, facts, note, aliases);
  const entry = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (entry) entry.version = target;
  if (model.irVersion < 7) model.irVersion = 7;
  return { notes: [`opset ${from} → ${target}`, ...[...notes].map(([k, n]) => `${n} × ${k}`)], aliases };
}

function safeInfer(model: Model): Map<string, ValueFacts> {
  try {
    return inferShapes(model, { apply: false });
  } catch {
    return new Map();
  }
}

type Note = (what: string) => void;

function convertGraph(model: Model, g: Graph, from: number, facts: Map<string, ValueFacts>, note: Note, aliases: Map<string, string>): void {
  const names = new Namer(g);
  const nodeNames = new Namer(g, 'nodes');
  const readers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) readers.set(i, (readers.get(i) ?? 0) + 1);
  const out: Node[] = [];
  const constInput = (node: Node, role: string, t: Tensor): string => {
    const name = names.fresh(`${node.name || node.outputs[0]}_${role}`);
    g.initializers.set(name, t);
    if (model.irVersion < 4) g.inputs.push({ name, type: { dtype: t.dtype, shape: t.dims.slice() } });
    return name;
  };
  const i64 = (v: number[]): Tensor => tensorFrom('int64', [v.length], v);
  const dtypeOf = (v: string): Tensor['dtype'] => facts.get(v)?.dtype ?? g.typeOf(v)?.dtype ?? 'float32';
  for (const node of g.nodes) {
    for (const a of node.attrs.values()) {
      if (a.type === 'graph') convertGraph(model, a.value, from, facts, note, aliases);
      else if (a.type === 'graphs') a.value.forEach((s) => convertGraph(model, s, from, facts, note, aliases));
    }
    if (node.domain && node.domain !== 'ai.onnx') {
      out.push(node);
      continue;
    }
    const take = (attr: string): Attribute | undefined => {
      const a = node.attrs.get(attr);
      node.attrs.delete(attr);
      return a;
    };
    switch (node.opType) {
      case 'Clip':
        if (from < 11) {
          const lo = take('min');
          const hi = take('max');
          const dt = dtypeOf(node.inputs[0]);
          node.inputs = [node.inputs[0], lo ? constInput(node, 'min', tensorFrom(dt, [], [num(lo)])) : '', hi ? constInput(node, 'max', tensorFrom(dt, [], [num(hi)])) : ''];
          while (node.inputs[node.inputs.length - 1] === '') node.inputs.pop();
          note('Clip min/max → inputs');
        }
        break;
      case 'Pad':
        if (from < 11) {
          const pads = take('pads') ?? take('paddings');
          const value = take('value');
          const dt = dtypeOf(node.inputs[0]);
          node.inputs = [node.inputs[0], constInput(node, 'pads', i64(pads ? nums(pads) : []))];
          if (value && num(value) !== 0) node.inputs.push(constInput(node, 'value', tensorFrom(dt, [], [num(value)])));
          note('Pad pads/value → inputs');
        }
        break;
      case 'Slice':
        if (from < 10) {
          const starts = take('starts');
          const ends = take('ends');
          const axes = take('axes');
          node.inputs = [node.inputs[0], constInput(node, 'starts', i64(nums(starts))), constInput(node, 'ends', i64(nums(ends)))];
          if (axes) node.inputs.push(constInput(node, 'axes', i64(nums(axes))));
          note('Slice starts/ends/axes → inputs');
        }
        break;
      case 'Split':
        if (from < 13) {
          const split = take('split');
          if (split) node.inputs = [node.inputs[0], constInput(node, 'split', i64(nums(split)))];
          if (split) note('Split split → input');
        }
        break;
      case 'Squeeze':
      case 'Unsqueeze':
      case 'ReduceSum':
        if (from < 13) {
          const axes = take('axes');
          if (axes) node.inputs = [node.inputs[0], constInput(node, 'axes', i64(nums(axes)))];
          if (axes) note(`${node.opType} axes → input`);
        }
        break;
      case 'TopK':
        if (from < 10) {
          const k = take('k');
          node.inputs = [node.inputs[0], constInput(node, 'k', i64([k ? num(k) : 1]))];
          note('TopK k → input');
        }
        break;
      case 'Reshape':
        if (from < 5) {
          const shape = take('shape');
          node.inputs = [node.inputs[0], constInput(node, 'shape', i64(shape ? nums(shape) : []))];
        }
        break;
      case 'Dropout':
        if (node.outputs.slice(1).some((o) => o && readers.get(o))) {
          throw refuse(node, 'its mask output is read', 'remove the Dropout (it is an identity at inference)');
        }
        node.opType = 'Identity';
        node.attrs.clear();
        node.inputs = [node.inputs[0]];
        node.outputs = [node.outputs[0]];
        note('Dropout → Identity');
        break;
      case 'BatchNormalization':
        if (from < 9) {
          const spatial = take('spatial');
          if (spatial && num(spatial) === 0) throw refuse(node, 'spatial = 0 has no equivalent after opset 8', 'fold the BatchNormalization or re-export the model');
          take('consumed_inputs');
        }
        break;
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax':
        if (from < 13) {
          const rank = facts.get(node.inputs[0])?.shape?.length;
          const shape = facts.get(node.inputs[0])?.shape;
          let axis = node.int('axis', 1);
          if (rank !== undefined && axis < 0) axis += rank;
          if (rank !== undefined && axis === rank - 1) {
            node.setAttr('axis', { type: 'int', value: axis });
          } else if (shape && shape.every((d) => typeof d === 'number')) {
            const dims = shape as number[];
            const outer = dims.slice(0, axis).reduce((p, q) => p * q, 1);
            const inner = dims.slice(axis).reduce((p, q) => p * q, 1);
            const flat = names.fresh(`${node.outputs[0]}_2d`);
            const res = names.fresh(`${node.outputs[0]}_2d_out`);
            out.push(new Node({ opType: 'Reshape', name: nodeNames.fresh(`${node.name || node.outputs[0]}_reshape_in`), inputs: [node.inputs[0], constInput(node, 'shape2d', i64([outer, inner]))], outputs: [flat] }));
            const y = node.outputs[0];
            aliases.set(flat, node.inputs[0]);
            aliases.set(res, y);
            node.inputs = [flat];
            node.outputs = [res];
            node.setAttr('axis', { type: 'int', value: 1 });
            out.push(node);
            out.push(new Node({ opType: 'Reshape', name: nodeNames.fresh(`${node.name || y}_reshape_out`), inputs: [res, constInput(node, 'shape', i64(dims))], outputs: [y] }));
            note(`${node.opType} over a coerced 2-D view → Reshape, ${node.opType}, Reshape`);
            continue;
          } else {
            throw refuse(node, `before opset 13 it normalises over all dimensions from axis ${axis}, which opset 13 cannot say without a static shape`, 'give the model a static input shape (input_shape) or re-export it with opset 13');
          }
          note(`${node.opType} axis made explicit`);
        }
        break;
      case 'Upsample':
      case 'Resize':
        if (node.opType === 'Upsample' || from < 11) {
          const mode = node.str('mode', 'nearest');
          const scales = node.opType === 'Upsample' && node.has('scales') ? node.floats('scales') : g.initializers.get(node.inputs[1])?.toNumbers();
          const scalesName = node.opType === 'Upsample' && node.has('scales') ? constInput(node, 'scales', tensorFrom('float32', [scales!.length], scales!)) : node.inputs[1];
          node.attrs.clear();
          if (mode === 'nearest') {
            if (!scales) throw refuse(node, 'its nearest rounding depends on scales that are not constant', 're-export the model with opset 11 or later');
            const up = scales.every((s) => s >= 1);
            const down = scales.every((s) => s <= 1);
            if (!up && !down) throw refuse(node, 'it enlarges some axes and shrinks others, which Resize-11 rounds differently', 're-export the model with opset 11 or later');
            node.setAttr('nearest_mode', { type: 'string', value: up ? 'floor' : 'ceil' });
          }
          node.setAttr('mode', { type: 'string', value: mode === 'bilinear' ? 'linear' : mode });
          node.setAttr('coordinate_transformation_mode', { type: 'string', value: 'asymmetric' });
          note(`${node.opType} → Resize-13`);
          node.opType = 'Resize';
          node.inputs = [node.inputs[0], '', scalesName];
        }
        break;
      case 'Scatter':
        throw refuse(node, 'Scatter was replaced by ScatterElements', 're-export the model with opset 11 or later');
      default:
        break;
    }
    out.push(node);
  }
  g.nodes = out;
}

function refuse(node: Node, why: string, fix: string): PtqError {
  return new PtqError('E_MODEL_OPSET', `node '${node.label}' (${node.opType}) cannot be converted to opset 13: ${why}`, { subject: node.label, fix });
}

function num(a: Attribute): number {
  if (a.type === 'int' || a.type === 'float') return a.value;
  throw new Error(`attribute of type ${a.type} is not a number`);
}

function nums(a: Attribute | undefined): number[] {
  if (!a) return [];
  if (a.type === 'ints' || a.type === 'floats') return a.value.slice();
  if (a.type === 'int' || a.type === 'float') return [a.value];
  throw new Error(`attribute of type ${a.type} is not a list of numbers`);
}
