import { BinIo, BinModel } from '../compile/bin-format';
import { Rng } from '../kernels/random';
import { Tensor } from '../onnx/tensor';
import { makeImage, nv12ToYuv444 } from '../preprocess/image-ops';
import { imageBytes, nchwToNhwc, toBinFeeds } from './feeds';

const io = (over: Partial<BinIo>): BinIo => ({ name: 'img', value: 'img_raw', dtype: 'uint8', shape: [], layout: 'NHWC', typeRt: 'rgb', typeTrain: 'rgb', spaceAndRange: 'regular', source: 'ddr', scale: 0, zeroPoint: 0, ...over });

describe('feeds of the .bin from the quantized model\'s data', () => {
  it('nv12: the planes the intermediate yuv444 was expanded from', () => {
    const rng = new Rng(1);
    const h = 4;
    const w = 6;
    const nv12 = Float32Array.from({ length: (h * w * 3) / 2 }, () => rng.int(256));
    const yuv = nv12ToYuv444(makeImage(h, w, 3, 'NV12', 'uint8', nv12), 'CHW');
    const q = new Tensor('int8', [1, 3, h, w], Int8Array.from(yuv.data, (v) => v - 128));
    for (const [t, layout] of [[q, 'NCHW'], [nchwToNhwc(q), 'NHWC']] as const) {
      const b = imageBytes(t, layout, io({ typeRt: 'nv12', layout: '' }));
      expect(b.dims).toEqual([1, (h * 3) / 2, w]);
      expect(Array.from(b.data as Uint8Array)).toEqual(Array.from(nv12));
    }
  });

  it('rgb/gray: uint8 x + 128 in input_layout_rt', () => {
    const q = new Tensor('int8', [1, 2, 1, 3], Int8Array.from([0, 1, 2, 3, 4, -128]));
    expect(Array.from(imageBytes(q, 'NCHW', io({ layout: 'NCHW' })).data as Uint8Array)).toEqual([128, 129, 130, 131, 132, 0]);
    const nhwc = imageBytes(q, 'NCHW', io({ layout: 'NHWC' }));
    expect(nhwc.dims).toEqual([1, 1, 3, 2]);
    expect(Array.from(nhwc.data as Uint8Array)).toEqual([128, 131, 129, 132, 130, 0]);
  });

  it('featuremaps pass through; a deleted Quantize is applied; a wrong shape is one clear error', () => {
    const x = new Tensor('float32', [1, 2], Float32Array.from([0.5, -1]));
    const feat = io({ name: 'x', value: 'x', dtype: 'float32', shape: [1, 2], typeRt: 'featuremap', layout: '' });
    const m = { inputs: [feat], deletedNodes: [] } as unknown as BinModel;
    expect(toBinFeeds({ x }, m, { march: 'bernoulli2', inputs: [], outputs: [] }).x).toBe(x);
    const modified = {
      inputs: [{ ...feat, dtype: 'int8', scale: 0.25 }],
      deletedNodes: [{ name: 'x_HzQuantize', opType: 'Quantize', position: 'input', io: 'x', attrs: [{ name: 'scale', f: 0.25 }, { name: 'zero_point', i: 0 }], info: '' }],
    } as unknown as BinModel;
    expect(Array.from(toBinFeeds({ x }, modified, { march: 'bernoulli2', inputs: [], outputs: [] }).x.data as Int8Array)).toEqual([2, -4]);
    const wrong = { inputs: [{ ...feat, shape: [1, 3] }], deletedNodes: [] } as unknown as BinModel;
    expect(() => toBinFeeds({ x }, wrong, { march: 'bernoulli2', inputs: [], outputs: [] })).toThrow("input 'x': the .bin takes float32[1,3], the quantized model's data gives float32[1,2]");
  });
});
