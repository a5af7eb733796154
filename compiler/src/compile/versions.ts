/**
 * Versions recorded in every `.bin` (model deps, what `ptq model-info` prints): nx-ptq's own
 * (the package version), the compiler's and the host runtime's. Bump COMPILER_VERSION when the
 * lowering changes what it writes, RUNTIME_VERSION when the runtime's semantics of an op change.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own version
export const NX_PTQ_VERSION: string = (require('../../package.json') as { version: string }).version;
export const COMPILER_VERSION = '1.0.0';
export const RUNTIME_VERSION = '1.0.0';
