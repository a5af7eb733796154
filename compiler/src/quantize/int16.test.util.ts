import { GraphBuilder } from '../onnx/builder';
import { Model } from '../onnx/ir';

/**
 * x → c1 → r1 → c2 → r2 → MaxPool → c3 → r3 ─┐
 *                              └──── c5 ─────┴→ add → GAP → Flatten → fc → y
 * The network of the node_info int16 tests (quantize/int16.test.ts, compile/int16-nodes.test.ts):
 * with c1, c2, c5 and fc in int16, int16 is written by Convs with and without a Relu after them,
 * read by a passive op (MaxPool), by Convs, by a requantising Add next to an int8 value, and by
 * the Gemm head whose output is the model output `y`.
 */
export function int16Net(): Model {
  const b = new GraphBuilder('int16', { opset: 13, seed: 11 });
  const x = b.input('x', 'float32', [1, 3, 16, 16]);
  const r1 = b.relu(b.conv(x, { outChannels: 8, kernel: 3, pad: 1, name: 'c1' }), 'r1');
  const r2 = b.relu(b.conv(r1, { outChannels: 8, kernel: 3, pad: 1, name: 'c2' }), 'r2');
  const mp = b.maxPool(r2, { kernel: 2, stride: 2 });
  const r3 = b.relu(b.conv(mp, { outChannels: 8, kernel: 3, pad: 1, name: 'c3' }), 'r3');
  const c5 = b.conv(mp, { outChannels: 8, kernel: 1, name: 'c5' });
  const sum = b.add(r3, c5, 'add');
  b.output(b.gemm(b.flatten(b.globalAvgPool(sum)), 5, { name: 'fc' }), 'y');
  return b.build();
}
