/**
 * Static performance model (DESIGN §1 perf/): per-op, per-subgraph and total latency, OPs and
 * DDR traffic of a placed model for a march and compiler options, from the constants in
 * perf/marchs/<march>.json (calibrated against published board numbers).
 */
export { estimatePerf } from './estimate';
export type { BorderKind, BorderPerf, OpPerf, PerfEstimate, PerfOptions, PerfTotals, SubgraphPerf } from './types';
export { marchCosts, validateCosts, OP_CLASSES } from './costs';
export type { CalibrationTarget, MarchCosts, OpClass } from './costs';
