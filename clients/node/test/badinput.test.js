'use strict';
// Bad input: corrupt, truncated (under a live mapping: SIGBUS for the
// addon), newer major version, dead writer, replaced file. Each must be a
// miss or a clear exception, never a wrong response, and this process must
// survive. Files come from the golden set and from the real Go writer
// (test/writer).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { GOLDEN_DIR, golden, backendMatrix, tmpdir, goBuild } = require('./helpers');
const { Reader } = require('../lib/reader');
const { decodeEntry } = require('../lib/entry');
const { xxh64 } = require('../lib/xxh64');
const L = require('../lib/layout');
const spec = require('./spec');

const G = golden();
const NOW = G.now_ms;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A copy of the golden cache.shm in a new directory, after edit(buf). */
function goldenCopy(edit) {
  const dir = tmpdir();
  const b = fs.readFileSync(path.join(GOLDEN_DIR, 'cache.shm'));
  if (edit) edit(b);
  fs.writeFileSync(path.join(dir, 'cache.shm'), b);
  return dir;
}

function reseal(b) {
  b.writeBigUInt64LE(xxh64(b.subarray(0, L.LAYOUT_SUMMED_LEN), 0n), L.OFF_LAYOUT_SUM);
}

const hits = G.lookups.filter((l) => l.expect === 'hit');

/** Starts test/writer in fill mode: version ver of keys 0..n-1, live until stop(). */
async function fillWriter(t, dir, { keys = 50, ver = 1, size } = {}) {
  const bin = goBuild('./clients/node/test/writer', 'zh-node-writer');
  if (!bin) return null;
  const args = ['-dir', dir, '-mode', 'fill', '-keys', String(keys), '-ver', String(ver)];
  if (size) args.push('-size', String(size));
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  // Whatever happens in the test, the writer goes (a live child would keep
  // this test process from exiting).
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  while (!out.includes('filled')) {
    if (child.exitCode !== null) throw new Error('writer exited');
    await sleep(10);
  }
  return {
    child,
    stop: async () => { child.stdin.end(); return exited; },
    kill: async () => { child.kill('SIGKILL'); return exited; },
  };
}

function lookupId(r, id, now = Date.now()) {
  const k = spec.key(id);
  const m = r.lookup(k, k.length, now, now);
  return m && decodeEntry(m.view(), m.expires);
}

