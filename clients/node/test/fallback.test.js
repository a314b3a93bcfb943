'use strict';
// When the addon cannot be loaded (a failed build, simulated with
// ZEROHOP_NO_ADDON=1 in a child process), "auto" picks positional reads,
// says so, and still answers the golden lookups.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { GOLDEN_DIR, golden } = require('./helpers');

test('without the addon the client falls back to positional reads', () => {
  const G = golden();
  const script = `
    const zerohop = require(${JSON.stringify(require.resolve('../lib'))});
    const c = zerohop.open(${JSON.stringify(GOLDEN_DIR)}, { offline: true });
    const e = c.get('GET', 'http', 'example.com', '/', undefined, ${G.now_ms});
    let forced = null;
    try { zerohop.open(${JSON.stringify(GOLDEN_DIR)}, { offline: true, backend: 'addon' }); } catch (err) { forced = err.code; }
    console.log(JSON.stringify({ backend: c.backend, addon: zerohop.addonStatus(), body: e && e.body.toString('base64'), forced }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ZEROHOP_NO_ADDON: '1' } }));
  assert.equal(out.backend, 'pread');
  assert.equal(out.addon.available, false);
  assert.match(out.addon.error, /ZEROHOP_NO_ADDON/);
  assert.equal(out.body, G.lookups.find((l) => l.name === 'plain').body_base64);
  assert.equal(out.forced, 'ZEROHOP_NO_ADDON');
});
