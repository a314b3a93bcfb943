'use strict';
// End to end against the real sidecar (go build ./cmd/zerohop; `zerohop run`
// on 127.0.0.1 with a temporary cache directory) and a Node origin on
// 127.0.0.1: the first fetch is a miss the sidecar stores, the second a
// zero-hop hit answered from the mapping (Cache-Status detail=shm, Age, the
// origin not asked again), invalidate() waits until the sidecar applied the
// purge, and the next fetch is a miss again. Under both backends.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { setGlobalDispatcher, getGlobalDispatcher, request } = require('undici');
const { goBuild, tmpdir, backendMatrix } = require('./helpers');
const zerohop = require('../lib');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** A Node origin counting requests per path. */
async function startOrigin() {
  const count = new Map();
  const srv = http.createServer((req, res) => {
    count.set(req.url, (count.get(req.url) || 0) + 1);
    const n = count.get(req.url);
    const body = Buffer.from(`origin says ${req.url} #${n}\n` + 'x'.repeat(1000));
    const h = { 'content-type': 'text/plain', 'cache-control': 'max-age=60', etag: `"v${n}"` };
    if (req.url.startsWith('/public')) h['cache-control'] = 'public, max-age=60';
    res.writeHead(200, h);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, count, base: `http://127.0.0.1:${srv.address().port}` };
}

/** Starts `zerohop run` on a free loopback port with a temporary cache directory. */
async function startSidecar(bin) {
  const dir = tmpdir();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn(bin, ['run', '--listen', `127.0.0.1:${port}`, '--admin', 'off', '--cache-dir', dir,
      '--cache-size', '64MiB', '--access-log', 'off', '--log-format', 'text', '--log-level', 'warn',
      // The tests' origins are on loopback, which forward listeners refuse by default.
      '--forward-allow-loopback'],
    { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    for (let i = 0; i < 500 && child.exitCode === null; i++) {
      if (fs.existsSync(path.join(dir, 'cache.shm'))) {
        try {
          const c = zerohop.open(dir, { sidecar: `127.0.0.1:${port}` });
          const ok = c.healthy();
          c.close();
          if (ok) return { child, dir, addr: `127.0.0.1:${port}` };
        } catch { /* not ready yet */ }
      }
      await sleep(20);
    }
    child.kill('SIGKILL');
    if (attempt >= 2) throw new Error(`sidecar did not start: ${err}`);
  }
}

const cs = (r) => r.headers.get('cache-status') || '';

test('a real sidecar: miss, zero-hop hit, invalidate, miss', { timeout: 240000 }, async (t) => {
  const bin = goBuild('./cmd/zerohop', 'zerohop');
  if (!bin) return t.skip('go is not installed');
  const origin = await startOrigin();
  const sc = await startSidecar(bin);
  t.after(async () => {
    sc.child.kill('SIGTERM');
    origin.srv.close();
  });

  for (const be of backendMatrix()) {
    await t.test(`through fetch (${be.name})`, { skip: be.skip }, async () => {
      const client = zerohop.open(sc.dir, { backend: be.name, sidecar: sc.addr });
      const d = client.dispatcher();
      try {
        assert.equal(client.backend, be.name);
        const url = `${origin.base}/item/${be.name}?q=1`;
        const path0 = `/item/${be.name}?q=1`;

        const r1 = await fetch(url, { dispatcher: d });
        const b1 = await r1.text();
        assert.equal(r1.status, 200);
        assert.match(cs(r1), /fwd=uri-miss/, 'the first is a miss at the sidecar');
        assert.match(cs(r1), /stored/);
        assert.equal(origin.count.get(path0), 1);

        const r2 = await fetch(url, { dispatcher: d });
        const b2 = await r2.text();
        assert.equal(r2.status, 200);
        assert.match(cs(r2), /^zerohop; hit; ttl=(59|60); detail=shm$/, cs(r2));
        assert.match(r2.headers.get('age'), /^\d+$/);
        // The sidecar stored the variant it compressed for fetch's
        // Accept-Encoding: the length is of the stored (encoded) body.
        assert.match(r2.headers.get('content-length'), /^\d+$/);
        if (r1.headers.get('content-length')) assert.equal(r2.headers.get('content-length'), r1.headers.get('content-length'));
        assert.equal(b2, b1, 'the same bytes');
        assert.equal(origin.count.get(path0), 1, 'the origin was not asked again');
        assert.equal(client.stats().hits, 1);

        // The app's own conditional request: a 304 from the mapping. (fetch
        // itself turns a request with If-None-Match into a no-cache one, per
        // the Fetch standard, which goes to the sidecar; undici.request does not.)
        const curl = `${origin.base}/cond/${be.name}`;
        const c1 = await request(curl, { dispatcher: d });
        await c1.body.text();
        const etag = c1.headers.etag;
        const c2 = await request(curl, { dispatcher: d, headers: { 'if-none-match': etag } });
        await c2.body.text();
        assert.equal(c2.statusCode, 304);
        assert.match(c2.headers['cache-status'], /detail=shm/);
        assert.equal(client.stats().notModified, 1);
        const r3 = await fetch(url, { dispatcher: d, headers: { 'if-none-match': r2.headers.get('etag') } });
        await r3.arrayBuffer();
        assert.doesNotMatch(cs(r3), /detail=shm/, 'fetch made it no-cache');

        // Authorization: the stored response was not public: to the sidecar.
        const r4 = await fetch(url, { dispatcher: d, headers: { authorization: 'Bearer x' } });
        await r4.arrayBuffer();
        assert.doesNotMatch(cs(r4), /detail=shm/);

        // no-cache and POST are not eligible.
        const r5 = await fetch(url, { dispatcher: d, headers: { 'cache-control': 'no-cache' } });
        await r5.arrayBuffer();
        assert.doesNotMatch(cs(r5), /detail=shm/);

        // invalidate() returns once the sidecar applied the purge...
        const before = client.reader.invalidationSeq();
        const seq = await client.invalidate(url);
        assert.ok(seq > before, `seq ${seq} after ${before}`);
        assert.ok(client.reader.invalidationSeq() >= seq);
        // ...so the next read cannot see the purged response.
        assert.equal(client.lookup(url, { headers: { 'accept-encoding': 'gzip, deflate' } }), null);
        const n = origin.count.get(path0);
        const r6 = await fetch(url, { dispatcher: d });
        await r6.text();
        assert.doesNotMatch(cs(r6), /detail=shm/, 'a miss after the purge');
        assert.equal(origin.count.get(path0), n + 1, 'fetched from the origin again');

        // The global dispatcher: plain fetch() reads the mapping.
        const prev = getGlobalDispatcher();
        setGlobalDispatcher(d);
        try {
          const r7 = await fetch(url);
          await r7.text();
          assert.match(cs(r7), /detail=shm/, 'global fetch hit');
        } finally {
          setGlobalDispatcher(prev);
        }
        // HEAD from the stored GET carries its length.
        const r8 = await fetch(url, { dispatcher: d, method: 'HEAD' });
        assert.match(cs(r8), /detail=shm/);
        assert.equal(r8.headers.get('content-length'), r2.headers.get('content-length'));
      } finally {
        await d.close();
        client.close();
      }
    });
  }

  await t.test('a public response is served to requests with Authorization', async () => {
    const client = zerohop.open(sc.dir, { sidecar: sc.addr });
    const d = client.dispatcher();
    try {
      const url = `${origin.base}/public/1`;
      await (await fetch(url, { dispatcher: d })).text();
      const r = await fetch(url, { dispatcher: d, headers: { authorization: 'Bearer x' } });
      await r.text();
      assert.match(cs(r), /detail=shm/, 'AUTH_SHARED entry');
    } finally {
      await d.close();
      client.close();
    }
  });
});
