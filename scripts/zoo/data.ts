/**
 * Calibration data of the example zoo, synthesised from seeds (no download, no dataset needed):
 *
 * - scenes: coloured "photographs" — a sky/ground gradient with 3 to 7 shapes (ellipses,
 *   rectangles, triangles) at different distances, drawn far to near, with soft shading and
 *   sensor noise; each scene also has a depth map (metres, the nearest surface per pixel, 0
 *   where a depth camera gets no return: the sky).
 *   A scene is a list of shapes in normalised coordinates, so one scene renders at any size.
 * - radar cubes: range–Doppler maps of a 4-antenna FMCW radar (log-magnitude, float32): a noise
 *   floor plus 1 to 3 moving targets, each a Gaussian blob whose amplitude varies per antenna.
 * - fashion: 28x28 grey images taken from the committed Fashion-MNIST calibration set.
 *
 * Everything is computed from integer seeds with the toolchain's `Rng` (mulberry32), float64
 * arithmetic and V8's Math functions (its own fdlibm ports: the same results on every CPU),
 * rounded to uint8 / float32 at the end, and written by encoders in this repository (npy, the
 * PNG writer below): same seed → same bytes on every machine.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../../compiler/src/kernels/random';

/** An RGB image, HWC uint8, with the depth (metres) of every pixel. */
export interface SceneImage {
  width: number;
  height: number;
  /** H·W·3 bytes, row-major, R G B per pixel */
  rgb: Uint8Array;
  /** H·W float32 metres */
  depth: Float32Array;
}

type Colour = [number, number, number];

interface Shape {
  kind: 'ellipse' | 'rect' | 'triangle';
  /** centre, normalised 0..1 */
  cx: number;
  cy: number;
  /** half sizes, normalised */
  rx: number;
  ry: number;
  /** rotation, radians */
  angle: number;
  colour: Colour;
  /** distance from the camera, metres */
  depth: number;
}

