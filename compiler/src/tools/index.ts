/**
 * The model tools as library functions (the `ptq model-info`, `model-modifier` and `pack`
 * commands are thin wrappers): reports, boundary-node deletion, packing, and applying the
 * records of deleted nodes the way an application must.
 */
export { DELETED_NODES_FILE, dataTypeName, modelInfoLines, modelInfoReport, writeDeletedNodesInfo } from './model-info';
export type { ModelInfoReport } from './model-info';
export { deletableLine, deletableNames, deletedRecord, modifiedName, modifyBin, modifyModel, packedNotSupported, removeBoundaryOp } from './modifier';
export type { ModifierAction, ModifyResult } from './modifier';
export { packBins } from './pack';
export type { PackInput } from './pack';
export { canonicalType, deletableOps, DELETABLE_TYPES, INPUT_SIDE_TYPES, OUTPUT_SIDE_TYPES } from './boundary';
export type { BoundaryOp } from './boundary';
export { applyDeletedNode, applyInputRecords, applyOutputRecords } from './deleted-nodes';
