import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BinFile } from '../compile/bin-format';
import { boundaryModel, IN_SCALE } from './fixtures.test.util';
import { dataTypeName, DELETED_NODES_FILE, kv, modelInfoLines, modelInfoReport, writeDeletedNodesInfo } from './model-info';
import { modifyModel } from './modifier';

const single = (): BinFile => ({ formatVersion: 1, packed: false, models: [boundaryModel()] });

describe('model-info', () => {
  it('prints the reference layout: deps, the four groups, one framed block per input, io types', () => {
    expect(modelInfoLines(boundaryModel())).toEqual([
      '********* featnet info *********',
      '############# model deps info #############',
      'nx-ptq version      : 0.1.0',
      'compiler version    : 0.1.0',
      'runtime version     : 0.1.0',
      'bin format version  : 1',
      '############# model_parameters info #############',
      'onnx_model          : /models/featnet.onnx',
      'BPU march           : bernoulli2',
      'layer_out_dump      : False',
      'working dir         : /models/model_output',
      'output_model_file_prefix: featnet',
      '############# input_parameters info #############',
      '------',
      '---------input info : data ---------',
      'input_name          : data',
      'input_type_rt       : featuremap',
      'input_space&range   : regular',
      'input_layout_rt     : NCHW',
      'input_type_train    : featuremap',
      'input_layout_train  : NCHW',
      'norm_type           : no_preprocess',
      'input_shape         : 1x3x4x4',
      'cal_data_dir        : /models/calibration_data',
      '---------input info : data end -------',
      '------',
      '############# calibration_parameters info #############',
      'preprocess_on       : False',
      'calibration_type    : max',
      '############# compiler_parameters info #############',
      'hbdk_pass_through_params: --fast --O3',
      "input-source        : {'data': 'ddr', '_default_value': 'ddr'}",
      '--------- input/output types -',
      'model input types   : [<InputDataType.F32: 5>]',
      'model output types  : [<InputDataType.F32: 5>, <InputDataType.F32: 5>]',
    ]);
  });

  it('names image and integer types like the reference (<InputDataType.NV12: 7>)', () => {
    const io = boundaryModel().inputs[0];
    expect(dataTypeName({ ...io, typeRt: 'nv12', dtype: 'int8' }, true)).toBe('<InputDataType.NV12: 7>');
    expect(dataTypeName({ ...io, dtype: 'int8' }, true)).toBe('<InputDataType.S8: 0>');
    expect(dataTypeName({ ...io, typeRt: 'nv12', dtype: 'int8' }, false)).toBe('<InputDataType.S8: 0>');
    expect(kv('hbdk runtime version', '3.13.7')).toBe('hbdk runtime version: 3.13.7');
  });

  it('lists deleted nodes at the end and gives deleted_nodes_info.txt one line per node', () => {
    const m = modifyModel(boundaryModel(), [{ kind: 'all', type: 'Quantize' }, { kind: 'all', type: 'Transpose' }, { kind: 'all', type: 'Softmax' }], 'x.bin').model;
    const r = modelInfoReport({ formatVersion: 1, packed: false, models: [m] }, undefined, 'x_modified.bin', '0.1.0');
    expect(r.lines.slice(0, 3)).toEqual(['Start ptq model-info....', 'ptq model-info version 0.1.0', '********* featnet info *********']);
    expect(r.lines.slice(-6)).toEqual([
      'model input types   : [<InputDataType.S8: 0>]',
      'model output types  : [<InputDataType.F32: 5>, <InputDataType.F32: 5>]',
      '--------- deleted nodes -',
      'deleted nodes: data_NCHW2NHWC_LayoutConvert_Input0',
      'deleted nodes: prob_softmax',
      'deleted nodes: data_HzQuantize',
    ]);
    expect(r.lines.filter((l) => l.startsWith('deleted nodes: '))).toEqual([
      'deleted nodes: data_NCHW2NHWC_LayoutConvert_Input0',
      'deleted nodes: prob_softmax',
      'deleted nodes: data_HzQuantize',
    ]);
    expect(r.deleted).toHaveLength(3);
    expect(r.deleted[2]).toContain(`qx = clamp(round(x / scale) + zero_point, -128, 127) with scale=${IN_SCALE} zero_point=0`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-info-'));
    try {
      const f = writeDeletedNodesInfo(dir, r.deleted);
      expect(path.basename(f)).toBe(DELETED_NODES_FILE);
      expect(fs.readFileSync(f, 'utf8')).toBe(r.deleted.map((l) => `${l}\n`).join(''));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a packed file: every model without -m, one with -m, a clear error for an unknown name', () => {
    const packed: BinFile = { formatVersion: 1, packed: true, models: [boundaryModel('a'), boundaryModel('b')] };
    const all = modelInfoReport(packed, undefined, 'p.bin', '0.1.0');
    expect(all.lines.filter((l) => / info \*+$/.test(l))).toEqual(['********* a info *********', '********* b info *********']);
    expect(all.lines[2]).toBe("INFO 'p.bin' is a packed model with 2 models: a, b");
    const one = modelInfoReport(packed, 'b', 'p.bin', '0.1.0');
    expect(one.lines.filter((l) => / info \*+$/.test(l))).toEqual(['********* b info *********']);
    expect(() => modelInfoReport(packed, 'c', 'p.bin', '0.1.0')).toThrow("'p.bin' has no model named 'c'");
    expect(modelInfoReport(single(), undefined, 's.bin', '0.1.0').deleted).toEqual([]);
  });
});