interface Scene {
  sky: [Colour, Colour];
  ground: [Colour, Colour];
  /** horizon height, normalised (0 = top) */
  horizon: number;
  shapes: Shape[];
  noiseSeed: number;
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

function colour(r: Rng, lo = 0, hi = 255): Colour {
  return [r.uniform(lo, hi), r.uniform(lo, hi), r.uniform(lo, hi)];
}

/** The shapes and colours of scene `seed` (independent of the rendering size). */
function makeScene(seed: number): Scene {
  const r = new Rng(seed);
  const skyTop = colour(r, 60, 200);
  const sky: [Colour, Colour] = [skyTop, [clamp(skyTop[0] + 50, 0, 255), clamp(skyTop[1] + 40, 0, 255), clamp(skyTop[2] + 30, 0, 255)]];
  const ground: [Colour, Colour] = [colour(r, 40, 160), colour(r, 10, 120)];
  const horizon = r.uniform(0.3, 0.6);
  const n = 3 + r.int(5);
  const kinds: Shape['kind'][] = ['ellipse', 'rect', 'triangle'];
  const shapes: Shape[] = [];
  for (let i = 0; i < n; i++) {
    const depth = r.uniform(1, 9);
    const size = 0.35 / Math.sqrt(depth); // nearer objects look bigger
    shapes.push({
      kind: kinds[r.int(3)],
      cx: r.uniform(0.1, 0.9),
      cy: r.uniform(horizon - 0.1, 0.95),
      rx: size * r.uniform(0.5, 1.3),
      ry: size * r.uniform(0.5, 1.3),
      angle: r.uniform(-0.6, 0.6),
      colour: colour(r),
      depth,
    });
  }
  shapes.sort((a, b) => b.depth - a.depth); // painter's order: far to near
  return { sky, ground, horizon, shapes, noiseSeed: r.nextUint32() };
}

// bound once: global lookups in hot loops are much slower under jest
const { cos, sin, abs, max, round, exp } = Math;

/** A shape with its rotation precomputed. */
interface Placed extends Shape {
  c: number;
  s: number;
}

/** Where (u, v) falls inside a shape: a value in [0, 1] inside (for the shading), undefined outside. */
function inside(p: Placed, u: number, v: number, aspect: number): number | undefined {
  const dx = (u - p.cx) * aspect;
  const dy = v - p.cy;
  const x = (p.c * dx + p.s * dy) / p.rx;
  const y = (-p.s * dx + p.c * dy) / p.ry;
  if (p.kind === 'ellipse') {
    const d = x * x + y * y;
    return d <= 1 ? d : undefined;
  }
  if (p.kind === 'rect') {
    const d = max(abs(x), abs(y));
    return d <= 1 ? d * d : undefined;
  }
  // triangle: apex up, base at y = 1
  if (y > 1 || y < -1) return undefined;
  return abs(x) <= (y + 1) / 2 ? (y + 1) / 2 : undefined;
}

/** Sensor noise, about N(0, 4²): the sum of two uniforms (triangular, std 4), integer arithmetic only. */
const NOISE_GAIN = 4 / Math.sqrt(2 / 12) / 4294967296;
function sensorNoise(r: Rng): number {
  return (r.nextUint32() + r.nextUint32() - 4294967295) * NOISE_GAIN;
}

const sceneCache = new Map<string, SceneImage>();

/** Renders scene `seed` at width × height (the last few renders are kept: an image and its depth map are made from one). */
export function renderScene(seed: number, width: number, height: number): SceneImage {
  const key = `${seed}:${width}x${height}`;
  let img = sceneCache.get(key);
  if (!img) {
    img = render(seed, width, height);
    if (sceneCache.size >= 8) sceneCache.delete(sceneCache.keys().next().value as string);
    sceneCache.set(key, img);
  }
  return img;
}

function render(seed: number, width: number, height: number): SceneImage {
  const sc = makeScene(seed);
  const shapes: Placed[] = sc.shapes.map((s) => ({ ...s, c: cos(s.angle), s: sin(s.angle) }));
  const noise = new Rng(sc.noiseSeed ^ (width * 7919 + height));
  const rgb = new Uint8Array(width * height * 3);
  const depth = new Float32Array(width * height);
  const aspect = width / height;
  for (let y = 0; y < height; y++) {
    const v = (y + 0.5) / height;
    // background: sky gradient above the horizon, ground gradient below
    const sky = v < sc.horizon;
    const t = sky ? v / sc.horizon : (v - sc.horizon) / (1 - sc.horizon);
    const [c0, c1] = sky ? sc.sky : sc.ground;
    const bg0 = c0[0] * (1 - t) + c1[0] * t;
    const bg1 = c0[1] * (1 - t) + c1[1] * t;
    const bg2 = c0[2] * (1 - t) + c1[2] * t;
    // no return from the sky: depth cameras report 0 (invalid); the ground recedes to 10 m (the sensor's range)
    const bgDepth = sky ? 0 : 1.5 + 8.5 * (1 - t) * (1 - t);
    for (let x = 0; x < width; x++) {
      const u = (x + 0.5) / width;
      let r = bg0;
      let g = bg1;
      let b = bg2;
      let d = bgDepth;
      for (const p of shapes) {
        const q = inside(p, u, v, aspect);
        if (q === undefined) continue;
        const shade = 1.15 - 0.4 * q; // lit centre, darker rim
        r = p.colour[0] * shade;
        g = p.colour[1] * shade;
        b = p.colour[2] * shade;
        d = p.depth;
      }
      const i = y * width + x;
      rgb[i * 3] = clamp(round(r + sensorNoise(noise)), 0, 255);
      rgb[i * 3 + 1] = clamp(round(g + sensorNoise(noise)), 0, 255);
      rgb[i * 3 + 2] = clamp(round(b + sensorNoise(noise)), 0, 255);
      depth[i] = d;
    }
  }
  return { width, height, rgb, depth };
}

/** HWC RGB → planar (CHW), optionally swapping R and B (BGR). */
export function toPlanar(img: SceneImage, bgr = false): Uint8Array {
  const { width: w, height: h, rgb } = img;
  const out = new Uint8Array(w * h * 3);
  const plane = w * h;
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) out[(bgr ? 2 - k : k) * plane + i] = rgb[i * 3 + k];
  }
  return out;
}

/** uint8 → float32, values unchanged (0..255). */
export function toFloat32(a: Uint8Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i];
  return out;
}

