import { Graph, Model, Node } from '../src/onnx/ir';
import { Tensor, tensorFrom } from '../src/onnx/tensor';
import { encodeModel } from '../src/onnx/encode';
import { ReferenceEngine } from '../src/runtime/reference';
// eslint-disable-next-line
const ort = require('onnxruntime-node');
(async () => {
  for (const [mode, pads] of [['wrap', [2, 3, 1, 5]], ['reflect', [2, 3, 1, 5]], ['wrap', [-1, 2, 1, -2]], ['reflect', [-1, 2, 1, -2]], ['edge', [-1, 2, 1, -2]], ['wrap', [1, 1, 1, 1]]] as [string, number[]][]) {
    const inits = new Map<string, Tensor>([['pads', tensorFrom('int64', [4], pads)]]);
    const g = new Graph({ nodes: [new Node({ opType: 'Pad', inputs: ['X', 'pads'], outputs: ['Y'], attrs: { mode: { type: 'string', value: mode } } })], inputs: [{ name: 'X', type: { dtype: 'float32', shape: [3, 4] } }], outputs: [{ name: 'Y', type: { dtype: 'float32' } }], initializers: inits });
    const m = new Model(g, { opsetImports: [{ domain: '', version: 19 }], irVersion: 9 });
    const x = tensorFrom('float32', [3, 4], Array.from({ length: 12 }, (_, i) => i));
    const ours = new ReferenceEngine(m).runSync({ X: x }).Y;
    try {
      const sess = await ort.InferenceSession.create(Buffer.from(encodeModel(m)));
      const r = await sess.run({ X: new ort.Tensor('float32', x.data, [3, 4]) });
      console.log(mode, pads.join(','), JSON.stringify(Array.from(r.Y.data)) === JSON.stringify(ours.toNumbers()) ? 'SAME' : `DIFF\n ours ${ours.toNumbers()}\n ort  ${Array.from(r.Y.data)}`);
    } catch (e) { console.log(mode, pads, 'ort error', (e as Error).message.slice(0, 200)); }
  }
})();
