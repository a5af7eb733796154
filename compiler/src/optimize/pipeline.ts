import { Model } from '../onnx/ir';
import { constantFolding, FoldOptions } from './constant-folding';
import { constantToInitializer } from './constant-to-initializer';
import { foldBatchNorm } from './fold-batchnorm';
import { foldScaleIntoConv } from './fold-scale-into-conv';
import { gemmToConv, GemmToConvOptions } from './gemm-to-conv';
import { Pass } from './pass';
import { prune } from './prune';
import { removeIdentity } from './remove-identity';

export interface OptimizeOptions {
  /** Fixed graph input shapes (input_shape): shape subgraphs fold against them. */
  inputShapes?: Record<string, number[]>;
  /** Passes to skip, by name. */
  skip?: string[];
  /** Rounds of the whole list at most (default 8); it stops earlier once a round changes nothing. */
  maxRounds?: number;
  constantFolding?: Omit<FoldOptions, 'inputShapes'>;
  gemmToConv?: GemmToConvOptions;
}

export interface NamedPass {
  name: string;
  run: Pass;
}

/** One pass run that did something (or had something to say). */
export interface PassLogEntry {
  round: number;
  pass: string;
  changed: number;
  notes: string[];
}

export interface OptimizeResult {
  entries: PassLogEntry[];
  /** The entries as log lines, e.g. `optimize round 1 fold-batchnorm: 3 change(s); 3 BatchNormalization node(s) folded …`. */
  lines: string[];
  rounds: number;
  nodesBefore: number;
  nodesAfter: number;
}

/** The passes in the order they run; each round runs them all, top to bottom. */
export function optimizationPasses(opts: OptimizeOptions = {}): NamedPass[] {
  return [
    { name: 'constant-to-initializer', run: constantToInitializer },
    { name: 'remove-identity', run: removeIdentity },
    { name: 'constant-folding', run: (m) => constantFolding(m, { ...opts.constantFolding, inputShapes: opts.inputShapes }) },
    { name: 'fold-batchnorm', run: foldBatchNorm },
    // before gemm-to-conv, so a Mul/Add after a Gemm folds into it rather than ending up behind a Flatten
    { name: 'fold-scale-into-conv', run: foldScaleIntoConv },
    { name: 'gemm-to-conv', run: (m) => gemmToConv(m, opts.gemmToConv) },
    { name: 'prune', run: prune },
  ];
}

/**
 * Runs the graph passes on `model` in place until a round changes nothing (a fixed point) or
 * `maxRounds` is reached. The result logs each pass run that changed something or said
 * something new (a note repeated in a later round is not logged again).
 */
export function optimizeModel(model: Model, opts: OptimizeOptions = {}): OptimizeResult {
  const passes = optimizationPasses(opts).filter((p) => !opts.skip?.includes(p.name));
  const maxRounds = opts.maxRounds ?? 8;
  const nodesBefore = model.graph.nodes.length;
  const entries: PassLogEntry[] = [];
  const seen = new Set<string>();
  let rounds = 0;
  while (rounds < maxRounds) {
    rounds++;
    let changed = 0;
    for (const p of passes) {
      const r = p.run(model);
      changed += r.changed;
      const fresh = r.notes.filter((n) => !seen.has(`${p.name}\u0000${n}`));
      fresh.forEach((n) => seen.add(`${p.name}\u0000${n}`));
      if (r.changed > 0 || fresh.length) entries.push({ round: rounds, pass: p.name, changed: r.changed, notes: fresh });
    }
    if (changed === 0) break;
  }
  model.graph.validate();
  return { entries, lines: entries.map(formatEntry), rounds, nodesBefore, nodesAfter: model.graph.nodes.length };
}

function formatEntry(e: PassLogEntry): string {
  const head = `optimize round ${e.round} ${e.pass}: ${e.changed} change(s)`;
  return e.notes.length ? `${head}; ${e.notes.join('; ')}` : head;
}
