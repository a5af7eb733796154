/**
 * Reading images for calibration (`preprocess_on: True`) and `ptq eval-preprocess`: JPEG and
 * PNG (and whatever else libvips reads) through sharp, BMP with the small decoder below (the
 * bundled libvips has no BMP loader). Every image comes out as RGB, HWC, float32 values in
 * 0…255 (16-bit images scaled by 1/257), alpha dropped, grey replicated to three channels,
 * EXIF orientation not applied (as skimage.io.imread).
 */
import * as fs from 'fs';
import * as path from 'path';
import { PtqError } from '../errors';
import { Image, makeImage } from './image-ops';

/** Extensions treated as images (lower case, with the dot). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp'];

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase());
}

const E_IMAGE = 'E_IMAGE';

function bad(file: string, why: string): PtqError {
  return new PtqError(E_IMAGE, `cannot decode image '${file}': ${why}`, { subject: file, fix: 'check that the file is a valid JPEG, PNG or BMP image' });
}

/** Decode an image file into an RGB HWC float32 image with values in 0…255. */
export async function readImage(file: string): Promise<Image> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PtqError('E_FILE', `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { subject: file, fix: 'check the path' });
  }
  if (bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d) return decodeBmp(bytes, file);
  return decodeWithSharp(bytes, file);
}

async function decodeWithSharp(bytes: Buffer, file: string): Promise<Image> {
  // sharp is loaded lazily: it is a native module and most commands never touch images
  const sharp = (await import('sharp')).default;
  try {
    const meta = await sharp(bytes).metadata();
    const deep = meta.depth === 'ushort';
    const { data, info } = await sharp(bytes)
      .removeAlpha()
      .toColourspace(deep ? 'rgb16' : 'srgb')
      .raw(deep ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3 * (deep ? 2 : 1)) throw new Error(`decoded to ${info.channels} channels, ${data.length} bytes`);
    const n = info.width * info.height * 3;
    const out = new Float32Array(n);
    if (deep) {
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true) / 257;
    } else {
      for (let i = 0; i < n; i++) out[i] = data[i];
    }
    return makeImage(info.height, info.width, 3, 'HWC', 'float32', out);
  } catch (e) {
    throw bad(file, (e as Error).message);
  }
}

/**
 * BMP (Windows bitmap): BITMAPCOREHEADER / BITMAPINFOHEADER / V4 / V5; 1, 4, 8-bit palettes,
 * 16, 24 and 32-bit pixels, uncompressed or BI_BITFIELDS; bottom-up or top-down rows padded
 * to 4 bytes. RLE compression is not read.
 */
export function decodeBmp(b: Uint8Array, file = '<bmp>'): Image {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 26 || b[0] !== 0x42 || b[1] !== 0x4d) throw bad(file, 'not a BMP file');
  const dataOffset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  let width: number;
  let height: number;
  let bpp: number;
  let compression = 0;
  let paletteEntries = 0;
  let paletteEntrySize = 4;
  if (headerSize === 12) {
    width = dv.getUint16(18, true);
    height = dv.getInt16(20, true);
    bpp = dv.getUint16(24, true);
    paletteEntrySize = 3;
  } else if (headerSize >= 40 && b.length >= 14 + 40) {
    width = dv.getInt32(18, true);
    height = dv.getInt32(22, true);
    bpp = dv.getUint16(28, true);
    compression = dv.getUint32(30, true);
    paletteEntries = dv.getUint32(46, true);
  } else {
    throw bad(file, `unknown BMP header size ${headerSize}`);
  }
  const topDown = height < 0;
  height = Math.abs(height);
  if (width <= 0 || height <= 0) throw bad(file, `invalid size ${width}x${height}`);
  if (compression !== 0 && compression !== 3 && compression !== 6) throw bad(file, `BMP compression ${compression} (RLE/JPEG/PNG) is not supported`);
  let masks: [number, number, number] | undefined;
  if (compression === 3 || compression === 6) {
    const at = headerSize >= 52 ? 14 + 40 : 14 + headerSize; // V2+ headers hold the masks; else they follow the header
    if (at + 12 > b.length) throw bad(file, 'truncated bitfield masks');
    masks = [dv.getUint32(at, true), dv.getUint32(at + 4, true), dv.getUint32(at + 8, true)];
  } else if (bpp === 16) {
    masks = [0x7c00, 0x03e0, 0x001f];
  }
  let palette: Uint8Array | undefined;
  if (bpp <= 8) {
    if (![1, 4, 8].includes(bpp)) throw bad(file, `${bpp} bits per pixel is not supported`);
    const count = paletteEntries || 1 << bpp;
    const at = 14 + headerSize + (compression === 3 && headerSize === 40 ? 12 : 0);
    if (at + count * paletteEntrySize > b.length) throw bad(file, 'truncated palette');
    palette = new Uint8Array(count * 3);
    for (let i = 0; i < count; i++) {
      const p = at + i * paletteEntrySize;
      palette[i * 3] = b[p + 2];
      palette[i * 3 + 1] = b[p + 1];
      palette[i * 3 + 2] = b[p];
    }
  } else if (![16, 24, 32].includes(bpp)) {
    throw bad(file, `${bpp} bits per pixel is not supported`);
  }
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  if (dataOffset + rowBytes * height > b.length) throw bad(file, `pixel data truncated (${b.length} bytes, ${dataOffset + rowBytes * height} needed)`);
  const out = new Float32Array(width * height * 3);
  const chan = masks?.map(maskShift);
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (palette) {
        const bit = x * bpp;
        const byte = b[row + (bit >> 3)];
        const idx = (byte >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
        if (idx * 3 >= palette.length) throw bad(file, `palette index ${idx} out of range`);
        out[o] = palette[idx * 3];
        out[o + 1] = palette[idx * 3 + 1];
        out[o + 2] = palette[idx * 3 + 2];
      } else if (bpp === 24 || (bpp === 32 && !chan)) {
        const p = row + x * (bpp / 8);
        out[o] = b[p + 2];
        out[o + 1] = b[p + 1];
        out[o + 2] = b[p];
      } else {
        const v = bpp === 16 ? dv.getUint16(row + x * 2, true) : dv.getUint32(row + x * 4, true);
        for (let k = 0; k < 3; k++) out[o + k] = chan![k](v);
      }
    }
  }
  return makeImage(height, width, 3, 'HWC', 'float32', out);
}

/** A function extracting one mask's field from a pixel, scaled to 0…255. */
function maskShift(mask: number): (v: number) => number {
  if (!mask) return () => 0;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  const max = mask >>> shift;
  return (v) => Math.round((((v & mask) >>> shift) * 255) / max);
}
