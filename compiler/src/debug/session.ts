import * as path from 'path';
import { Model } from '../onnx/ir';
import { loadAndValidate } from '../onnx/load';
import { createProgress, ProgressReporter, ProgressStream, silentProgress } from '../preprocess/progress';
import { EngineChoice } from '../runtime/select';
import { DebugData, openDebugData } from './data';
import { DebugModel } from './graph';

/** What every debugger function takes besides its own parameters. */
export interface CommonOptions {
  /** where progress goes (default stderr); false: none */
  progress?: ProgressStream | false;
  /** one log line (engine, sample count…); default none */
  log?: (line: string) => void;
  /** engine for the runs (default auto: onnxruntime unless the model has custom operators) */
  engine?: EngineChoice;
}

/** A calibrated model given as a file or a loaded model. */
export type ModelOrFile = string | Model;
/** Calibration data given as a folder or opened already. */
export type DataOrDir = string | DebugData;

export function openModel(m: ModelOrFile): DebugModel {
  if (typeof m === 'string') return DebugModel.of(loadAndValidate(m), path.basename(m));
  return DebugModel.of(m);
}

export function openData(d: DataOrDir, dm: DebugModel, dataNum?: number): DebugData {
  if (typeof d === 'string') return openDebugData(d, dm.model, dataNum);
  if (dataNum === undefined || dataNum === d.count) return d;
  return openDebugData(d.set.dir, dm.model, dataNum);
}

export function progressFor(opts: CommonOptions, label: string, total: number): ProgressReporter {
  if (opts.progress === false) return silentProgress;
  return createProgress(label, total, opts.progress ? { stream: opts.progress } : {});
}
