#!/usr/bin/env node
'use strict';
// `ptq`: the nx-ptq command line. Runs the TypeScript sources directly (see ts-hook.js).
require('./ts-hook');
const { main } = require('../src/cli/main.ts');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${(e && e.stack) || e}\n`);
    process.exitCode = 1;
  },
);
