'use strict';
// Cross-language torture, Node half: the real Go writer (test/writer, which
// uses shm.Writer) Puts, Deletes and purges as fast as it can in a small
// file whose regions are reclaimed every few milliseconds, while this
// process looks keys up through both backends and checks every hit byte
// for byte against the writer's derivation (test/spec.js). Zero wrong reads
// allowed. ZEROHOP_TORTURE_SECONDS sets the length (default 10).

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { setImmediate: tick } = require('node:timers/promises');
const { goBuild, tmpdir, backendMatrix } = require('./helpers');
const { Reader } = require('../lib/reader');
const { decodeEntry } = require('../lib/entry');
const spec = require('./spec');

const SECONDS = Number(process.env.ZEROHOP_TORTURE_SECONDS || 10);
const KEYS = 2000;

test('torture: Go writer churns, Node verifies every hit', { timeout: (SECONDS + 120) * 1000 }, async (t) => {
  const bin = goBuild('./clients/node/test/writer', 'zh-node-writer');
  if (!bin) return t.skip('go is not installed');
  const dir = tmpdir();
  const child = spawn(bin, ['-dir', dir, '-mode', 'churn', '-keys', String(KEYS), '-duration', `${SECONDS}s`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  while (!out.includes('ready')) {
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(child.exitCode, null, 'writer exited early');
  }
  const readers = backendMatrix().filter((b) => !b.skip).map((b) => new Reader(dir, { backend: b.name }));
  const keys = Array.from({ length: KEYS }, (_, id) => spec.key(id));
  const count = readers.map(() => ({ lookups: 0, hits: 0, wrong: 0 }));
  const wrong = [];
  const end = Date.now() + SECONDS * 1000 - 300;
  let i = 0;
  while (Date.now() < end && child.exitCode === null) {
    for (let k = 0; k < 2000; k++, i++) {
      const ri = i % readers.length;
      const id = (i * 7919) % KEYS;
      const now = Date.now();
      const m = readers[ri].lookup(keys[id], keys[id].length, now, now);
      count[ri].lookups++;
      if (m === null) continue;
      count[ri].hits++;
      const why = spec.check(id, decodeEntry(m.view(), m.expires));
      if (why !== null) {
        count[ri].wrong++;
        if (wrong.length < 10) wrong.push(`${readers[ri].backendName}: ${why}`);
      }
    }
    await tick(); // let the writer's output in
  }
  const code = await exited;
  assert.equal(code, 0, 'writer failed');
  const summary = JSON.parse(out.slice(out.indexOf('{')));
  readers.forEach((r, ri) => {
    t.diagnostic(`${r.backendName}: ${count[ri].lookups} lookups, ${count[ri].hits} hits verified byte for byte, ` +
      `${count[ri].wrong} wrong; stats ${JSON.stringify(r.stats())}`);
    r.close();
  });
  t.diagnostic(`writer: ${summary.puts} puts, ${summary.deletes} deletes, ${summary.purges} tag purges, ` +
    `${summary.stats.RegionsReclaimed} regions reclaimed`);
  assert.deepEqual(wrong, [], 'wrong reads');
  for (const c of count) assert.ok(c.hits > 1000, `too few hits to mean anything: ${JSON.stringify(c)}`);
  assert.ok(summary.stats.RegionsReclaimed > 10, 'the writer must have reused regions under the readers');
});
