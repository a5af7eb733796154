import * as path from 'path';
import * as protobuf from 'protobufjs';

/** protobufjs types for nx-ptq's own onnx.proto (compiler/proto), loaded once. */
let root: protobuf.Root | undefined;

export function onnxRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.loadSync(path.join(__dirname, '..', '..', 'proto', 'onnx.proto'), { keepCase: true });
    root.resolveAll();
  }
  return root;
}

export function onnxType(name: string): protobuf.Type {
  return onnxRoot().lookupType(`onnx.${name}`);
}
