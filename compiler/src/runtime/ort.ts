import type * as OrtModule from 'onnxruntime-node';
import { PtqError } from '../errors';
import { arrayCtor, DType, TypedArray } from '../onnx/dtype';
import { encodeModel } from '../onnx/encode';
import { Graph, Model, ValueType } from '../onnx/ir';
import { Tensor } from '../onnx/tensor';
import { checkFeed, Engine, RunOptions } from './engine';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface OrtEngineOptions {
  /** intra-op threads (default 1: the machine is shared, and results must not depend on it). */
  threads?: number;
  /** Intermediate values to prepare a session for up front (others are added on demand). */
  fetchable?: string[];
  /** onnxruntime graph optimisation level (default 'all', onnxruntime's own default). */
  optimization?: GraphOptimizationLevel;
  /** Name of the model in messages (default: the graph name). */
  source?: string;
  /** The exact ModelProto bytes of `model` to load (e.g. the file as read) instead of encoding it. */
  bytes?: Uint8Array;
  /** onnxruntime log level: 0 verbose … 4 fatal (default 4: failures reach us as exceptions anyway). */
  logLevel?: 0 | 1 | 2 | 3 | 4;
}

type Ort = typeof OrtModule;
type OrtSession = OrtModule.InferenceSession;
type OrtTensor = OrtModule.Tensor;

let ortModule: Ort | undefined;

/** onnxruntime-node, loaded on first use so the core works (and starts fast) without it. */
function loadOrt(): Ort {
  if (!ortModule) {
    try {
      // Node's own require, not a test runner's: the native binding makes its typed arrays in
      // the main realm, so onnxruntime-common must be evaluated there too for its `instanceof`
      // checks to hold (under jest, modules otherwise run in a vm context).
      ortModule = nodeRequire()('onnxruntime-node') as Ort;
    } catch (e) {
      throw new PtqError('E_ORT_MISSING', `onnxruntime-node cannot be loaded (${firstLine((e as Error).message)})`, {
        fix: 'run `npm ci` in the repository root, or use --engine reference',
      });
    }
  }
  return ortModule;
}

/**
 * Node's real `require`. Test runners (jest) evaluate modules in a vm context and hand out
 * their own `require`/`module`/`process`; the main realm's `process` still reaches Node's
 * loader. Outside such a runner this is the plain `require`.
 */
function nodeRequire(): NodeRequire {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const vm = require('vm') as typeof import('vm');
    const proc = vm.runInThisContext('process') as { getBuiltinModule?: (id: string) => unknown };
    const mod = proc.getBuiltinModule?.('module') as typeof import('module') | undefined;
    if (mod) return mod.createRequire(__filename);
  } catch {
    /* fall back to the ordinary require */
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require;
}

/** Element types onnxruntime-node exchanges with JS (bfloat16 has no JS tensor type there). */
const ORT_TYPES: ReadonlySet<string> = new Set<DType>([
  'float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string',
]);

/**
 * Executes a model with onnxruntime-node (CPU). One session per set of fetched
 * intermediates: fetching a value adds it, by name only, to the graph outputs of a copy
 * of the model (onnxruntime infers its type; declaring one could contradict its own).
 */
export class OrtEngine implements Engine {
  readonly name = 'ort';
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly sessions = new Map<string, Promise<OrtSession>>();
  private readonly inputTypes = new Map<string, ValueType | undefined>();
  /** values computed by nodes of the main graph (what may be fetched) */
  private readonly computed = new Set<string>();
  private readonly label: string;

  private constructor(
    private readonly ort: Ort,
    private readonly model: Model,
    private readonly opts: OrtEngineOptions,
  ) {
    const g = model.graph;
    this.inputNames = g.realInputs.map((v) => v.name);
    this.outputNames = g.outputs.map((v) => v.name);
    for (const v of g.realInputs) this.inputTypes.set(v.name, v.type);
    for (const n of g.nodes) for (const o of n.outputs) if (o) this.computed.add(o);
    this.label = opts.source ?? (g.name || 'model');
  }

