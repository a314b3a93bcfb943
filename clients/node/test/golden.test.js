'use strict';
// Every golden vector of shm/testdata/golden/expected.json (or
// $ZEROHOP_GOLDEN_DIR), under both backends: keys, hashes and buckets; what
// a lookup gives (hit, stale, miss) with every field of the entry; what the
// client serves; and every damaged or differently-stated file of cases/.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { GOLDEN_DIR, golden, backendMatrix } = require('./helpers');
const { Reader } = require('../lib/reader');
const { Client } = require('../lib/client');
const { primaryKey, KeyBuilder, appendVary } = require('../lib/key');
const { decodeEntry } = require('../lib/entry');
const { xxh64 } = require('../lib/xxh64');
const { headerLines } = require('../lib/request');
const native = require('../lib/backend-native');

const G = golden();
const NOW = G.now_ms;
const SEED = BigInt(G.header.seed);
const MASK = (1n << BigInt(G.header.bucket_log2)) - 1n;
const M64 = (1n << 64n) - 1n;

function buckets(h) {
  const i1 = h & MASK;
  const rot = ((h << 32n) | (h >> 32n)) & M64;
  let i2 = (((rot * 0x9e3779b97f4a7c15n) & M64) >> 17n) & MASK;
  if (i2 === i1) i2 = i1 ^ 1n;
  return [Number(i1), Number(i2)];
}

const hex = (b) => b.toString('hex');
const method = (l) => (l.method === 'HEAD' ? 'GET' : l.method);

/** hit, stale or miss for key at NOW, and the decoded entry (stale-ok) if any. */
function probe(r, key) {
  if (r.lookup(key, key.length, NOW, NOW)) {
    const m = r.lookup(key, key.length, 0, NOW);
    return { got: 'hit', e: decodeEntry(m.view(), m.expires) };
  }
  const m = r.lookup(key, key.length, 0, NOW);
  return m ? { got: 'stale', e: decodeEntry(m.view(), m.expires) } : { got: 'miss', e: null };
}

test('golden: the key hashes agree with JS and C XXH64', () => {
  assert.ok(G.lookups.length > 0);
  for (const l of G.lookups) {
    const key = Buffer.from(l.key_hex, 'hex');
    const h = xxh64(key, SEED);
    assert.equal('0x' + h.toString(16).padStart(16, '0'), l.hash, l.name);
    assert.deepEqual(buckets(h), l.buckets, l.name);
    if (native.available) assert.equal(native.addon.xxh64(key, SEED), h, l.name);
  }
});

for (const be of backendMatrix()) {
  test(`golden lookups (${be.name})`, { skip: be.skip }, async (t) => {
    const r = new Reader(GOLDEN_DIR, { backend: be.name, offline: true });
    const c = new Client(GOLDEN_DIR, { backend: be.name, offline: true });
    t.after(() => { r.close(); c.close(); });
    assert.equal(r.backendName, be.name);
    for (const l of G.lookups) {
      await t.test(l.name, () => {
        const primary = primaryKey(method(l), l.scheme, l.host, l.target);
        let key = primary;
        if (l.primary_key_hex) {
          assert.equal(hex(primary), l.primary_key_hex, 'primary key');
          const marker = r.lookup(primary, primary.length, 0, NOW);
          assert.ok(marker, 'the Vary marker is stored');
          const names = decodeEntry(marker.view(), marker.expires).vary;
          const h = headerLines(l.request_headers || []);
          const kb = new KeyBuilder();
          kb.bytes(primary);
          key = appendVary(kb, names, (n) => h.get(n) || []).toBuffer();
        }
        assert.equal(hex(key), l.key_hex, 'key');

        const { got, e } = probe(r, key);
        assert.equal(got, l.expect, 'lookup result');
        if (e) {
          assert.equal(e.pos, l.pos, 'pos');
          assert.equal(e.totalLen, l.total_len, 'total_len');
          assert.equal(e.status, l.status, 'status');
          assert.equal(e.flags, l.flags, 'flags');
          assert.deepEqual(e.headers, l.headers, 'headers');
          assert.equal(e.body.toString('base64'), l.body_base64, 'body');
          assert.equal(e.etag, l.etag, 'etag');
          assert.equal(e.lastModified, l.last_modified, 'last_modified');
          assert.deepEqual(e.vary, l.entry_vary, 'vary');
          assert.deepEqual(e.tags, l.tags, 'tags');
          assert.equal(e.storedMs, l.stored_ms, 'stored_ms');
          assert.equal(e.entryExpiresMs, l.expires_ms, 'expires_ms');
          assert.equal(e.expiresMs, l.effective_expires_ms, 'effective_expires_ms');
          assert.equal(e.expiresMs, Math.min(l.slot_fresh_until_s * 1000, l.expires_ms));
          assert.equal(e.initialAge, l.initial_age, 'initial_age');
          assert.equal(e.swr, l.swr, 'swr');
          assert.equal(e.sie, l.sie, 'sie');
        }

        if (l.serve !== undefined) {
          const res = c.serve(l.method, l.scheme, l.host, l.target, l.request_headers || [], false, NOW);
          assert.equal(res ? 'hit' : 'forward', l.serve, `serve (${l.serve_reason || ''})`);
          if (res) {
            const ent = res.entry;
            const age = ent.initialAge + Math.max(0, Math.trunc((NOW - ent.storedMs) / 1000));
            const ttl = Math.trunc((ent.expiresMs - NOW) / 1000);
            const hv = (n) => res.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
            assert.deepEqual(hv('age'), [String(age)]);
            assert.equal(hv('cache-status').at(-1), `zerohop; hit; ttl=${ttl}; detail=shm`);
            if (l.method === 'HEAD') assert.equal(res.body.length, 0);
            else {
              assert.equal(res.body.toString('base64'), l.body_base64);
              assert.deepEqual(hv('content-length'), [String(res.body.length)]);
            }
          }
        }
      });
    }
  });
}

