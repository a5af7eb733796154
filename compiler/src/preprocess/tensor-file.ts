import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../errors';
import { decodeTensor } from '../onnx/decode';
import { onnxType } from '../onnx/proto';
import { Tensor } from '../onnx/tensor';
import { parseNpy } from './npy';

/** Formats a single tensor file can have, by extension. */
export const TENSOR_FILE_TYPES = ['.npy', '.pb'];

/** Read one tensor from a `.npy` file or an ONNX TensorProto `.pb` file (as ONNX test data uses). */
export function readTensorFile(file: string): Tensor {
  const ext = path.extname(file).toLowerCase();
  if (!TENSOR_FILE_TYPES.includes(ext)) {
    throw new PtqError('E_INPUT_FORMAT', `'${file}' is neither a .npy nor a .pb (TensorProto) file`, {
      subject: file,
      fix: 'save the input with numpy.save (.npy) or as an ONNX TensorProto (.pb)',
    });
  }
  let bytes: Buffer;
  try {
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read input file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: file,
      fix: 'check the path',
    });
  }
  return ext === '.npy' ? parseNpy(bytes, file) : parseTensorProto(bytes, file);
}

/** Decode a serialized TensorProto. */
export function parseTensorProto(bytes: Uint8Array, source: string): Tensor {
  try {
    const msg = onnxType('TensorProto').decode(bytes);
    return decodeTensor(msg, { source });
  } catch (e) {
    if (e instanceof PtqError) throw e;
    throw new PtqError('E_INPUT_FORMAT', `'${source}' is not a valid ONNX TensorProto file (${(e as Error).message})`, {
      subject: source,
      fix: 'write it with onnx.numpy_helper.from_array(a).SerializeToString(), or use .npy',
    });
  }
}
