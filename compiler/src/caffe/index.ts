import * as fs from 'fs';
import { PtqError } from '../errors';
import { Model } from '../onnx/ir';
import { caffeNetInputs, convertCaffeNet, parsePrototxt } from './net';
import { readCaffemodel } from './weights';

export { caffeNetInputs, convertCaffeNet, parsePrototxt } from './net';
export type { ParsedNet } from './net';
export { readCaffemodel } from './weights';
export type { CaffeBlob } from './weights';
export { parseTextFormat } from './text-format';
export { caffePoolOutput } from './pooling';

/**
 * A Caffe model (the `.prototxt` net and the trained `.caffemodel`) as an ONNX model
 * (opset 13) in the TEST phase: node names are the layer names, values the top names,
 * graph inputs the Caffe inputs. Weights stay views of the caffemodel bytes read here.
 */
export function loadCaffeModel(prototxtFile: string, caffemodelFile: string): Model {
  const text = readFile(prototxtFile, 'prototxt').toString('utf8');
  const parsed = parsePrototxt(text, prototxtFile);
  const weights = readCaffemodel(readFile(caffemodelFile, 'caffemodel'), caffemodelFile);
  return convertCaffeNet(parsed, weights);
}

/** The inputs (names, shapes) a prototxt declares for the TEST phase; reads no weights. */
export function readCaffeInputs(prototxtFile: string): { name: string; shape: number[] }[] {
  return caffeNetInputs(parsePrototxt(readFile(prototxtFile, 'prototxt').toString('utf8'), prototxtFile));
}

/**
 * The same from bytes already in memory. The caffemodel bytes are rearranged while the
 * weights are read (see readCaffemodel): pass a buffer that is not used otherwise.
 */
export function convertCaffe(prototxt: string, caffemodel: Uint8Array, names: { prototxt?: string; caffemodel?: string } = {}): Model {
  const parsed = parsePrototxt(prototxt, names.prototxt ?? '<prototxt>');
  return convertCaffeNet(parsed, readCaffemodel(caffemodel, names.caffemodel ?? '<caffemodel>'));
}

function readFile(file: string, what: string): Buffer {
  try {
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    return fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read ${what} file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: file,
      fix: 'check the path (relative paths are resolved against the current directory)',
    });
  }
}
