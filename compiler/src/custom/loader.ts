/**
 * `custom_op`: operators registered from the user's own JavaScript/TypeScript modules.
 *
 * The reference toolchain registers custom CPU operators from Python files
 * (`custom_op_method: register`, `op_register_files`, `custom_op_dir`); nx-ptq takes the same
 * keys but the files are .ts/.js/.cjs modules (contract: README.md next to this file). Paths are
 * confined to the project (the YAML's folder); every operator is registered as a CPU operator
 * through the ops registry, so placement, shape inference and the ReferenceEngine see it like a
 * built-in one.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { ConfigError } from '../config/issues';
import { parseYaml } from '../config/load';
import type { CustomOpParameters } from '../config/types';
import { PtqError } from '../errors';
import { arrayCtor, DType } from '../onnx/dtype';
import { Tensor, tensorFrom } from '../onnx/tensor';
import { findOp, OpContext, OpDef, registerOp, ValueFacts } from '../ops/registry';
import { isOrtDomain } from '../runtime/select';
import { CustomOpApi, CustomOpDef, LoadedCustomOp, TensorLike } from './types';

/** What `loadCustomOps` reads of a configuration (a `PtqConfig` fits). */
export interface CustomOpConfig {
  customOp?: CustomOpParameters & {
    /**
     * `custom_op_dir` as the YAML wrote it, to refuse an absolute path. When absent, the YAML
     * (`source.file`) is read again for it; a path that resolves inside the project is accepted
     * when neither is available.
     */
    dirAsWritten?: string;
  };
  source: { dir: string; file?: string; lines?: Readonly<Record<string, number>> };
}

type Key = 'custom_op_dir' | 'op_register_files';

export const MODULE_EXTENSIONS: readonly string[] = ['.ts', '.js', '.cjs'];

const SWC_OPTIONS = {
  swcrc: false,
  configFile: false,
  sourceMaps: 'inline' as const,
  jsc: { target: 'es2022' as const },
  module: { type: 'commonjs' as const },
};

/** A registered custom operator: the registry holds a forwarder that reads the current slot. */
interface Slot {
  key: string;
  def: CustomOpDef;
  /** the module as configured, and its real path (what identifies it) */
  file: string;
  real: string;
}

const slots = new Map<string, Slot>();

/**
 * Load the modules `cfg.customOp.registerFiles` and register their operators (quant role
 * 'cpu'). Refuses, as a one-line `ConfigError` (E_CONFIG) naming the key, paths outside the
 * project (`projectRoot`, default the YAML's folder) — absolute, `..`, or through a symlink —,
 * other file types, missing files, modules without a registration and operators another module
 * already registered. Loading the same module again (a stage run twice in one process) replaces
 * its operators' implementation instead of failing. Nothing is registered when anything fails.
 */
export function loadCustomOps(cfg: CustomOpConfig, projectRoot: string = cfg.source.dir): LoadedCustomOp[] {
  const co = cfg.customOp;
  if (!co || co.registerFiles.length === 0) return [];
  const err = errorFactory(cfg);
  const root = path.resolve(projectRoot);
  const realRoot = realpathOr(root);
  const show = (p: string): string => path.relative(root, p) || '.';

  let dir = root;
  if (co.dir !== undefined) {
    dir = checkDir(cfg, co.dir, root, realRoot, err);
  }
  const files = co.registerFiles.map((f) => checkFile(path.resolve(dir, f), dir, realRoot, show, err));

  const state: LoadState = { realRoot, show, err, modules: new Map() };
  const pending: Slot[] = [];
  const loaded: LoadedCustomOp[] = [];
  for (const file of files) {
    const source = fs.readFileSync(file, 'utf8');
    const sha256 = crypto.createHash('sha256').update(source).digest('hex');
    const real = fs.realpathSync(file);
    const defs = collectDefs(file, state);
    const here = new Map<string, Slot>();
    defs.forEach((def, i) => {
      checkDef(def, i, defs.length, show(file), err);
      const key = `${def.domain}::${def.type}`;
      here.set(key, { key, def, file, real });
    });
    for (const slot of here.values()) {
      const other = pending.find((p) => p.key === slot.key) ?? slots.get(slot.key);
      if (other && other.real !== real) {
        throw err('op_register_files', `'${show(file)}' registers ${slot.key}, which '${show(other.file)}' registers too`, 'give one of the operators another type or domain, or drop one of the modules from op_register_files');
      }
      if (!slots.has(slot.key) && findOp(slot.def.domain, slot.def.type)) {
        throw err('op_register_files', `'${show(file)}' registers ${slot.key}, which is a built-in operator of nx-ptq`, 'use your own operator domain (e.g. com.example)');
      }
      pending.push(slot);
      loaded.push({ domain: slot.def.domain, type: slot.def.type, key: slot.key, file, sha256 });
    }
  }
  for (const slot of pending) install(slot);
  return loaded;
}