  /** Load `model` into onnxruntime; fails with a PtqError when onnxruntime rejects it. */
  static async create(model: Model, opts: OrtEngineOptions = {}): Promise<OrtEngine> {
    const engine = new OrtEngine(loadOrt(), model, opts);
    for (const v of [...model.graph.realInputs, ...model.graph.outputs]) {
      const dtype = v.type?.dtype;
      if (dtype && !ORT_TYPES.has(dtype)) {
        throw new PtqError('E_ORT_DTYPE', `'${engine.label}': value '${v.name}' is ${dtype}, which onnxruntime-node cannot exchange with JavaScript`, {
          subject: v.name,
          fix: 'use --engine reference for this model',
        });
      }
    }
    try {
      // open the session the caller will use (load errors surface here); with `fetchable` the
      // plain session is opened only if a run without fetches asks for it — it would cost a
      // second copy of the weights in onnxruntime (~100 MB on ResNet50) for nothing
      if (opts.fetchable?.length) await engine.session(engine.extraOutputs(opts.fetchable));
      else await engine.session([]);
    } catch (e) {
      await engine.dispose();
      throw e;
    }
    return engine;
  }

  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const name of this.inputNames) {
      const t = feeds[name];
      if (!t) {
        throw new PtqError('E_INPUT_MISSING', `model input '${name}' was not given`, {
          subject: name,
          fix: `provide one tensor per model input (${this.inputNames.join(', ')})`,
        });
      }
      checkFeed(name, t, this.inputTypes.get(name));
      ortFeeds[name] = this.toOrt(t, name);
    }
    const fetch = opts.fetch ?? [];
    const extra = this.extraOutputs(fetch);
    const session = await this.session(extra);
    let out: OrtModule.InferenceSession.OnnxValueMapType;
    try {
      out = await session.run(ortFeeds);
    } catch (e) {
      throw this.ortError('E_ORT_RUN', 'cannot run', e);
    }
    const result: Record<string, Tensor> = {};
    for (const name of [...this.outputNames, ...extra]) result[name] = fromOrt(out[name] as OrtTensor, name);
    for (const name of fetch) {
      if (name in result) continue;
      // graph inputs and initializers are not computed: hand back what is known
      result[name] = feeds[name] ?? (this.model.graph.initializers.get(name) as Tensor);
    }
    return result;
  }

  /** Sessions currently loaded (one per set of fetched intermediates). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const p of all) {
      try {
        await (await p).release();
      } catch {
        /* a session that failed to load has nothing to release */
      }
    }
  }

  /** Fetched names that must become graph outputs (not already outputs, inputs or initializers). */
  private extraOutputs(fetch: readonly string[]): string[] {
    const g = this.model.graph;
    const extra = new Set<string>();
    for (const name of fetch) {
      if (this.outputNames.includes(name)) continue;
      if (this.inputNames.includes(name) || g.initializers.has(name)) continue;
      if (!this.computed.has(name)) {
        throw new PtqError('E_VALUE_UNKNOWN', `value '${name}' is not computed by the model`, { subject: name, fix: 'ask for an existing value name' });
      }
      extra.add(name);
    }
    return [...extra].sort();
  }

  private session(extra: string[]): Promise<OrtSession> {
    const key = extra.join('\u0000');
    let s = this.sessions.get(key);
    if (!s) {
      s = this.createSession(extra);
      this.sessions.set(key, s);
      // a failed load is not cached: the next run reports it again
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  private async createSession(extra: string[]): Promise<OrtSession> {
    const model = extra.length ? withExtraOutputs(this.model, extra) : this.model;
    let bytes: Uint8Array;
    try {
      bytes = !extra.length && this.opts.bytes ? this.opts.bytes : encodeModel(model);
    } catch (e) {
      throw new PtqError('E_MODEL_ENCODE', `cannot encode '${this.label}' for onnxruntime: ${firstLine((e as Error).message)}`, {
        subject: this.label,
        fix: 'the model holds a value the ONNX format cannot store; report this as a bug',
      });
    }
    try {
      return await this.ort.InferenceSession.create(bytes, {
        intraOpNumThreads: this.opts.threads ?? 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: this.opts.optimization ?? 'all',
        logSeverityLevel: this.opts.logLevel ?? 4,
      });
    } catch (e) {
      throw this.ortError('E_ORT_LOAD', 'cannot load', e);
    }
  }

  private toOrt(t: Tensor, name: string): OrtTensor {
    if (!ORT_TYPES.has(t.dtype)) {
      throw new PtqError('E_ORT_DTYPE', `input '${name}' is ${t.dtype}, which onnxruntime-node cannot take from JavaScript`, {
        subject: name,
        fix: 'use --engine reference for this model',
      });
    }
    const type = t.dtype as OrtModule.Tensor.Type;
    if (t.dtype === 'string') return new this.ort.Tensor('string', t.data as string[], t.dims);
    return new this.ort.Tensor(type, sameRealm(t.array, this.ortArrayCtor(type)) as OrtModule.Tensor.DataType, t.dims);
  }

  /** The typed-array constructor onnxruntime-common checks with `instanceof` (its own realm's). */
  private ortArrayCtor(type: OrtModule.Tensor.Type): TypedArrayCtor {
    let c = ortCtors.get(type);
    if (!c) {
      // float16 and bool are held in Uint16Array/Uint8Array, which onnxruntime only builds from those names
      const probe = type === 'float16' ? 'uint16' : type === 'bool' ? 'uint8' : type;
      c = (new this.ort.Tensor(probe, [] as number[], [0]).data as TypedArray).constructor as TypedArrayCtor;
      ortCtors.set(type, c);
    }
    return c;
  }

  /** onnxruntime's message as one line naming the model and, when it says, the node. */
  private ortError(code: string, what: string, e: unknown): PtqError {
    const msg = firstLine(e instanceof Error ? e.message : String(e)).replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, '');
    const node = nodeNameIn(msg);
    const where = node ? ` (node '${node}')` : '';
    return new PtqError(code, `onnxruntime ${what} '${this.label}'${where}: ${msg}`, {
      subject: node ?? this.label,
      fix: code === 'E_ORT_LOAD' ? 'check the model with `onnx.checker`, or use --engine reference' : 'check the input shapes and types against the model',
    });
  }
}

