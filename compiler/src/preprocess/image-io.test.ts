import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as zlib from 'zlib';
import { PtqError } from '../errors';
import { decodeBmp, readImage } from './image-io';

/** A BMP written byte by byte from the format's layout (BITMAPINFOHEADER). */
function bmp(width: number, height: number, bpp: 8 | 24 | 32, pixel: (x: number, y: number) => number[] | number, opts: { topDown?: boolean; palette?: number[][] } = {}): Buffer {
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  const palette = opts.palette ?? [];
  const dataOffset = 14 + 40 + palette.length * 4;
  const buf = Buffer.alloc(dataOffset + rowBytes * height);
  buf.write('BM', 0, 'ascii');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(dataOffset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(opts.topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  buf.writeUInt32LE(0, 30);
  buf.writeUInt32LE(palette.length, 46);
  palette.forEach(([r, g, b], i) => buf.set([b, g, r, 0], 54 + i * 4));
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (opts.topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const p = pixel(x, y);
      if (bpp === 8) buf[row + x] = p as number;
      else {
        const [r, g, b] = p as number[];
        buf.set(bpp === 24 ? [b, g, r] : [b, g, r, 255], row + x * (bpp / 8));
      }
    }
  }
  return buf;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A 16-bit PNG (RGB or grey) written from the PNG spec (filter 0 rows, zlib IDAT). */
function png16(w: number, h: number, channels: 1 | 3, values: number[]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 16;
  ihdr[9] = channels === 1 ? 0 : 2;
  const rows: Buffer[] = [];
  for (let y = 0; y < h; y++) {
    const r = Buffer.alloc(1 + w * channels * 2);
    for (let i = 0; i < w * channels; i++) r.writeUInt16BE(values[y * w * channels + i], 1 + i * 2);
    rows.push(r);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const colour = (x: number, y: number): number[] => [x * 40 + 1, y * 50 + 2, (x + y) * 7 + 3];

describe('BMP decoding', () => {
  it.each([
    ['24-bit bottom-up, padded rows', 24, false],
    ['24-bit top-down', 24, true],
    ['32-bit', 32, false],
  ] as const)('%s', (_, bpp, topDown) => {
    const img = decodeBmp(bmp(3, 2, bpp, colour, { topDown }));
    expect([img.height, img.width, img.channels, img.layout]).toEqual([2, 3, 3, 'HWC']);
    const want = [0, 1].flatMap((y) => [0, 1, 2].flatMap((x) => colour(x, y)));
    expect(Array.from(img.data)).toEqual(want);
  });

  it('8-bit palette', () => {
    const palette = [
      [10, 20, 30],
      [200, 100, 50],
      [0, 255, 0],
    ];
    const img = decodeBmp(bmp(5, 2, 8, (x, y) => (x + y) % 3, { palette }));
    expect(Array.from(img.data.slice(0, 6))).toEqual([...palette[0], ...palette[1]]);
    expect(Array.from(img.data.slice(15, 18))).toEqual(palette[1]); // (0, 1)
  });

  it('rejects truncated and compressed files', () => {
    const good = bmp(4, 4, 24, colour);
    expect(() => decodeBmp(good.subarray(0, good.length - 10), 'x.bmp')).toThrow(/x\.bmp.*pixel data truncated/);
    const rle = Buffer.from(good);
    rle.writeUInt32LE(1, 30);
    expect(() => decodeBmp(rle, 'r.bmp')).toThrow(/compression 1/);
  });
});

describe('readImage', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-img-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('decodes PNG (RGBA and grey) to RGB 0..255, dropping alpha', async () => {
    const rgba = Buffer.from([255, 0, 0, 128, 0, 255, 0, 255, 0, 0, 255, 0, 10, 20, 30, 255]);
    fs.writeFileSync(path.join(dir, 'a.png'), await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer());
    const img = await readImage(path.join(dir, 'a.png'));
    expect(Array.from(img.data)).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const grey = Buffer.from([0, 50, 100, 250]);
    fs.writeFileSync(path.join(dir, 'g.png'), await sharp(grey, { raw: { width: 4, height: 1, channels: 1 } }).toColourspace('b-w').png().toBuffer());
    const g = await readImage(path.join(dir, 'g.png'));
    expect(Array.from(g.data)).toEqual([0, 0, 0, 50, 50, 50, 100, 100, 100, 250, 250, 250]);
  });

  it('scales 16-bit PNG samples by 1/257', async () => {
    const vals = [0, 257, 65535, 1000, 30000, 12345];
    fs.writeFileSync(path.join(dir, 'rgb16.png'), png16(2, 1, 3, vals));
    const img = await readImage(path.join(dir, 'rgb16.png'));
    vals.forEach((v, i) => expect(img.data[i]).toBeCloseTo(v / 257, 4));
    fs.writeFileSync(path.join(dir, 'g16.png'), png16(2, 1, 1, [514, 65535]));
    expect(Array.from((await readImage(path.join(dir, 'g16.png'))).data)).toEqual([2, 2, 2, 255, 255, 255]);
  });

  it('decodes JPEG close to the encoded colour and BMP exactly', async () => {
    const flat = Buffer.alloc(16 * 16 * 3);
    for (let i = 0; i < flat.length; i += 3) flat.set([200, 80, 30], i);
    fs.writeFileSync(path.join(dir, 'c.jpg'), await sharp(flat, { raw: { width: 16, height: 16, channels: 3 } }).jpeg({ quality: 95 }).toBuffer());
    const j = await readImage(path.join(dir, 'c.jpg'));
    expect([j.height, j.width]).toEqual([16, 16]);
    for (let i = 0; i < j.data.length; i++) expect(Math.abs(j.data[i] - [200, 80, 30][i % 3])).toBeLessThanOrEqual(3);
    fs.writeFileSync(path.join(dir, 'b.bmp'), bmp(3, 2, 24, colour));
    expect(Array.from((await readImage(path.join(dir, 'b.bmp'))).data)).toEqual([0, 1].flatMap((y) => [0, 1, 2].flatMap((x) => colour(x, y))));
  });

  it('reports undecodable files as PtqErrors naming the file', async () => {
    fs.writeFileSync(path.join(dir, 'bad.png'), 'not an image');
    await expect(readImage(path.join(dir, 'bad.png'))).rejects.toThrow(PtqError);
    await expect(readImage(path.join(dir, 'bad.png'))).rejects.toThrow(/cannot decode image '.*bad\.png'/);
    await expect(readImage(path.join(dir, 'missing.png'))).rejects.toThrow(/cannot read '.*missing\.png': ENOENT/);
  });
});
