import type { Placement } from '../check/placement';
import { ValueFacts } from '../ops/registry';
import type { RtType } from '../preprocess/hz-preprocess';
import { ElementCost, MarchCosts } from './costs';
import { elementsOf, knownShape } from './op-model';
import type { BorderKind, BorderPerf } from './types';

/**
 * The CPU-side work around the BPU subgraphs, named as the board profile names it: for each
 * value entering a subgraph from the CPU (or a float model input) a `<value>_HzQuantize` and a
 * `<subgraph>_input_layout_convert` (padding into the native layout); for each value leaving
 * one a `<subgraph>_output_layout_convert` and a `<value>_HzDequantize`; and per image input
 * the `Preprocess` of its runtime format (input_type_rt).
 */
export interface BorderContext {
  placement: Placement;
  costs: MarchCosts;
  facts: Map<string, ValueFacts>;
  inputTypeRt: Record<string, RtType>;
  /** model inputs in order */
  inputs: string[];
  subgraphName(id: number): string;
  /** subgraph of a node (by label), undefined for CPU nodes */
  subgraphOf(label: string): number | undefined;
  /** subgraph of the BPU node producing `value` */
  producerSubgraph(value: string): number;
  /** pixels (× batch) of an image input */
  imagePixels(input: string): number;
}

export function bytesPerPixel(t: RtType): number {
  return t === 'nv12' ? 1.5 : t === 'gray' ? 1 : t === 'featuremap' ? 0 : 3;
}

export function estimateBorders(ctx: BorderContext): BorderPerf[] {
  const { placement, costs } = ctx;
  const b = costs.borders;
  const out: BorderPerf[] = [];
  const border = (name: string, kind: BorderKind, value: string, subgraph: number | undefined, elements: number, cost: ElementCost): void => {
    out.push({ name, kind, value, subgraph, elements, latencyMs: (cost.fixedUs + (elements * cost.nsPerElement) / 1000) / 1000, estimate: true });
  };
  const subgraphsFed = (to: string[]): number[] => [...new Set(to.map((t) => ctx.subgraphOf(t)).filter((s): s is number => s !== undefined))];
  const count = (kind: BorderKind, sg: number): number =>
    placement.boundaries.filter((bd) => (kind === 'quantize' ? bd.kind === 'quantize' && subgraphsFed(bd.to).includes(sg) : bd.kind === 'dequantize' && ctx.producerSubgraph(bd.value) === sg)).length;

  for (const bd of placement.boundaries) {
    const elements = elementsOf(knownShape(ctx.facts, bd.value));
    if (bd.kind === 'quantize') {
      const sgs = subgraphsFed(bd.to);
      border(`${bd.value}_HzQuantize`, 'quantize', bd.value, sgs.length === 1 ? sgs[0] : undefined, elements, b.quantize);
      for (const sg of sgs) {
        const suffix = sgs.length > 1 || count('quantize', sg) > 1 ? `_${bd.value}` : '';
        border(`${ctx.subgraphName(sg)}_input_layout_convert${suffix}`, 'input_layout_convert', bd.value, sg, elements, b.inputLayoutConvert);
      }
    } else {
      const sg = ctx.producerSubgraph(bd.value);
      const suffix = count('dequantize', sg) > 1 ? `_${bd.value}` : '';
      border(`${ctx.subgraphName(sg)}_output_layout_convert${suffix}`, 'output_layout_convert', bd.value, sg, elements, b.outputLayoutConvert);
      border(`${bd.value}_HzDequantize`, 'dequantize', bd.value, sg, elements, b.dequantize);
    }
  }

  const images = ctx.inputs.filter((name) => ctx.inputTypeRt[name] && ctx.inputTypeRt[name] !== 'featuremap');
  for (const name of images) {
    const t = ctx.inputTypeRt[name];
    const ic = costs.input[t];
    const bytes = ctx.imagePixels(name) * bytesPerPixel(t);
    out.push({
      name: images.length > 1 ? `Preprocess_${name}` : 'Preprocess', kind: 'preprocess', value: name, elements: bytes,
      latencyMs: (ic.fixedUs + (bytes * ic.nsPerByte) / 1000) / 1000, estimate: true,
    });
  }
  return out;
}
