'use strict';
// The app counters file (docs/format.md, "App counters"): its bytes and
// lock, and the real sidecar summing two real Node app processes' counters
// into its /metrics, keeping a SIGKILLed app's and a cleanly closed app's.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn, spawnSync } = require('node:child_process');
const { Pool } = require('undici');
const { goBuild, tmpdir, backendMatrix } = require('./helpers');
const { CounterPublisher, NAMES, FILE_SIZE } = require('../lib/counters');
const zerohop = require('../lib');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const u64 = (b, off) => b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

test('counters file: layout, name, lock, publish, close', () => {
  const dir = tmpdir();
  const p = new CounterPublisher(dir, 'node');
  try {
    const name = path.basename(p.path);
    const m = /^app-(\d+)-([0-9a-f]{16})\.counters$/.exec(name);
    assert.ok(m, name);
    assert.equal(Number(m[1]), process.pid);
    assert.deepEqual(fs.readdirSync(dir), [name], 'no .tmp left behind');
    assert.equal(fs.statSync(p.path).mode & 0o777, 0o644);
    const values = NAMES.map((_, i) => (i === 7 ? 2 ** 40 + 3 : i + 1));
    p.publish(values, 1234567890123);
    const b = fs.readFileSync(p.path);
    assert.equal(b.length, FILE_SIZE);
    assert.equal(FILE_SIZE, 64 + 8 * 19);
    assert.equal(b.toString('latin1', 0, 8), 'ZHAPPCTR');
    assert.equal(b.readUInt16LE(8), 1);
    assert.equal(b.readUInt16LE(10), 0);
    assert.equal(b.readUInt32LE(12), 64);
    assert.equal(b.readUInt32LE(16), 19);
    assert.equal(b.readUInt32LE(20), process.pid);
    assert.equal(b.readBigUInt64LE(24).toString(16).padStart(16, '0'), m[2], 'instance as in the name');
    assert.ok(u64(b, 32) > 1.6e12 && u64(b, 32) <= Date.now(), 'created');
    assert.equal(u64(b, 40), 1234567890123, 'updated');
    assert.equal(b.toString('latin1', 48, 64), 'node' + '\0'.repeat(12));
    for (let i = 0; i < NAMES.length; i++) assert.equal(u64(b, 64 + 8 * i), values[i], NAMES[i]);
    // The lock is held while the publisher lives (flock(1) from another process).
    const busy = spawnSync('flock', ['-n', '-x', p.path, 'true']);
    if (!busy.error) assert.equal(busy.status, 1, 'flock -n succeeded on a live counters file');
    p.close();
    p.publish(values); // after close: nothing, no throw
    const free = spawnSync('flock', ['-n', '-x', p.path, 'true']);
    if (!free.error) assert.equal(free.status, 0, 'the lock is released at close');
  } finally {
    p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // No directory: a clear error, nothing created.
  assert.throws(() => new CounterPublisher(path.join(dir, 'missing')), { code: 'ENOENT' });
});

async function startSidecar(bin) {
  const dir = tmpdir();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const admin = await freePort();
    const child = spawn(bin, ['run', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--cache-dir', dir,
      '--cache-size', '64MiB', '--access-log', 'off', '--log-format', 'text', '--log-level', 'warn',
      '--forward-allow-loopback'],
    { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    for (let i = 0; i < 500 && child.exitCode === null; i++) {
      if (fs.existsSync(path.join(dir, 'cache.shm'))) {
        try {
          const c = zerohop.open(dir, { countersDir: 'off' });
          const ok = c.healthy();
          c.close();
          if (ok) return { child, dir, addr: `127.0.0.1:${port}`, admin: `127.0.0.1:${admin}` };
        } catch { /* not ready yet */ }
      }
      await sleep(20);
    }
    child.kill('SIGKILL');
    if (attempt >= 2) throw new Error(`sidecar did not start: ${err}`);
  }
}

async function metrics(admin) {
  const r = await fetch(`http://${admin}/metrics`);
  assert.equal(r.status, 200);
  const text = await r.text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

test('a real sidecar exports two Node apps\' counters on /metrics', { timeout: 120000 }, async (t) => {
  const bin = goBuild('./cmd/zerohop', 'zerohop');
  if (!bin) return t.skip('go is not installed');
  const body = Buffer.from('counted by the sidecar\n');
  const origin = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
    res.end(body);
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const sc = await startSidecar(bin);
  const procs = [];
  t.after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    sc.child.kill('SIGTERM');
    origin.close();
  });
  const host = `127.0.0.1:${origin.address().port}`;
  const url = `http://${host}/counted`;
  // A miss the sidecar stores (no Accept-Encoding: the identity body).
  const pool = new Pool(`http://${sc.addr}`);
  const r = await pool.request({ method: 'GET', path: url, headers: { host } });
  await r.body.arrayBuffer();
  await pool.close();
  const probe = zerohop.open(sc.dir, { countersDir: 'off' });
  for (let i = 0; probe.get('GET', 'http', host, '/counted') === null; i++) {
    if (i > 250) throw new Error('the entry never reached shared memory');
    await sleep(20);
  }
  probe.close();

  // One app per backend (pread only, twice, when the addon is not built).
  const addon = backendMatrix()[0].skip ? 'pread' : 'addon';
  const run = async (n, backend) => {
    const p = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'counterapp.js'), backend, sc.dir, sc.addr, url, String(n)],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(p);
    const [line] = await Promise.race([
      require('node:events').once(readline.createInterface({ input: p.stdout }), 'line'),
      require('node:events').once(p, 'exit').then(([code]) => { throw new Error(`counterapp exited ${code}`); }),
    ]);
    const out = JSON.parse(line);
    assert.ok(out.file, `no counters file: ${out.error}`);
    assert.equal(out.hits, n);
    return { p, out };
  };
  const a = await run(100, addon);
  const b = await run(50, 'pread');
  assert.equal(b.out.stats.backend, 'pread');
  assert.equal(a.out.stats.servedBytes, 100 * body.length);
  assert.match(path.basename(a.out.file), /^app-\d+-[0-9a-f]{16}\.counters$/);
  assert.equal(path.dirname(a.out.file), path.join(sc.dir, 'inval'));

  const check = async (what, live, departed) => {
    const m = await metrics(sc.admin);
    const want = (series, v) => assert.equal(m.get(series), v, `${what}: ${series}`);
    want('zerohop_app_hits_total', 150);
    want('zerohop_app_served_bytes_total', 150 * body.length);
    want('zerohop_app_bypasses_total{reason="method"}', 2);
    want('zerohop_app_bypasses_total{reason="no_cache"}', 2);
    want('zerohop_app_bypasses_total{reason="body"}', 0);
    want('zerohop_app_misses_total', 0);
    want('zerohop_app_not_modified_total', 0);
    want('zerohop_app_lookup_hits_total', a.out.stats.cache.hits + b.out.stats.cache.hits);
    want('zerohop_app_processes', live);
    want('zerohop_app_departed_processes_total', departed);
    assert.ok(m.get('zerohop_app_lookup_hits_total') >= 150);
  };
  await check('two live apps', 2, 0);

  // A SIGKILLed app: its last published counters stay in the totals.
  a.p.kill('SIGKILL');
  await require('node:events').once(a.p, 'exit');
  await check('one killed', 1, 1);
  assert.equal(fs.existsSync(a.out.file), false, 'the sidecar removed the departed file');

  // A clean exit: close() publishes and releases the lock.
  b.p.stdin.end();
  const [code] = await require('node:events').once(b.p, 'exit');
  assert.equal(code, 0);
  await check('both gone', 0, 2);
});
