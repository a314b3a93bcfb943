'use strict';
// The invalidation log appender: byte-exact records (the example of
// docs/invalidation.md), sequence numbers under concurrent appenders in
// separate open file descriptions (flock), recovery after a torn record,
// validation, and the flock(1) route used without the addon. The sidecar
// test applies these records with the real Go tailer.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { tmpdir } = require('./helpers');
const inv = require('../lib/invalidate');

function records(file) {
  const b = fs.readFileSync(file);
  const out = [];
  let p = 0;
  while (p < b.length) {
    const r = inv.decodeAt(b, p);
    if (typeof r === 'object') {
      out.push({ seq: r.seq, kind: b[p + 13], mode: b[p + 14], payload: b.toString('utf8', p + 33 + b[p + 32], p + r.n) });
      p += r.n;
    } else {
      const q = b.indexOf('ZHIV', p + 1);
      if (q < 0) break;
      p = q;
    }
  }
  return out;
}

test('record encoding matches docs/invalidation.md', () => {
  const b = inv.encodeRecord({ kind: 'tag', mode: 'soft', payload: 't1' }, 7, 1700000000123, 'ab');
  assert.equal(b.toString('hex'),
    '5a484956' + '9999aa1a' + '25000000' + '01' + '03' + '01' + '00' + '0700000000000000' + '7b68e5cf8b010000' + '02' + '6162' + '7431');
});

test('validation refuses what the Go Log refuses', () => {
  assert.throws(() => inv.encodeRecord({ kind: 'key', payload: '/no/scheme' }, 1, 0, ''), /not an absolute URL/);
  assert.throws(() => inv.encodeRecord({ kind: 'key', payload: 'http:///x' }, 1, 0, ''), /no host/);
  assert.throws(() => inv.encodeRecord({ kind: 'tag', payload: '' }, 1, 0, ''), /empty tag/);
  assert.throws(() => inv.encodeRecord({ kind: 'all', payload: 'x' }, 1, 0, ''), /payload on an "all"/);
  assert.throws(() => inv.encodeRecord({ kind: 'bogus', payload: 'x' }, 1, 0, ''), /unknown kind/);
  assert.throws(() => inv.encodeRecord({ kind: 'tag', payload: 'x' }, 1, 0, 'o'.repeat(256)), /origin/);
});

async function concurrentAppends(t, useFlock1) {
  const file = path.join(tmpdir(), 'inval.log');
  const logs = [0, 1, 2].map((i) => new inv.InvalidationLog(file, { origin: `t${i}` }));
  if (useFlock1) for (const l of logs) l.locker.flock = null;
  const seqs = await Promise.all(logs.flatMap((l, i) => Array.from({ length: useFlock1 ? 5 : 40 },
    (_, k) => l.append(inv.tagRecord(`tag-${i}-${k}`)))));
  logs.forEach((l) => l.close());
  const n = seqs.length;
  assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1), 'unique, dense');
  const recs = records(file);
  assert.equal(recs.length, n);
  assert.deepEqual(recs.map((r) => r.seq), Array.from({ length: n }, (_, i) => i + 1), 'in file order');
}

test('concurrent appenders get dense, ordered sequence numbers (flock(2) via the addon)', async (t) => {
  if (!require('../lib/backend-native').available) return t.skip('addon not built');
  await concurrentAppends(t, false);
});

test('the same through flock(1), as without the addon', async (t) => {
  if (spawnSync('flock', ['-V']).error) return t.skip('flock(1) not installed');
  await concurrentAppends(t, true);
});

test('a torn record and garbage do not break the sequence', async () => {
  const file = path.join(tmpdir(), 'inval.log');
  const a = new inv.InvalidationLog(file);
  assert.equal(await a.append(inv.keyRecord('http://h/x')), 1);
  assert.equal(await a.append(inv.allRecord('soft')), 2);
  // A writer died mid-append, then someone wrote garbage.
  const torn = inv.encodeRecord(inv.tagRecord('zz'), 3, 1, 'dead').subarray(0, 20);
  fs.appendFileSync(file, Buffer.concat([torn, Buffer.from('garbage bytes')]));
  const b = new inv.InvalidationLog(file); // a fresh appender parses the tail window
  assert.equal(await b.append(inv.prefixRecord('http://h/p/')), 3);
  assert.equal(await a.append(inv.tagRecord('t')), 4, 'a parses forward from its last boundary');
  a.close();
  b.close();
  assert.deepEqual(records(file).map((r) => [r.seq, r.kind, r.mode, r.payload]),
    [[1, 1, 0, 'http://h/x'], [2, 4, 1, ''], [3, 2, 0, 'http://h/p/'], [4, 3, 0, 't']]);
});

test('a rotated log is reopened, and its sequence continues', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'inval.log');
  const a = new inv.InvalidationLog(file);
  await a.append(inv.tagRecord('one'));
  await a.append(inv.tagRecord('two'));
  // Rotation: a new file starting with records carrying the old sequence, renamed over.
  const tmp = path.join(dir, 'rot.tmp');
  fs.writeFileSync(tmp, inv.encodeRecord(inv.tagRecord('carried'), 2, 1, 'tailer'));
  fs.renameSync(tmp, file);
  assert.equal(await a.append(inv.tagRecord('three')), 3);
  a.close();
  assert.deepEqual(records(file).map((r) => r.seq), [2, 3]);
});
