import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { PtqError } from '../errors';
import { Image, imageDims, makeImage, mirrorIdx, resize, roundSat, toLayout, truncU8 } from './image-ops';
import {
  CenterCrop,
  ChannelSwap,
  ColourConvert,
  compose,
  createTransformer,
  HWC2CHW,
  NV12ToYUV444,
  PadResize,
  parseTransformers,
  ShortSideResize,
  ToNV12,
  TRANSFORMERS,
} from './transformers';

/** An HWC image whose value at (y, x, c) is f(y, x, c). */
function hwc(h: number, w: number, c: number, fn: (y: number, x: number, c: number) => number): Image {
  const img = makeImage(h, w, c, 'HWC');
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) img.data[(y * w + x) * c + k] = fn(y, x, k);
  return img;
}

const at = (img: Image, y: number, x: number, c = 0): number => {
  if (img.layout === 'HWC') return img.data[(y * img.width + x) * img.channels + c];
  return img.data[(c * img.height + y) * img.width + x];
};

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

describe('resize (opencv mode)', () => {
  // f(y, x) = 10·y + x: bilinear interpolation reproduces it exactly at clamped source coordinates
  const ramp = hwc(6, 8, 1, (y, x) => 10 * y + x);

  it.each([
    [12, 16],
    [3, 4],
    [5, 11],
    [6, 8],
  ])('linear %ix%i of a ramp is the ramp at (o + 0.5)·in/out − 0.5, clamped to the edges', (oh, ow) => {
    const out = resize(ramp, oh, ow);
    expect([out.height, out.width, out.channels]).toEqual([oh, ow, 1]);
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const sy = clamp((y + 0.5) * (6 / oh) - 0.5, 0, 5);
        const sx = clamp((x + 0.5) * (8 / ow) - 0.5, 0, 7);
        expect(at(out, y, x)).toBeCloseTo(10 * sy + sx, 4);
      }
    }
  });

  it('halving a ramp averages pixel pairs (2x + 0.5)', () => {
    const out = resize(hwc(1, 8, 1, (_, x) => x), 1, 4);
    expect(Array.from(out.data)).toEqual([0.5, 2.5, 4.5, 6.5]);
  });

  it('nearest picks src[floor(o·in/out)]', () => {
    const out = resize(hwc(1, 5, 1, (_, x) => x * x), 1, 3, { interpolation: 'nearest' });
    expect(Array.from(out.data)).toEqual([0, 1, 9]); // floor(0), floor(5/3)=1, floor(10/3)=3
  });

  it('cubic is the Keys kernel (a = −0.75) over edge-clamped neighbours, and keeps constants', () => {
    const keys = (d: number): number => {
      const a = -0.75;
      const x = Math.abs(d);
      return x <= 1 ? (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1 : x < 2 ? a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a : 0;
    };
    const src = [3, -1, 4, 1, -5, 9, 2, 6, 5, 3];
    const out = resize(hwc(1, src.length, 1, (_, x) => src[x]), 1, 23, { interpolation: 'cubic' });
    for (let o = 0; o < 23; o++) {
      const s = (o + 0.5) * (src.length / 23) - 0.5;
      let want = 0;
      for (let j = Math.floor(s) - 1; j <= Math.floor(s) + 2; j++) want += keys(s - j) * src[clamp(j, 0, src.length - 1)];
      expect(out.data[o]).toBeCloseTo(want, 4);
    }
    const flat = resize(hwc(5, 5, 2, () => 7), 9, 3, { interpolation: 'cubic' });
    for (const v of flat.data) expect(v).toBeCloseTo(7, 5);
  });

  it('gives the same pixels in HWC and CHW, per channel', () => {
    const img = hwc(5, 7, 3, (y, x, c) => (y * 7 + x) * (c + 1) + c * 100);
    const a = resize(img, 8, 4);
    const b = resize(toLayout(img, 'CHW'), 8, 4);
    expect(b.layout).toBe('CHW');
    expect(Array.from(toLayout(b, 'HWC').data)).toEqual(Array.from(a.data));
  });

  it('uses a given scale factor (cv2 fx/fy) instead of in/out', () => {
    // fx = 0.5 on 5 columns: 3 output columns sampled at (o + 0.5)·2 − 0.5 = 0.5, 2.5, 4.5 → clamped
    const out = resize(hwc(1, 5, 1, (_, x) => x), 1, 3, { scaleX: 2, scaleY: 1 });
    expect(Array.from(out.data)).toEqual([0.5, 2.5, 4]);
  });
});

