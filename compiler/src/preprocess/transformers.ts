/**
 * The transformer library: the reference toolchain's image transformers (its sample package's
 * `transformer.py`, "Transformer Usage") on float32 `Image`s, for the preprocess stage and
 * `ptq eval-preprocess`. Behaviour follows the reference's definitions; the differences:
 *  - images carry their layout (HWC, CHW or NV12), so channel-wise transformers find the
 *    channel axis themselves; a `data_format` argument is accepted and checked against it;
 *  - geometric transformers work on HWC and CHW alike (the reference's need HWC);
 *  - casts to uint8/int8 truncate like numpy's `astype` and saturate out-of-range values;
 *  - `ResizeTransformer` defaults to mode `skimage` as the reference does; every other
 *    resizing transformer uses the `opencv` resampler (cv2.resize INTER_LINEAR); see image-ops.ts.
 * Names are accepted with or without the `Transformer` suffix, case-insensitively; arguments
 * keep the reference's names (short_size, crop_size, target_size, …).
 *
 * `compose([...])` chains transformers; `parseTransformers(spec)` builds a chain from a text
 * spec `ShortSideResize(256); CenterCrop(crop_size=224); HWC2CHW; RGB2BGR` or from JSON
 * `[{"type": "ShortSideResize", "short_size": 256}, "CenterCrop(224)"]`.
 */
import { PtqError } from '../errors';
import {
  BT601_FULL,
  BT601_VIDEO,
  castImage,
  colourMatrix,
  crop,
  Image,
  Interpolation,
  makeImage,
  nv12ToYuv444,
  permuteChannels,
  place,
  pyRound,
  resize,
  ResizeMode,
  SampleDType,
  strides,
  toLayout,
  toNv12,
} from './image-ops';

export type { Image, ImageLayout, SampleDType } from './image-ops';

/** One step of a preprocessing chain. */
export interface Transformer {
  /** the reference name without the suffix, e.g. `ShortSideResize` */
  readonly name: string;
  run(img: Image): Image;
  /** `Name(arg=value, ...)`, parseable by parseTransformers */
  describe(): string;
}

export const E_TRANSFORMER = 'E_TRANSFORMER';

function fail(name: string, msg: string, fix?: string): never {
  throw new PtqError(E_TRANSFORMER, `transformer ${name}: ${msg}`, { subject: name, fix });
}

type Size = [number, number];
type DataType = 'float' | 'uint8';
type Format = 'HWC' | 'CHW';

const INTERPOLATIONS: Record<string, Interpolation> = {
  '': 'linear',
  linear: 'linear',
  inter_linear: 'linear',
  nearest: 'nearest',
  inter_nearest: 'nearest',
  cubic: 'cubic',
  inter_cubic: 'cubic',
};

function needLayout(name: string, img: Image, format?: Format): 'HWC' | 'CHW' {
  if (img.layout === 'NV12') fail(name, 'needs an HWC or CHW image, got NV12 data', 'put NV12 conversion last');
  if (format && format !== img.layout) {
    fail(name, `data_format ${format} given, but the image is ${img.layout}`, `drop data_format or set it to ${img.layout}`);
  }
  return img.layout;
}

function needChannels(name: string, img: Image, n: number): void {
  if (img.channels !== n) fail(name, `needs a ${n}-channel image, got ${img.channels} channel(s)`);
}

function finish(img: Image, dataType: DataType | undefined): Image {
  return castImage(img.dtype === 'float32' ? img : { ...img, dtype: 'float32' }, dataType === 'uint8' ? 'uint8' : 'float32');
}

