import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../../errors';
import { formatOptions, OptionSpec, parseArgs } from '../args';
import { CliIO, Command } from '../command';

/**
 * `ptq eval-preprocess` — the reference's hb_eval_preprocess: preprocess an image folder for
 * accuracy evaluation. A model name picks a transformer chain (table below), or
 * `--transformers` gives one; each image becomes one file in the output folder.
 *
 * The chains are nx-ptq's, modelled on the reference's sample recipes (classification:
 * short side 256 + centre crop 224; detection: aspect-preserving pad-resize). They end in
 * NV12 — the input_type_rt of the reference's sample models on the board — so the files can
 * be fed to the converted models. Images are read as RGB with values 0…255.
 */
export const EVAL_MODELS: Readonly<Record<string, { chain: string; about: string }>> = {
  resnet18: { chain: 'ShortSideResize(256); CenterCrop(224); RGB2NV12', about: 'ImageNet 224x224' },
  resnet50: { chain: 'ShortSideResize(256); CenterCrop(224); RGB2NV12', about: 'ImageNet 224x224' },
  googlenet: { chain: 'ShortSideResize(256); CenterCrop(224); RGB2NV12', about: 'ImageNet 224x224' },
  mobilenetv1: { chain: 'ShortSideResize(256); CenterCrop(224); RGB2NV12', about: 'ImageNet 224x224' },
  mobilenetv2: { chain: 'ShortSideResize(256); CenterCrop(224); RGB2NV12', about: 'ImageNet 224x224' },
  efficientnet_lite0: { chain: "PaddedCenterCrop(224, 32); Resize([224,224], mode='opencv'); RGB2NV12", about: 'ImageNet 224x224' },
  efficientnet_lite1: { chain: "PaddedCenterCrop(240, 32); Resize([240,240], mode='opencv'); RGB2NV12", about: 'ImageNet 240x240' },
  efficientnet_lite2: { chain: "PaddedCenterCrop(260, 32); Resize([260,260], mode='opencv'); RGB2NV12", about: 'ImageNet 260x260' },
  efficientnet_lite3: { chain: "PaddedCenterCrop(280, 32); Resize([280,280], mode='opencv'); RGB2NV12", about: 'ImageNet 280x280' },
  efficientnet_lite4: { chain: "PaddedCenterCrop(300, 32); Resize([300,300], mode='opencv'); RGB2NV12", about: 'ImageNet 300x300' },
  yolov2: { chain: 'PadResize([608,608], pad_value=127); RGB2NV12', about: 'COCO 608x608, letterboxed' },
  yolov3: { chain: 'PadResize([416,416], pad_value=127); RGB2NV12', about: 'COCO 416x416, letterboxed' },
  yolov5s: { chain: 'PadResize([672,672], pad_value=127); RGB2NV12', about: 'COCO 672x672, letterboxed' },
  ssd_mobilenetv1: { chain: "Resize([300,300], mode='opencv'); RGB2NV12", about: 'VOC/COCO 300x300' },
  fcos: { chain: "PadResize([512,512], pad_value=0, pad_position='bottom_right'); RGB2NV12", about: 'COCO 512x512, padded bottom-right' },
  efficientdet: { chain: "PadResize([512,512], pad_value=0, pad_position='bottom_right'); RGB2NV12", about: 'COCO 512x512, padded bottom-right' },
  unet: { chain: "Resize([1024,2048], mode='opencv'); RGB2NV12", about: 'Cityscapes 1024x2048' },
};

const OPTIONS: OptionSpec[] = [
  { name: 'model_name', alias: 'm', type: 'string', choices: Object.keys(EVAL_MODELS), value: 'NAME', description: 'a model whose preprocessing to apply (see the list below)' },
  {
    name: 'transformers',
    alias: 't',
    type: 'string',
    value: 'SPEC',
    description: "a transformer chain instead of -m, e.g. 'ShortSideResize(256); CenterCrop(224); HWC2CHW', as text, JSON, or a file holding either",
  },
  { name: 'image_dir', alias: 'i', type: 'string', required: true, value: 'DIR', description: 'the input images (jpg, jpeg, png, bmp)' },
  { name: 'output_dir', alias: 'o', type: 'string', required: true, value: 'DIR', description: 'where to write one file per image' },
  { name: 'val_txt', alias: 'v', type: 'string', value: 'FILE', description: 'the images to process, one name (relative to --image_dir) per line, first column; default all images, sorted' },
  { name: 'format', type: 'string', choices: ['bin', 'npy'], default: 'bin', value: 'FMT', description: 'bin: raw bytes (numpy.tofile); npy: numpy.save' },
];

export const command: Command = {
  summary: 'preprocess images for accuracy evaluation (hb_eval_preprocess)',
  help: () =>
    [
      'Usage: ptq eval-preprocess (-m MODEL_NAME | -t SPEC) -i IMAGE_DIR -o OUTPUT_DIR [-v VAL_TXT] [--format bin|npy]',
      '',
      'Runs a preprocessing chain on every image and writes <image name without extension>.bin',
      '(or .npy) to OUTPUT_DIR, in the dtype the chain ends with (uint8 for NV12, else float32).',
      'Images are read as RGB, HWC, values 0..255. Files appear only when every image succeeded.',
      '',
      'Options:',
      formatOptions(OPTIONS),
      '',
      'Model names and their chains:',
      ...Object.entries(EVAL_MODELS).map(([n, m]) => `  ${n.padEnd(20)}${m.chain}  (${m.about})`),
    ].join('\n'),
  run,
};