/** The operators registered from custom modules so far (`domain::type` → module path). */
export function registeredCustomOps(): Map<string, string> {
  return new Map([...slots.values()].map((s) => [s.key, s.file]));
}

// ---------------------------------------------------------------- paths

type ErrorFactory = (key: Key, message: string, fix: string) => ConfigError;

function errorFactory(cfg: CustomOpConfig): ErrorFactory {
  const lines = cfg.source.lines ?? {};
  return (key, message, fix) =>
    new ConfigError(cfg.source.file, [{ group: 'custom_op', key, line: lines[`custom_op.${key}`] ?? lines.custom_op, message, fix }]);
}

function checkDir(cfg: CustomOpConfig, dirAbs: string, root: string, realRoot: string, err: ErrorFactory): string {
  const written = cfg.customOp?.dirAsWritten ?? writtenDir(cfg);
  const shown = written ?? dirAbs;
  const fix = 'put the modules in a folder inside the project and name it relative to the YAML, e.g. custom_op_dir: ./custom_op';
  if (written !== undefined && (path.isAbsolute(written) || path.win32.isAbsolute(written))) {
    throw err('custom_op_dir', `'${written}' is an absolute path; it must be relative to the YAML's folder`, fix);
  }
  const dir = path.resolve(dirAbs);
  if (!inside(root, dir)) throw err('custom_op_dir', `'${shown}' leaves the project folder '${root}'`, fix);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw err('custom_op_dir', `'${shown}' does not exist`, 'create the folder with the operator modules, or correct custom_op_dir');
  }
  if (!stat.isDirectory()) throw err('custom_op_dir', `'${shown}' is not a folder`, 'name the folder that holds the operator modules');
  const real = fs.realpathSync(dir);
  if (!inside(realRoot, real)) throw err('custom_op_dir', `'${shown}' is a link to '${real}', outside the project folder '${root}'`, fix);
  return dir;
}

function checkFile(file: string, dir: string, realRoot: string, show: (p: string) => string, err: ErrorFactory): string {
  const rel = path.relative(dir, file);
  const fix = 'name modules inside custom_op_dir (e.g. op_register_files: my_op.ts)';
  if (!inside(dir, file)) throw err('op_register_files', `'${rel}' is outside custom_op_dir '${show(dir)}'`, fix);
  const ext = path.extname(file).toLowerCase();
  if (!MODULE_EXTENSIONS.includes(ext)) {
    const why = ext === '.py' ? 'nx-ptq runs custom operators written in TypeScript/JavaScript, not Python' : `'${ext || 'no extension'}' is not a module type nx-ptq loads`;
    throw err('op_register_files', `'${rel}': ${why} (use ${MODULE_EXTENSIONS.join(', ')})`, 'write the operator as a .ts or .js module exporting register(api) or ops (see compiler/src/custom/README.md)');
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw err('op_register_files', `'${rel}' not found in custom_op_dir '${show(dir)}'`, 'correct the file name or add the module');
  }
  if (!stat.isFile()) throw err('op_register_files', `'${rel}' is not a file`, fix);
  const real = fs.realpathSync(file);
  if (!inside(realRoot, real)) throw err('op_register_files', `'${rel}' is a link to '${real}', outside the project folder`, fix);
  return file;
}