function fmtArgs(args: Record<string, unknown>): string {
  const parts = Object.entries(args)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : typeof v === 'string' ? `'${v}'` : String(v)}`);
  return parts.join(', ');
}

/** Shared plumbing: name + arguments for describe(). */
abstract class Base implements Transformer {
  abstract readonly name: string;
  protected args(): Record<string, unknown> {
    return {};
  }
  abstract run(img: Image): Image;
  describe(): string {
    const a = fmtArgs(this.args());
    return a ? `${this.name}(${a})` : this.name;
  }
}

// ---------------------------------------------------------------- resizing

/** Short side → short_size, long side → int(short_size · long/short) (cv2 linear by default). */
export class ShortSideResize extends Base {
  readonly name = 'ShortSideResize';
  constructor(
    readonly shortSize: number,
    readonly interpolation: Interpolation = 'linear',
    readonly dataType?: DataType,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { short_size: this.shortSize, interpolation: this.interpolation === 'linear' ? undefined : this.interpolation, data_type: this.dataType };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const { height: h, width: w } = img;
    const [oh, ow] = h < w ? [this.shortSize, Math.trunc(this.shortSize * (w / h))] : [Math.trunc(this.shortSize * (h / w)), this.shortSize];
    return finish(resize(img, oh, ow, { mode: 'opencv', interpolation: this.interpolation }), this.dataType);
  }
}

/** Long side → long_size, short side → int(long_size · short/long) (cv2 linear). nx-ptq's companion of ShortSideResize. */
export class LongSideResize extends Base {
  readonly name = 'LongSideResize';
  constructor(
    readonly longSize: number,
    readonly interpolation: Interpolation = 'linear',
    readonly dataType?: DataType,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { long_size: this.longSize, interpolation: this.interpolation === 'linear' ? undefined : this.interpolation, data_type: this.dataType };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const { height: h, width: w } = img;
    const [oh, ow] = h > w ? [this.longSize, Math.trunc(this.longSize * (w / h))] : [Math.trunc(this.longSize * (h / w)), this.longSize];
    return finish(resize(img, Math.max(1, oh), Math.max(1, ow), { mode: 'opencv', interpolation: this.interpolation }), this.dataType);
  }
}

/** Scale so the short side is short_size unless the long side would exceed long_size (then long side = long_size). */
export class ShortLongResize extends Base {
  readonly name = 'ShortLongResize';
  constructor(
    readonly shortSize: number,
    readonly longSize: number,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { short_size: this.shortSize, long_size: this.longSize };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const lo = Math.min(img.height, img.width);
    const hi = Math.max(img.height, img.width);
    let scale = this.shortSize / lo;
    if (pyRound(scale * hi) > this.longSize) scale = this.longSize / hi;
    // cv2.resize(fx=fy=scale): size rounded, sampling by the factor itself
    const oh = Math.max(1, pyRound(img.height * scale));
    const ow = Math.max(1, pyRound(img.width * scale));
    return resize(img, oh, ow, { mode: 'opencv', scaleY: 1 / scale, scaleX: 1 / scale });
  }
}

/** Resize to target_size [h, w]: mode skimage (order `method` 0/1, the reference default) or opencv (`interpolation`). */
export class Resize extends Base {
  readonly name = 'Resize';
  constructor(
    readonly targetSize: Size,
    readonly mode: ResizeMode = 'skimage',
    readonly method: 0 | 1 = 1,
    readonly interpolation: Interpolation = 'linear',
    readonly dataType?: DataType,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return {
      target_size: this.targetSize,
      mode: this.mode,
      method: this.mode === 'skimage' && this.method !== 1 ? this.method : undefined,
      interpolation: this.mode === 'opencv' && this.interpolation !== 'linear' ? this.interpolation : undefined,
      data_type: this.dataType,
    };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const interpolation = this.mode === 'skimage' ? (this.method === 0 ? 'nearest' : 'linear') : this.interpolation;
    return finish(resize(img, this.targetSize[0], this.targetSize[1], { mode: this.mode, interpolation }), this.dataType);
  }
}

/** Keep the aspect ratio to fit target_size, then pad with pad_value: centred ('boundary') or at the bottom right. */
export class PadResize extends Base {
  readonly name = 'PadResize';
  constructor(
    readonly targetSize: Size,
    readonly padValue = 127,
    readonly padPosition: 'boundary' | 'bottom_right' = 'boundary',
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { target_size: this.targetSize, pad_value: this.padValue, pad_position: this.padPosition };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const [th, tw] = this.targetSize;
    const scale = Math.min(tw / img.width, th / img.height);
    const nh = Math.max(1, Math.trunc(scale * img.height));
    const nw = Math.max(1, Math.trunc(scale * img.width));
    const r = resize(img, nh, nw, { mode: 'opencv' });
    const top = this.padPosition === 'boundary' ? Math.floor((th - nh) / 2) : 0;
    const left = this.padPosition === 'boundary' ? Math.floor((tw - nw) / 2) : 0;
    return place(r, th, tw, top, left, this.padValue);
  }
}

/** Long side → target_size (sizes rounded), values truncated to uint8, then zero-padded at the bottom right to multiples of size_divisor. */
export class Pad extends Base {
  readonly name = 'Pad';
  constructor(
    readonly sizeDivisor = 128,
    readonly targetSize = 512,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { size_divisor: this.sizeDivisor, target_size: this.targetSize };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const scale = this.targetSize / Math.max(img.height, img.width);
    const r = castImage(resize(img, Math.max(1, pyRound(img.height * scale)), Math.max(1, pyRound(img.width * scale)), { mode: 'opencv' }), 'uint8');
    const ph = Math.ceil(r.height / this.sizeDivisor) * this.sizeDivisor;
    const pw = Math.ceil(r.width / this.sizeDivisor) * this.sizeDivisor;
    return place(r, ph, pw, 0, 0, 0);
  }
}

// ---------------------------------------------------------------- cropping

function cropSize(name: string, img: Image, h: number, w: number): void {
  if (h > img.height || w > img.width) fail(name, `crop ${h}x${w} is larger than the ${img.height}x${img.width} image`, 'resize first (e.g. ShortSideResize)');
}

/** The crop_size window at the centre: top = H//2 − crop//2 (the reference's rounding). */
export class CenterCrop extends Base {
  readonly name = 'CenterCrop';
  constructor(
    readonly cropSize: Size,
    readonly dataType?: DataType,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { crop_size: this.cropSize[0] === this.cropSize[1] ? this.cropSize[0] : this.cropSize, data_type: this.dataType };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const [ch, cw] = this.cropSize;
    cropSize(this.name, img, ch, cw);
    const top = Math.floor(img.height / 2) - Math.floor(ch / 2);
    const left = Math.floor(img.width / 2) - Math.floor(cw / 2);
    return finish(crop(img, top, left, ch, cw), this.dataType);
  }
}

/** PIL-style centre crop: top = round((H − h)/2) (half to even). */
export class PILCenterCrop extends Base {
  readonly name = 'PILCenterCrop';
  constructor(readonly size: Size) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { size: this.size };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const [ch, cw] = this.size;
    cropSize(this.name, img, ch, cw);
    return finish(crop(img, pyRound((img.height - ch) / 2), pyRound((img.width - cw) / 2), ch, cw), undefined);
  }
}

/** The centred square whose side is the short side. */
export class LongSideCrop extends Base {
  readonly name = 'LongSideCrop';
  run(img: Image): Image {
    needLayout(this.name, img);
    const { height: h, width: w } = img;
    const r = h < w ? crop(img, 0, Math.floor((w - h) / 2), h, h) : crop(img, Math.floor((h - w) / 2), 0, w, w);
    return finish(r, undefined);
  }
}

/** EfficientNet's crop: a centred square of side int(image_size/(image_size+crop_pad) · short side). */
export class PaddedCenterCrop extends Base {
  readonly name = 'PaddedCenterCrop';
  constructor(
    readonly imageSize = 224,
    readonly cropPad = 32,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { image_size: this.imageSize, crop_pad: this.cropPad };
  }
  run(img: Image): Image {
    needLayout(this.name, img);
    const size = Math.trunc((this.imageSize / (this.imageSize + this.cropPad)) * Math.min(img.height, img.width));
    if (size < 1) fail(this.name, `the ${img.height}x${img.width} image is too small`);
    const top = Math.floor((img.height - size + 1) / 2);
    const left = Math.floor((img.width - size + 1) / 2);
    return finish(crop(img, top, left, size, size), undefined);
  }
}

// ---------------------------------------------------------------- layout and channels

/** HWC → CHW (numpy transpose (2, 0, 1)). */
export class HWC2CHW extends Base {
  readonly name = 'HWC2CHW';
  run(img: Image): Image {
    if (needLayout(this.name, img) !== 'HWC') fail(this.name, 'the image is already CHW');
    return toLayout(img, 'CHW');
  }
}

/** CHW → HWC (numpy transpose (1, 2, 0)). */
export class CHW2HWC extends Base {
  readonly name = 'CHW2HWC';
  run(img: Image): Image {
    if (needLayout(this.name, img) !== 'CHW') fail(this.name, 'the image is already HWC');
    return toLayout(img, 'HWC');
  }
}

/** numpy transpose of a 3-D image; only the orders that map HWC ↔ CHW (or keep it) are meaningful for images. */
export class Transpose extends Base {
  readonly name = 'Transpose';
  constructor(readonly order: [number, number, number]) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { order: this.order };
  }
  run(img: Image): Image {
    const layout = needLayout(this.name, img);
    const o = this.order.join(',');
    if (o === '0,1,2') return img;
    if (layout === 'HWC' && o === '2,0,1') return toLayout(img, 'CHW');
    if (layout === 'CHW' && o === '1,2,0') return toLayout(img, 'HWC');
    return fail(this.name, `order (${o}) on a ${layout} image gives no HWC/CHW image`, layout === 'HWC' ? 'use order [2,0,1]' : 'use order [1,2,0]');
  }
}

/** Reverse the channel order (RGB ↔ BGR); `name` is RGB2BGR or BGR2RGB (the same operation). */
export class ChannelSwap extends Base {
  constructor(
    readonly name: 'RGB2BGR' | 'BGR2RGB',
    readonly dataFormat?: Format,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { data_format: this.dataFormat };
  }
  run(img: Image): Image {
    needLayout(this.name, img, this.dataFormat);
    needChannels(this.name, img, 3);
    return permuteChannels(img, [2, 1, 0]);
  }
}

/** Keep the first channel only. */
export class ReduceChannel extends Base {
  readonly name = 'ReduceChannel';
  constructor(readonly dataFormat?: Format) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { data_format: this.dataFormat };
  }
  run(img: Image): Image {
    needLayout(this.name, img, this.dataFormat);
    return permuteChannels(img, [0]);
  }
}

// ---------------------------------------------------------------- colour

export type ColourTarget = 'YUV444' | 'YUV444_128' | 'GRAY' | 'GRAY_128' | 'YUVBT601VIDEO';

/**
 * RGB/BGR → YUV444 (BT.601 full range), YUV (BT.601 video range) or GRAY (the full-range Y),
 * `_128` variants minus 128. Arithmetic in float32 like the reference's numpy code.
 */
export class ColourConvert extends Base {
  readonly name: string;
  constructor(
    readonly source: 'RGB' | 'BGR',
    readonly target: ColourTarget,
    readonly dataFormat?: Format,
  ) {
    super();
    this.name = `${source}2${target}`;
  }
  protected override args(): Record<string, unknown> {
    return { data_format: this.dataFormat };
  }
  run(img: Image): Image {
    needLayout(this.name, img, this.dataFormat);
    needChannels(this.name, img, 3);
    const order: [number, number, number] = this.source === 'RGB' ? [0, 1, 2] : [2, 1, 0];
    const rows = this.target === 'YUVBT601VIDEO' ? BT601_VIDEO : this.target.startsWith('GRAY') ? BT601_FULL.slice(0, 1) : BT601_FULL;
    return colourMatrix(toFloat(img), order, rows, this.target.endsWith('_128') ? -128 : 0);
  }
}

/** RGB/BGR → NV12 (uint8; see image-ops toNv12). Height and width must be even. */
export class ToNV12 extends Base {
  readonly name: string;
  constructor(
    readonly source: 'RGB' | 'BGR',
    readonly dataFormat?: Format,
  ) {
    super();
    this.name = `${source}2NV12`;
  }
  protected override args(): Record<string, unknown> {
    return { data_format: this.dataFormat };
  }
  run(img: Image): Image {
    needLayout(this.name, img, this.dataFormat);
    needChannels(this.name, img, 3);
    if (img.height % 2 || img.width % 2) fail(this.name, `NV12 needs an even height and width, got ${img.height}x${img.width}`, 'resize or crop to even sizes first');
    return toNv12(toFloat(img), this.source === 'RGB' ? [0, 1, 2] : [2, 1, 0]);
  }
}

/** NV12 → YUV444 (uint8), chroma repeated over 2×2 blocks; `target_size` [h, w] checks the NV12 size when given. */
export class NV12ToYUV444 extends Base {
  readonly name = 'NV12ToYUV444';
  constructor(
    readonly targetSize?: Size,
    readonly outputLayout: Format = 'HWC',
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { target_size: this.targetSize, yuv444_output_layout: this.outputLayout };
  }
  run(img: Image): Image {
    if (img.layout !== 'NV12') fail(this.name, `needs NV12 data, got a ${img.layout} image`);
    if (this.targetSize && (this.targetSize[0] !== img.height || this.targetSize[1] !== img.width)) {
      fail(this.name, `target_size ${this.targetSize.join('x')} does not match the ${img.height}x${img.width} NV12 data`);
    }
    return nv12ToYuv444(img, this.outputLayout);
  }
}

function toFloat(img: Image): Image {
  return img.dtype === 'float32' ? img : { ...img, dtype: 'float32' };
}

// ---------------------------------------------------------------- values

/** Per-channel (or single) values, applied along the channel axis of HWC/CHW; NV12 takes a single value. */
function perChannel(name: string, img: Image, values: readonly number[], op: (v: number, k: number) => number): Image {
  const out = new Float32Array(img.data.length);
  if (values.length === 1 || img.layout === 'NV12') {
    if (values.length !== 1) fail(name, `${values.length} values given, NV12 data takes one`);
    for (let i = 0; i < out.length; i++) out[i] = op(img.data[i], values[0]);
    return { ...img, data: out, dtype: 'float32' };
  }
  if (values.length !== img.channels) fail(name, `${values.length} values given for a ${img.channels}-channel image`, `give 1 or ${img.channels} values`);
  const s = strides(img.layout, img.height, img.width, img.channels);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const i = c * s.sc + y * s.sy + x * s.sx;
        out[i] = op(img.data[i], values[c]);
      }
    }
  }
  return { ...img, data: out, dtype: 'float32' };
}

/** data · scale_value */
export class Scale extends Base {
  readonly name = 'Scale';
  constructor(readonly scaleValue: number[]) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { scale_value: this.scaleValue.length === 1 ? this.scaleValue[0] : this.scaleValue };
  }
  run(img: Image): Image {
    return perChannel(this.name, img, this.scaleValue, (v, s) => v * s);
  }
}

/** data − means (per channel) */
export class Mean extends Base {
  readonly name = 'Mean';
  constructor(
    readonly means: number[],
    readonly dataFormat?: Format,
  ) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { means: this.means, data_format: this.dataFormat };
  }
  run(img: Image): Image {
    if (this.dataFormat) needLayout(this.name, img, this.dataFormat);
    return perChannel(this.name, img, this.means, (v, m) => v - m);
  }
}

/** data / std (per channel or one value) */
export class Normalize extends Base {
  readonly name = 'Normalize';
  constructor(readonly std: number[]) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { std: this.std.length === 1 ? this.std[0] : this.std };
  }
  run(img: Image): Image {
    return perChannel(this.name, img, this.std, (v, s) => v / s);
  }
}

/** data + value */
export class Add extends Base {
  readonly name = 'Add';
  constructor(readonly value: number) {
    super();
  }
  protected override args(): Record<string, unknown> {
    return { value: this.value };
  }
  run(img: Image): Image {
    return perChannel(this.name, img, [this.value], (v, a) => v + a);
  }
}

/** astype(int8) / astype(uint8) (truncating, saturating). */
export class Cast extends Base {
  constructor(
    readonly name: 'F32ToS8' | 'F32ToU8',
    readonly dtype: SampleDType,
  ) {
    super();
  }
  run(img: Image): Image {
    return castImage(toFloat(img), this.dtype);
  }
}

// ---------------------------------------------------------------- composition

/** Run transformers in order. */
export function compose(chain: readonly Transformer[]): Transformer & { readonly chain: readonly Transformer[] } {
  return {
    name: 'Compose',
    chain,
    run(img: Image): Image {
      let cur = img;
      for (const t of chain) cur = t.run(cur);
      return cur;
    },
    describe: () => chain.map((t) => t.describe()).join('; '),
  };
}

/** An HWC float32 image from interleaved 8-bit (or any) samples. */
export function imageFromHWC(data: ArrayLike<number>, height: number, width: number, channels: number): Image {
  return makeImage(height, width, channels, 'HWC', 'float32', Float32Array.from(data));
}

// ---------------------------------------------------------------- spec parsing

type ArgValue = number | string | ArgValue[];
type ParamKind = 'int' | 'number' | 'numbers' | 'size' | 'ints' | 'string';

interface ParamSpec {
  name: string;
  kind: ParamKind;
  required?: boolean;
  choices?: readonly string[];
}

interface TransformerDef {
  name: string;
  params: ParamSpec[];
  summary: string;
  create(a: ArgReader): Transformer;
}

/** Typed access to one transformer's parsed arguments. */
class ArgReader {
  constructor(
    readonly def: TransformerDef,
    readonly values: Map<string, ArgValue>,
  ) {}
  private bad(param: string, want: string, v: ArgValue): never {
    return fail(this.def.name, `${param} must be ${want}, got ${JSON.stringify(v)}`, `see the ${this.def.name} arguments: ${this.def.params.map((p) => p.name).join(', ') || 'none'}`);
  }
  has(p: string): boolean {
    return this.values.has(p);
  }
  int(p: string, def?: number): number {
    const v = this.values.get(p);
    if (v === undefined) return def as number;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return this.bad(p, 'a positive integer', v);
    return v;
  }
  num(p: string, def?: number): number {
    const v = this.values.get(p);
    if (v === undefined) return def as number;
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.bad(p, 'a number', v);
    return v;
  }
  nums(p: string): number[] {
    const v = this.values.get(p);
    const list = Array.isArray(v) ? v : [v as ArgValue];
    if (!list.length || list.some((x) => typeof x !== 'number' || !Number.isFinite(x))) return this.bad(p, 'a number or a list of numbers', v as ArgValue);
    return list as number[];
  }
  size(p: string): Size {
    const v = this.values.get(p) as ArgValue;
    const list = Array.isArray(v) ? v : [v, v];
    if (list.length !== 2 || list.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x <= 0)) return this.bad(p, 'a positive integer or [height, width]', v);
    return list as Size;
  }
  ints(p: string, n: number): number[] {
    const v = this.values.get(p) as ArgValue;
    if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== 'number' || !Number.isInteger(x))) return this.bad(p, `a list of ${n} integers`, v);
    return v as number[];
  }
  str<T extends string>(p: string): T | undefined {
    const v = this.values.get(p);
    if (v === undefined) return undefined;
    const spec = this.def.params.find((x) => x.name === p)!;
    const s = String(v);
    if (spec.choices) {
      const hit = spec.choices.find((c) => c.toLowerCase() === s.toLowerCase());
      if (hit === undefined) return this.bad(p, `one of ${spec.choices.map((c) => (c === '' ? "''" : c)).join(', ')}`, v);
      return hit as T;
    }
    return s as T;
  }
  interpolation(): Interpolation {
    const s = this.str<string>('interpolation');
    return INTERPOLATIONS[(s ?? '').toLowerCase()];
  }
  format(): Format | undefined {
    return this.str<string>('data_format')?.toUpperCase() as Format | undefined;
  }
  dataType(): DataType | undefined {
    return this.str<DataType>('data_type');
  }
}

const FORMAT: ParamSpec = { name: 'data_format', kind: 'string', choices: ['CHW', 'HWC'] };
const DATA_TYPE: ParamSpec = { name: 'data_type', kind: 'string', choices: ['float', 'uint8'] };
const INTERP: ParamSpec = { name: 'interpolation', kind: 'string', choices: Object.keys(INTERPOLATIONS) };

const COLOUR_TARGETS: ColourTarget[] = ['YUV444', 'YUV444_128', 'GRAY', 'GRAY_128', 'YUVBT601VIDEO'];

/** Every transformer that specs can name. */
export const TRANSFORMERS: readonly TransformerDef[] = [
  {
    name: 'ShortSideResize',
    summary: 'short side to short_size, aspect ratio kept (cv2 linear)',
    params: [{ name: 'short_size', kind: 'int', required: true }, DATA_TYPE, INTERP],
    create: (a) => new ShortSideResize(a.int('short_size'), a.interpolation(), a.dataType()),
  },
  {
    name: 'LongSideResize',
    summary: 'long side to long_size, aspect ratio kept (cv2 linear)',
    params: [{ name: 'long_size', kind: 'int', required: true }, DATA_TYPE, INTERP],
    create: (a) => new LongSideResize(a.int('long_size'), a.interpolation(), a.dataType()),
  },
  {
    name: 'ShortLongResize',
    summary: 'short side to short_size, capped so the long side stays within long_size',
    params: [
      { name: 'short_size', kind: 'int', required: true },
      { name: 'long_size', kind: 'int', required: true },
      { name: 'include_im', kind: 'string', choices: ['True', 'False'] },
    ],
    create: (a) => new ShortLongResize(a.int('short_size'), a.int('long_size')),
  },
  {
    name: 'Resize',
    summary: 'to target_size [h, w]; mode skimage (default) or opencv',
    params: [
      { name: 'target_size', kind: 'size', required: true },
      { name: 'mode', kind: 'string', choices: ['skimage', 'opencv'] },
      { name: 'method', kind: 'int' },
      DATA_TYPE,
      INTERP,
    ],
    create: (a) => {
      const method = a.has('method') ? a.num('method') : 1;
      if (method !== 0 && method !== 1) fail('Resize', `method (skimage interpolation order) ${method} is not supported (allowed: 0, 1)`);
      return new Resize(a.size('target_size'), a.str<ResizeMode>('mode') ?? 'skimage', method, a.interpolation(), a.dataType());
    },
  },
  {
    name: 'PadResize',
    summary: 'fit into target_size keeping the aspect ratio, pad with pad_value',
    params: [
      { name: 'target_size', kind: 'size', required: true },
      { name: 'pad_value', kind: 'number' },
      { name: 'pad_position', kind: 'string', choices: ['boundary', 'bottom_right'] },
    ],
    create: (a) => new PadResize(a.size('target_size'), a.num('pad_value', 127), a.str('pad_position') ?? 'boundary'),
  },
  {
    name: 'Pad',
    summary: 'long side to target_size, zero-pad to multiples of size_divisor',
    params: [
      { name: 'size_divisor', kind: 'int' },
      { name: 'target_size', kind: 'int' },
    ],
    create: (a) => new Pad(a.int('size_divisor', 128), a.int('target_size', 512)),
  },
  {
    name: 'CenterCrop',
    summary: 'crop_size window at the centre',
    params: [{ name: 'crop_size', kind: 'size', required: true }, DATA_TYPE],
    create: (a) => new CenterCrop(a.size('crop_size'), a.dataType()),
  },
  {
    name: 'PILCenterCrop',
    summary: 'centre crop with PIL rounding',
    params: [{ name: 'size', kind: 'size', required: true }],
    create: (a) => new PILCenterCrop(a.size('size')),
  },
  { name: 'LongSideCrop', summary: 'centred square of the short side', params: [], create: () => new LongSideCrop() },
  {
    name: 'PaddedCenterCrop',
    summary: 'EfficientNet centre crop',
    params: [
      { name: 'image_size', kind: 'int' },
      { name: 'crop_pad', kind: 'int' },
    ],
    create: (a) => new PaddedCenterCrop(a.int('image_size', 224), a.num('crop_pad', 32)),
  },
  { name: 'HWC2CHW', summary: 'HWC → CHW', params: [], create: () => new HWC2CHW() },
  { name: 'CHW2HWC', summary: 'CHW → HWC', params: [], create: () => new CHW2HWC() },
  {
    name: 'Transpose',
    summary: 'numpy transpose with order (HWC ↔ CHW)',
    params: [{ name: 'order', kind: 'ints', required: true }],
    create: (a) => new Transpose(a.ints('order', 3) as [number, number, number]),
  },
  { name: 'RGB2BGR', summary: 'reverse the channel order', params: [FORMAT], create: (a) => new ChannelSwap('RGB2BGR', a.format()) },
  { name: 'BGR2RGB', summary: 'reverse the channel order', params: [FORMAT], create: (a) => new ChannelSwap('BGR2RGB', a.format()) },
  ...(['RGB', 'BGR'] as const).flatMap((src) =>
    COLOUR_TARGETS.map(
      (t): TransformerDef => ({
        name: `${src}2${t}`,
        summary: `${src} → ${t.startsWith('GRAY') ? 'gray (BT.601 Y)' : t === 'YUVBT601VIDEO' ? 'YUV BT.601 video range' : 'YUV444 BT.601 full range'}${t.endsWith('_128') ? ', minus 128' : ''}`,
        params: [FORMAT],
        create: (a) => new ColourConvert(src, t, a.format()),
      }),
    ),
  ),
  ...(['RGB', 'BGR'] as const).map(
    (src): TransformerDef => ({
      name: `${src}2NV12`,
      summary: `${src} → NV12 (uint8)`,
      params: [FORMAT, { name: 'cvt_mode', kind: 'string', choices: ['rgb_calc'] }],
      create: (a) => new ToNV12(src, a.format()),
    }),
  ),
  {
    name: 'NV12ToYUV444',
    summary: 'NV12 → YUV444 (uint8)',
    params: [
      { name: 'target_size', kind: 'size' },
      { name: 'yuv444_output_layout', kind: 'string', choices: ['HWC', 'CHW'] },
    ],
    create: (a) => new NV12ToYUV444(a.has('target_size') ? a.size('target_size') : undefined, (a.str<string>('yuv444_output_layout')?.toUpperCase() as Format) ?? 'HWC'),
  },
  { name: 'ReduceChannel', summary: 'keep the first channel', params: [FORMAT], create: (a) => new ReduceChannel(a.format()) },
  { name: 'Scale', summary: 'multiply by scale_value', params: [{ name: 'scale_value', kind: 'numbers', required: true }], create: (a) => new Scale(a.nums('scale_value')) },
  { name: 'Mean', summary: 'subtract means per channel', params: [{ name: 'means', kind: 'numbers', required: true }, FORMAT], create: (a) => new Mean(a.nums('means'), a.format()) },
  { name: 'Normalize', summary: 'divide by std', params: [{ name: 'std', kind: 'numbers', required: true }], create: (a) => new Normalize(a.nums('std')) },
  { name: 'Add', summary: 'add value', params: [{ name: 'value', kind: 'number', required: true }], create: (a) => new Add(a.num('value')) },
  { name: 'F32ToS8', summary: 'astype(int8)', params: [], create: () => new Cast('F32ToS8', 'int8') },
  { name: 'F32ToU8', summary: 'astype(uint8)', params: [], create: () => new Cast('F32ToU8', 'uint8') },
];

function findDef(name: string): TransformerDef {
  const key = name.replace(/Transformer$/i, '').toLowerCase();
  const def = TRANSFORMERS.find((d) => d.name.toLowerCase() === key);
  if (!def) {
    throw new PtqError(E_TRANSFORMER, `unknown transformer '${name}'`, {
      subject: name,
      fix: `use one of ${TRANSFORMERS.map((d) => d.name).join(', ')}`,
    });
  }
  return def;
}

/** Build one transformer from its name and raw arguments (positional ones fill the parameters in order). */
export function createTransformer(name: string, positional: readonly ArgValue[] = [], named: Record<string, ArgValue> = {}): Transformer {
  const def = findDef(name);
  const values = new Map<string, ArgValue>();
  if (positional.length > def.params.length) fail(def.name, `takes ${def.params.length} argument(s), ${positional.length} given`);
  positional.forEach((v, i) => values.set(def.params[i].name, v));
  for (const [k, v] of Object.entries(named)) {
    const p = def.params.find((x) => x.name === k.toLowerCase());
    if (!p) fail(def.name, `unknown argument '${k}'`, `allowed: ${def.params.map((x) => x.name).join(', ') || 'none'}`);
    if (values.has(p.name)) fail(def.name, `argument '${p.name}' is given twice`);
    values.set(p.name, v);
  }
  for (const p of def.params) if (p.required && !values.has(p.name)) fail(def.name, `missing argument '${p.name}'`);
  return def.create(new ArgReader(def, values));
}

/**
 * A chain from a spec: JSON (an array of `{"type": Name, arg: value, ...}` objects or strings)
 * or text: items separated by `;`, `|`, newlines or top-level commas, each `Name` or
 * `Name(arg, key=value, ...)`; values are numbers, quoted or bare strings, `[a, b]` or `(a, b)`.
 */
export function parseTransformers(spec: string): Transformer & { readonly chain: readonly Transformer[] } {
  const text = spec.trim();
  if (!text) throw new PtqError(E_TRANSFORMER, 'the transformer spec is empty', { fix: 'name at least one transformer, e.g. "ShortSideResize(256); CenterCrop(224)"' });
  if (text.startsWith('[') && !/^\[\s*[A-Za-z]/.test(text)) {
    let items: unknown;
    try {
      items = JSON.parse(text);
    } catch (e) {
      throw new PtqError(E_TRANSFORMER, `the transformer spec is not valid JSON (${(e as Error).message})`, { fix: 'write a JSON array of {"type": Name, ...args} objects' });
    }
    return compose((items as unknown[]).map((it) => fromJson(it)));
  }
  return compose(splitTop(text).map((item) => parseItem(item)));
}

function fromJson(it: unknown): Transformer {
  if (typeof it === 'string') return parseItem(it);
  if (!it || typeof it !== 'object' || Array.isArray(it)) throw new PtqError(E_TRANSFORMER, `transformer spec item ${JSON.stringify(it)} is neither a string nor an object`, { fix: 'write {"type": Name, ...args}' });
  const { type, name, ...args } = it as Record<string, unknown>;
  const n = type ?? name;
  if (typeof n !== 'string') throw new PtqError(E_TRANSFORMER, `transformer spec item ${JSON.stringify(it)} has no "type"`, { fix: 'write {"type": Name, ...args}' });
  const named: Record<string, ArgValue> = {};
  for (const [k, v] of Object.entries(args)) named[k] = jsonArg(n, k, v);
  return createTransformer(n, [], named);
}

function jsonArg(t: string, k: string, v: unknown): ArgValue {
  if (typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) return v.map((x) => jsonArg(t, k, x));
  return fail(t, `argument '${k}' has an unusable value ${JSON.stringify(v)}`);
}

/** Split on ; | newline and commas outside brackets/quotes. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let cur = '';
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = '';
      cur += ch;
      continue;
    }
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    if (depth === 0 && (ch === ';' || ch === '|' || ch === '\n' || ch === ',')) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (quote || depth !== 0) throw new PtqError(E_TRANSFORMER, `the transformer spec has an unbalanced ${quote ? 'quote' : 'bracket'}: ${text}`, { fix: 'close every (, [ and quote' });
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function parseItem(item: string): Transformer {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?$/s.exec(item.trim());
  if (!m) throw new PtqError(E_TRANSFORMER, `cannot read transformer '${item}'`, { fix: 'write Name or Name(arg, key=value)' });
  const positional: ArgValue[] = [];
  const named: Record<string, ArgValue> = {};
  const body = m[2]?.trim();
  if (body) {
    const p = new ArgParser(body, m[1]);
    for (;;) {
      const { key, value } = p.arg();
      if (key === undefined) {
        if (Object.keys(named).length) fail(m[1], 'a positional argument follows a keyword argument');
        positional.push(value);
      } else named[key] = value;
      if (!p.comma()) break;
    }
    p.end();
  }
  return createTransformer(m[1], positional, named);
}

class ArgParser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly who: string,
  ) {}
  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }
  private bad(what: string): never {
    return fail(this.who, `cannot read its arguments '${this.s}': ${what} at character ${this.i + 1}`, 'write Name(arg, key=value) with numbers, strings or [lists]');
  }
  arg(): { key?: string; value: ArgValue } {
    this.ws();
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)/.exec(this.s.slice(this.i));
    let key: string | undefined;
    if (m) {
      key = m[1];
      this.i += m[0].length;
    }
    return { key, value: this.value() };
  }
  comma(): boolean {
    this.ws();
    if (this.s[this.i] === ',') {
      this.i++;
      this.ws();
      return this.i < this.s.length; // allow a trailing comma
    }
    return false;
  }
  end(): void {
    this.ws();
    if (this.i < this.s.length) this.bad('unexpected text');
  }
  value(): ArgValue {
    this.ws();
    const c = this.s[this.i];
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      this.i++;
      const list: ArgValue[] = [];
      this.ws();
      if (this.s[this.i] === close) {
        this.i++;
        return list;
      }
      for (;;) {
        list.push(this.value());
        this.ws();
        if (this.s[this.i] === ',') {
          this.i++;
          this.ws();
          if (this.s[this.i] === close) {
            this.i++;
            return list;
          }
          continue;
        }
        if (this.s[this.i] === close) {
          this.i++;
          return list;
        }
        return this.bad(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = this.s.indexOf(c, this.i + 1);
      if (end < 0) return this.bad('unterminated string');
      const v = this.s.slice(this.i + 1, end);
      this.i = end + 1;
      return v;
    }
    const m = /^[^,()[\]\s]+/.exec(this.s.slice(this.i));
    if (!m) return this.bad('expected a value');
    this.i += m[0].length;
    const n = Number(m[0]);
    return m[0] !== '' && Number.isFinite(n) ? n : m[0];
  }
}
