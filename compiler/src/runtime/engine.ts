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