/** `custom_op_dir` as the YAML file wrote it, when that file can be read again. */
function writtenDir(cfg: CustomOpConfig): string | undefined {
  const file = cfg.source.file;
  if (!file) return undefined;
  for (const candidate of [path.resolve(file), path.resolve(cfg.source.dir, path.basename(file))]) {
    let text: string;
    try {
      text = fs.readFileSync(candidate, 'utf8');
    } catch {
      continue;
    }
    try {
      const { doc } = parseYaml(text, file);
      const group = (doc as { custom_op?: { custom_op_dir?: unknown } } | null)?.custom_op;
      return typeof group?.custom_op_dir === 'string' ? group.custom_op_dir : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function inside(parent: string, p: string): boolean {
  const rel = path.relative(parent, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

// ---------------------------------------------------------------- modules

interface LoadState {
  realRoot: string;
  show: (p: string) => string;
  err: ErrorFactory;
  /** modules evaluated during this load, by real path (shared helpers load once; cycles resolve) */
  modules: Map<string, { exports: unknown }>;
}

interface ModuleShape {
  register?: unknown;
  ops?: unknown;
  default?: unknown;
}

/** The operator definitions a module exports (`register(api)` or `ops`). */
function collectDefs(file: string, state: LoadState): CustomOpDef[] {
  const shown = state.show(file);
  const exported = requireModule(file, state) as ModuleShape | undefined;
  const target = registrationOf(exported);
  const fix = 'export a function register(api) that calls api.registerOp({...}), or an array ops (see compiler/src/custom/README.md)';
  if (!target) throw state.err('op_register_files', `'${shown}' exports neither register(api) nor ops`, fix);
  if (typeof target.register === 'function') {
    const defs: CustomOpDef[] = [];
    let open = true;
    const api: CustomOpApi = {
      registerOp(def: CustomOpDef): void {
        if (!open) throw new Error(`${shown}: api.registerOp called after register(api) returned`);
        defs.push(def);
      },
      Tensor,
      tensorFrom,
      PtqError,
    };
    try {
      (target.register as (api: CustomOpApi) => unknown)(api);
    } catch (e) {
      if (e instanceof PtqError) throw e;
      throw state.err('op_register_files', `'${shown}': register(api) failed: ${firstLine(e)}`, 'fix the module');
    } finally {
      open = false;
    }
    if (defs.length === 0) throw state.err('op_register_files', `'${shown}': register(api) registered no operator`, 'call api.registerOp({...}) inside register');
    return defs;
  }
  if (!Array.isArray(target.ops) || target.ops.length === 0) {
    throw state.err('op_register_files', `'${shown}' exports ops, but not as a non-empty array`, fix);
  }
  return target.ops as CustomOpDef[];
}

function registrationOf(exported: ModuleShape | undefined): ModuleShape | undefined {
  if (!exported || (typeof exported !== 'object' && typeof exported !== 'function')) return undefined;
  if (typeof exported.register === 'function' || exported.ops !== undefined) return exported;
  const d = exported.default;
  if (typeof d === 'function') return { register: d };
  if (d && typeof d === 'object') {
    const inner = d as ModuleShape;
    if (typeof inner.register === 'function' || inner.ops !== undefined) return inner;
  }
  return undefined;
}

/**
 * Evaluate a module of the project: TypeScript and JavaScript are compiled to CommonJS by
 * swc (as bin/ts-hook.js does for the compiler's own sources), .cjs runs as is. Evaluated in
 * this realm with its own `require`: relative .ts/.js/.cjs helpers load the same way (and must
 * be inside the project), anything else (node builtins, packages, .json) through Node.
 */
function requireModule(file: string, state: LoadState): unknown {
  const real = fs.realpathSync(file);
  const cached = state.modules.get(real);
  if (cached) return cached.exports;
  const shown = state.show(file);
  const source = fs.readFileSync(real, 'utf8');
  let code: string;
  try {
    code = compile(real, source);
  } catch (e) {
    throw state.err('op_register_files', `'${shown}' does not compile: ${swcMessage(e)}`, 'fix the syntax error in the module');
  }
  const mod = { exports: {} as unknown };
  state.modules.set(real, mod);
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluating the user's module is the point
    const fn = new Function('exports', 'require', 'module', '__filename', '__dirname', code) as (
      exports: unknown,
      require: (spec: string) => unknown,
      module: { exports: unknown },
      filename: string,
      dirname: string,
    ) => void;
    fn.call(mod.exports, mod.exports, moduleRequire(real, state), mod, real, path.dirname(real));
  } catch (e) {
    state.modules.delete(real);
    if (e instanceof PtqError) throw e;
    throw state.err('op_register_files', `'${shown}' failed while loading: ${firstLine(e)}`, 'fix the error in the module (running it with node shows the stack)');
  }
  return mod.exports;
}

function compile(file: string, source: string): string {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.cjs') return source;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when a project has custom operators
  const swc = require('@swc/core') as typeof import('@swc/core');
  const syntax = ext === '.ts' ? { syntax: 'typescript' as const } : { syntax: 'ecmascript' as const };
  return swc.transformSync(source, { filename: file, ...SWC_OPTIONS, jsc: { ...SWC_OPTIONS.jsc, parser: syntax } }).code;
}

function moduleRequire(from: string, state: LoadState): (spec: string) => unknown {
  const node = createRequire(from);
  return (spec: string): unknown => {
    const relative = spec === '.' || spec === '..' || spec.startsWith('./') || spec.startsWith('../') || path.isAbsolute(spec);
    if (!relative) return node(spec);
    const found = resolveLocal(path.resolve(path.dirname(from), spec));
    if (!found) throw new Error(`cannot find module '${spec}' (required by ${state.show(from)})`);
    if (!MODULE_EXTENSIONS.includes(path.extname(found).toLowerCase())) return node(found);
    if (!inside(state.realRoot, fs.realpathSync(found))) {
      throw state.err('op_register_files', `'${state.show(from)}' requires '${spec}', which is outside the project folder`, 'keep the helpers of custom operators inside the project');
    }
    return requireModule(found, state);
  };
}

function resolveLocal(base: string): string | undefined {
  const candidates = [base, ...MODULE_EXTENSIONS.map((e) => base + e), ...MODULE_EXTENSIONS.map((e) => path.join(base, `index${e}`)), `${base}.json`];
  return candidates.find((c) => {
    try {
      return fs.statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

// ---------------------------------------------------------------- definitions

function checkDef(def: CustomOpDef, i: number, n: number, shown: string, err: ErrorFactory): void {
  const which = n > 1 ? `operator #${i + 1}` : 'the operator';
  const bad = (what: string, fix: string): ConfigError => err('op_register_files', `'${shown}': ${which}${typeof def?.type === 'string' ? ` (${def.type})` : ''} ${what}`, fix);
  if (!def || typeof def !== 'object') throw bad('is not an object', 'pass { domain, type, infer, run } for each operator');
  if (typeof def.domain !== 'string') throw bad('has no domain', "give it your own domain, e.g. domain: 'com.example'");
  if (isOrtDomain(def.domain)) {
    throw bad(`is in domain '${def.domain || 'ai.onnx'}'${def.domain ? '' : ' (the default ONNX domain)'}, which belongs to ONNX/onnxruntime`, "use your own domain, e.g. domain: 'com.example'");
  }
  if (typeof def.type !== 'string' || def.type === '' || def.type.includes('::')) throw bad('has no valid type (the ONNX op_type)', "give it a type, e.g. type: 'ScaledTanh'");
  if (typeof def.run !== 'function') throw bad('has no run(ctx, inputs) function', 'add the float kernel run(ctx, inputs) => outputs');
  if (typeof def.infer !== 'function') throw bad('has no infer(ctx, inputs) function', 'add the shape function infer(ctx, inputs) => output facts');
  if (def.sinceOpset !== undefined && !(Number.isInteger(def.sinceOpset) && def.sinceOpset >= 1)) throw bad('has a sinceOpset that is not a positive integer', 'drop sinceOpset or set it to 1 or more');
}

function install(slot: Slot): void {
  const current = slots.get(slot.key);
  if (current) {
    current.def = slot.def; // the same module loaded again: its newest code wins
    return;
  }
  slots.set(slot.key, slot);
  registerOp(forwarder(slot.key), `custom operator module ${slot.file}`);
}

/** The registry's entry for a custom operator: forwards to the slot, checks what the module returns. */
function forwarder(key: string): OpDef {
  const slot = (): Slot => slots.get(key) as Slot;
  const first = slot().def;
  return {
    type: first.type,
    domain: first.domain,
    quant: 'cpu',
    get sinceOpset(): number {
      return slot().def.sinceOpset ?? 1;
    },
    get nativeHalf(): boolean {
      return slot().def.nativeHalf === true;
    },
    run(ctx: OpContext, inputs: (Tensor | undefined)[]): Tensor[] {
      const s = slot();
      const out = guarded(s, ctx, 'run', () => s.def.run(ctx, inputs));
      if (!Array.isArray(out)) throw moduleError(s, ctx, 'run', `returned ${typeof out}, not an array of tensors`);
      const named = ctx.node.outputs.reduce((k, o, i) => (o ? i + 1 : k), 0);
      if (out.length < named) throw moduleError(s, ctx, 'run', `returned ${out.length} tensor(s) for ${named} output(s)`);
      return out.map((t, i) => asTensor(t, s, ctx, i));
    },
    infer(ctx: OpContext, inputs: (ValueFacts | undefined)[]): ValueFacts[] {
      const s = slot();
      const out = guarded(s, ctx, 'infer', () => s.def.infer(ctx, inputs));
      if (!Array.isArray(out)) throw moduleError(s, ctx, 'infer', `returned ${typeof out}, not an array of value facts`);
      return out.map((f) => (f && typeof f === 'object' ? f : {}));
    },
  };
}

function guarded<T>(s: Slot, ctx: OpContext, phase: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PtqError) throw e;
    throw moduleError(s, ctx, phase, `threw: ${firstLine(e)}`);
  }
}

function moduleError(s: Slot, ctx: OpContext, phase: string, what: string): PtqError {
  return new PtqError('E_CUSTOM_OP', `node '${ctx.node.label}' (${s.key}): custom operator ${phase} in '${s.file}' ${what}`, {
    subject: ctx.node.label,
    fix: `fix ${phase}() of ${s.key} in '${path.basename(s.file)}'`,
  });
}

function asTensor(t: unknown, s: Slot, ctx: OpContext, i: number): Tensor {
  if (t instanceof Tensor) return t;
  const like = t as Partial<TensorLike> | undefined;
  const dims = like?.dims;
  const bad = (why: string): PtqError => moduleError(s, ctx, 'run', `returned an invalid output ${i}: ${why}`);
  if (!like || typeof like !== 'object') throw bad('not a tensor');
  if (typeof like.dtype !== 'string') throw bad('no dtype');
  let ctorOk: boolean;
  try {
    ctorOk = like.dtype === 'string' || typeof arrayCtor(like.dtype as DType) === 'function';
  } catch {
    ctorOk = false;
  }
  if (!ctorOk) throw bad(`unknown dtype '${like.dtype}'`);
  if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) throw bad('dims is not a list of sizes');
  const data = like.data;
  if (!data || typeof data.length !== 'number') throw bad('no data');
  const size = dims.reduce((p, d) => p * d, 1);
  if (data.length !== size) throw bad(`${data.length} values for dims [${dims.join(',')}] (${size} needed)`);
  const dtype = like.dtype as DType;
  if (dtype === 'string') return new Tensor('string', dims, Array.from(data as ArrayLike<string>, String));
  const Ctor = arrayCtor(dtype);
  if (data instanceof Ctor) return new Tensor(dtype, dims, data);
  return tensorFrom(dtype, dims, data as ArrayLike<number | bigint>);
}

// ---------------------------------------------------------------- messages

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n').map((l) => l.trim()).find((l) => l) ?? 'unknown error';
}

/** swc's diagnostics are drawn over several lines; keep the message and its position. */
function swcMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split('\n').map((l) => l.trim());
  const msg = lines.find((l) => /^x\s/.test(l))?.replace(/^x\s+/, '');
  // the snippet header `,-[file:line:col]` names the offending line (col is the snippet's start)
  const line = lines.map((l) => /\[[^\]]*:(\d+):\d+\]/.exec(l)?.[1]).find(Boolean);
  return msg ? `${msg}${line ? ` at line ${line}` : ''}` : firstLine(e);
}