const OPEN_ERRORS = {
  truncated: 'ZEROHOP_TRUNCATED',
  'bad magic': 'ZEROHOP_BAD_MAGIC',
  version: 'ZEROHOP_VERSION',
  corrupt: 'ZEROHOP_CORRUPT',
  'not ready': 'ZEROHOP_NOT_READY',
};
const MISS_COUNTERS = { torn: 'torn', corrupt: 'corrupt', overrun: 'overruns' };

for (const be of backendMatrix()) {
  test(`golden files: damaged and other-state files (${be.name})`, { skip: be.skip || (!G.files && 'no files in this golden set') }, async (t) => {
    for (const f of G.files || []) {
      const file = path.join(GOLDEN_DIR, f.file);
      await t.test(f.file, () => {
        assert.ok(fs.existsSync(file), file);
        for (const offline of [false, true]) {
          const open = () => new Reader(GOLDEN_DIR, { backend: be.name, offline, file });
          if (f.open_error) {
            assert.throws(open, (err) => err.code === OPEN_ERRORS[f.open_error], `${f.file} must not open`);
            continue;
          }
          const r = open();
          try {
            const serves = offline ? f.serves_offline : f.serves_normal;
            const miss = new Set(f.miss || []);
            for (const l of G.lookups) {
              const key = Buffer.from(l.key_hex, 'hex');
              const before = r.stats();
              const { got } = probe(r, key);
              const want = !serves || miss.has(l.name) ? 'miss' : l.expect;
              assert.equal(got, want, `${l.name} (offline=${offline})`);
              if (serves && miss.has(l.name) && f.miss_reason) {
                const k = MISS_COUNTERS[f.miss_reason];
                assert.ok(r.stats()[k] > before[k], `${l.name}: counted as ${f.miss_reason}`);
              }
              if (!serves) assert.ok(r.stats().writerStale > before.writerStale, `${l.name}: not served: writer`);
            }
          } finally {
            r.close();
          }
        }
      });
    }
  });
}

test('worker threads read the golden file at once, each with its own addon state', { skip: !native.available && 'addon not built' }, async () => {
  const { Worker } = require('node:worker_threads');
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Client } = require(${JSON.stringify(require.resolve('../lib/client'))});
    const c = new Client(workerData.dir, { backend: 'addon', offline: true });
    let hits = 0, wrong = 0;
    for (let i = 0; i < 20000; i++) {
      const e = c.get('GET', 'http', 'example.com', '/', undefined, workerData.now);
      if (e && e.body.toString('base64') === workerData.body) hits++; else wrong++;
      if (c.get('GET', 'http', 'example.com', '/nothing', undefined, workerData.now)) wrong++;
    }
    parentPort.postMessage({ hits, wrong });`;
  const plain = G.lookups.find((l) => l.name === 'plain');
  const results = await Promise.all([0, 1, 2].map(() => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { dir: GOLDEN_DIR, now: NOW, body: plain.body_base64 } });
    w.on('message', resolve);
    w.on('error', reject);
  })));
  for (const r of results) assert.deepEqual(r, { hits: 20000, wrong: 0 });
});
