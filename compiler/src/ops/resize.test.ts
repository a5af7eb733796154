import { DType } from '../onnx/dtype';
import { Attribute, Graph, Model, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { OrtEngine } from '../runtime/ort';
import { ReferenceEngine } from '../runtime/reference';
import { AttrInput, f32, i64, inferOp, known, runOp, toAttr, values } from './tensor-shape.test.util';

/** Resize a 1-D signal laid out as [1, 1, 1, n] along the last axis. */
function resize1d(v: number[], attrs: Record<string, AttrInput>, opt: { scale?: number; size?: number }, opset = 13): number[] {
  const x = f32([1, 1, 1, v.length], v);
  const scales = opt.scale === undefined ? undefined : f32([4], [1, 1, 1, opt.scale]);
  const sizes = opt.size === undefined ? undefined : i64([1, 1, 1, opt.size]);
  return values(runOp('Resize', opset, [x, undefined, scales, sizes], attrs)[0]) as number[];
}

describe('Resize: nearest', () => {
  // in = 4, out = 6 (scale 1.5), half_pixel: x = (j + 0.5) / 1.5 - 0.5
  //   = -0.17, 0.5, 1.17, 1.83, 2.5, 3.17 → rounded per nearest_mode, then clamped to [0, 3]
  const src = [10, 11, 12, 13];
  const cases: [string, number[]][] = [
    ['round_prefer_floor', [0, 0, 1, 2, 2, 3]],
    ['round_prefer_ceil', [0, 1, 1, 2, 3, 3]],
    ['floor', [0, 0, 1, 1, 2, 3]],
    ['ceil', [0, 1, 2, 2, 3, 3]],
  ];
  it.each(cases)('nearest_mode %s picks the hand-computed indices', (mode, idx) => {
    expect(resize1d(src, { nearest_mode: mode }, { size: 6 })).toEqual(idx.map((i) => src[i]));
  });

  it('moves stored elements of any dtype (int64, float16 bit patterns)', () => {
    const big = tensorFrom('int64', [1, 2], [9223372036854775807n, -3n]);
    const [y] = runOp('Resize', 13, [big, undefined, f32([2], [1, 2])]);
    expect(Array.from(y.data as BigInt64Array)).toEqual([9223372036854775807n, 9223372036854775807n, -3n, -3n]);
    const h = new Tensor('float16', [1, 1], Uint16Array.of(0x7e01));
    expect(Array.from(runOp('Resize', 13, [h, undefined, f32([2], [1, 3])])[0].data as Uint16Array)).toEqual([0x7e01, 0x7e01, 0x7e01]);
  });

  it('Upsample (7: scales attribute, 9: input) repeats elements', () => {
    const x = f32([1, 2], [1, 2]);
    expect(values(runOp('Upsample', 7, [x], { scales: [1, 3] })[0])).toEqual([1, 1, 1, 2, 2, 2]);
    expect(values(runOp('Upsample', 9, [x, f32([2], [2, 2])])[0])).toEqual([1, 1, 2, 2, 1, 1, 2, 2]);
  });
});

describe('Resize: linear and cubic', () => {
  it('linear half_pixel upsampling by 2 interpolates between neighbours, edges clamped', () => {
    // x = (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, …, 3.25
    expect(resize1d([0, 10, 20, 30], { mode: 'linear' }, { size: 8 })).toEqual([0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30]);
  });

  it('antialiased linear 2x downsampling is the [1, 3, 3, 1] / 8 filter', () => {
    const v = [3, 1, 4, 1, 5, 9, 2, 6];
    const at = (i: number): number => v[Math.min(Math.max(i, 0), v.length - 1)];
    const want = [0, 1, 2, 3].map((j) => (at(2 * j - 1) + 3 * at(2 * j) + 3 * at(2 * j + 1) + at(2 * j + 2)) / 8);
    const got = resize1d(v, { mode: 'linear', antialias: 1 }, { scale: 0.5 }, 18);
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 5));
  });

  it('cubic reproduces a linear ramp away from the edges (the kernel has unit sum and is symmetric)', () => {
    const ramp = Array.from({ length: 10 }, (_, i) => 2 * i + 1);
    const got = resize1d(ramp, { mode: 'cubic', coordinate_transformation_mode: 'align_corners' }, { size: 19 });
    // align_corners: x = j · 9 / 18 = j / 2
    for (let j = 4; j < 15; j++) expect(got[j]).toBeCloseTo(2 * (j / 2) + 1, 5);
  });

  it('integer data truncates toward zero like onnxruntime', () => {
    const x = tensorFrom('int8', [1, 2], [-3, 0]);
    const [y] = runOp('Resize', 13, [x, undefined, f32([2], [1, 4])], { mode: 'linear', coordinate_transformation_mode: 'asymmetric' });
    // asymmetric x = j / 4: -3, -2.25, -1.5, -0.75, 0, 0, 0, 0
    expect(values(y)).toEqual([-3, -2, -1, 0, 0, 0, 0, 0]);
  });
});

