import type { DType } from '../onnx/dtype';
import type { Tensor, tensorFrom } from '../onnx/tensor';
import type { OpContext, ValueFacts } from '../ops/registry';
import type { PtqError } from '../errors';

/** A tensor as a module may return it without importing nx-ptq: data is converted to `dtype`'s typed array. */
export interface TensorLike {
  dtype: DType;
  dims: readonly number[];
  /** Element values in row-major order (a typed array, plain numbers/bigints, or strings for `string`). */
  data: ArrayLike<number | bigint> | string[];
}

/**
 * One custom operator, as a module under `custom_op_dir` defines it (see README.md).
 * It always runs on the CPU, in float, in the ReferenceEngine.
 */
export interface CustomOpDef {
  /** Operator domain, your own (e.g. 'com.example'): not '' / 'ai.onnx' nor one onnxruntime implements. */
  domain: string;
  /** ONNX op_type. */
  type: string;
  /** Oldest opset of `domain` this definition implements (default 1). */
  sinceOpset?: number;
  /** Shape/type function: facts about the inputs → one `ValueFacts` per output. */
  infer(ctx: OpContext, inputs: (ValueFacts | undefined)[]): ValueFacts[];
  /** Float kernel: input tensors → one tensor per output. */
  run(ctx: OpContext, inputs: (Tensor | undefined)[]): (Tensor | TensorLike)[];
  /** The kernel handles float16/bfloat16 itself (otherwise they arrive widened to float32). */
  nativeHalf?: boolean;
}

/** What `register(api)` receives. */
export interface CustomOpApi {
  /** Declare one operator (call once per operator, synchronously inside `register`). */
  registerOp(def: CustomOpDef): void;
  /** nx-ptq's tensor class: `new api.Tensor('float32', dims, new Float32Array(n))`. */
  Tensor: typeof Tensor;
  /** `api.tensorFrom('float32', dims, values)`: a tensor from plain numbers. */
  tensorFrom: typeof tensorFrom;
  /** Throw `new api.PtqError('E_CUSTOM_OP', message, { subject, fix })` for errors a user can fix. */
  PtqError: typeof PtqError;
}

/** One operator `loadCustomOps` registered. */
export interface LoadedCustomOp {
  domain: string;
  type: string;
  /** `domain::type` */
  key: string;
  /** Absolute path of the module that registered it. */
  file: string;
  /** sha256 of the module's source (for stage hashing). */
  sha256: string;
}
