'use strict';
/**
 * The plugin's entry for nx.json (`"plugin": "./plugins/nx-ptq/plugin.js"`). Nx loads a `.ts`
 * plugin by registering its own TypeScript transpiler, which first loads the TypeScript
 * compiler to read tsconfig.base.json: ~0.3–0.6 s of CPU on every nx command, in each plugin
 * worker. This entry loads the same sources through the ptq CLI's swc hook instead (one cached
 * swc transform per file, keyed by content), so a fully cached `nx run-many` starts faster.
 */
require('../../compiler/bin/ts-hook');
module.exports = require('./index.ts');