describe('Resize: shapes', () => {
  const x = { dtype: 'float32' as const, shape: ['N', 3, 20, 30] };

  it('computes output sizes from scales (floor of in·scale in float32) or sizes', () => {
    expect(inferOp('Resize', 13, [x, undefined, known(f32([4], [1, 1, 2, 0.5]))])[0].shape).toEqual(['N', 3, 40, 15]);
    expect(inferOp('Resize', 13, [x, undefined, undefined, known(i64([1, 3, 7, 9]))])[0].shape).toEqual([1, 3, 7, 9]);
    expect(inferOp('Resize', 11, [{ dtype: 'float32', shape: [1, 1, 10] }, known(f32([0], [])), known(f32([3], [1, 1, 2.3]))])[0].shape).toEqual([1, 1, 23]);
    expect(inferOp('Resize', 13, [x, undefined, { dtype: 'float32', shape: [4] }])[0].shape).toEqual(['?', '?', '?', '?']);
  });

  it('axes (opset 18) and keep_aspect_ratio_policy resize only the listed axes with one scale', () => {
    const f = inferOp('Resize', 18, [x, undefined, undefined, known(i64([40, 40]))], { axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' });
    expect(f[0].shape).toEqual(['N', 3, 27, 40]); // scale min(2, 4/3) = 4/3: 20 → 26.67 → 27
    const g = inferOp('Resize', 18, [x, undefined, undefined, known(i64([40, 40]))], { axes: [2, 3], keep_aspect_ratio_policy: 'not_smaller' });
    expect(g[0].shape).toEqual(['N', 3, 40, 60]);
    const h = inferOp('Resize', 18, [x, undefined, { dtype: 'float32', shape: [1] }], { axes: [-1] });
    expect(h[0].shape).toEqual(['N', 3, 20, '?']);
  });
});

/** onnxruntime as an independent oracle for the opset 18/19 behaviours ONNX 1.12's test data lacks. */
describe('Resize agrees with onnxruntime', () => {
  type Case = { name: string; attrs: Record<string, AttrInput>; dims: number[]; roi?: number[]; scales?: number[]; sizes?: number[]; opset?: number; dtype?: DType; op?: string };
  const cases: Case[] = [
    { name: 'linear antialias', attrs: { mode: 'linear', antialias: 1 }, dims: [1, 1, 10, 13], scales: [1, 1, 0.3, 0.4] },
    { name: 'cubic antialias (sizes)', attrs: { mode: 'cubic', antialias: 1 }, dims: [1, 2, 10, 10], sizes: [1, 2, 6, 4] },
    { name: 'cubic exclude_outside downsampling', attrs: { mode: 'cubic', exclude_outside: 1, cubic_coeff_a: -0.5 }, dims: [1, 3, 7, 9], scales: [1, 1, 0.45, 0.75] },
    { name: 'half_pixel_symmetric linear', attrs: { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' }, dims: [1, 1, 5, 7], scales: [1, 1, 0.7, 1.7] },
    { name: 'half_pixel_symmetric nearest', attrs: { coordinate_transformation_mode: 'half_pixel_symmetric' }, dims: [1, 1, 5, 7], scales: [1, 1, 0.7, 1.7] },
    { name: 'keep_aspect_ratio not_smaller with axes', attrs: { mode: 'linear', keep_aspect_ratio_policy: 'not_smaller', axes: [2, 3] }, dims: [1, 1, 6, 4], sizes: [9, 9] },
    { name: 'cubic on the last axis only', attrs: { mode: 'cubic', axes: [-1] }, dims: [1, 2, 6, 4], scales: [2.5] },
    { name: 'pytorch_half_pixel to length 1', attrs: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, dims: [1, 1, 3, 5], scales: [1, 1, 0.5, 1] },
    { name: 'tf_crop_and_resize with scales', attrs: { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: 7.5 }, dims: [1, 1, 5, 5], roi: [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], scales: [1, 1, 1.5, 2] },
    { name: 'tf_crop_and_resize nearest extrapolation', attrs: { coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: 7.5 }, dims: [1, 1, 5, 5], roi: [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], sizes: [1, 1, 4, 7] },
    { name: 'trilinear 5-D', attrs: { mode: 'linear' }, dims: [1, 1, 3, 4, 5], scales: [1, 1, 1.5, 0.5, 2] },
    { name: 'uint8 linear', attrs: { mode: 'linear' }, dims: [1, 1, 4, 5], scales: [1, 1, 1.7, 1.3], dtype: 'uint8' },
    { name: 'Resize-10 nearest downsampling', attrs: {}, dims: [1, 1, 4, 7], scales: [1, 1, 0.6, 0.5], opset: 10 },
    { name: 'Resize-10 linear', attrs: { mode: 'linear' }, dims: [1, 1, 4, 7], scales: [1, 1, 2, 1.5], opset: 10 },
    { name: 'Upsample-9 nearest', attrs: {}, dims: [1, 1, 3, 2], scales: [1, 1, 2.5, 3], opset: 9, op: 'Upsample' },
  ];

  function model(c: Case): { m: Model; x: Tensor } {
    const dtype = c.dtype ?? 'float32';
    const n = c.dims.reduce((a, b) => a * b, 1);
    const x = tensorFrom(dtype, c.dims, Array.from({ length: n }, (_, i) => (dtype === 'float32' ? Math.sin(i * 1.7) * 10 + i * 0.3 : Math.round(Math.sin(i * 1.7) * 100 + 120))));
    const opset = c.opset ?? 19;
    const init = new Map<string, Tensor>();
    let inputs: string[];
    if (opset < 11) {
      init.set('scales', f32([c.scales!.length], c.scales!));
      inputs = ['X', 'scales'];
    } else {
      inputs = ['X', c.roi ? 'roi' : '', c.scales ? 'scales' : '', c.sizes ? 'sizes' : ''];
      if (c.roi) init.set('roi', f32([c.roi.length], c.roi));
      if (c.scales) init.set('scales', f32([c.scales.length], c.scales));
      if (c.sizes) init.set('sizes', i64(c.sizes));
      while (inputs[inputs.length - 1] === '') inputs.pop();
    }
    const attrs: Record<string, Attribute> = {};
    for (const [k, v] of Object.entries(c.attrs)) attrs[k] = toAttr(v);
    const g = new Graph({
      nodes: [new Node({ opType: c.op ?? 'Resize', inputs, outputs: ['Y'], attrs })],
      inputs: [{ name: 'X', type: { dtype, shape: c.dims } }],
      outputs: [{ name: 'Y', type: { dtype } }],
      initializers: init,
    });
    return { m: new Model(g, { opsetImports: [{ domain: '', version: opset }], irVersion: opset >= 19 ? 9 : 8 }), x };
  }

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { m, x } = model(c);
    const ours = new ReferenceEngine(m).runSync({ X: x }).Y;
    const ort = await OrtEngine.create(m);
    const theirs = (await ort.run({ X: x })).Y;
    await ort.dispose();
    expect(ours.dims).toEqual(theirs.dims);
    const a = ours.toNumbers();
    const b = theirs.toNumbers();
    b.forEach((v, i) => expect(Math.abs(a[i] - v)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(v))));
  });
});
