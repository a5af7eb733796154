import { PtqError } from '../errors';
import { Graph, Model, Node, ValueInfo } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { GraphEmitter, LayerContext } from './emit';
import { ConvertState, LAYER_CONVERTERS } from './layers';
import { caffeType, LayerParameter, NetParameter, NetStateRule, V1_LAYER_TYPES } from './schema';
import { parseTextFormat } from './text-format';
import { CaffeBlob } from './weights';

/** A parsed prototxt: the net, where each message starts, and the file name for messages. */
export interface ParsedNet {
  net: NetParameter;
  lines: WeakMap<object, number>;
  source: string;
}

export function parsePrototxt(text: string, source = '<prototxt>'): ParsedNet {
  const { message, lines } = parseTextFormat(text, caffeType('NetParameter'), source);
  return { net: message as unknown as NetParameter, lines, source };
}

/** Layer types whose first top is a network input (the rest are labels, unused in deployment). */
const DATA_LAYERS = new Set(['Input', 'MemoryData', 'ImageData', 'Data', 'HDF5Data', 'WindowData']);

/**
 * Convert a Caffe net (TEST phase) and its learned blobs to an ONNX model (opset 13).
 *
 * Node names are the Caffe layer names (helper nodes `<layer>_<what>`), values are the top
 * names, graph inputs the Caffe input names, graph outputs the blobs no layer consumes, in
 * Caffe's (sorted) order. In-place layers (top == bottom) make several versions of a blob:
 * the last one keeps the blob name — what Caffe's `net.blobs[name]` holds after a forward
 * pass — and the earlier ones are named `<blob>_<layer that wrote them>`.
 */
export function convertCaffeNet(parsed: ParsedNet, weights: ReadonlyMap<string, CaffeBlob[]>): Model {
  const { net, source } = parsed;
  const layers = filterForTest(net, upgradeLayers(parsed));
  const em = new GraphEmitter();
  const st: ConvertState = { plainBatchNorms: new Set(), channelScales: new Map() };
  /** current version (value id) of each blob */
  const current = new Map<string, string>();
  /** blobs produced and not (yet) consumed: Caffe's network outputs */
  const available = new Set<string>();
  const labels = new Map<string, string>();
  const inputs: { name: string; id: string }[] = [];
  const where = (o: object): string => {
    const line = parsed.lines.get(o);
    return line === undefined ? `prototxt '${source}'` : `prototxt '${source}' line ${line}`;
  };
  const addInput = (name: string, shape: number[], what: string): void => {
    if (current.has(name)) throw new PtqError('E_CAFFE_MODEL', `${what}: input '${name}' is declared twice`, { subject: name, fix: 'give every input a distinct name' });
    if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new PtqError('E_CAFFE_MODEL', `${what}: input '${name}' has shape [${shape.join(',')}]; Caffe inputs need positive sizes`, {
        subject: name,
        fix: 'give the input its full shape, e.g. input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } }',
      });
    }
    const id = em.newValue(shape, { kind: 'blob', blob: name, layer: 'input' });
    inputs.push({ name, id });
    current.set(name, id);
    available.add(name);
  };

  for (const [name, shape] of netLevelInputs(net, source)) addInput(name, shape, `prototxt '${source}'`);

  for (const layer of layers) {
    const name = layer.name ?? '';
    const type = layer.type ?? '';
    const at = where(layer);
    if (DATA_LAYERS.has(type)) {
      const tops = layer.top ?? [];
      dataLayerShapes(layer, at).forEach((shape, k) => addInput(tops[k], shape, `layer '${name}' (${type}, ${at})`));
      for (const t of tops.slice(1)) if (type !== 'Input') labels.set(t, name);
      continue;
    }
    const convert = LAYER_CONVERTERS[type];
    if (!convert) {
      throw new PtqError('E_CAFFE_UNSUPPORTED_LAYER', `Not support layer name=${name} type=${type}`, {
        subject: name,
        fix: 'remove the layer from the prototxt (training-only layers such as Accuracy and losses do not belong in a deploy net) or replace it with supported layers',
      });
    }
    const bottoms = (layer.bottom ?? []).map((b) => {
      const id = current.get(b);
      if (id !== undefined) return id;
      const from = labels.get(b);
      throw new PtqError(
        'E_CAFFE_MODEL',
        from !== undefined
          ? `layer '${name}' (${type}, ${at}) reads '${b}', the label output of data layer '${from}', which only exists when training`
          : `layer '${name}' (${type}, ${at}) reads blob '${b}', which no earlier layer or input produces`,
        { subject: name, fix: 'check the bottom names and the layer order (and the include/exclude phase rules)' },
      );
    });
    const ctx = new LayerContext(em, layer, bottoms, weights.get(name), at);
    const tops = convert(ctx, st);
    for (const b of layer.bottom ?? []) available.delete(b);
    (layer.top ?? []).forEach((t, k) => {
      current.set(t, tops[k]);
      available.add(t);
    });
  }

  foldScales(em, st);
  if (available.size === 0) {
    throw new PtqError('E_CAFFE_MODEL', `prototxt '${source}': the net has no output (every blob is consumed)`, { subject: source, fix: 'check the prototxt' });
  }
  return buildModel(em, net.name ?? 'caffe', inputs, current, [...available].sort());
}

