import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../../errors';
import type { DType } from '../../onnx/dtype';
import type { Tensor } from '../../onnx/tensor';
import type { Engine } from '../../runtime/engine';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq exec <action>`: run a model (the reference's hrt_model_exec, on the host).
 *   ptq exec infer --model-file M.onnx|M.bin [--model-name X] --input-file A[,B]|DIR_A[,DIR_B] --output-dir D
 *   ptq exec perf  --model-file M.bin [--model-name X] [--frame-count 200] [--perf-time MIN] [--thread-num N] [--profile-path DIR]
 */
const INFER_OPTIONS: OptionSpec[] = [
  { name: 'model-file', type: 'string', required: true, value: 'FILE', description: 'the model to run: ONNX, or a .bin compiled by nx-ptq' },
  { name: 'model-name', type: 'string', value: 'NAME', description: 'the model of a packed .bin to run' },
  {
    name: 'input-file',
    type: 'list',
    value: 'FILE|DIR',
    description: 'one file or one folder per model input, in model-input order (folders: one sample per file, paired by sorted file name)',
  },
  { name: 'output-dir', type: 'string', required: true, value: 'DIR', description: 'where to write <output_name>.npy (folders: <sample>/<output_name>.npy)' },
  { name: 'engine', type: 'string', choices: ['reference', 'ort'], default: 'reference', value: 'NAME', description: 'the engine that runs an ONNX model' },
];

const PERF_OPTIONS: OptionSpec[] = [
  { name: 'model-file', type: 'string', required: true, value: 'FILE', description: 'the .bin to measure' },
  { name: 'model-name', type: 'string', value: 'NAME', description: 'the model of a packed .bin' },
  { name: 'frame-count', type: 'string', default: '200', value: 'N', description: 'frames to run (when --perf-time is 0)' },
  { name: 'perf-time', type: 'string', default: '0', value: 'MIN', description: 'run for this many minutes instead of a frame count' },
  { name: 'thread-num', type: 'string', default: '1', value: 'N', description: 'threads running frames, 1 to 8' },
  { name: 'profile-path', type: 'string', value: 'DIR', description: 'write profiler.log and profiler.csv (per-node times) into DIR' },
];

const ACTIONS: Record<string, { summary: string; help: () => string; run: (argv: string[], io: CliIO) => Promise<number> }> = {
  infer: {
    summary: 'run a model on input files and write its outputs as .npy files',
    help: () =>
      [
        'Usage: ptq exec infer --model-file M.onnx|M.bin [--model-name X] --input-file A[,B...]|DIR[,DIR...] --output-dir D',
        '',
        'Runs an ONNX model (--engine reference|ort) or a .bin (the nx-ptq host runtime). One input per',
        'model input, in model-input order: a .npy or ONNX TensorProto (.pb) file, a raw file holding',
        'exactly the input\'s bytes (a .bin image input: input_type_rt data, e.g. NV12 bytes), or for a',
        '.bin image input a JPEG/PNG/BMP image (converted to input_type_rt, resized to the input size).',
        'With folders, every file of each folder is one sample, paired across inputs by sorted file',
        'name; all samples run in one process and D/<sample>/<output_name>.npy is written per sample',
        '(<sample> = the first input\'s file name without its extension). Characters other than',
        'letters, digits, ".", "-" and "_" in names become "_"; files appear only when a sample succeeds.',
        '',
        'Options:',
        formatOptions(INFER_OPTIONS),
      ].join('\n'),
    run: infer,
  },
  perf: {
    summary: 'measure a .bin on the host runtime (frames, threads) and print the hrt_model_exec block',
    help: () =>
      [
        'Usage: ptq exec perf --model-file M.bin [--model-name X] [--frame-count 200] [--perf-time MIN] [--thread-num N] [--profile-path DIR]',
        '',
        'Runs frames of random inputs through the host runtime (worker threads when --thread-num > 1) and',
        'prints Running condition / Perf result as hrt_model_exec perf does. With --profile-path, writes',
        'profiler.log (JSON: perf_result, running_condition, chip/model/task latency per node: Preprocess,',
        'each BPU subgraph, its input/output layout conversions, Quantize/Dequantize, CPU ops) and',
        'profiler.csv. These are host-simulator times, not BPU latencies.',
        '',
        'Options:',
        formatOptions(PERF_OPTIONS),
      ].join('\n'),
    run: perf,
  },
};

export const command: Command = {
  summary: 'run a model: `exec infer` writes its outputs for given inputs, `exec perf` measures a .bin',
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

/** What an input of the model takes. */
interface InputSpec {
  name: string;
  dtype: DType;
  shape: (number | string)[];
  /** .bin inputs: input_type_rt and input_layout_rt */
  typeRt?: string;
  layout?: string;
}

function describe(s: InputSpec): string {
  const extra = s.typeRt ? ` (${s.typeRt}${s.layout ? ` ${s.layout}` : ''})` : '';
  return `'${s.name}' ${s.dtype}[${s.shape.join(',')}]${extra}`;
}

/** A .bin by extension, or by its magic (protobuf field 2 = "nx-ptq-bin"). */
export function isBinModelFile(file: string): boolean {
  if (path.extname(file).toLowerCase() === '.bin') return true;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(32);
      const n = fs.readSync(fd, head, 0, 32, 0);
      return head.subarray(0, n).includes(Buffer.from('nx-ptq-bin'));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

async function infer(argv: string[], io: CliIO): Promise<number> {
  const { options, positionals } = parseArgs(argv, INFER_OPTIONS, 'exec infer');
  if (positionals.length) {
    throw new PtqError('E_CLI_ARGS', `exec infer: unexpected argument '${positionals[0]}'`, { fix: 'pass input files with --input-file A,B' });
  }
  const modelFile = options['model-file'] as string;
  const inputFiles = (options['input-file'] as string[] | undefined) ?? [];
  const outDir = options['output-dir'] as string;
  const engineName = options.engine as 'reference' | 'ort';
  const modelName = options['model-name'] as string | undefined;
  checkOutputDir(outDir);

  let engine: Engine;
  let specs: InputSpec[];
  if (isBinModelFile(modelFile)) {
    if (argv.some((a) => a === '--engine' || a.startsWith('--engine='))) {
      throw new PtqError('E_CLI_ARGS', 'exec infer: --engine applies to ONNX models; a .bin runs on the nx-ptq host runtime', { fix: 'drop --engine' });
    }
    const { BinEngine } = await import('../../runtime/bin-engine');
    const be = BinEngine.load(modelFile, modelName);
    engine = be;
    specs = be.model.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape, typeRt: i.typeRt && i.typeRt !== 'featuremap' ? i.typeRt : undefined, layout: i.layout }));
  } else {
    if (modelName !== undefined) throw new PtqError('E_CLI_ARGS', 'exec infer: --model-name applies to packed .bin files', { fix: 'drop --model-name for an ONNX model' });
    const { loadAndValidate } = await import('../../onnx/load');
    const model = loadAndValidate(modelFile);
    specs = model.graph.realInputs.map((v) => ({ name: v.name, dtype: v.type?.dtype ?? 'float32', shape: v.type?.shape ?? [] }));
    if (engineName === 'ort') {
      const { OrtEngine } = await import('../../runtime/ort');
      engine = await OrtEngine.create(model, { source: modelFile });
    } else {
      const { ReferenceEngine } = await import('../../runtime/reference');
      engine = new ReferenceEngine(model);
    }
  }
  try {
    if (inputFiles.length !== specs.length) {
      const names = specs.map(describe).join(', ') || 'none';
      throw new PtqError('E_CLI_INPUTS', `the model has ${specs.length} input(s) (${names}), got ${inputFiles.length} input file(s)`, {
        fix: 'pass one --input-file per model input, in model-input order, separated by commas',
      });
    }
    const dirs = inputFiles.map(isDirectory);
    if (dirs.some((d) => d) && !dirs.every((d) => d)) {
      throw new PtqError('E_CLI_INPUTS', 'exec infer: --input-file mixes folders and files', { fix: 'give one folder per input (samples paired by file name), or one file per input' });
    }
    const { encodeNpy } = await import('../../preprocess/npy');
    const files = outputFileNames(engine.outputNames);
    const runOne = async (inputs: string[], dir: string): Promise<void> => {
      const feeds: Record<string, Tensor> = {};
      for (let i = 0; i < specs.length; i++) feeds[specs[i].name] = await readInput(inputs[i], specs[i]);
      const outputs = await engine.run(feeds);
      const blobs = engine.outputNames.map((name) => encodeNpy(asNpyTensor(outputs[name]), name));
      writeAllAtomic(dir, files.map((f, i) => [f, blobs[i]]));
      engine.outputNames.forEach((name, i) => {
        const t = outputs[name];
        io.out(`${path.join(dir, files[i])}  ${name}  ${t.dtype}[${t.dims.join(',')}]`);
      });
    };
    if (!dirs.length || !dirs[0]) {
      await runOne(inputFiles, outDir);
      return 0;
    }
    const samples = pairSamples(inputFiles);
    const names = sampleDirNames(samples.map((s) => s[0]));
    for (let k = 0; k < samples.length; k++) await runOne(samples[k], path.join(outDir, names[k]));
    io.out(`${samples.length} sample(s) written to ${outDir}`);
    return 0;
  } finally {
    await engine.dispose();
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Each folder's regular files (sorted by name, hidden files skipped); sample k = the k-th file of every folder. */
function pairSamples(dirs: string[]): string[][] {
  const lists = dirs.map((d) => {
    let names: string[];
    try {
      names = fs.readdirSync(d).filter((n) => !n.startsWith('.') && fs.statSync(path.join(d, n)).isFile()).sort();
    } catch (e) {
      throw new PtqError('E_FILE', `cannot read input folder '${d}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: d, fix: 'check the path' });
    }
    if (!names.length) throw new PtqError('E_CLI_INPUTS', `input folder '${d}' has no files`, { subject: d, fix: 'put one file per sample in each input folder' });
    return names.map((n) => path.join(d, n));
  });
  const n = lists[0].length;
  lists.forEach((l, i) => {
    if (l.length !== n) {
      throw new PtqError('E_CLI_INPUTS', `input folder '${dirs[i]}' has ${l.length} file(s), '${dirs[0]}' has ${n}`, {
        subject: dirs[i],
        fix: 'give every input folder one file per sample (samples are paired by sorted file name)',
      });
    }
  });
  return Array.from({ length: n }, (_, k) => lists.map((l) => l[k]));
}

