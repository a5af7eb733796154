export { loadCustomOps, registeredCustomOps, MODULE_EXTENSIONS } from './loader';
export type { CustomOpConfig } from './loader';
export { ensureOpsetImport, importCustomDomains } from './opset';
export type { CustomOpApi, CustomOpDef, LoadedCustomOp, TensorLike } from './types';
export { customDomains, hasCustomOps, isOrtDomain, ORT_DOMAINS } from '../runtime/select';
