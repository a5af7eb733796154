import { loadCaffeModel } from '../caffe';
import { PtqConfig, validateAgainstModel } from '../config';
import { Model } from '../onnx/ir';
import { loadAndValidate } from '../onnx/load';

/** The float model a config names (ONNX, or Caffe prototxt + caffemodel), and the config matched to its inputs (names, shapes). */
export function loadFloatModel(cfg: PtqConfig): { model: Model; cfg: PtqConfig } {
  const model =
    cfg.model.kind === 'caffe'
      ? loadCaffeModel(cfg.model.prototxt as string, cfg.model.caffeModel as string)
      : loadAndValidate(cfg.model.onnxModel as string);
  const matched = validateAgainstModel(cfg, model.graph.realInputs.map((v) => ({ name: v.name, shape: v.type?.shape ?? [] })));
  return { model, cfg: matched };
}
