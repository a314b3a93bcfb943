'use strict';
// A hit through the addon makes no system call: 200000 hits under
// strace -c -f add (almost) nothing to the count of a run with none, while
// the positional-read backend makes four per hit (the bucket twice, the
// entry, the header's state, tail and heartbeat). Skipped without strace.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const { GOLDEN_DIR, backendMatrix, tmpdir } = require('./helpers');

// strace makes each system call slow: the pread backend runs fewer hits.
const HITS = { addon: 100000, pread: 10000 };

function hasStrace() {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Calls per system call from strace -c's summary table, with "total".
function countSyscalls(backend, n) {
  const out = path.join(tmpdir(), 'strace.txt');
  execFileSync('strace', ['-f', '-c', '-o', out, process.execPath, path.join(__dirname, 'fixtures', 'hits.js'),
    backend, String(n), GOLDEN_DIR], { stdio: ['ignore', 'pipe', 'inherit'] });
  const text = fs.readFileSync(out, 'utf8');
  const calls = {};
  for (const line of text.split('\n')) {
    // columns: % time, seconds, usecs/call, calls, [errors,] name
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 5 && /^[\d.]+$/.test(cols[0])) calls[cols[cols.length - 1]] = Number(cols[3]);
  }
  assert.ok(calls.total, text);
  return calls;
}

// The calls a lookup could make: reads of the file and its metadata.
const IO = ['read', 'pread64', 'readv', 'preadv', 'fstat', 'newfstatat', 'statx', 'stat', 'openat', 'lseek', 'sched_yield'];
function io(calls) {
  return IO.reduce((n, k) => n + (calls[k] || 0), 0);
}

for (const be of backendMatrix()) {
  test(`system calls per hit (${be.name})`, { skip: be.skip || (!hasStrace() && 'strace not installed'), timeout: 120000 }, (t) => {
    const N = HITS[be.name];
    const base = countSyscalls(be.name, 0);
    const run = countSyscalls(be.name, N);
    const perHit = (run.total - base.total) / N;
    const ioPerHit = (io(run) - io(base)) / N;
    t.diagnostic(`${be.name}: ${base.total} system calls with no hits, ${run.total} with ${N} hits: ` +
      `${perHit.toFixed(4)} per hit, of which file reads and stats ${ioPerHit.toFixed(4)}`);
    if (be.name === 'addon') {
      // What remains is V8's own (GC threads' futex, JIT mprotect), not lookups.
      assert.ok(ioPerHit * N <= 5, `addon hits read the file: ${ioPerHit} per hit`);
      assert.ok(perHit < 0.05, `addon: ${perHit} system calls per hit`);
    } else {
      assert.ok(ioPerHit >= 3.9 && ioPerHit < 4.1, `pread: ${ioPerHit} per hit`);
    }
  });
}
