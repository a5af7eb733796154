import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../../errors';
import type { Model, ValueInfo } from '../../onnx/ir';
import type { Tensor } from '../../onnx/tensor';
import type { Engine } from '../../runtime/engine';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq exec <action>`: run a model.
 *   ptq exec infer --model-file M.onnx --input-file A.npy[,B.pb] --output-dir D [--engine reference|ort]
 */
const INFER_OPTIONS: OptionSpec[] = [
  { name: 'model-file', type: 'string', required: true, value: 'FILE', description: 'the ONNX model to run' },
  {
    name: 'input-file',
    type: 'list',
    value: 'FILE',
    description: 'one .npy or ONNX TensorProto .pb file per model input, in model-input order',
  },
  { name: 'output-dir', type: 'string', required: true, value: 'DIR', description: 'where to write one <output_name>.npy per model output' },
  { name: 'engine', type: 'string', choices: ['reference', 'ort'], default: 'reference', value: 'NAME', description: 'the engine that runs the model' },
];

const ACTIONS: Record<string, { summary: string; help: () => string; run: (argv: string[], io: CliIO) => Promise<number> }> = {
  infer: {
    summary: 'run a model on input files and write its outputs as .npy files',
    help: () =>
      [
        'Usage: ptq exec infer --model-file M.onnx --input-file A[,B...] --output-dir D [--engine reference|ort]',
        '',
        'Runs the model once. Inputs are .npy or ONNX TensorProto (.pb) files, one per model input, in',
        'model-input order. Writes <output_name>.npy for every model output (characters other than',
        'letters, digits, ".", "-" and "_" become "_"); files appear only when the whole run succeeds.',
        '',
        'Options:',
        formatOptions(INFER_OPTIONS),
      ].join('\n'),
    run: infer,
  },
};

export const command: Command = {
  summary: 'run a model: `exec infer` writes its outputs for given inputs',
  help: () =>
    [
      'Usage: ptq exec <action> [options]',
      '',
      'Actions:',
      ...Object.entries(ACTIONS).map(([name, a]) => `  ${name.padEnd(8)}${a.summary}`),
      '',
      'ptq exec <action> --help shows the options of an action.',
    ].join('\n'),
  async run(argv, io) {
    const [action, ...rest] = argv;
    const a = action === undefined ? undefined : ACTIONS[action];
    if (!a) {
      const what = action === undefined ? 'needs an action' : `has no action '${action}'`;
      throw new PtqError('E_CLI_COMMAND', `ptq exec ${what}`, { fix: `use one of: ${Object.keys(ACTIONS).join(', ')} (ptq exec --help)` });
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(a.help());
      return 0;
    }
    return a.run(rest, io);
  },
};

async function infer(argv: string[], io: CliIO): Promise<number> {
  const { options, positionals } = parseArgs(argv, INFER_OPTIONS, 'exec infer');
  if (positionals.length) {
    throw new PtqError('E_CLI_ARGS', `exec infer: unexpected argument '${positionals[0]}'`, { fix: 'pass input files with --input-file A,B' });
  }
  const modelFile = options['model-file'] as string;
  const inputFiles = (options['input-file'] as string[] | undefined) ?? [];
  const outDir = options['output-dir'] as string;
  const engineName = options.engine as 'reference' | 'ort';

  checkOutputDir(outDir);
  const { loadAndValidate } = await import('../../onnx/load');
  const model = loadAndValidate(modelFile);
  const feeds = readInputs(model, inputFiles);

  let engine: Engine;
  if (engineName === 'ort') {
    const { OrtEngine } = await import('../../runtime/ort');
    engine = await OrtEngine.create(model, { source: modelFile });
  } else {
    const { ReferenceEngine } = await import('../../runtime/reference');
    engine = new ReferenceEngine(model);
  }
  let outputs: Record<string, Tensor>;
  try {
    outputs = await engine.run(feeds);
  } finally {
    await engine.dispose();
  }

  const { encodeNpy } = await import('../../preprocess/npy');
  const files = outputFileNames(engine.outputNames);
  const blobs = engine.outputNames.map((name) => encodeNpy(asNpyTensor(outputs[name]), name));
  writeAllAtomic(
    outDir,
    files.map((f, i) => [f, blobs[i]]),
  );
  engine.outputNames.forEach((name, i) => {
    const t = outputs[name];
    io.out(`${path.join(outDir, files[i])}  ${name}  ${t.dtype}[${t.dims.join(',')}]`);
  });
  return 0;
}

function checkOutputDir(dir: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    st = undefined;
  }
  if (st && !st.isDirectory()) {
    throw new PtqError('E_FILE', `--output-dir '${dir}' exists and is not a directory`, { subject: dir, fix: 'choose a directory' });
  }
}

/** Input files → feeds, checked against the model's input types (naming the file on a mismatch). */
function readInputs(model: Model, files: string[]): Record<string, Tensor> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for infer
  const { readTensorFile } = require('../../preprocess/tensor-file') as typeof import('../../preprocess/tensor-file');
  const inputs = model.graph.realInputs;
  if (files.length !== inputs.length) {
    const names = inputs.map((v) => describeInput(v)).join(', ') || 'none';
    throw new PtqError('E_CLI_INPUTS', `the model has ${inputs.length} input(s) (${names}), got ${files.length} input file(s)`, {
      fix: 'pass one --input-file per model input, in model-input order, separated by commas',
    });
  }
  const feeds: Record<string, Tensor> = {};
  inputs.forEach((v, i) => {
    const t = readTensorFile(files[i]);
    const want = v.type;
    if (want && t.dtype !== want.dtype) {
      throw new PtqError('E_INPUT_TYPE', `input file '${files[i]}' holds ${t.dtype}, model input ${describeInput(v)} needs ${want.dtype}`, {
        subject: v.name,
        fix: `convert the data (e.g. a.astype(numpy.${numpyName(want.dtype)}))`,
      });
    }
    const s = want?.shape;
    if (s && (s.length !== t.dims.length || s.some((d, k) => typeof d === 'number' && d !== t.dims[k]))) {
      throw new PtqError('E_INPUT_SHAPE', `input file '${files[i]}' has shape [${t.dims.join(',')}], model input ${describeInput(v)} needs [${s.join(',')}]`, {
        subject: v.name,
        fix: 'reshape the data to the model input shape, or check the order of --input-file',
      });
    }
    feeds[v.name] = t;
  });
  return feeds;
}

function describeInput(v: ValueInfo): string {
  return v.type ? `'${v.name}' ${v.type.dtype}[${(v.type.shape ?? ['?']).join(',')}]` : `'${v.name}'`;
}

function numpyName(dtype: string): string {
  return dtype === 'bool' ? 'bool_' : dtype;
}

/** bfloat16 has no numpy dtype: write it widened to float32 (exactly). */
function asNpyTensor(t: Tensor): Tensor {
  if (t.dtype !== 'bfloat16') return t;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Tensor: T } = require('../../onnx/tensor') as typeof import('../../onnx/tensor');
  return new T('float32', t.dims, t.toFloat32());
}

/** File names for output values: unsafe characters become '_', clashes get a numeric suffix. */
export function outputFileNames(names: string[]): string[] {
  const used = new Set<string>();
  return names.map((n) => {
    let base = n.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, (m) => '_'.repeat(m.length)) || 'output';
    if (base.length > 200) base = base.slice(0, 200);
    let file = `${base}.npy`;
    for (let k = 1; used.has(file.toLowerCase()); k++) file = `${base}_${k}.npy`;
    used.add(file.toLowerCase());
    return file;
  });
}

/**
 * Write every file to a temp name first, then rename them all: a failure leaves no output
 * half-written (and no temp files behind).
 */
function writeAllAtomic(dir: string, files: [string, Uint8Array][]): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new PtqError('E_FILE', `cannot create --output-dir '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: dir,
      fix: 'check the path and its permissions',
    });
  }
  const tag = `.tmp-${process.pid}-${Date.now().toString(36)}`;
  const temps: string[] = [];
  try {
    for (const [name, data] of files) {
      const tmp = path.join(dir, `${name}${tag}`);
      temps.push(tmp);
      fs.writeFileSync(tmp, data);
    }
    files.forEach(([name], i) => fs.renameSync(temps[i], path.join(dir, name)));
  } catch (e) {
    for (const t of temps) fs.rmSync(t, { force: true });
    throw new PtqError('E_FILE', `cannot write outputs to '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      subject: dir,
      fix: 'check free space and permissions of the output directory',
    });
  }
}
