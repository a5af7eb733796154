import { Graph, Model, Node, Attribute } from '../src/onnx/ir';
import { Tensor, tensorFrom } from '../src/onnx/tensor';
import { encodeModel } from '../src/onnx/encode';
import { ReferenceEngine } from '../src/runtime/reference';
// eslint-disable-next-line
const ort = require('onnxruntime-node');

async function cmp(label: string, dtype: 'float32' | 'uint8' | 'int8', attrs: Record<string, Attribute>, xDims: number[], roi: number[] | null, scales: number[] | null, sizes: number[] | null, opset = 19) {
  const n = xDims.reduce((a, b) => a * b, 1);
  const x = tensorFrom(dtype, xDims, Array.from({ length: n }, (_, i) => dtype === 'float32' ? Math.sin(i * 1.7) * 10 + i * 0.3 : Math.round(Math.sin(i * 1.7) * 100 + (dtype === 'uint8' ? 120 : 0))));
  const inits = new Map<string, Tensor>();
  const ins = ['X', '', '', ''];
  if (roi) { inits.set('roi', tensorFrom('float32', [roi.length], roi)); ins[1] = 'roi'; }
  if (scales) { inits.set('scales', tensorFrom('float32', [scales.length], scales)); ins[2] = 'scales'; }
  if (sizes) { inits.set('sizes', tensorFrom('int64', [sizes.length], sizes)); ins[3] = 'sizes'; }
  while (ins[ins.length - 1] === '') ins.pop();
  if (opset < 11) ins.splice(1, 1);
  const g = new Graph({
    nodes: [new Node({ opType: 'Resize', inputs: ins, outputs: ['Y'], attrs })],
    inputs: [{ name: 'X', type: { dtype, shape: xDims } }],
    outputs: [{ name: 'Y', type: { dtype } }],
    initializers: inits,
  });
  const m = new Model(g, { opsetImports: [{ domain: '', version: opset }], irVersion: 9 });
  const ours = new ReferenceEngine(m).runSync({ X: x }).Y;
  const sess = await ort.InferenceSession.create(Buffer.from(encodeModel(m)));
  const r = await sess.run({ X: new ort.Tensor(dtype, x.data, xDims) });
  const y = r.Y;
  const a = ours.toNumbers();
  const b = Array.from(y.data as Float32Array);
  if (dtype !== 'float32') console.log(a.slice(0, 12).join(','), '\n', b.slice(0, 12).join(','));
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  console.log(label.padEnd(50), `ours [${ours.dims}] ort [${y.dims}]`, 'maxdiff', worst.toExponential(2));
}
const s = (v: string): Attribute => ({ type: 'string', value: v });
const i = (v: number): Attribute => ({ type: 'int', value: v });
(async () => {
  await cmp('linear antialias down 0.5', 'float32', { mode: s('linear'), antialias: i(1) }, [1, 1, 8, 8], null, [1, 1, 0.5, 0.5], null);
  await cmp('linear antialias down 0.3', 'float32', { mode: s('linear'), antialias: i(1) }, [1, 1, 10, 13], null, [1, 1, 0.3, 0.4], null);
  await cmp('cubic antialias down 0.5', 'float32', { mode: s('cubic'), antialias: i(1) }, [1, 1, 8, 8], null, [1, 1, 0.5, 0.5], null);
  await cmp('cubic antialias down 0.6 sizes', 'float32', { mode: s('cubic'), antialias: i(1) }, [1, 1, 10, 10], null, null, [1, 1, 6, 4]);
  await cmp('linear antialias up', 'float32', { mode: s('linear'), antialias: i(1) }, [1, 1, 4, 4], null, [1, 1, 2, 1.5], null);
  await cmp('half_pixel_symmetric linear', 'float32', { mode: s('linear'), coordinate_transformation_mode: s('half_pixel_symmetric') }, [1, 1, 5, 7], null, [1, 1, 0.7, 1.7], null);
  await cmp('half_pixel_symmetric nearest', 'float32', { mode: s('nearest'), coordinate_transformation_mode: s('half_pixel_symmetric') }, [1, 1, 5, 7], null, [1, 1, 0.7, 1.7], null);
  await cmp('not_larger', 'float32', { mode: s('linear'), keep_aspect_ratio_policy: s('not_larger') }, [1, 1, 6, 4], null, null, [1, 1, 9, 9]);
  await cmp('not_smaller', 'float32', { mode: s('linear'), keep_aspect_ratio_policy: s('not_smaller'), axes: { type: 'ints', value: [2, 3] } }, [1, 1, 6, 4], null, null, [9, 9]);
  await cmp('not_larger axes', 'float32', { mode: s('nearest'), keep_aspect_ratio_policy: s('not_larger'), axes: { type: 'ints', value: [2, 3] } }, [1, 1, 6, 4], null, null, [9, 9]);
  await cmp('axes scales', 'float32', { mode: s('cubic'), axes: { type: 'ints', value: [-1] } }, [1, 2, 6, 4], null, [2.5], null);
  await cmp('align_corners fractional', 'float32', { mode: s('linear'), coordinate_transformation_mode: s('align_corners') }, [1, 1, 4, 5], null, [1, 1, 0.6, 1.7], null);
  await cmp('pytorch_half_pixel out 1', 'float32', { mode: s('linear'), coordinate_transformation_mode: s('pytorch_half_pixel') }, [1, 1, 3, 5], null, [1, 1, 0.5, 1], null);
  await cmp('tf_crop scales', 'float32', { mode: s('linear'), coordinate_transformation_mode: s('tf_crop_and_resize'), extrapolation_value: { type: 'float', value: 7 } }, [1, 1, 5, 5], [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], [1, 1, 1.5, 2], null);
  await cmp('tf_crop sizes nearest', 'float32', { mode: s('nearest'), coordinate_transformation_mode: s('tf_crop_and_resize'), extrapolation_value: { type: 'float', value: 7 } }, [1, 1, 5, 5], [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], null, [1, 1, 4, 7]);
  await cmp('nearest down round_prefer_ceil', 'float32', { mode: s('nearest'), nearest_mode: s('round_prefer_ceil') }, [1, 1, 7, 9], null, [1, 1, 0.45, 0.75], null);
  await cmp('cubic exclude_outside down', 'float32', { mode: s('cubic'), exclude_outside: i(1) }, [1, 3, 7, 9], null, [1, 1, 0.45, 0.75], null);
  await cmp('linear 3d (ncdhw)', 'float32', { mode: s('linear') }, [1, 1, 3, 4, 5], null, [1, 1, 1.5, 0.5, 2], null);
  await cmp('resize-10 nearest down', 'float32', { mode: s('nearest') }, [1, 1, 4, 7], null, [1, 1, 0.6, 0.5], null, 10);
  await cmp('resize-10 linear up', 'float32', { mode: s('linear') }, [1, 1, 4, 7], null, [1, 1, 2, 1.5], null, 10);
  await cmp('uint8 linear', 'uint8', { mode: s('linear') }, [1, 1, 4, 5], null, [1, 1, 1.7, 1.3], null);
  await cmp('int8 linear', 'int8', { mode: s('linear') }, [1, 1, 4, 5], null, [1, 1, 1.7, 1.3], null);
  await cmp('int8 nearest', 'int8', { mode: s('nearest') }, [1, 1, 4, 5], null, [1, 1, 1.7, 1.3], null);
})().catch((e) => { console.error(e); process.exit(1); });