for (const be of backendMatrix()) {
  const opt = { skip: be.skip };

  test(`newer major version is a clear exception (${be.name})`, opt, () => {
    const dir = goldenCopy((b) => { b.writeUInt16LE(3, L.OFF_MAJOR); reseal(b); });
    assert.throws(() => new Reader(dir, { backend: be.name, offline: true }),
      (e) => e.code === 'ZEROHOP_VERSION' && /version 3\.0, this build reads 2\.x/.test(e.message));
  });

  test(`corrupt header: checksum, layout, magic (${be.name})`, opt, () => {
    const cases = [
      [(b) => { b[L.OFF_CREATED_MS] ^= 1; }, 'ZEROHOP_CORRUPT'],
      [(b) => { b.writeUInt32LE(3, L.OFF_REGION_COUNT); reseal(b); }, 'ZEROHOP_CORRUPT'],
      [(b) => { b[0] = 0x41; }, 'ZEROHOP_BAD_MAGIC'],
      [(b) => { b.writeUInt32LE(0, L.OFF_STATE); }, 'ZEROHOP_NOT_READY'],
    ];
    for (const [edit, code] of cases) {
      assert.throws(() => new Reader(goldenCopy(edit), { backend: be.name, offline: true }), (e) => e.code === code);
    }
    const short = tmpdir();
    fs.writeFileSync(path.join(short, 'cache.shm'), Buffer.alloc(100));
    assert.throws(() => new Reader(short, { backend: be.name }), (e) => e.code === 'ZEROHOP_TRUNCATED');
    assert.throws(() => new Reader(tmpdir(), { backend: be.name }), (e) => e.code === 'ENOENT');
  });

  test(`random damage never gives a wrong entry (${be.name})`, opt, () => {
    // Flip bytes anywhere past the header; every lookup must still miss or
    // return exactly the golden entry (checksum and full-key verification).
    let rnd = 12345;
    const next = () => { rnd = (rnd * 1103515245 + 12345) >>> 0; return rnd; };
    const size = fs.statSync(path.join(GOLDEN_DIR, 'cache.shm')).size;
    let served = 0;
    let missed = 0;
    for (let round = 0; round < 40; round++) {
      const dir = goldenCopy((b) => {
        for (let i = 0; i < 1 + (next() % 8); i++) {
          // aim at the index and the written part of the arena, where damage matters
          const off = next() % 2 ? 4096 + (next() % 1024) : 5120 + (next() % (G.header.head + 64));
          b[Math.min(off, size - 1)] ^= 1 << (next() % 8);
        }
      });
      const r = new Reader(dir, { backend: be.name, offline: true });
      for (const l of hits) {
        const key = Buffer.from(l.key_hex, 'hex');
        const m = r.lookup(key, key.length, NOW, NOW);
        if (!m) { missed++; continue; }
        served++;
        const e = decodeEntry(m.view(), m.expires);
        assert.equal(e.body.toString('base64'), l.body_base64, l.name);
        assert.deepEqual(e.headers, l.headers, l.name);
        assert.equal(e.status, l.status, l.name);
      }
      r.close();
    }
    assert.ok(served > 0 && missed > 0, `served ${served}, missed ${missed}`);
  });

  test(`truncated under a live mapping: a miss, and the process survives (${be.name})`, opt, async (t) => {
    const dir = tmpdir();
    const w = await fillWriter(t, dir);
    if (!w) return t.skip('go is not installed');
    try {
      const r = new Reader(dir, { backend: be.name, recheckIntervalMs: 10 });
      assert.equal(lookupId(r, 7).body.equals(spec.body(7, 1)), true, 'a hit before');
      const file = path.join(dir, 'cache.shm');
      // Cut the index and the arena off under the mapping: the addon's next
      // read of a bucket faults (SIGBUS) inside its guard.
      fs.truncateSync(file, 4096);
      for (let i = 0; i < 50; i++) assert.equal(lookupId(r, i), null);
      // And the header too.
      fs.truncateSync(file, 0);
      for (let i = 0; i < 50; i++) assert.equal(lookupId(r, i), null);
      await sleep(20);
      assert.equal(lookupId(r, 3), null);
      const s = r.stats();
      assert.ok(s.faults > 0 || s.writerStale > 0, JSON.stringify(s));
      if (be.name === 'addon') assert.ok(s.faults > 0, 'SIGBUS became counted faults');
      assert.equal(s.hits, 1);
      r.close();
    } finally {
      await w.kill();
    }
  });

  test(`dead writer: hits stop once its heartbeat is stale (${be.name})`, opt, async (t) => {
    const dir = tmpdir();
    const w = await fillWriter(t, dir);
    if (!w) return t.skip('go is not installed');
    const r = new Reader(dir, { backend: be.name, maxWriterSilenceMs: 300 });
    assert.ok(lookupId(r, 1), 'a hit while the writer lives');
    assert.ok(r.healthy());
    await w.kill(); // SIGKILL: state stays live, the heartbeat stops
    await sleep(450);
    for (let i = 0; i < 20; i++) assert.equal(lookupId(r, i), null);
    assert.ok(r.stats().writerStale >= 20);
    assert.equal(r.healthy(), false);
    r.close();
  });

  test(`replaced file: the reader maps the new one (${be.name})`, opt, async (t) => {
    const dir = tmpdir();
    const a = await fillWriter(t, dir, { ver: 1 });
    if (!a) return t.skip('go is not installed');
    const r = new Reader(dir, { backend: be.name, recheckIntervalMs: 20 });
    const before = lookupId(r, 5);
    assert.ok(before && before.body.equals(spec.body(5, 1)));
    await a.stop(); // clean close: state 2, not served
    assert.equal(lookupId(r, 5), null);
    // A writer with another size rebuilds: a new file renamed over the old.
    const b = await fillWriter(t, dir, { ver: 2001, size: 4 << 20 });
    try {
      let e = null;
      for (let i = 0; i < 100 && !e; i++) {
        await sleep(10);
        e = lookupId(r, 5);
      }
      assert.ok(e, 'hits again from the new file');
      assert.equal(e.headers.find(([k]) => k === 'X-Ver')[1], '2001');
      assert.ok(e.body.equals(spec.body(5, 2001)));
      assert.ok(r.stats().remaps >= 1);
      r.close();
    } finally {
      await b.kill();
    }
  });
}
