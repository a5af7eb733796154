import { PtqError } from '../errors';
import { caffeType } from './schema';
import { parseTextFormat, TextMessage } from './text-format';

const net = caffeType('NetParameter');
const parse = (text: string): TextMessage => parseTextFormat(text, net, 'net.prototxt').message;

function parseError(text: string): string {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(PtqError);
    expect((e as PtqError).code).toBe('E_CAFFE_PROTOTXT');
    return (e as PtqError).message;
  }
  throw new Error('expected a parse error');
}

describe('protobuf text format (prototxt) parser', () => {
  it('parses nested messages, repeated fields, enums, numbers and strings', () => {
    const m = parse(`
      name: "tiny" # a comment
      input: "data"
      input_dim: 1 input_dim: 3
      input_dim: 0x10, input_dim: 010;
      layer {
        name: 'conv\\t1' "_x"
        type: "Convolution"
        convolution_param < num_output: 8 kernel_size: [3, 1] pad: [] bias_term: false >
        include { phase: TEST }
        param { lr_mult: 1.5e-1 decay_mult: -2.f }
      }
      layer { name: "relu" type: "ReLU" relu_param: { negative_slope: -inf } }
    `);
    expect(m.name).toBe('tiny');
    expect(m.input).toEqual(['data']);
    expect(m.input_dim).toEqual([1, 3, 16, 8]);
    const [conv, relu] = m.layer as TextMessage[];
    expect(conv.name).toBe('conv\t1_x');
    expect(conv.convolution_param).toEqual({ num_output: 8, kernel_size: [3, 1], pad: [], bias_term: false });
    expect(conv.include).toEqual([{ phase: 'TEST' }]);
    expect((conv.param as TextMessage[])[0]).toEqual({ lr_mult: 0.15, decay_mult: -2 });
    expect((relu.relu_param as TextMessage).negative_slope).toBe(-Infinity);
  });

  it('records the line each message starts on', () => {
    const { message, lines } = parseTextFormat('name: "n"\n\nlayer {\n  name: "a"\n}\nlayer { name: "b" }\n', net);
    const layers = message.layer as TextMessage[];
    expect(layers.map((l) => lines.get(l))).toEqual([3, 6]);
  });

  it('joins adjacent strings, also inside lists', () => {
    expect(parse('layer { top: ["a" \'b\', "c"] }').layer).toEqual([{ top: ['ab', 'c'] }]);
  });

  it('accepts enum values by number and bools as 0/1/t/f', () => {
    const m = parse('layer { include { phase: 0 } convolution_param { bias_term: 0 force_nd_im2col: t } }');
    const l = (m.layer as TextMessage[])[0];
    expect(l.include).toEqual([{ phase: 'TRAIN' }]);
    expect(l.convolution_param).toEqual({ bias_term: false, force_nd_im2col: true });
  });

  it.each([
    ['layer {\n  name: "a"\n  bogus: 1\n}', "prototxt 'net.prototxt' line 3: unknown field 'bogus' in LayerParameter (in layer 'a')"],
    ['layer { pooling_param { pool: MEDIAN } }', "'MEDIAN' is not a value of PoolMethod"],
    ['layer { name: "a" name: "b" }', "field 'name' is given twice but is not repeated"],
    ['layer { convolution_param { num_output: -3 } }', "-3 is out of range for field 'num_output' (uint32)"],
    ['layer { convolution_param { num_output: 2.5 } }', "field 'num_output' needs an integer, found '2.5'"],
    ['layer { name: 3 }', "field 'name' needs a quoted string, found '3'"],
    ['layer { name "a" }', "expected ':' after 'name'"],
    ['layer { convolution_param: 3 }', "field 'convolution_param' is a message (ConvolutionParameter); expected '{', found '3'"],
    ['layer {\n name: "a"\n', "line 3: missing '}' (the message opened on line 1 is not closed)"],
    ['layer { } }', "unexpected '}' (no message is open)"],
    ['name: "unterminated\n', 'line 1: unterminated string'],
    ['name: "a" @', "unexpected character '@'"],
    ['input_dim: [1 2]', "expected ',' or ']' in the list of 'input_dim'"],
    ['name: ["a"]', "field 'name' is not repeated; a [list] is not allowed"],
    ['layer { bias_term: true }', "unknown field 'bias_term' in LayerParameter"],
  ])('rejects %j', (text, message) => {
    expect(parseError(text)).toContain(message);
  });
});