/** <sample> folder names: the first input's file name without extension, made safe and unique. */
function sampleDirNames(files: string[]): string[] {
  const used = new Set<string>();
  return files.map((f) => {
    const ext = path.extname(f);
    let base = path.basename(f, ext).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, (m) => '_'.repeat(m.length)) || 'sample';
    if (base.length > 200) base = base.slice(0, 200);
    let name = base;
    for (let k = 1; used.has(name.toLowerCase()); k++) name = `${base}_${k}`;
    used.add(name.toLowerCase());
    return name;
  });
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

const IMAGE_TYPES = new Set(['rgb', 'bgr', 'gray', 'yuv444', 'nv12']);

/** One input: .npy / .pb, an image (for .bin image inputs), or raw bytes of the input's type and shape. */
async function readInput(file: string, spec: InputSpec): Promise<Tensor> {
  const ext = path.extname(file).toLowerCase();
  const { readTensorFile } = await import('../../preprocess/tensor-file');
  const { isImageFile } = await import('../../preprocess/image-io');
  let t: Tensor;
  if (ext === '.npy' || ext === '.pb') t = readTensorFile(file);
  else if (spec.typeRt && IMAGE_TYPES.has(spec.typeRt) && isImageFile(file)) t = await imageInput(file, spec);
  else t = rawInput(file, spec);
  if (t.dtype !== spec.dtype) {
    throw new PtqError('E_INPUT_TYPE', `input file '${file}' holds ${t.dtype}, model input ${describe(spec)} needs ${spec.dtype}`, {
      subject: spec.name,
      fix: `convert the data (e.g. a.astype(numpy.${spec.dtype === 'bool' ? 'bool_' : spec.dtype}))`,
    });
  }
  const s = spec.shape;
  if (s.length !== t.dims.length || s.some((d, k) => typeof d === 'number' && d !== t.dims[k])) {
    throw new PtqError('E_INPUT_SHAPE', `input file '${file}' has shape [${t.dims.join(',')}], model input ${describe(spec)} needs [${s.join(',')}]`, {
      subject: spec.name,
      fix: 'reshape the data to the model input shape, or check the order of --input-file',
    });
  }
  return t;
}

