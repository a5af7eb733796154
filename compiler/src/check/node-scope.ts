import { Attribute, Dim, Graph, Node } from '../onnx/ir';
import { ValueFacts } from '../ops/registry';
import { ExprError, NOT_A_FUNCTION, Scope, Value, evaluate } from './expr';
import type { OpSupport } from './table';

/** What the placement knows about the graph around a node. */
export interface GraphIndex {
  graph: Graph;
  facts: Map<string, ValueFacts>;
  producers: Map<string, Node>;
  consumers: Map<string, Node[]>;
  graphOutputs: Set<string>;
  /** initializers and values computed from constants only (folded before placement) */
  constants: Set<string>;
}

/** Names every expression may use besides the entry's attrs and vars. */
export const GLOBAL_NAMES = ['opset'] as const;

/**
 * Functions that read the node and its neighbourhood (input indexes count every ONNX input,
 * absent optional ones included). Documented in each table's `about`.
 */
export const NODE_FUNCTIONS: Record<string, string> = {
  shape: 'shape(i): dims of input i (unknown dims are unknown)',
  oshape: 'oshape(i): dims of output i',
  dshape: 'dshape(k): dims of the k-th data (non-constant) input',
  isconst: 'isconst(i): input i is a constant (initializer or folded)',
  const: 'const(i): the values of constant input i, flattened',
  nin: 'nin(): number of present inputs',
  dtype: "dtype(i): element type of input i ('float32', 'int64', …)",
  data_ranks: 'data_ranks(): ranks of the data (non-constant) inputs',
  out_ranks: 'out_ranks(): ranks of the outputs',
  consumer_ops: 'consumer_ops(): op types of the nodes reading any output',
  is_output: 'is_output(): an output of the node is a model output',
  producer_op: "producer_op(i): op type producing input i ('input' for a model input, 'const' for a constant)",
  src_shape: 'src_shape(i): dims of input i seen through Flatten/Reshape/Squeeze/Unsqueeze producers, back to the last 4-D tensor',
};

const RESHAPING = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze']);

function dimsValue(shape: Dim[] | undefined): Value {
  return shape ? shape.map((d) => (typeof d === 'number' ? d : undefined)) : undefined;
}

function attrValue(a: Attribute | undefined): Value {
  if (!a) return undefined;
  switch (a.type) {
    case 'int':
    case 'float':
    case 'string':
      return a.value;
    case 'ints':
    case 'floats':
    case 'strings':
      return a.value.slice();
    case 'tensor':
      return a.value.toNumbers();
    default:
      return undefined;
  }
}

/**
 * The scope a support-table entry's expressions are evaluated in for one node: the entry's
 * declared attributes (node value, else the entry's default), its vars (evaluated lazily, in
 * declaration order), `opset`, and the node functions above.
 */
export function nodeScope(node: Node, opset: number, entry: OpSupport, index: GraphIndex): Scope {
  const attrs = entry.attrs ?? {};
  const vars = entry.vars ?? {};
  const memo = new Map<string, Value>();
  const inputFacts = (i: unknown): ValueFacts | undefined => {
    if (typeof i !== 'number') return undefined;
    const name = node.inputs[i < 0 ? node.inputs.length + i : i];
    return name ? index.facts.get(name) : undefined;
  };
  const inputName = (i: unknown): string | undefined => (typeof i === 'number' ? node.inputs[i < 0 ? node.inputs.length + i : i] || undefined : undefined);
  const isConst = (name: string): boolean => index.constants.has(name) || index.facts.get(name)?.value !== undefined;
  const dataInputs = (): string[] => node.inputs.filter((n) => n && !isConst(n));

  const scope: Scope = {
    name(n: string): Value {
      if (memo.has(n)) return memo.get(n);
      let v: Value;
      if (n in vars) {
        memo.set(n, undefined); // a self-reference reads as unknown
        v = evaluate(vars[n], scope);
      } else if (n in attrs) {
        const given = attrValue(node.attrs.get(n));
        const def = attrs[n];
        v = given !== undefined ? given : def === null ? undefined : (def as Value);
      } else if (n === 'opset') {
        v = opset;
      } else {
        throw new ExprError(`name '${n}' is neither an attribute nor a var of the ${node.opType} entry`);
      }
      memo.set(n, v);
      return v;
    },
    call(fn: string, args: Value[]): Value | typeof NOT_A_FUNCTION {
      const [a] = args;
      switch (fn) {
        case 'shape':
          return dimsValue(inputFacts(a)?.shape);
        case 'oshape': {
          const name = typeof a === 'number' ? node.outputs[a] : undefined;
          return name ? dimsValue(index.facts.get(name)?.shape) : undefined;
        }
        case 'dshape': {
          const name = typeof a === 'number' ? dataInputs()[a] : undefined;
          return name ? dimsValue(index.facts.get(name)?.shape) : undefined;
        }
        case 'isconst': {
          const name = inputName(a);
          return name ? isConst(name) : false;
        }
        case 'const': {
          const t = inputFacts(a)?.value;
          return t ? t.toNumbers() : undefined;
        }
        case 'nin':
          return node.inputs.filter((n) => n).length;
        case 'dtype':
          return inputFacts(a)?.dtype;
        case 'data_ranks':
          return dataInputs().map((n) => index.facts.get(n)?.shape?.length);
        case 'out_ranks':
          return node.outputs.filter((n) => n).map((n) => index.facts.get(n)?.shape?.length);
        case 'consumer_ops':
          return node.outputs.flatMap((o) => (o ? index.consumers.get(o) ?? [] : [])).map((c) => c.opType);
        case 'is_output':
          return node.outputs.some((o) => o && index.graphOutputs.has(o));
        case 'producer_op': {
          const name = inputName(a);
          if (!name) return undefined;
          const p = index.producers.get(name);
          if (p) return p.opType;
          return index.graph.initializers.has(name) ? 'const' : 'input';
        }
        case 'src_shape': {
          let name = inputName(a);
          let shape = name ? index.facts.get(name)?.shape : undefined;
          for (let hops = 0; name && shape && shape.length !== 4 && hops < 8; hops++) {
            const p = index.producers.get(name);
            if (!p || !RESHAPING.has(p.opType)) break;
            name = p.inputs[0];
            const s = name ? index.facts.get(name)?.shape : undefined;
            if (!s) break;
            shape = s;
          }
          return dimsValue(shape);
        }
        default:
          return NOT_A_FUNCTION;
      }
    },
  };
  return scope;
}
