import * as path from 'path';
import { March, ModelKind } from './types';

/**
 * The reference's YAML templates (RDK X3 = bernoulli2, RDK Ultra = bayes; ONNX or Caffe), with
 * its placeholders filled in for MobileNetV1. Used by the `model` generator to scaffold a project.
 */
export const TEMPLATE_FILES: Readonly<Record<March, Readonly<Record<ModelKind, string>>>> = {
  bernoulli2: { onnx: 'x3_onnx.yaml', caffe: 'x3_caffe.yaml' },
  bayes: { onnx: 'ultra_onnx.yaml', caffe: 'ultra_caffe.yaml' },
};

export function templatePath(march: March, kind: ModelKind): string {
  return path.join(__dirname, 'templates', TEMPLATE_FILES[march][kind]);
}