/**
 * The network inputs (names and shapes) of a parsed net in the TEST phase, without the
 * weights: what a stage needs to match a config's input_shape before converting.
 */
export function caffeNetInputs(parsed: ParsedNet): { name: string; shape: number[] }[] {
  const out = netLevelInputs(parsed.net, parsed.source).map(([name, shape]) => ({ name, shape }));
  for (const layer of filterForTest(parsed.net, upgradeLayers(parsed))) {
    if (!DATA_LAYERS.has(layer.type ?? '')) continue;
    const tops = layer.top ?? [];
    const at = parsed.lines.get(layer);
    dataLayerShapes(layer, at === undefined ? `prototxt '${parsed.source}'` : `prototxt '${parsed.source}' line ${at}`).forEach((shape, k) => out.push({ name: tops[k], shape }));
  }
  return out;
}

/** `layer` (V2) or `layers` (V1, with enum types) as LayerParameters. */
function upgradeLayers(parsed: ParsedNet): LayerParameter[] {
  const { net, source, lines } = parsed;
  if (net.layer?.length && net.layers?.length) {
    throw new PtqError('E_CAFFE_MODEL', `prototxt '${source}' mixes 'layer' and the old 'layers' lists`, { subject: source, fix: 'use one of them' });
  }
  if (!net.layers?.length) return net.layer ?? [];
  return net.layers.map((v1) => {
    const type = v1.type === undefined ? '' : V1_LAYER_TYPES[v1.type] ?? v1.type;
    const l: LayerParameter = { ...v1, type };
    const line = lines.get(v1);
    if (line !== undefined) lines.set(l, line);
    return l;
  });
}

/** The layers Caffe instantiates in the TEST phase (NetState rules: phase, level, stages). */
function filterForTest(net: NetParameter, layers: LayerParameter[]): LayerParameter[] {
  const level = net.state?.level ?? 0;
  const stages = new Set(net.state?.stage ?? []);
  const meets = (r: NetStateRule): boolean =>
    (r.phase === undefined || r.phase === 'TEST') &&
    (r.min_level === undefined || level >= r.min_level) &&
    (r.max_level === undefined || level <= r.max_level) &&
    (r.stage ?? []).every((s) => stages.has(s)) &&
    !(r.not_stage ?? []).some((s) => stages.has(s));
  return layers.filter((l) => {
    const inc = l.include ?? [];
    const exc = l.exclude ?? [];
    if (inc.length && exc.length) {
      throw new PtqError('E_CAFFE_MODEL', `layer '${l.name}' has both include and exclude rules`, { subject: l.name, fix: 'specify either include rules or exclude rules' });
    }
    return inc.length ? inc.some(meets) : !exc.some(meets);
  });
}

/** Net-level `input` with `input_shape` or `input_dim` (4 per input). */
function netLevelInputs(net: NetParameter, source: string): [string, number[]][] {
  const names = net.input ?? [];
  const shapes = net.input_shape ?? [];
  const dims = net.input_dim ?? [];
  if (!names.length) {
    if (shapes.length || dims.length) throw new PtqError('E_CAFFE_MODEL', `prototxt '${source}' has input_shape/input_dim but no input`, { subject: source, fix: 'add input: "<name>"' });
    return [];
  }
  if (shapes.length && dims.length) throw new PtqError('E_CAFFE_MODEL', `prototxt '${source}' has both input_shape and input_dim`, { subject: source, fix: 'keep one of them' });
  if (shapes.length) {
    if (shapes.length !== names.length) {
      throw new PtqError('E_CAFFE_MODEL', `prototxt '${source}' has ${names.length} inputs but ${shapes.length} input_shape entries`, { subject: source, fix: 'give one input_shape per input' });
    }
    return names.map((n, i) => [n, shapes[i].dim ?? []]);
  }
  if (dims.length !== 4 * names.length) {
    throw new PtqError('E_CAFFE_MODEL', `prototxt '${source}' has ${names.length} inputs but ${dims.length} input_dim values (4 per input)`, {
      subject: source,
      fix: 'give input_dim N, C, H, W for every input, or use input_shape',
    });
  }
  return names.map((n, i) => [n, dims.slice(4 * i, 4 * i + 4)]);
}