async function run(argv: string[], io: CliIO): Promise<number> {
  const { options, positionals } = parseArgs(argv, OPTIONS, 'eval-preprocess');
  if (positionals.length) throw new PtqError('E_CLI_ARGS', `eval-preprocess: unexpected argument '${positionals[0]}'`, { fix: 'see `ptq eval-preprocess --help`' });
  const modelName = options.model_name as string | undefined;
  const spec = options.transformers as string | undefined;
  if ((modelName === undefined) === (spec === undefined)) {
    throw new PtqError('E_CLI_ARGS', `eval-preprocess: give exactly one of --model_name and --transformers`, { fix: 'see `ptq eval-preprocess --help` for the model names' });
  }
  const imageDir = options.image_dir as string;
  const outDir = options.output_dir as string;
  const format = options.format as 'bin' | 'npy';

  const { parseTransformers } = await import('../../preprocess/transformers');
  const chain = parseTransformers(modelName ? EVAL_MODELS[modelName].chain : readSpec(spec!));
  const images = listImages(imageDir, options.val_txt as string | undefined);
  const names = outputNames(images, format);

  const { readImage } = await import('../../preprocess/image-io');
  const { imageDims } = await import('../../preprocess/image-ops');
  const { encodeNpy } = await import('../../preprocess/npy');
  const { Tensor } = await import('../../onnx/tensor');
  const { createProgress } = await import('../../preprocess/progress');

  const created = makeDir(outDir);
  const tmp = path.join(outDir, `.eval-preprocess.tmp-${process.pid}-${Date.now().toString(36)}`);
  const bar = createProgress('eval-preprocess', images.length);
  let summary = '';
  try {
    fs.mkdirSync(tmp);
    for (let i = 0; i < images.length; i++) {
      let img;
      try {
        img = chain.run(await readImage(images[i]));
      } catch (e) {
        if (e instanceof PtqError) throw new PtqError(e.code, `image '${images[i]}': ${e.message}`, { subject: images[i], fix: e.fix });
        throw e;
      }
      const dims = imageDims(img);
      const data = img.dtype === 'uint8' ? Uint8Array.from(img.data) : img.dtype === 'int8' ? Int8Array.from(img.data) : img.data;
      const bytes = format === 'npy' ? encodeNpy(new Tensor(img.dtype, dims, data), names[i]) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      fs.writeFileSync(path.join(tmp, names[i]), bytes);
      if (!summary) summary = `${img.dtype}[${dims.join(',')}] ${img.layout}`;
      bar.update(i + 1);
    }
    for (const n of names) fs.renameSync(path.join(tmp, n), path.join(outDir, n));
    fs.rmSync(tmp, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (created) fs.rmSync(outDir, { recursive: true, force: true });
    bar.abort();
    if (e instanceof PtqError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new PtqError('E_FILE', `cannot write to --output_dir '${outDir}': ${code}`, { subject: outDir, fix: 'check free space and permissions' });
    throw e;
  }
  bar.finish();
  io.out(`wrote ${images.length} file(s) to ${outDir}: ${summary} each, chain ${chain.describe()}`);
  return 0;
}

/** The spec itself, or the contents of the file it names. */
function readSpec(spec: string): string {
  try {
    if (fs.statSync(spec).isFile()) return fs.readFileSync(spec, 'utf8');
  } catch {
    /* not a file: the spec is the text */
  }
  return spec;
}

const IMAGE_EXT = /\.(jpe?g|png|bmp)$/i;

function listImages(dir: string, valTxt: string | undefined): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read --image_dir '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: dir, fix: 'check the path' });
  }
  if (valTxt === undefined) {
    const names = entries.filter((n) => IMAGE_EXT.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (!names.length) throw new PtqError('E_FILE', `--image_dir '${dir}' holds no .jpg/.jpeg/.png/.bmp images`, { subject: dir, fix: 'point --image_dir at the images' });
    return names.map((n) => path.join(dir, n));
  }
  let text: string;
  try {
    text = fs.readFileSync(valTxt, 'utf8');
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read --val_txt '${valTxt}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: valTxt, fix: 'check the path' });
  }
  const present = new Set(entries);
  const out: string[] = [];
  text.split(/\r?\n/).forEach((line, k) => {
    const name = line.trim().split(/\s+/)[0];
    if (!name || name.startsWith('#')) return;
    if (!present.has(name) && !fs.existsSync(path.join(dir, name))) {
      throw new PtqError('E_FILE', `--val_txt '${valTxt}' line ${k + 1} names '${name}', which is not in --image_dir '${dir}'`, { subject: valTxt, fix: 'fix the list or the image folder' });
    }
    out.push(path.join(dir, name));
  });
  if (!out.length) throw new PtqError('E_FILE', `--val_txt '${valTxt}' names no images`, { subject: valTxt, fix: 'list one image name per line' });
  return out;
}

/** <name without extension>.<format>, each used once. */
function outputNames(images: string[], format: string): string[] {
  const seen = new Map<string, string>();
  return images.map((img) => {
    const base = path.basename(img);
    const name = `${base.slice(0, base.length - path.extname(base).length)}.${format}`;
    const prev = seen.get(name.toLowerCase());
    if (prev !== undefined) {
      throw new PtqError('E_FILE', `images '${prev}' and '${img}' would both be written as '${name}'`, { subject: img, fix: 'give the images distinct names (without extension)' });
    }
    seen.set(name.toLowerCase(), img);
    return name;
  });
}

/** mkdir -p; true when the folder did not exist before. */
function makeDir(dir: string): boolean {
  try {
    if (fs.statSync(dir).isDirectory()) return false;
    throw new PtqError('E_FILE', `--output_dir '${dir}' exists and is not a folder`, { subject: dir, fix: 'choose a folder' });
  } catch (e) {
    if (e instanceof PtqError) throw e;
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new PtqError('E_FILE', `cannot create --output_dir '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: dir, fix: 'check the path and its permissions' });
  }
  return true;
}
