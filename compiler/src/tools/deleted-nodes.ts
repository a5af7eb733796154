import { BinAttr, BinDeletedNode, BinModel } from '../compile/bin-format';
import { PtqError } from '../errors';
import { DType, dtypeFromOnnx, integerRange, isFloat } from '../onnx/dtype';
import { Attribute, Node } from '../onnx/ir';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { dequantizeValue, quantizeValue } from '../kernels/requant';
import { getOp } from '../ops/registry';
import { runStep } from '../runtime/reference';
import { canonicalType } from './boundary';

/**
 * What an application does for the nodes deleted from a `.bin` (ptq model-modifier,
 * remove_node_type/remove_node_name): before feeding an input, the input-side nodes in the
 * order they were deleted; after reading an output, the output-side nodes in reverse order.
 * Quantize/Dequantize use the reference's formulas with the recorded scale and zero point
 * (float32 arithmetic, rounding half to even, as the quantized model's QuantizeLinear /
 * DequantizeLinear); Transpose, Reshape, Cast and Softmax run the op registry's kernels.
 */

function num(d: BinDeletedNode, name: string): number[] | undefined {
  const a = d.attrs.find((x) => x.name === name);
  if (!a) return undefined;
  if (a.f !== undefined) return [a.f];
  if (a.i !== undefined) return [a.i];
  return a.floats ?? a.ints;
}

function str(d: BinDeletedNode, name: string): string | undefined {
  return d.attrs.find((x: BinAttr) => x.name === name)?.s;
}

function onnx(opType: string, x: Tensor, attrs: Record<string, Attribute>, extra: Tensor[] = []): Tensor {
  const node = new Node({ opType, inputs: ['x', ...extra.map((_, i) => `c${i}`)], outputs: ['y'], attrs });
  return runStep({ node, op: getOp(node, 17), opset: 17 }, [x, ...extra])[0];
}

function perAxis(x: Tensor, values: number[], axis: number | undefined): (i: number) => number {
  if (values.length === 1) return () => values[0];
  const ax = axis === undefined ? 1 : axis < 0 ? axis + x.rank : axis;
  const inner = x.dims.slice(ax + 1).reduce((a, b) => a * b, 1);
  const n = x.dims[ax];
  return (i) => values[Math.floor(i / inner) % n];
}

/** Apply one deleted node to `x` (the data flowing where the node was). */
export function applyDeletedNode(d: BinDeletedNode, x: Tensor, quantizedDtype: DType = 'int8'): Tensor {
  const fail = (why: string): never => {
    throw new PtqError('E_DELETED_NODE', `deleted node '${d.name}' (${d.opType}): ${why}`, { subject: d.name, fix: 'check the .bin with ptq model-info' });
  };
  try {
    return applyRecord(d, x, quantizedDtype, fail);
  } catch (e) {
    // a record the kernels cannot apply (a shape or perm that does not fit the data): the file's fault
    if (e instanceof PtqError) throw e;
    return fail(e instanceof Error ? e.message.split('\n')[0] : String(e));
  }
}

function applyRecord(d: BinDeletedNode, x: Tensor, quantizedDtype: DType, fail: (why: string) => never): Tensor {
  switch (canonicalType(d.opType)) {
    case 'Quantize': {
      const scale = num(d, 'scale') ?? fail('no scale recorded');
      const zp = num(d, 'zero_point') ?? [0];
      const [lo, hi] = integerRange(quantizedDtype) ?? [-128, 127];
      const v = x.toFloat32();
      const s = perAxis(x, scale, num(d, 'axis')?.[0]);
      const z = perAxis(x, zp, num(d, 'axis')?.[0]);
      const out = new Array<number>(v.length);
      for (let i = 0; i < v.length; i++) out[i] = quantizeValue(v[i], Math.fround(s(i)), z(i), lo, hi);
      return tensorFrom(quantizedDtype, x.dims, out);
    }
    case 'Dequantize': {
      const scale = num(d, 'scale') ?? fail('no scale recorded');
      const zp = num(d, 'zero_point') ?? [0];
      const v = x.toNumbers();
      const s = perAxis(x, scale, num(d, 'axis')?.[0]);
      const z = perAxis(x, zp, num(d, 'axis')?.[0]);
      const out = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = dequantizeValue(v[i], Math.fround(s(i)), z(i));
      return new Tensor('float32', x.dims, out);
    }
    case 'Transpose':
      return onnx('Transpose', x, { perm: { type: 'ints', value: num(d, 'perm') ?? fail('no perm recorded') } });
    case 'Reshape': {
      const shape = num(d, 'shape') ?? fail('no shape recorded');
      return toLayout(fromLayout(x, str(d, 'in_layout')).reshape(shape), str(d, 'out_layout'));
    }
    case 'Cast': {
      const to = (str(d, 'dtype') as DType | undefined) ?? dtypeFromOnnx(num(d, 'to')?.[0] ?? 1) ?? fail('no target type recorded');
      return onnx('Cast', x, { to: { type: 'int', value: num(d, 'to')?.[0] ?? castCode(to) } });
    }
    case 'Softmax': {
      const axis = num(d, 'axis')?.[0] ?? -1;
      const logical = fromLayout(x, str(d, 'in_layout'));
      const y = onnx('Softmax', isFloat(logical.dtype) ? logical : new Tensor('float32', logical.dims, logical.toFloat32()), { axis: { type: 'int', value: axis } });
      return toLayout(y, str(d, 'out_layout'));
    }
    default:
      return fail('this node type has no host implementation');
  }
}

/** NHWC-stored data (shape [N, H, W, C]) → logical NCHW; other data unchanged. */
function fromLayout(x: Tensor, layout: string | undefined): Tensor {
  return layout === 'NHWC' && x.rank === 4 ? onnx('Transpose', x, { perm: { type: 'ints', value: [0, 3, 1, 2] } }) : x;
}

/** Logical NCHW → NHWC storage when the record says so. */
function toLayout(x: Tensor, layout: string | undefined): Tensor {
  return layout === 'NHWC' && x.rank === 4 ? onnx('Transpose', x, { perm: { type: 'ints', value: [0, 2, 3, 1] } }) : x;
}

function castCode(d: DType): number {
  const codes: Partial<Record<DType, number>> = { float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, float64: 11 };
  return codes[d] ?? 1;
}

/**
 * The data the modified model's input `io` takes, from the data the original model took:
 * the input-side deleted nodes attached to `io`, in deletion order.
 */
export function applyInputRecords(m: BinModel, io: string, x: Tensor): Tensor {
  const ioDesc = m.inputs.find((i) => i.name === io);
  let y = x;
  const list = m.deletedNodes.filter((d) => d.position === 'input' && d.io.split(',').includes(io));
  list.forEach((d, k) => {
    // a Quantize produces the element type of what follows it: the model input's, unless a later record converts again
    const later = list.slice(k + 1).some((e) => /Quantize/.test(e.opType));
    y = applyDeletedNode(d, y, later ? 'int8' : ioDesc?.dtype && !isFloat(ioDesc.dtype) ? ioDesc.dtype : 'int8');
  });
  return y;
}

/**
 * The data the original model's output `io` gave, from what the modified model gives: the
 * output-side deleted nodes attached to `io`, in reverse deletion order.
 */
export function applyOutputRecords(m: BinModel, io: string, x: Tensor): Tensor {
  let y = x;
  const list = m.deletedNodes.filter((d) => d.position === 'output' && d.io.split(',').includes(io));
  for (const d of list.reverse()) y = applyDeletedNode(d, y);
  return y;
}
