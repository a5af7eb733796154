import { PtqError } from '../errors';
import { PtqConfig, validateAgainstModel } from '../config';
import { Model } from '../onnx/ir';
import { loadAndValidate } from '../onnx/load';

/** The float model a config names, and the config matched to its inputs (names, shapes). */
export function loadFloatModel(cfg: PtqConfig): { model: Model; cfg: PtqConfig } {
  if (cfg.model.kind === 'caffe') {
    throw new PtqError('E_CAFFE_UNSUPPORTED', 'Caffe models (prototxt + caffe_model) are not supported by this version of nx-ptq yet', {
      subject: 'model_parameters.caffe_model',
      fix: 'convert the model to ONNX and set onnx_model',
    });
  }
  const model = loadAndValidate(cfg.model.onnxModel as string);
  const matched = validateAgainstModel(cfg, model.graph.realInputs.map((v) => ({ name: v.name, shape: v.type?.shape ?? [] })));
  return { model, cfg: matched };
}
