#!/usr/bin/env node
// Builds the native addon with node-gyp. A failed build is not an install
// failure: the client falls back to positional reads (lib/backend-pread.js)
// and reports backend "pread". Set ZEROHOP_REQUIRE_ADDON=1 to make it one.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

// node-gyp ships inside npm; prefer it over a global install.
function nodeGyp() {
  const candidates = [
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ];
  if (process.env.npm_config_node_gyp) candidates.unshift(process.env.npm_config_node_gyp);
  return candidates.find((p) => fs.existsSync(p));
}

const gyp = nodeGyp();
const args = [gyp, 'rebuild'];
// Distribution packages install the headers under /usr/include/node; use
// them instead of downloading a tarball (which needs the network).
for (const dir of ['/usr', path.join(path.dirname(process.execPath), '..')]) {
  if (fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')) && fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) {
    args.push('--nodedir=' + dir);
    break;
  }
}
let ok = false;
if (gyp) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  ok = r.status === 0;
}
if (!ok) {
  const msg = gyp ? 'node-gyp failed' : 'node-gyp not found';
  console.warn(`zerohop: ${msg}; the client will use positional reads (backend "pread")`);
  if (process.env.ZEROHOP_REQUIRE_ADDON === '1') process.exit(1);
}
