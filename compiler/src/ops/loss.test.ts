import { PtqError } from '../errors';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { runStep } from '../runtime/reference';
import { findOp } from './registry';

function run(opType: string, inputs: (Tensor | undefined)[], attrs: { reduction?: string; ignore_index?: number } = {}): Tensor[] {
  const a: Record<string, Attribute> = {};
  if (attrs.reduction) a.reduction = { type: 'string', value: attrs.reduction };
  if (attrs.ignore_index !== undefined) a.ignore_index = { type: 'int', value: attrs.ignore_index };
  const n = new Node({ opType, inputs: ['x', 't', inputs[2] ? 'w' : ''], outputs: ['loss', 'log_prob'], attrs: a });
  return runStep({ node: n, op: findOp('', opType)!, opset: 13 }, inputs);
}

const close = (got: number[], want: number[]): void => {
  expect(got.length).toBe(want.length);
  got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
};

describe('NegativeLogLikelihoodLoss', () => {
  const logp = tensorFrom('float32', [2, 3], [-1, -2, -3, -0.5, -1.5, -2.5]);
  const target = tensorFrom('int64', [2], [2, 0]);
  const weight = tensorFrom('float32', [3], [0.1, 0.2, 0.3]);

  it('reductions none / sum / mean (default)', () => {
    const nll = (r?: string): number[] => run('NegativeLogLikelihoodLoss', [logp, target], { reduction: r })[0].toNumbers();
    close(nll('none'), [3, 0.5]);
    close(nll('sum'), [3.5]);
    close(nll(), [1.75]);
    expect(run('NegativeLogLikelihoodLoss', [logp, target])[0].dims).toEqual([]);
  });

  it('weights: the mean divides by the total weight of the targets', () => {
    const nll = (r: string): number[] => run('NegativeLogLikelihoodLoss', [logp, target, weight], { reduction: r })[0].toNumbers();
    close(nll('none'), [0.9, 0.05]);
    close(nll('sum'), [0.95]);
    close(nll('mean'), [0.95 / 0.4]);
  });

  it('ignore_index drops elements from the loss and from the mean (even out-of-range values)', () => {
    close(run('NegativeLogLikelihoodLoss', [logp, target], { reduction: 'none', ignore_index: 2 })[0].toNumbers(), [0, 0.5]);
    close(run('NegativeLogLikelihoodLoss', [logp, target, weight], { ignore_index: 2 })[0].toNumbers(), [0.5]);
    const t = tensorFrom('int32', [2], [-1, 1]);
    close(run('NegativeLogLikelihoodLoss', [logp, t], { ignore_index: -1 })[0].toNumbers(), [1.5]);
  });

  it('spatial dims: input [N, C, d], target [N, d]', () => {
    const x = tensorFrom('float32', [1, 2, 3], [-1, -2, -3, -4, -5, -6]);
    const t = tensorFrom('int64', [1, 3], [1, 0, 1]);
    const y = run('NegativeLogLikelihoodLoss', [x, t], { reduction: 'none' })[0];
    expect(y.dims).toEqual([1, 3]);
    close(y.toNumbers(), [4, 2, 6]);
  });

  it('errors: class out of range, shape mismatch, bad reduction', () => {
    expect(() => run('NegativeLogLikelihoodLoss', [logp, tensorFrom('int64', [2], [3, 0])])).toThrow(/outside \[0, 2\]/);
    expect(() => run('NegativeLogLikelihoodLoss', [logp, tensorFrom('int64', [3], [0, 0, 0])])).toThrow(PtqError);
    expect(() => run('NegativeLogLikelihoodLoss', [logp, target, tensorFrom('float32', [2], [1, 1])])).toThrow(/weight/);
    expect(() => run('NegativeLogLikelihoodLoss', [logp, target], { reduction: 'avg' })).toThrow(/reduction 'avg'/);
  });
});

describe('SoftmaxCrossEntropyLoss', () => {
  it('loss = -log softmax at the label; log_prob is the second output', () => {
    const x = tensorFrom('float32', [2, 2], [0, Math.log(3), 5, 5]);
    const t = tensorFrom('int64', [2], [1, 0]);
    const [loss, logProb] = run('SoftmaxCrossEntropyLoss', [x, t], { reduction: 'none' });
    close(loss.toNumbers(), [-Math.log(0.75), Math.LN2]);
    close(logProb.toNumbers(), [Math.log(0.25), Math.log(0.75), -Math.LN2, -Math.LN2]);
    expect(logProb.dims).toEqual([2, 2]);
    const [mean] = run('SoftmaxCrossEntropyLoss', [x, t, tensorFrom('float32', [2], [1, 3])]);
    close(mean.toNumbers(), [(3 * -Math.log(0.75) + Math.LN2) / 4]);
  });

  it('softmax runs over the class axis 1 of [N, C, d]', () => {
    // two spatial positions with different logits: softmax is per position, across C = 2
    const x = tensorFrom('float32', [1, 2, 2], [0, 1, Math.log(3), 1]);
    const t = tensorFrom('int64', [1, 2], [1, 1]);
    close(run('SoftmaxCrossEntropyLoss', [x, t], { reduction: 'none' })[0].toNumbers(), [-Math.log(0.75), Math.LN2]);
  });

  it('shape functions and roles', () => {
    const op = findOp('', 'SoftmaxCrossEntropyLoss')!;
    const n = new Node({ opType: 'SoftmaxCrossEntropyLoss', inputs: ['x', 't'], outputs: ['l', 'p'], attrs: { reduction: { type: 'string', value: 'none' } } });
    expect(op.infer({ node: n, opset: 13 }, [{ dtype: 'float32', shape: ['N', 10, 7] }, { dtype: 'int64', shape: ['N', 7] }])).toEqual([
      { dtype: 'float32', shape: ['N', 7] },
      { dtype: 'float32', shape: ['N', 10, 7] },
    ]);
    const m = new Node({ opType: 'NegativeLogLikelihoodLoss', inputs: ['x', 't'], outputs: ['l'] });
    expect(findOp('', 'NegativeLogLikelihoodLoss')!.infer({ node: m, opset: 13 }, [{ dtype: 'float32', shape: ['N', 10] }, { dtype: 'int64', shape: ['N'] }])).toEqual([{ dtype: 'float32', shape: [] }]);
    expect(op.quant).toBe('cpu');
    expect(op.sinceOpset).toBe(12);
  });
});