function rawInput(file: string, spec: InputSpec): Tensor {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Tensor: T } = require('../../onnx/tensor') as typeof import('../../onnx/tensor');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { bytesPerElement } = require('../../onnx/dtype') as typeof import('../../onnx/dtype');
  let bytes: Buffer;
  try {
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read input file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: file, fix: 'check the path' });
  }
  const dims = spec.shape.map((d) => (typeof d === 'number' ? d : NaN));
  const n = dims.reduce((a, b) => a * b, 1);
  const need = n * bytesPerElement(spec.dtype);
  if (!Number.isFinite(n) || bytes.length !== need) {
    throw new PtqError('E_INPUT_FORMAT', `input file '${file}' is neither a .npy nor a .pb (TensorProto) file, and its ${bytes.length} bytes are not raw data of model input ${describe(spec)} (${Number.isFinite(need) ? `${need} bytes` : 'a fixed shape is needed'})`, {
      subject: file,
      fix: 'save the input with numpy.save (.npy), as an ONNX TensorProto (.pb), or as raw bytes of exactly the input\'s type and shape (numpy tofile)',
    });
  }
  return T.fromRaw(spec.dtype, dims, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** An image file as a .bin image input: RGB decoded, resized to the input, converted to input_type_rt and its layout. */
async function imageInput(file: string, spec: InputSpec): Promise<Tensor> {
  const { readImage } = await import('../../preprocess/image-io');
  const ops = await import('../../preprocess/image-ops');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Tensor: T } = require('../../onnx/tensor') as typeof import('../../onnx/tensor');
  const dims = spec.shape as number[];
  const nv12 = spec.typeRt === 'nv12';
  if (dims[0] !== 1) throw new PtqError('E_INPUT_FORMAT', `model input ${describe(spec)} has a batch of ${dims[0]}; an image file is one sample`, { subject: file, fix: 'give a .npy or raw file holding the whole batch' });
  const nhwc = spec.layout === 'NHWC';
  const [H, W] = nv12 ? [(dims[1] * 2) / 3, dims[2]] : nhwc ? [dims[1], dims[2]] : [dims[2], dims[3]];
  let img = await readImage(file);
  if (img.height !== H || img.width !== W) img = ops.resize(img, H, W);
  const u8 = (v: number): number => ops.roundSat(v, 0, 255);
  let out: Uint8Array;
  if (nv12) {
    const yuv = ops.toNv12(img, [0, 1, 2]);
    out = Uint8Array.from(yuv.data, (v) => v);
  } else {
    let conv = img;
    if (spec.typeRt === 'bgr') conv = ops.permuteChannels(img, [2, 1, 0]);
    else if (spec.typeRt === 'yuv444') conv = ops.colourMatrix(img, [0, 1, 2], ops.BT601_FULL, 0);
    else if (spec.typeRt === 'gray') conv = ops.colourMatrix(img, [0, 1, 2], [ops.BT601_FULL[0]], 0);
    if (!nhwc) conv = ops.toLayout(conv, 'CHW');
    out = Uint8Array.from(conv.data, u8);
  }
  return new T('uint8', dims, out);
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

function intOption(v: string, name: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < min || n > max) {
    throw new PtqError('E_CLI_ARGS', `exec perf: --${name} must be an integer from ${min} to ${max} (got '${v}')`, { fix: `see \`ptq exec perf --help\`` });
  }
  return n;
}

