import * as fs from 'fs';
import * as path from 'path';
import { readBinFile } from '../../src/compile/bin-format';
import { expectUserError, runPtq } from './run-cli';
import { ptq, tempDir, writeFixtureBin } from './tool-fixtures';

/** `ptq model-modifier` (hb_model_modifier) on hand-built .bin files. */
const dir = tempDir('ptq-model-modifier-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ptq model-modifier', () => {
  jest.setTimeout(60_000);

  it('without -r/-a lists the deletable nodes (reference message) and writes nothing', async () => {
    const file = writeFixtureBin(dir, 'list');
    const r = await ptq(['model-modifier', file]);
    expect(r).toEqual({ code: 0, out: ["INFO Nodes that can be deleted: ['data_NCHW2NHWC_LayoutConvert_Input0', 'prob_softmax', 'pool_out_HzDequantize']"], err: [] });
    expect(fs.existsSync(path.join(dir, 'list_modified.bin'))).toBe(false);
  });

  it('-r deletes in command-line order, interleaved with -a; writes *_modified.bin', async () => {
    const file = writeFixtureBin(dir, 'order');
    const r = await ptq(['model-modifier', file, '-r', 'data_NCHW2NHWC_LayoutConvert_Input0', '-a', 'Softmax', '-r', 'data_HzQuantize', '--all=Reshape']);
    expect(r.code).toBe(0);
    const saved = path.join(dir, 'order_modified.bin');
    expect(r.out.filter((l) => !l.includes("' info: "))).toEqual([
      "Node 'data_NCHW2NHWC_LayoutConvert_Input0' found, its OP type is 'Transpose'",
      "Node 'data_NCHW2NHWC_LayoutConvert_Input0' is removed",
      "Node 'prob_softmax' found, its OP type is 'Softmax'",
      "Node 'prob_softmax' is removed",
      "Node 'data_HzQuantize' found, its OP type is 'Quantize'",
      "Node 'data_HzQuantize' is removed",
      "Node 'fc_reshape_0' found, its OP type is 'Reshape'",
      "Node 'fc_reshape_0' is removed",
      `modified model saved as ${saved}`,
    ]);
    const m = readBinFile(saved).models[0];
    expect(m.deletedNodes.map((d) => d.name)).toEqual(['data_NCHW2NHWC_LayoutConvert_Input0', 'prob_softmax', 'data_HzQuantize', 'fc_reshape_0']);
    expect(m.inputs[0]).toMatchObject({ value: 'data_q', dtype: 'int8' });
    // listing the modified model shows what is deletable next
    expect((await ptq(['model-modifier', saved])).out).toEqual(["INFO Nodes that can be deleted: ['conv_out_HzDequantize', 'pool_out_HzDequantize']"]);
  });

  it('-o names the output; deleting nodes of the modified model again works', async () => {
    const file = writeFixtureBin(dir, 'twice');
    const o1 = path.join(dir, 'step1.bin');
    expect((await ptq(['model-modifier', file, '-r', 'prob_softmax', '-o', o1])).code).toBe(0);
    const r = await ptq(['model-modifier', o1, '-r', 'fc_reshape_0']);
    expect(r.out[r.out.length - 1]).toBe(`modified model saved as ${path.join(dir, 'step1_modified.bin')}`);
    expect(readBinFile(path.join(dir, 'step1_modified.bin')).models[0].deletedNodes.map((d) => d.name)).toEqual(['prob_softmax', 'fc_reshape_0']);
  });

  it('refusals: packed model, unknown node, node not at the boundary, unknown type; nothing is written', async () => {
    const a = writeFixtureBin(dir, 'ra');
    const b = writeFixtureBin(dir, 'rb');
    const comb = path.join(dir, 'rcomb.bin');
    expect((await ptq(['pack', a, b, '-o', comb])).code).toBe(0);
    const spawned = runPtq(['model-modifier', comb, '-a', 'Softmax']);
    expectUserError(spawned, /^ERROR pack model is not supported \(fix: /);
    expect((await ptq(['model-modifier', comb])).err[0]).toMatch(/^ERROR pack model is not supported/);
    const unknown = await ptq(['model-modifier', a, '-r', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toEqual([
      `ERROR '${a}' has no node named 'nope' (fix: the deletable nodes now are ['data_NCHW2NHWC_LayoutConvert_Input0', 'prob_softmax', 'pool_out_HzDequantize'] (list them with: ptq model-modifier ${a}))`,
    ]);
    const inner = await ptq(['model-modifier', a, '-r', 'prob_softmax', '-r', 'conv0']);
    expect(inner.code).toBe(2);
    expect(inner.err[0]).toMatch(/^ERROR node 'conv0' \(Conv1x1\) of '.*ra\.bin' cannot be deleted/);
    expect((await ptq(['model-modifier', a, '-a', 'Conv'])).err[0]).toMatch(/^ERROR model-modifier: '-a Conv': only Transpose, Quantize, Dequantize, Cast, Reshape, Softmax nodes can be deleted/);
    const none = await ptq(['model-modifier', a, '-a', 'Cast']);
    expect(none.code).toBe(2);
    expect(none.err[0]).toMatch(/^ERROR nothing was deleted from/);
    expect(fs.existsSync(path.join(dir, 'ra_modified.bin'))).toBe(false);
  });
});
