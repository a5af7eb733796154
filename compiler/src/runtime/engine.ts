import { PtqError } from '../errors';
import { ValueType } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';

export interface RunOptions {
  /** Names of intermediate values to return besides the model outputs. */
  fetch?: string[];
}

/** Something that executes a model: the reference kernels, onnxruntime, or the `.bin` runtime. */
export interface Engine {
  readonly name: string;
  readonly inputNames: string[];
  readonly outputNames: string[];
  /** Run on named inputs; returns the model outputs plus any `fetch`ed intermediates. */
  run(feeds: Record<string, Tensor>, opts?: RunOptions): Promise<Record<string, Tensor>>;
  dispose(): Promise<void>;
}

/** A feed must have the declared dtype and fixed dims (both engines check the same way). */
export function checkFeed(name: string, t: Tensor, type: ValueType | undefined): void {
  if (!type) return;
  if (t.dtype !== type.dtype) {
    throw new PtqError('E_INPUT_TYPE', `model input '${name}' expects ${type.dtype}, got ${t.dtype}`, {
      subject: name,
      fix: `convert the data to ${type.dtype}`,
    });
  }
  const s = type.shape;
  if (!s) return;
  const bad = s.length !== t.dims.length || s.some((d, i) => typeof d === 'number' && d !== t.dims[i]);
  if (bad) {
    throw new PtqError('E_INPUT_SHAPE', `model input '${name}' expects shape [${s.join(',')}], got [${t.dims.join(',')}]`, {
      subject: name,
      fix: 'reshape the data to the model input shape',
    });
  }
}
