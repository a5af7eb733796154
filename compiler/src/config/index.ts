/**
 * The model configuration (the reference toolchain's YAML): load + validate → `PtqConfig`,
 * match to a model's inputs, and the per-stage slices used for hashing.
 */
export * from './types';
export { loadConfig, parseConfig, parseYaml } from './load';
export type { ConfigOptions } from './load';
export { validateAgainstModel, SUPPORTED_RT_TYPES } from './rules';
export { stageSlices, canonical, canonicalJson, STAGES } from './slices';
export type { StageSlices, Json, JsonObject } from './slices';
export { ConfigError, E_CONFIG, formatIssue } from './issues';
export type { ConfigIssue } from './issues';
export { DEFAULTS } from './normalize';
export { TEMPLATE_FILES, templatePath } from './templates';
