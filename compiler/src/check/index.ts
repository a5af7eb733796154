/**
 * The check stage's core (DESIGN §1 check/): model constraints, per-march operator support
 * (support/*.json, one constraint interpreter), BPU/CPU placement with reasons, BPU subgraph
 * partition and the checker report (table, log, check.json).
 */
export { placeModel } from './placement';
export { overridesFromConfig } from './overrides';
export type { Boundary, DataType, Device, NodeInfoOverride, NodePlacement, PlaceOptions, Placement, Subgraph } from './placement';
export { formatCheckerLog, formatCheckerTable, formatCpuReasons, formatSummary, placementToJson, summarize } from './report';
export type { CheckJson, CheckSummary } from './report';
export { findSupport, supportTable, validateTable, MARCHES } from './table';
export type { Constraint, March, OpSupport, SupportTable } from './table';
