/**
 * `nx g ./generators:zoo <folder>`: imports a folder of models as model projects in one go,
 * one `model` generator run per model found:
 * - `<name>.onnx` files;
 * - Caffe pairs: `<name>.prototxt` + `<name>.caffemodel`, or the only prototxt and the only
 *   caffemodel of a folder (a `deploy.prototxt` next to `weights.caffemodel`);
 * directly in the folder and in its sub-folders (one level). A sub-folder holding a single
 * model names the project; otherwise the file name does. The options that describe inputs or
 * calibration apply to every model. A model that cannot be imported (unreadable, a name taken,
 * an option that does not fit it) is skipped with a warning saying why; the others are
 * imported. Nothing is written when no model could be.
 */
import * as path from 'path';
import { logger, Tree } from '@nx/devkit';
import { isPtqError, PtqError } from '../../compiler/src/errors';
import { child, isDir, isFile, listDir, safeName, sourcePath, SourcePath } from '../lib/files';
import { GeneratedModel, modelGenerator, ModelGeneratorSchema } from '../model/generator';
import { forNx } from '../lib/entry';

export interface ZooGeneratorSchema extends Omit<ModelGeneratorSchema, 'model' | 'caffeModel' | 'name' | 'inputShape'> {
  /** the folder of models (workspace-relative or absolute) */
  source: string;
}

/** One model found in the folder. */
export interface FoundModel {
  name: string;
  model: SourcePath;
  caffeModel?: SourcePath;
}

export interface ZooResult {
  imported: GeneratedModel[];
  skipped: { file: string; reason: string }[];
}

export function findModels(tree: Tree, folder: SourcePath): { found: FoundModel[]; unpaired: string[] } {
  const found: FoundModel[] = [];
  const unpaired: string[] = [];
  const scan = (dir: SourcePath, folderName?: string): void => {
    const names = listDir(tree, dir).filter((n) => isFile(tree, child(dir, n)));
    const ext = (n: string): string => path.extname(n).toLowerCase();
    const stem = (n: string): string => n.slice(0, n.length - path.extname(n).length);
    const onnx = names.filter((n) => ext(n) === '.onnx');
    const protos = names.filter((n) => ext(n) === '.prototxt');
    const weights = names.filter((n) => ext(n) === '.caffemodel');
    const models: { file: string; caffe?: string }[] = onnx.map((f) => ({ file: f }));
    const usedWeights = new Set<string>();
    for (const p of protos) {
      const same = weights.find((w) => stem(w) === stem(p));
      const only = protos.length === 1 && weights.length === 1 ? weights[0] : undefined;
      const w = same ?? only;
      if (w) {
        models.push({ file: p, caffe: w });
        usedWeights.add(w);
      } else unpaired.push(child(dir, p).given);
    }
    for (const w of weights) if (!usedWeights.has(w)) unpaired.push(child(dir, w).given);
    models.sort((a, b) => (a.file < b.file ? -1 : 1));
    for (const m of models) {
      const name = safeName(models.length === 1 && folderName ? folderName : stem(m.file));
      found.push({ name, model: child(dir, m.file), ...(m.caffe ? { caffeModel: child(dir, m.caffe) } : {}) });
    }
  };
  scan(folder);
  for (const n of listDir(tree, folder)) {
    const sub = child(folder, n);
    if (isDir(tree, sub)) scan(sub, n);
  }
  return { found, unpaired };
}

export function zooGenerator(tree: Tree, schema: ZooGeneratorSchema): ZooResult {
  const folder = sourcePath(tree, schema.source);
  if (!isDir(tree, folder)) {
    throw new PtqError('E_GENERATOR', `--source '${schema.source}' is not a folder`, { subject: schema.source, fix: 'pass the folder holding the .onnx / .prototxt + .caffemodel files' });
  }
  const { found, unpaired } = findModels(tree, folder);
  const skipped: ZooResult['skipped'] = unpaired.map((f) => ({
    file: f,
    reason: f.toLowerCase().endsWith('.prototxt') ? 'no .caffemodel to pair it with' : 'no .prototxt to pair it with',
  }));
  if (!found.length) {
    throw new PtqError('E_GENERATOR', `--source '${schema.source}' holds no models (.onnx, or .prototxt + .caffemodel pairs)${unpaired.length ? `; unpaired: ${unpaired.join(', ')}` : ''}`, {
      subject: schema.source,
      fix: 'point --source at the folder of model files',
    });
  }
  const { source: _source, ...common } = schema;
  const imported: GeneratedModel[] = [];
  const taken = new Map<string, string>();
  for (const m of found) {
    const clash = taken.get(m.name);
    if (clash) {
      skipped.push({ file: m.model.given, reason: `project name '${m.name}' is taken by ${clash} (import it alone with the model generator and --name)` });
      continue;
    }
    try {
      imported.push(modelGenerator(tree, { ...common, model: m.model.given, ...(m.caffeModel ? { caffeModel: m.caffeModel.given } : {}), name: m.name }));
      taken.set(m.name, m.model.given);
    } catch (e) {
      if (!isPtqError(e)) throw e;
      skipped.push({ file: m.model.given, reason: e.oneLine().replace(/^ERROR /, '') });
    }
  }
  for (const s of skipped) logger.warn(`nx-ptq: skipped ${s.file}: ${s.reason}`);
  if (!imported.length) {
    const first = skipped.find((s) => !unpaired.includes(s.file)) ?? skipped[0];
    throw new PtqError('E_GENERATOR', `no model of '${schema.source}' could be imported (${skipped.length} skipped; ${first.file}: ${first.reason})`, {
      subject: schema.source,
      fix: 'see the warnings above for each model',
    });
  }
  logger.info(`nx-ptq: imported ${imported.length} model(s) into ${schema.directory ?? 'models'}/: ${imported.map((m) => m.name).join(', ')}${skipped.length ? `; skipped ${skipped.length}` : ''}`);
  return { imported, skipped };
}

/** The Nx entry point: Nx runs what a generator returns as a follow-up task, so it returns nothing. */
export default function (tree: Tree, schema: ZooGeneratorSchema): void {
  try {
    zooGenerator(tree, schema);
  } catch (e) {
    throw forNx(e);
  }
}