async function perf(argv: string[], io: CliIO): Promise<number> {
  const { options, positionals } = parseArgs(argv, PERF_OPTIONS, 'exec perf');
  if (positionals.length) throw new PtqError('E_CLI_ARGS', `exec perf: unexpected argument '${positionals[0]}'`, { fix: 'give the model with --model-file' });
  const file = options['model-file'] as string;
  const frames = intOption(options['frame-count'] as string, 'frame-count', 1, 1e9);
  const threads = intOption(options['thread-num'] as string, 'thread-num', 1, 8);
  const minutesText = options['perf-time'] as string;
  const minutes = Number(minutesText);
  if (!/^\d+(\.\d+)?$/.test(minutesText) || !Number.isFinite(minutes) || minutes < 0 || minutes > 1e6) {
    throw new PtqError('E_CLI_ARGS', `exec perf: --perf-time must be a number of minutes >= 0 (got '${minutesText}')`, { fix: 'use 0 to run --frame-count frames' });
  }
  const { measureHostProfile, formatPerfBlock, writeProfile } = await import('../../runtime/bin-perf');
  const r = await measureHostProfile(file, { modelName: options['model-name'] as string | undefined, frames, perfTimeMin: minutes, threads });
  for (const line of formatPerfBlock(r).split('\n')) io.out(line);
  const profilePath = options['profile-path'] as string | undefined;
  if (profilePath) for (const f of writeProfile(profilePath, r)) io.out(`profile written to ${f}`);
  return 0;
}
