'use strict';
// A sidecar route's cache key parts (docs/routes.md; docs/format.md "Route
// key parts") need nothing of the Node client: selected request headers
// arrive in the Vary marker's block, which get() already follows, and a
// query the route would normalise misses here and goes to the sidecar.
// The real sidecar with a route file, a Node origin, both on 127.0.0.1.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { goBuild, tmpdir } = require('./helpers');
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

test('route key parts: tenant header via the vary block, non-normal query misses', { timeout: 240000 }, async (t) => {
  const bin = goBuild('./cmd/zerohop', 'zerohop');
  if (!bin) return t.skip('go is not installed');
  let n = 0;
  const origin = http.createServer((req, res) => {
    n++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60' });
    res.end(`${req.url} for ${req.headers['x-tenant']} #${n}`);
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const oport = origin.address().port;
  const dir = tmpdir();
  const cfg = path.join(dir, 'zerohop.yaml');
  fs.writeFileSync(cfg, [
    'listeners:',
    '  - {name: forward, mode: forward}',
    'clusters:',
    `  - {name: origin, endpoints: [{url: 'http://127.0.0.1:${oport}'}]}`,
    'routes:',
    '  - name: tenants',
    '    match: {host: 127.0.0.1}',
    '    cluster: origin',
    '    cache: {key: {headers: [X-Tenant], query: {drop: [utm_source], sort: true}}}',
    '',
  ].join('\n'));
  const port = await freePort();
  const child = spawn(bin, ['run', '--listen', `127.0.0.1:${port}`, '--admin', 'off', '--cache-dir', dir,
    '--cache-size', '32MiB', '--access-log', 'off', '--log-level', 'warn', '--forward-allow-loopback'],
  { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ZEROHOP_CONFIG: cfg } });
  t.after(() => { child.kill('SIGTERM'); origin.close(); });
  const sidecar = `127.0.0.1:${port}`;
  let client = null;
  for (let i = 0; i < 500 && !client; i++) {
    try {
      if (fs.existsSync(path.join(dir, 'cache.shm'))) {
        const c = zerohop.open(dir, { sidecar, backend: 'pread' });
        if (c.healthy()) client = c; else c.close();
      }
    } catch { /* not ready yet */ }
    if (!client) await sleep(20);
  }
  assert.ok(client, 'the sidecar came up');
  t.after(() => client.close());

  const host = `127.0.0.1:${oport}`;
  // Absolute form through the forward listener, as HTTP_PROXY does.
  const viaSidecar = (target, tenant) => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `http://${host}${target}`, headers: { host, 'x-tenant': tenant } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, cs: res.headers['cache-status'] || '', body }));
    });
    req.on('error', reject);
    req.end();
  });
  const r1 = await viaSidecar('/k?b=2&utm_source=x&a=1', 't1');
  const r2 = await viaSidecar('/k?a=1&b=2', 't2');
  assert.equal(r1.status, 200);
  assert.equal(r2.body, '/k?a=1&b=2 for t2 #2');

  const get = (target, tenant) => client.get('GET', 'http', host, target, tenant ? { 'x-tenant': tenant } : {});
  for (let i = 0; i < 250 && get('/k?a=1&b=2', 't2') === null; i++) await sleep(20);
  const e1 = get('/k?a=1&b=2', 't1');
  const e2 = get('/k?a=1&b=2', 't2');
  assert.ok(e1 && e2, 'both tenants hit under the normal target');
  assert.equal(Buffer.from(e1.body).toString(), r1.body);
  assert.equal(Buffer.from(e2.body).toString(), r2.body);
  assert.equal(get('/k?a=1&b=2', 't3'), null, 'never another tenant\'s entry');
  assert.equal(get('/k?a=1&b=2', ''), null);
  assert.equal(get('/k?b=2&utm_source=x&a=1', 't1'), null, 'a target the route normalises misses here');
  const r3 = await viaSidecar('/k?utm_source=y&a=1&b=2', 't1');
  assert.match(r3.cs, /hit/);
  assert.equal(r3.body, r1.body);
});