describe('resize (skimage mode)', () => {
  it('mirrors about the edge pixel when upsampling', () => {
    // 4 → 8: source coordinates (o + 0.5)/2 − 0.5 = −0.25, 0.25, …, 3.25; mirror makes f(s) = |s| at the left
    const out = resize(hwc(1, 4, 1, (_, x) => x), 1, 8, { mode: 'skimage' });
    const want = [0.25, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 2.75];
    want.forEach((v, i) => expect(out.data[i]).toBeCloseTo(v, 5));
  });

  it('anti-aliases when shrinking: a ramp stays a ramp inside, a constant stays constant', () => {
    const out = resize(hwc(1, 64, 1, (_, x) => x), 1, 16, { mode: 'skimage' });
    // σ = (4 − 1)/2 = 1.5, radius 6: samples 4o + 1.5 at least 6 from both ends are exact
    for (let o = 2; o <= 13; o++) expect(out.data[o]).toBeCloseTo(4 * o + 1.5, 4);
    // at the border the mirrored Gaussian pulls the value up (never below the input minimum)
    expect(out.data[0]).toBeGreaterThan(1.5);
    const flat = resize(hwc(9, 9, 3, () => 0.3), 4, 2, { mode: 'skimage' });
    for (const v of flat.data) expect(v).toBeCloseTo(0.3, 6);
  });

  it('mirrorIdx folds indices like numpy.pad reflect', () => {
    expect([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7].map((i) => mirrorIdx(i, 4))).toEqual([3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]);
    expect(mirrorIdx(5, 1)).toBe(0);
  });
});