/**
 * Range–Doppler cube [antennas, doppler, range] in log-magnitude (≈ dB / 10): noise floor
 * N(0, 0.45²) per cell, plus 1–3 targets (Gaussian blobs of amplitude 2–6, slightly different
 * per antenna, as the antennas see the target at different phases).
 */
export function radarCube(seed: number, antennas = 4, doppler = 32, range = 32): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(antennas * doppler * range);
  const targets = Array.from({ length: 1 + r.int(3) }, () => ({
    d: r.uniform(2, doppler - 2),
    rg: r.uniform(2, range - 2),
    sd: r.uniform(0.8, 2.2),
    sr: r.uniform(0.8, 2.5),
    amp: r.uniform(2, 6),
    gains: Array.from({ length: antennas }, () => r.uniform(0.7, 1.1)),
  }));
  for (let a = 0; a < antennas; a++) {
    for (let d = 0; d < doppler; d++) {
      for (let g = 0; g < range; g++) {
        let v = r.normal(0, 0.45) - 0.02 * g; // the floor falls slowly with range
        for (const t of targets) {
          const e = ((d - t.d) / t.sd) ** 2 + ((g - t.rg) / t.sr) ** 2;
          v += t.amp * t.gains[a] * exp(-0.5 * e);
        }
        out[(a * doppler + d) * range + g] = v;
      }
    }
  }
  return out;
}

/** The committed Fashion-MNIST training images (100 × 784 bytes, see calibration/fashion_mnist/README.md). */
export const FASHION_DIR = path.resolve(__dirname, '..', '..', 'calibration', 'fashion_mnist', 'gray_28');

/** Image `k` (0–99) of the committed Fashion-MNIST calibration set: 28x28 uint8. */
export function fashionImage(k: number): Uint8Array {
  const file = path.join(FASHION_DIR, `cal_${String(k).padStart(3, '0')}.gray`);
  const bytes = fs.readFileSync(file);
  if (bytes.length !== 784) throw new Error(`${file}: expected 784 bytes, got ${bytes.length}`);
  return new Uint8Array(bytes);
}

/**
 * PNG bytes of an 8-bit image (1 channel: grey, 3: RGB; HWC rows), encoded here rather than by
 * a compression library: each row with filter 0 and the zlib stream in stored (uncompressed)
 * deflate blocks, so the bytes depend on nothing but the pixels — not on the zlib build or the
 * CPU it runs on (zlib and zlib-ng pick match-finding code by CPU features). The noisy images
 * would hardly compress anyway.
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Uint8Array {
  const rowBytes = width * channels;
  if (pixels.length !== rowBytes * height) throw new Error(`encodePng: ${pixels.length} bytes for ${width}x${height}x${channels}`);
  const raw = new Uint8Array((rowBytes + 1) * height);
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  // zlib stream: header (deflate, 32K window, no dictionary, level "fastest"), stored blocks of ≤ 65535 bytes, Adler-32
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const z = new Uint8Array(2 + raw.length + 5 * blocks + 4);
  z[0] = 0x78;
  z[1] = 0x01;
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * 65535;
    const len = Math.min(65535, raw.length - start);
    z[o++] = b === blocks - 1 ? 1 : 0;
    z[o++] = len & 0xff;
    z[o++] = len >>> 8;
    z[o++] = ~len & 0xff;
    z[o++] = (~len >>> 8) & 0xff;
    z.set(raw.subarray(start, start + len), o);
    o += len;
  }
  writeU32(z, o, adler32(raw));
  const ihdr = new Uint8Array(13);
  writeU32(ihdr, 0, width);
  writeU32(ihdr, 4, height);
  ihdr.set([8, channels === 1 ? 0 : 2, 0, 0, 0], 8); // bit depth 8, grey / truecolour, deflate, filter 0, no interlace
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let k = 0;
  for (const p of parts) {
    out.set(p, k);
    k += p.length;
  }
  return out;
}

const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  writeU32(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  writeU32(out, 8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function writeU32(a: Uint8Array, at: number, v: number): void {
  a[at] = v >>> 24;
  a[at + 1] = (v >>> 16) & 0xff;
  a[at + 2] = (v >>> 8) & 0xff;
  a[at + 3] = v & 0xff;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, as PNG chunks use). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < data.length; i++) {
    a = (a + data[i]) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}
