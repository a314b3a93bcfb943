'use strict';
// Shared test plumbing: where the golden vectors are, which backends run,
// and building the real Go programs (the sidecar, the torture writer).

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { backends } = require('../lib/reader');

const REPO = path.resolve(__dirname, '..', '..', '..');

/** The golden directory: $ZEROHOP_GOLDEN_DIR, else shm/testdata/golden of this repo. */
const GOLDEN_DIR = process.env.ZEROHOP_GOLDEN_DIR || path.join(REPO, 'shm', 'testdata', 'golden');

function golden() {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'expected.json'), 'utf8'));
}

/**
 * The backends to test: both; the addon is skipped (with the reason) only
 * when it could not be built and ZEROHOP_REQUIRE_ADDON is not 1.
 * @returns {Array<{name: string, skip: string|false}>}
 */
function backendMatrix() {
  const addon = backends.addon;
  const required = process.env.ZEROHOP_REQUIRE_ADDON === '1';
  if (!addon.available && required) throw new Error(`addon required but not loadable: ${addon.loadError}`);
  return [
    { name: 'addon', skip: addon.available ? false : `addon not built: ${addon.loadError && addon.loadError.message}` },
    { name: 'pread', skip: false },
  ];
}

function tmpdir(prefix = 'zerohop-node-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const built = new Map();

/**
 * Builds a Go main package of this repo (cached per process) and returns
 * the binary's path, or null when Go is not installed. $ZEROHOP_BIN
 * overrides the sidecar binary.
 */
function goBuild(pkg, name) {
  if (name === 'zerohop' && process.env.ZEROHOP_BIN) return process.env.ZEROHOP_BIN;
  if (built.has(pkg)) return built.get(pkg);
  const out = path.join(process.env.ZEROHOP_BUILD_DIR || path.join(os.tmpdir(), 'zerohop-node-bin'), name);
  // ci.sh builds them beforehand into $ZEROHOP_BUILD_DIR.
  if (process.env.ZEROHOP_BUILD_DIR && fs.existsSync(out)) return out;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  try {
    execFileSync('go', ['build', '-o', out, pkg], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
  built.set(pkg, out);
  return out;
}

module.exports = { REPO, GOLDEN_DIR, golden, backendMatrix, tmpdir, goBuild };
