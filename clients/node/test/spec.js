'use strict';
// The responses test/writer/main.go stores, restated: every byte of the
// entry for (key id, version) is a function of the two, so a hit can be
// checked byte for byte. Keep in step with main.go.

const { primaryKey } = require('../lib/key');

const key = (id) => primaryKey('GET', 'http', 'torture.test', `/k/${id}`);

// Generating a body costs more than a lookup: remember recent ones.
const bodies = new Map();

function body(id, ver) {
  const k = `${id}:${ver}`;
  const hit = bodies.get(k);
  if (hit !== undefined) return hit;
  if (bodies.size > 20000) bodies.clear();
  const b = makeBody(id, ver);
  bodies.set(k, b);
  return b;
}

function makeBody(id, ver) {
  const prefix = Buffer.from(`id=${id} ver=${ver}\n`, 'latin1');
  const n = (id * 7919 + ver * 104729) % 3000;
  const b = Buffer.allocUnsafe(prefix.length + n);
  prefix.copy(b, 0);
  for (let j = 0; j < n; j++) b[prefix.length + j] = (id * 31 + ver * 17 + j * 7) & 0xff;
  return b;
}

function headers(id, ver) {
  const h = [['Content-Type', 'application/x-zh-torture'], ['X-Key', String(id)]];
  if (ver % 4 === 1) {
    let pad = '';
    for (let i = 0; i < ver % 50; i++) pad += String.fromCharCode(0x61 + (i % 26));
    h.push(['X-Pad', pad], ['X-Pad', 'two']);
  }
  h.push(['X-Ver', String(ver)]);
  return h;
}

/**
 * Checks a decoded entry against what the writer stored for its key id.
 * Returns null when it matches, else what differs.
 */
function check(id, e) {
  const xk = e.headers.find(([k]) => k === 'X-Key');
  const xv = e.headers.find(([k]) => k === 'X-Ver');
  if (!xk || xk[1] !== String(id)) return `X-Key ${xk && xk[1]} for id ${id}`;
  if (!xv) return 'no X-Ver';
  const ver = Number(xv[1]);
  if (ver % 2000 !== id % 2000 && ver !== 1) return `version ${ver} is not one of id ${id}'s`;
  const want = body(id, ver);
  if (!e.body.equals(want)) return `body of ${id}@${ver} differs`;
  if (e.status !== [200, 203, 404][ver % 3]) return `status ${e.status}`;
  if (e.flags !== (ver % 5 === 0 ? 16 : 0)) return `flags ${e.flags}`;
  if (JSON.stringify(e.headers) !== JSON.stringify(headers(id, ver))) return 'headers differ';
  if (e.etag !== `"${ver.toString(16)}"`) return `etag ${e.etag}`;
  if (JSON.stringify(e.tags) !== JSON.stringify([`g${id % 16}`])) return `tags ${e.tags}`;
  return null;
}

module.exports = { key, body, headers, check };
