import { decodeBin, encodeBin } from '../compile/bin-format';
import { Rng } from '../kernels/random';
import { QUANT_INFO_KEY } from '../quantize/spec';
import { BinEngine } from '../runtime/bin-engine';
import { ReferenceEngine } from '../runtime/reference';
import { compareModels } from '../verify/compare-models';
import { randomSample } from '../verify/feeds';
import { compiledFixture, FixtureInput } from '../verify/fixtures.test.util';
import { DELETABLE_TYPES } from './boundary';
import { deletableNames, modifyModel } from './modifier';

jest.setTimeout(60_000);

/**
 * model-modifier on compiled models: every model it writes still loads and runs in the host
 * runtime, and — with what the deleted-node records tell the application to do — gives
 * exactly what the quantized model gives.
 */
describe('model-modifier output runs in the .bin runtime', () => {
  for (const input of ['featuremap', 'nv12'] as FixtureInput[]) {
    it(`${input} input: each step of deleting every boundary node keeps the model exact`, async () => {
      const fx = compiledFixture(input);
      const rng = new Rng(input);
      const samples = Array.from({ length: 3 }, () => randomSample(fx.quantized, rng));
      // what can be deleted at the start, and the whole sequence
      const first = deletableNames(fx.bin);
      expect(first.length).toBeGreaterThan(0);
      const all = modifyModel(fx.bin, DELETABLE_TYPES.map((type) => ({ kind: 'all' as const, type })), 'm.bin');
      const types = all.removed.map((d) => d.opType);
      expect(types).toContain('Dequantize');
      expect(types).toContain('Softmax');
      if (input === 'featuremap') expect(types).toEqual(expect.arrayContaining(['Quantize', 'Transpose']));
      else expect(all.removed.filter((d) => d.position === 'input')).toEqual([]); // the image Preprocess is not deletable
      for (let k = 1; k <= all.removed.length; k++) {
        const step = modifyModel(fx.bin, all.removed.slice(0, k).map((d) => ({ kind: 'remove' as const, name: d.name })), 'm.bin').model;
        const bytes = encodeBin({ formatVersion: 1, packed: false, models: [step] });
        const engine = new BinEngine(decodeBin(bytes, 'm_modified.bin').models[0], { source: 'm_modified.bin' });
        const r = await compareModels({ quantized: fx.quantized, quantizedEngine: new ReferenceEngine(fx.quantized), bin: { engine, model: step } }, samples);
        for (const o of r.outputs) expect({ k, output: o.name, exact: o.bin?.exact, mismatched: o.bin?.mismatched }).toEqual({ k, output: o.name, exact: true, mismatched: 0 });
      }
      // the fully modified model's boundary: int8 outputs with the scales of the records
      const out = all.model.outputs.find((o) => o.name === 'feat')!;
      expect(out.dtype).toBe('int8');
      const info = JSON.parse(fx.quantized.metadataProps[QUANT_INFO_KEY]) as { march: string };
      expect(info.march).toBe('bernoulli2');
      const deq = all.removed.find((d) => d.opType === 'Dequantize' && d.io === 'feat')!;
      expect(deq.attrs.find((a) => a.name === 'scale')!.f).toBeCloseTo(out.scale, 12);
    });
  }
});
