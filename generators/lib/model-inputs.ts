/**
 * The inputs (names, shapes) of a float model file, for the model generator: ONNX through the
 * compiler's decoder, Caffe from the prototxt (the inputs and Input/Data layers of the TEST
 * phase; the caffemodel's weights are not needed for that).
 */
import type { Tree } from '@nx/devkit';
import { caffeNetInputs, parsePrototxt } from '../../compiler/src/caffe';
import type { ModelInput } from '../../compiler/src/config';
import { PtqError } from '../../compiler/src/errors';
import { decodeModel } from '../../compiler/src/onnx/decode';
import { readBytes, SourcePath } from './files';

export interface ModelFileInputs {
  kind: 'onnx' | 'caffe';
  inputs: ModelInput[];
  /** element type per input (onnx), e.g. float32 */
  dtypes: (string | undefined)[];
}

export function readOnnxInputs(tree: Tree, file: SourcePath): ModelFileInputs {
  const bytes = readBytes(tree, file, 'ONNX model', 'model');
  let model;
  try {
    model = decodeModel(bytes, file.given);
  } catch (e) {
    if (e instanceof PtqError) throw e;
    throw new PtqError('E_MODEL', `'${file.given}' is not a readable ONNX model: ${(e as Error).message}`, { subject: file.given, fix: 'pass an .onnx file exported by your framework' });
  }
  const inputs = model.graph.realInputs;
  if (!inputs.length) throw new PtqError('E_MODEL', `the ONNX model '${file.given}' has no inputs`, { subject: file.given, fix: 'pass the model exported with its input tensors' });
  return {
    kind: 'onnx',
    inputs: inputs.map((v) => ({ name: v.name, shape: (v.type?.shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : String(d ?? '?'))) })),
    dtypes: inputs.map((v) => v.type?.dtype),
  };
}

export function readCaffeInputs(tree: Tree, prototxt: SourcePath): ModelFileInputs {
  const text = readBytes(tree, prototxt, 'Caffe prototxt', 'model').toString('utf8');
  const inputs = caffeNetInputs(parsePrototxt(text, prototxt.given));
  if (!inputs.length) {
    throw new PtqError('E_MODEL', `the prototxt '${prototxt.given}' declares no input (input/input_shape or an Input layer)`, {
      subject: prototxt.given,
      fix: "add an Input layer (or 'input' + 'input_shape') to the deploy prototxt",
    });
  }
  return { kind: 'caffe', inputs, dtypes: inputs.map(() => 'float32') };
}
