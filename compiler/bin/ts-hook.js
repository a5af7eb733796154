'use strict';
/**
 * Zero-build TypeScript loading for the `ptq` binary: each .ts file of this package is
 * compiled with swc when first required, and the result is kept in a disk cache keyed by
 * the file's content, so a warm start compiles nothing. (@swc-node/register would work
 * too but loads the TypeScript compiler, ~0.5 s, on every start.)
 * PTQ_TS_CACHE=<dir> moves the cache; PTQ_TS_CACHE=off disables it.
 */
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const CACHE =
  process.env.PTQ_TS_CACHE === 'off'
    ? undefined
    : process.env.PTQ_TS_CACHE || path.join(os.tmpdir(), `nx-ptq-ts-cache-${typeof process.getuid === 'function' ? process.getuid() : 'user'}`);
const OPTIONS = {
  swcrc: false,
  configFile: false,
  sourceMaps: 'inline',
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
};
let swc;
let swcVersion;

function swcCore() {
  if (!swc) {
    swc = require('@swc/core');
    swcVersion = swc.version || '';
  }
  return swc;
}

function cacheKey(filename, source) {
  // the swc version is part of the key through the package's own version file
  let v = swcVersion;
  if (v === undefined) {
    try {
      v = require('@swc/core/package.json').version;
    } catch {
      v = '';
    }
    swcVersion = v;
  }
  return crypto.createHash('sha1').update(`${v}\0${JSON.stringify(OPTIONS)}\0${filename}\0`).update(source).digest('hex');
}

function transform(filename, source) {
  const key = CACHE && cacheKey(filename, source);
  const file = key && path.join(CACHE, `${key}.js`);
  if (file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      /* not cached yet */
    }
  }
  const { code } = swcCore().transformSync(source, { filename, ...OPTIONS });
  if (file) {
    try {
      fs.mkdirSync(CACHE, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, code);
      fs.renameSync(tmp, file);
    } catch {
      /* an unwritable cache only costs time */
    }
  }
  return code;
}

function compile(module, filename) {
  module._compile(transform(filename, fs.readFileSync(filename, 'utf8')), filename);
}

const previous = require.extensions['.ts'];
require.extensions['.ts'] = function (module, filename) {
  if (previous && !(filename.startsWith(ROOT + path.sep) && !filename.includes(`${path.sep}node_modules${path.sep}`))) {
    return previous(module, filename);
  }
  return compile(module, filename);
};

// stack traces of internal errors point at the .ts lines
if (typeof process.setSourceMapsEnabled === 'function') process.setSourceMapsEnabled(true);
