import { PtqError } from '../errors';
import { DType } from '../onnx/dtype';
import { Dim, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';

/**
 * How an operator behaves in the BPU integer contract (shared/DESIGN.md §3):
 * - active: computes with int8 inputs/weights into int32 and requantises (Conv, Gemm, Add, …)
 * - passive: moves or selects values and keeps its input scale (MaxPool, Reshape, Slice, …)
 * - lut: elementwise nonlinearity done as a 256-entry table (Sigmoid, Tanh, …)
 * - cpu: runs in float on the CPU behind Dequantize/Quantize (Softmax, TopK, shape math, …)
 */
export type QuantRole = 'active' | 'passive' | 'lut' | 'cpu';

/** What is known of a value during shape inference; `value` when it is a constant. */
export interface ValueFacts {
  dtype?: DType;
  /** undefined = unknown rank */
  shape?: Dim[];
  value?: Tensor;
}

export interface OpContext {
  node: Node;
  /** The opset version of the node's domain imported by the model. */
  opset: number;
}

export interface OpDef {
  /** ONNX op_type. */
  type: string;
  /** '' (default ONNX domain) unless given. */
  domain?: string;
  /** Oldest opset of the domain this module implements (default 1). */
  sinceOpset?: number;
  /** Reference kernel: tensors in, all outputs out (float and integer dtypes as the op defines). */
  run(ctx: OpContext, inputs: (Tensor | undefined)[]): Tensor[];
  /** Shape/type function: facts about the inputs → facts about each output. */
  infer(ctx: OpContext, inputs: (ValueFacts | undefined)[]): ValueFacts[];
  quant: QuantRole;
  /** The kernel handles float16/bfloat16 itself; otherwise the engine widens them to float32 around `run`. */
  nativeHalf?: boolean;
}

const registry = new Map<string, OpDef>();
let loaded = false;

function key(domain: string | undefined, type: string): string {
  const d = domain === 'ai.onnx' ? '' : domain ?? '';
  return `${d}::${type}`;
}

/** Add an operator (custom ops from user modules come through here too). */
export function registerOp(def: OpDef, origin = 'custom'): void {
  const k = key(def.domain, def.type);
  if (registry.has(k)) throw new Error(`operator ${k} registered twice (again by ${origin})`);
  registry.set(k, def);
}

function ensureLoaded(): void {
  if (loaded) return;
  loaded = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the op modules are discovered from the folder
  require('./index');
}

export function findOp(domain: string, type: string): OpDef | undefined {
  ensureLoaded();
  return registry.get(key(domain, type));
}

/** The op for `node`, or a PtqError naming the op type, node and opset. */
export function getOp(node: Node, opset: number): OpDef {
  const def = findOp(node.domain, node.opType);
  if (!def || (def.sinceOpset ?? 1) > opset) {
    const dom = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}::` : '';
    throw new PtqError('E_UNSUPPORTED_OP', `operator ${dom}${node.opType} (opset ${opset}) of node '${node.label}' is not supported`, {
      subject: node.label,
      fix: 'replace the operator in the model, or register it as a custom CPU operator (custom_op in the YAML)',
    });
  }
  return def;
}

export function registeredOps(): OpDef[] {
  ensureLoaded();
  return [...registry.values()];
}