/** A copy of `model` whose graph also outputs `extra` (declared by name only). */
function withExtraOutputs(model: Model, extra: string[]): Model {
  const g = model.graph;
  const graph = new Graph({
    name: g.name,
    docString: g.docString,
    nodes: g.nodes,
    inputs: g.inputs,
    outputs: [...g.outputs, ...extra.map((name) => ({ name }))],
    initializers: g.initializers,
    valueInfo: new Map([...g.valueInfo].filter(([k]) => !extra.includes(k))),
  });
  graph.extra = g.extra;
  return new Model(graph, {
    irVersion: model.irVersion,
    opsetImports: model.opsetImports,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    metadataProps: model.metadataProps,
    extra: model.extra,
  });
}

/** onnxruntime tensor → Tensor (the typed array is already a JS-owned copy). */
export function fromOrt(t: OrtTensor | undefined, name: string): Tensor {
  if (!t) throw new PtqError('E_ORT_RUN', `onnxruntime returned no value for '${name}'`, { subject: name, fix: 'report this as a bug' });
  const dims = t.dims.map(Number);
  const type = t.type as string;
  if (!ORT_TYPES.has(type)) {
    throw new PtqError('E_ORT_DTYPE', `onnxruntime produced '${name}' as ${type}, which nx-ptq does not hold`, {
      subject: name,
      fix: 'use --engine reference for this model',
    });
  }
  const dtype = type as DType;
  const data = t.data as unknown;
  if (dtype === 'string') return new Tensor('string', dims, (data as string[]).slice());
  if (dtype === 'float16' && !(data instanceof Uint16Array)) {
    // newer runtimes may hand out a Float16Array: keep the bit patterns
    const view = data as { buffer: ArrayBuffer; byteOffset: number; length: number };
    return new Tensor(dtype, dims, new Uint16Array(view.buffer, view.byteOffset, view.length).slice());
  }
  return new Tensor(dtype, dims, sameRealm(data as TypedArray, arrayCtor(dtype) as unknown as TypedArrayCtor));
}

type TypedArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TypedArray;
const ortCtors = new Map<string, TypedArrayCtor>();

/**
 * `a` as an instance of `ctor` without copying. Under jest (a vm context) typed arrays made
 * by native code and by our modules come from different realms, and `instanceof` fails.
 */
function sameRealm(a: TypedArray, ctor: TypedArrayCtor): TypedArray {
  if ((a as object) instanceof (ctor as unknown as typeof Object)) return a;
  const v = a as { buffer: ArrayBufferLike; byteOffset: number; length: number };
  return new ctor(v.buffer, v.byteOffset, v.length);
}


function nodeNameIn(msg: string): string | undefined {
  const m =
    /[Nn]ode\s*\(([^)]+)\)/.exec(msg) ??
    /\bnode\.\s*Name:\s*'([^']*)'/.exec(msg) ??
    /\bIn Node:\s*\d*\s*,?\s*([^,\s]+)/.exec(msg) ??
    /\bnode with name '([^']+)'/.exec(msg) ??
    /\bnode '([^']+)'/i.exec(msg);
  return m && m[1] ? m[1] : undefined;
}

function firstLine(s: string): string {
  // drop onnxruntime's source locations (`/onnxruntime_src/…/x.cc:235 `) and C++ signatures
  // (`onnxruntime::RNN<T>::RNN(const …&) [with T = float] `): they mean nothing to a user
  return s
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\/\S+\.(?:cc|h|cpp):\d+\s+/g, '')
    .replace(/\b(?:onnxruntime|std)::[\w:<>~]+\([^)]*\)\s*(?:\[with [^\]]*\]\s*)?/g, '')
    .trim();
}
