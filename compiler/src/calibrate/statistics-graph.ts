import { cloneModel } from '../onnx/clone';
import { Attribute, Graph, Model, Node } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { Namer } from '../quantize/names';

/**
 * A copy of a model that calibration adds its statistics nodes to (collect.ts rangeModel,
 * sampled.ts statisticsModel): fresh value names, and int64 constants made once each.
 */
export class StatisticsGraph {
  readonly model: Model;
  readonly g: Graph;
  private readonly namer: Namer;
  private readonly opset: number;
  private readonly int64s = new Map<string, string>();

  constructor(source: Model) {
    this.model = cloneModel(source);
    this.g = this.model.graph;
    this.namer = new Namer(this.g);
    this.opset = source.opset('') ?? 13;
  }

  /** A node of one output, named after it; returns the output. */
  node(opType: string, inputs: string[], base: string, attrs: Record<string, Attribute> = {}): string {
    const out = this.namer.fresh(base);
    this.g.nodes.push(new Node({ opType, name: out, inputs, outputs: [out], attrs }));
    return out;
  }

  /** An int64 vector constant (one initializer per distinct value). */
  int64(values: number[]): string {
    const key = values.join(',');
    let name = this.int64s.get(key);
    if (!name) {
      name = this.namer.fresh(`calibration_i64_${key.replace(/[^0-9]+/g, '_')}`);
      this.g.initializers.set(name, new Tensor('int64', [values.length], BigInt64Array.from(values, BigInt)));
      this.int64s.set(key, name);
    }
    return name;
  }

  /**
   * ReduceMin/ReduceMax of `name` (rank `rank`), keepdims 0: over every axis but 1 (one number per
   * channel) when `perChannel` and rank ≥ 2, else over every axis. Axes as an input from opset 18.
   */
  reduce(op: 'ReduceMin' | 'ReduceMax', name: string, rank: number, perChannel: boolean): string {
    const axes = rank < 2 || !perChannel ? [] : [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
    const attrs: Record<string, Attribute> = { keepdims: { type: 'int', value: 0 } };
    const inputs = [name];
    if (axes.length && this.opset >= 18) inputs.push(this.int64(axes));
    else if (axes.length) attrs.axes = { type: 'ints', value: axes };
    return this.node(op, inputs, `${name}__calibration_${op === 'ReduceMin' ? 'min' : 'max'}`, attrs);
  }

  /** The graph's outputs become `outputs` (when there are any: the model's own keep it valid). */
  setOutputs(outputs: string[]): void {
    if (outputs.length) this.g.outputs = outputs.map((o) => ({ name: o }));
  }
}