/** Shapes of the network inputs a data layer provides (its first top; Input: every top). */
function dataLayerShapes(l: LayerParameter, at: string): number[][] {
  const what = `layer '${l.name}' (${l.type}, ${at})`;
  const tops = l.top ?? [];
  const fail = (msg: string, fix: string): PtqError => new PtqError('E_CAFFE_MODEL', `${what}: ${msg}`, { subject: l.name, fix });
  if (!tops.length) throw fail('has no top', 'give the layer a top');
  const inputFix = 'replace it with an Input layer: input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } }';
  switch (l.type) {
    case 'Input': {
      const shapes = l.input_param?.shape ?? [];
      if (shapes.length !== 1 && shapes.length !== tops.length) throw fail(`has ${tops.length} tops but ${shapes.length} shapes`, 'give one shape, or one per top');
      return tops.map((_, k) => (shapes.length === 1 ? shapes[0] : shapes[k]).dim ?? []);
    }
    case 'MemoryData': {
      const p = l.memory_data_param ?? {};
      return [[p.batch_size ?? 0, p.channels ?? 0, p.height ?? 0, p.width ?? 0]];
    }
    case 'ImageData': {
      const p = l.image_data_param ?? {};
      const crop = l.transform_param?.crop_size || p.crop_size || 0;
      const h = crop || p.new_height || 0;
      const w = crop || p.new_width || 0;
      if (!h || !w) throw fail('the image size is not in the prototxt (no new_height/new_width or crop_size)', inputFix);
      return [[p.batch_size ?? 1, p.is_color ?? true ? 3 : 1, h, w]];
    }
    default:
      throw fail('its data shape comes from the database, not the prototxt', inputFix);
  }
}

/** Fold a per-channel learned Scale into the BatchNormalization right before it. */
function foldScales(em: GraphEmitter, st: ConvertState): void {
  const readers = new Map<string, number>();
  for (const n of em.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const producer = new Map<string, Node>();
  for (const n of em.nodes) for (const o of n.outputs) producer.set(o, n);
  const drop = new Set<Node>();
  for (const [last, sc] of st.channelScales) {
    const bn = producer.get(sc.input);
    if (!bn || !st.plainBatchNorms.has(bn) || readers.get(sc.input) !== 1) continue;
    // A graph output or another reader of the BatchNorm result would lose it: only one reader.
    em.initializers.set(bn.inputs[1], new Tensor('float32', [sc.scale.length], sc.scale));
    if (sc.bias) em.initializers.set(bn.inputs[2], new Tensor('float32', [sc.bias.length], sc.bias));
    bn.outputs[0] = last.outputs[0];
    st.plainBatchNorms.delete(bn);
    for (const n of sc.nodes) drop.add(n);
  }
  if (!drop.size) return;
  const kept = em.nodes.filter((n) => !drop.has(n));
  em.nodes.length = 0;
  em.nodes.push(...kept);
  const used = new Set<string>();
  for (const n of em.nodes) for (const i of n.inputs) used.add(i);
  for (const id of [...em.initializers.keys()]) if (!used.has(id)) em.initializers.delete(id);
}

function buildModel(em: GraphEmitter, name: string, inputs: { name: string; id: string }[], current: Map<string, string>, outputs: string[]): Model {
  const reserved = new Map<string, string>();
  const claimed = new Set<string>();
  for (const i of inputs) {
    reserved.set(i.id, i.name);
    claimed.add(i.name);
  }
  // Outputs first, so an output keeps its name when several blobs share one value (Split).
  const outIds: string[] = [];
  for (const blob of outputs) {
    let id = current.get(blob) as string;
    if (reserved.has(id) && reserved.get(id) !== blob) {
      const copy = em.newValue(em.shapeOf(id), { kind: 'helper', name: blob });
      em.addNode('Identity', `${blob}_identity`, [id], [copy]);
      id = copy;
    }
    if (!claimed.has(blob)) {
      reserved.set(id, blob);
      claimed.add(blob);
    }
    outIds.push(id);
  }
  for (const [blob, id] of current) {
    if (!reserved.has(id) && !claimed.has(blob)) {
      reserved.set(id, blob);
      claimed.add(blob);
    }
  }
  const names = em.finalNames(reserved);
  const rename = (id: string): string => names.get(id) ?? id;
  for (const n of em.nodes) {
    n.inputs = n.inputs.map(rename);
    n.outputs = n.outputs.map(rename);
  }
  const info = (id: string): ValueInfo => ({ name: rename(id), type: { dtype: 'float32', shape: em.shapeOf(id).slice() } });
  const initializers = new Map<string, Tensor>();
  for (const [id, t] of em.initializers) initializers.set(rename(id), t);
  const graph = new Graph({
    name,
    nodes: em.nodes.slice(),
    inputs: inputs.map((i) => info(i.id)),
    outputs: outIds.map(info),
    initializers,
  });
  graph.validate();
  return new Model(graph, { irVersion: 7, opsetImports: [{ domain: '', version: 13 }], producerName: 'nx-ptq', docString: `converted from the Caffe net '${name}'` });
}