describe('geometric transformers', () => {
  it('ShortSideResize: short side → size, long side truncated', () => {
    const t = new ShortSideResize(256);
    expect(dims(t.run(hwc(200, 300, 3, () => 1)))).toEqual([256, 384, 3]);
    expect(dims(t.run(hwc(300, 200, 3, () => 1)))).toEqual([384, 256, 3]);
    expect(dims(t.run(hwc(375, 500, 1, () => 1)))).toEqual([256, 341, 1]); // int(256 · 4/3) = 341
  });

  it('CenterCrop takes rows H//2 − c//2 …', () => {
    const img = hwc(7, 9, 1, (y, x) => 100 * y + x);
    const out = createTransformer('CenterCrop', [3]).run(img);
    expect(Array.from(out.data)).toEqual([203, 204, 205, 303, 304, 305, 403, 404, 405]);
    const rect = new CenterCrop([2, 4]).run(img);
    expect(Array.from(rect.data)).toEqual([202, 203, 204, 205, 302, 303, 304, 305]); // top 7//2 − 1 = 2, left 9//2 − 2 = 2
    expect(() => new CenterCrop([8, 8]).run(img)).toThrow(/crop 8x8 is larger than the 7x9 image/);
  });

  it('PadResize fits the image and pads centred or at the bottom right', () => {
    const img = hwc(100, 200, 3, () => 5);
    const centred = new PadResize([100, 100]).run(img);
    expect(dims(centred)).toEqual([100, 100, 3]);
    expect(at(centred, 24, 50)).toBe(127);
    expect(at(centred, 25, 50)).toBe(5);
    expect(at(centred, 74, 50)).toBe(5);
    expect(at(centred, 75, 50)).toBe(127);
    const corner = createTransformer('PadResizeTransformer', [], { target_size: [100, 100], pad_value: 0, pad_position: 'bottom_right' }).run(img);
    expect(at(corner, 49, 99, 2)).toBe(5);
    expect(at(corner, 50, 0, 0)).toBe(0);
  });

  it('PaddedCenterCrop, LongSideCrop, PILCenterCrop, ShortLongResize and Pad compute the reference sizes', () => {
    const img = hwc(300, 400, 1, (y, x) => y * 1000 + x);
    const pcc = createTransformer('PaddedCenterCrop').run(img); // int(224/256 · 300) = 262, offsets (38+1)//2, (138+1)//2
    expect(dims(pcc)).toEqual([262, 262, 1]);
    expect(at(pcc, 0, 0)).toBe(19 * 1000 + 69);
    const lsc = createTransformer('LongSideCrop').run(img);
    expect(dims(lsc)).toEqual([300, 300, 1]);
    expect(at(lsc, 0, 0)).toBe(50);
    const pil = createTransformer('PILCenterCrop', [[101, 101]]).run(img); // round(99.5) = 100 (half to even), round(149.5) = 150
    expect(at(pil, 0, 0)).toBe(100 * 1000 + 150);
    expect(dims(createTransformer('ShortLongResize', [50, 100]).run(hwc(100, 300, 1, () => 1)))).toEqual([33, 100, 1]);
    const pad = createTransformer('Pad', [], { size_divisor: 32, target_size: 60 }).run(hwc(100, 50, 1, () => 9.7));
    expect(dims(pad)).toEqual([64, 32, 1]);
    expect(at(pad, 59, 29)).toBe(9); // resized values truncated to uint8
    expect(at(pad, 60, 0)).toBe(0);
    expect(at(pad, 0, 30)).toBe(0);
  });

  it('HWC2CHW / CHW2HWC / Transpose move the channel axis', () => {
    const img = hwc(2, 3, 3, (y, x, c) => c * 100 + y * 10 + x);
    const chw = new HWC2CHW().run(img);
    expect(chw.layout).toBe('CHW');
    expect(Array.from(chw.data.slice(0, 6))).toEqual([0, 1, 2, 10, 11, 12]);
    expect(Array.from(chw.data.slice(6, 8))).toEqual([100, 101]);
    expect(Array.from(createTransformer('CHW2HWC').run(chw).data)).toEqual(Array.from(img.data));
    expect(Array.from(createTransformer('Transpose', [[2, 0, 1]]).run(img).data)).toEqual(Array.from(chw.data));
    expect(() => createTransformer('Transpose', [[1, 0, 2]]).run(img)).toThrow(/gives no HWC\/CHW image/);
    expect(() => new HWC2CHW().run(chw)).toThrow(/already CHW/);
  });

  it('RGB2BGR reverses channels in either layout and checks data_format', () => {
    const img = hwc(1, 2, 3, (_, x, c) => x * 10 + c);
    expect(Array.from(new ChannelSwap('RGB2BGR').run(img).data)).toEqual([2, 1, 0, 12, 11, 10]);
    const chw = toLayout(img, 'CHW');
    expect(Array.from(createTransformer('BGR2RGB', ['CHW']).run(chw).data)).toEqual([2, 12, 1, 11, 0, 10]);
    expect(() => createTransformer('RGB2BGR', [], { data_format: 'CHW' }).run(img)).toThrow(/data_format CHW given, but the image is HWC/);
  });
});

describe('colour transformers', () => {
  const px = (r: number, g: number, b: number): Image => hwc(1, 1, 3, (_, __, c) => [r, g, b][c]);

  it('RGB2YUV444 matches hand-computed BT.601 full-range values', () => {
    const cases: [number[], number[]][] = [
      [[255, 0, 0], [76.245, 84.905, 255.5]],
      [[0, 255, 0], [149.685, 43.595, 21.155]],
      [[0, 0, 255], [29.07, 255.5, 107.345]],
      [[255, 255, 255], [255, 128, 128]],
      [[0, 0, 0], [0, 128, 128]],
    ];
    for (const [rgb, yuv] of cases) {
      const out = new ColourConvert('RGB', 'YUV444').run(px(rgb[0], rgb[1], rgb[2]));
      yuv.forEach((v, i) => expect(out.data[i]).toBeCloseTo(v, 3));
      const bgr = new ColourConvert('BGR', 'YUV444').run(px(rgb[2], rgb[1], rgb[0]));
      expect(Array.from(bgr.data)).toEqual(Array.from(out.data));
    }
  });

  it('GRAY, _128 and video-range variants', () => {
    expect(new ColourConvert('RGB', 'GRAY').run(px(10, 20, 30)).data[0]).toBeCloseTo(0.299 * 10 + 0.587 * 20 + 0.114 * 30, 4);
    expect(createTransformer('RGB2GRAY_128').run(px(200, 200, 200)).data[0]).toBeCloseTo(72, 4);
    const yuv128 = createTransformer('BGR2YUV444_128').run(px(0, 0, 0));
    expect(Array.from(yuv128.data)).toEqual([-128, 0, 0]);
    const video = createTransformer('RGB2YUVBT601VIDEO').run(px(255, 255, 255));
    expect(video.data[0]).toBeCloseTo(0.859 * 255 + 16, 3); // 235.045
    expect(video.data[1]).toBeCloseTo(128, 3);
    expect(createTransformer('RGB2YUVBT601VIDEO').run(px(0, 0, 0)).data[0]).toBeCloseTo(16, 5);
  });

  const PY = '/usr/bin/python3';
  const hasNumpy = fs.existsSync(PY) && spawnSync(PY, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
  (hasNumpy ? it : it.skip)('RGB2YUV444 and RGB2NV12 equal numpy float32 arithmetic bit for bit (the reference formula)', () => {
    const h = 6;
    const w = 8;
    const vals: number[] = [];
    let s = 12345;
    for (let i = 0; i < h * w * 3; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      vals.push(i % 7 === 0 ? 100 : (s % 25600) / 100); // some integers (truncation edge cases), some fractions
    }
    const script = String.raw`
import json, sys, numpy as np
a = np.array(json.loads(sys.stdin.read()), dtype=np.float32).reshape(${h}, ${w}, 3)
r, g, b = a[:, :, 0], a[:, :, 1], a[:, :, 2]
y = 0.299 * r + 0.587 * g + 0.114 * b
u = -0.169 * r - 0.331 * g + 0.5 * b + 128
v = 0.5 * r - 0.419 * g - 0.081 * b + 128
yuv = np.array((y, u, v)).transpose((1, 2, 0)).astype(np.float32)
uv = np.zeros((${h} // 2, ${w}))
uv[:, 0::2] = u[::2, ::2]; uv[:, 1::2] = v[::2, ::2]
nv12 = np.vstack((y, uv)).astype(np.uint8)
print(json.dumps({'yuv': [float(x) for x in yuv.flatten()], 'nv12': [int(x) for x in nv12.flatten()]}))
`;
    const r = spawnSync(PY, ['-c', script], { input: JSON.stringify(vals), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const want = JSON.parse(r.stdout) as { yuv: number[]; nv12: number[] };
    const img = hwc(h, w, 3, (y, x, c) => vals[(y * w + x) * 3 + c]);
    expect(Array.from(new ColourConvert('RGB', 'YUV444').run(img).data)).toEqual(want.yuv);
    const nv12 = new ToNV12('RGB').run(img);
    expect(Array.from(nv12.data)).toEqual(want.nv12);
    // and from CHW input, the same bytes
    expect(Array.from(new ToNV12('RGB').run(toLayout(img, 'CHW')).data)).toEqual(want.nv12);
  });

  it('RGB2NV12 lays out a Y plane then interleaved U,V from the top-left pixel of each 2x2 block', () => {
    const colours = [
      [200, 10, 10],
      [10, 200, 10],
      [10, 10, 200],
      [90, 90, 90],
    ];
    // 4x4 image; block (by, bx) has colour colours[by*2+bx] at its top-left, other pixels grey 50
    const img = hwc(4, 4, 3, (y, x, c) => (y % 2 === 0 && x % 2 === 0 ? colours[(y >> 1) * 2 + (x >> 1)][c] : 50));
    const out = new ToNV12('RGB').run(img);
    expect(out.layout).toBe('NV12');
    expect(out.dtype).toBe('uint8');
    expect(imageDims(out)).toEqual([6, 4]);
    expect(out.data.length).toBe(24);
    const Y = (c: number[]): number => truncU8(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]);
    const U = (c: number[]): number => truncU8(-0.169 * c[0] - 0.331 * c[1] + 0.5 * c[2] + 128);
    const V = (c: number[]): number => truncU8(0.5 * c[0] - 0.419 * c[1] - 0.081 * c[2] + 128);
    expect(out.data[0]).toBe(Y(colours[0]));
    expect(out.data[1]).toBe(50);
    expect(out.data[2]).toBe(Y(colours[1]));
    expect(Array.from(out.data.slice(16))).toEqual(colours.flatMap((c) => [U(c), V(c)]));
    expect(() => new ToNV12('RGB').run(hwc(3, 4, 3, () => 0))).toThrow(/even height and width, got 3x4/);
  });

  it('NV12ToYUV444 repeats chroma over 2x2 blocks (inverse of RGB2NV12 on blocky images)', () => {
    const img = hwc(4, 6, 3, (y, x, c) => ((y >> 1) * 3 + (x >> 1)) * 20 + c * 30);
    const back = new NV12ToYUV444([4, 6]).run(new ToNV12('RGB').run(img));
    const yuv = new ColourConvert('RGB', 'YUV444').run(img);
    expect(back.dtype).toBe('uint8');
    expect(Array.from(back.data)).toEqual(Array.from(yuv.data).map(truncU8));
    const chw = createTransformer('NV12ToYUV444', [], { yuv444_output_layout: 'CHW' }).run(new ToNV12('RGB').run(img));
    expect(Array.from(toLayout(chw, 'HWC').data)).toEqual(Array.from(back.data));
    expect(() => new NV12ToYUV444([8, 8]).run(new ToNV12('RGB').run(img))).toThrow(/does not match the 4x6/);
  });
});

describe('value transformers', () => {
  it('Scale, Mean, Normalize, Add per channel; casts truncate and saturate', () => {
    const img = hwc(1, 2, 3, (_, x, c) => 10 * (c + 1) + x);
    expect(Array.from(createTransformer('Scale', [2]).run(img).data)).toEqual([20, 40, 60, 22, 42, 62]);
    expect(Array.from(createTransformer('Mean', [[1, 2, 3]]).run(img).data)).toEqual([9, 18, 27, 10, 19, 28]);
    expect(Array.from(createTransformer('Normalize', [[10, 20, 30]]).run(img).data)).toEqual([1, 1, 1, 1.1, 21 / 20, 31 / 30].map(Math.fround));
    expect(Array.from(createTransformer('Add', [-5]).run(img).data)).toEqual([5, 15, 25, 6, 16, 26]);
    const f = hwc(1, 4, 1, (_, x) => [-3.7, 2.9, 300, 127.5][x]);
    expect(Array.from(createTransformer('F32ToU8').run(f).data)).toEqual([0, 2, 255, 127]);
    expect(Array.from(createTransformer('F32ToS8').run(f).data)).toEqual([-3, 2, 127, 127]);
    expect(() => createTransformer('Mean', [[1, 2]]).run(img)).toThrow(/2 values given for a 3-channel image/);
  });

  it('roundSat rounds half to even and saturates', () => {
    expect([0.5, 1.5, 2.5, -0.5, 254.5, 255.5, 300, -1, NaN].map((v) => roundSat(v, 0, 255))).toEqual([0, 2, 2, 0, 254, 255, 255, 0, 0]);
  });
});

describe('compose and parseTransformers', () => {
  it('runs a chain in order', () => {
    const chain = compose([new ShortSideResize(4), new CenterCrop([4, 4]), new HWC2CHW(), new ChannelSwap('RGB2BGR')]);
    const out = chain.run(hwc(4, 8, 3, (_, __, c) => c));
    expect(out.layout).toBe('CHW');
    expect(imageDims(out)).toEqual([3, 4, 4]);
    expect(Array.from(out.data.slice(0, 16))).toEqual(new Array(16).fill(2));
  });

  it('reads text specs with positional, keyword, list and string arguments', () => {
    const t = parseTransformers("ShortSideResizeTransformer(short_size=256); CenterCrop(224) | hwc2chw\nRGB2BGR(data_format='CHW'), Resize((224, 224), mode=opencv), Scale(scale_value=255)");
    expect(t.chain.map((x) => x.name)).toEqual(['ShortSideResize', 'CenterCrop', 'HWC2CHW', 'RGB2BGR', 'Resize', 'Scale']);
    expect(t.describe()).toBe(
      "ShortSideResize(short_size=256); CenterCrop(crop_size=224); HWC2CHW; RGB2BGR(data_format='CHW'); Resize(target_size=[224,224], mode='opencv'); Scale(scale_value=255)",
    );
    // describe() is itself a spec
    expect(parseTransformers(t.describe()).describe()).toBe(t.describe());
  });

  it('reads JSON specs', () => {
    const t = parseTransformers('[{"type": "PadResize", "target_size": [416, 416], "pad_value": 0}, "RGB2NV12", {"name": "Mean", "means": [1, 2, 3]}]');
    expect(t.describe()).toBe("PadResize(target_size=[416,416], pad_value=0, pad_position='boundary'); RGB2NV12; Mean(means=[1,2,3])");
  });

  it.each([
    ['', /spec is empty/],
    ['Blur(3)', /unknown transformer 'Blur'/],
    ['CenterCrop', /missing argument 'crop_size'/],
    ['CenterCrop(size=3)', /unknown argument 'size'.*allowed: crop_size, data_type/],
    ['CenterCrop(0)', /crop_size must be a positive integer or \[height, width\]/],
    ['CenterCrop(3, crop_size=3)', /given twice/],
    ['CenterCrop(crop_size=3, 4)', /positional argument follows a keyword/],
    ['CenterCrop(3, 4, 5)', /takes 2 argument/],
    ['Resize([1,2', /unbalanced bracket/],
    ['Resize(target_size=[1,2], mode=pil)', /mode must be one of skimage, opencv/],
    ['Resize(target_size=[1,2], method=3)', /method .* 3 is not supported/],
    ['ShortSideResize(256, interpolation=INTER_AREA)', /interpolation must be one of/],
    ['[{"short_size": 1}]', /has no "type"/],
    ['[{"type": "Scale"', /not valid JSON/],
  ])('rejects %j with a one-line PtqError', (spec, msg) => {
    let caught: unknown;
    try {
      parseTransformers(spec);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PtqError);
    expect((caught as PtqError).oneLine()).toMatch(msg);
    expect((caught as PtqError).oneLine()).not.toContain('\n');
  });

  it('every listed transformer can be named (case-insensitive, with or without the suffix)', () => {
    const needs: Record<string, unknown[]> = {
      ShortSideResize: [8],
      LongSideResize: [8],
      ShortLongResize: [8, 16],
      Resize: [[8, 8]],
      PadResize: [[8, 8]],
      CenterCrop: [4],
      PILCenterCrop: [4],
      Transpose: [[0, 1, 2]],
      Scale: [2],
      Mean: [[1]],
      Normalize: [[2]],
      Add: [1],
    };
    for (const d of TRANSFORMERS) {
      const t = createTransformer(`${d.name.toUpperCase()}Transformer`, (needs[d.name] ?? []) as never[]);
      expect(t.name).toBe(d.name);
    }
  });
});

function dims(img: Image): number[] {
  return imageDims(img);
}
