'use strict';
// An undici Dispatcher for fetch: fresh hits are answered from the shared
// cache without leaving the process; everything else goes to the sidecar as
// it would through the Go client's transport (http.ProxyURL(sidecar)):
// http:// requests in absolute form to the sidecar's forward proxy, https://
// through a CONNECT tunnel it opens (undici's ProxyAgent).
//
//   const { setGlobalDispatcher } = require('undici');
//   setGlobalDispatcher(client.dispatcher());   // global fetch now reads the cache
//
// Node 20's global fetch is undici 6 and drives a dispatcher through the
// handler callbacks onConnect/onHeaders/onData/onComplete; undici 7 adds
// onRequestStart/onResponseStart/...; a hit is delivered through whichever
// the handler has.

const { Dispatcher, Pool, ProxyAgent } = require('undici');
const { headerLines } = require('./request');

class ZerohopDispatcher extends Dispatcher {
  /**
   * @param {import('./client').Client} client
   * @param {{sidecar?: string, direct?: boolean, fallback?: Dispatcher}} [opts]
   *   fallback replaces the sidecar route; direct sends misses to their URL as they are
   */
  constructor(client, opts = {}) {
    super();
    this.client = client;
    this.sidecarOrigin = `http://${opts.sidecar || client.sidecar}`;
    this.fallback = opts.fallback || null;
    this.direct = !!opts.direct;
    this.pool = null; // absolute-form http through the sidecar
    this.tunnel = null; // CONNECT for https
    this.closed = false;
  }

  dispatch(opts, handler) {
    const origin = typeof opts.origin === 'string' ? new URL(opts.origin) : opts.origin;
    const method = opts.method || 'GET';
    let served = null;
    if (origin && (method === 'GET' || method === 'HEAD') && opts.upgrade == null) {
      const h = headerLines(opts.headers);
      const hostHeader = h.get('host');
      const host = hostHeader && hostHeader.length ? hostHeader[0] : origin.host;
      const hasBody = opts.body != null && !(typeof opts.body === 'string' && opts.body === '') &&
        !(Buffer.isBuffer(opts.body) && opts.body.length === 0);
      served = this.client.serve(method, origin.protocol.slice(0, -1), host, opts.path, h, hasBody);
    } else {
      // Not GET or HEAD; or an upgrade, or no origin (counted under no reason).
      this.client.bypass(method === 'GET' || method === 'HEAD' ? '' : 'method');
    }
    if (served !== null) {
      try {
        deliver(served, handler);
      } catch (err) {
        // A handler that throws gets its error back, as from a connection.
        if (typeof handler.onError === 'function') handler.onError(err);
        else if (typeof handler.onResponseError === 'function') handler.onResponseError(null, err);
        else throw err;
      }
      return true;
    }
    return this.forward(opts, origin, handler);
  }

  forward(opts, origin, handler) {
    if (this.fallback) return this.fallback.dispatch(opts, handler);
    if (this.direct) {
      if (this.pool === null) this.pool = new (require('undici').Agent)();
      return this.pool.dispatch(opts, handler);
    }
    if (origin && origin.protocol === 'http:') {
      if (this.pool === null) this.pool = new Pool(this.sidecarOrigin, { connections: 64 });
      // Absolute form, with the origin's Host: the sidecar is a forward proxy.
      const headers = withHost(opts.headers, origin.host);
      return this.pool.dispatch({ ...opts, origin: this.sidecarOrigin, path: origin.origin + opts.path, headers }, handler);
    }
    if (this.tunnel === null) this.tunnel = new ProxyAgent(this.sidecarOrigin);
    return this.tunnel.dispatch(opts, handler);
  }

  async close() {
    this.closed = true;
    await Promise.all([this.pool && this.pool.close(), this.tunnel && this.tunnel.close()]);
  }

  async destroy(err) {
    this.closed = true;
    await Promise.all([this.pool && this.pool.destroy(err), this.tunnel && this.tunnel.destroy(err)]);
  }
}

// withHost returns headers with a Host field, adding the origin's if absent
// (undici would otherwise send the sidecar's address as Host).
function withHost(headers, host) {
  if (headers == null) return { host };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      return headers.some(([k]) => String(k).toLowerCase() === 'host') ? headers : [...headers, ['host', host]];
    }
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'host') return headers;
    return [...headers, 'host', host];
  }
  if (typeof headers[Symbol.iterator] === 'function' && typeof headers !== 'string') {
    const out = {};
    for (const [k, v] of headers) out[k] = v;
    headers = out;
  }
  for (const k of Object.keys(headers)) if (k.toLowerCase() === 'host') return headers;
  return { ...headers, host };
}

// deliver plays a served response into an undici handler, synchronously:
// the bytes are already in memory.
function deliver(res, handler) {
  const raw = [];
  for (const [k, v] of res.headers) raw.push(Buffer.from(k, 'latin1'), Buffer.from(v, 'latin1'));
  const statusText = STATUS_TEXT[res.status] || '';
  if (typeof handler.onResponseStart === 'function') {
    // undici 7 handler API
    let aborted = false;
    const controller = {
      abort() { aborted = true; }, pause() {}, resume() {},
      get aborted() { return aborted; }, get paused() { return false; }, reason: null,
    };
    if (handler.onRequestStart) handler.onRequestStart(controller, {});
    if (aborted) return;
    const headers = {};
    for (const [k, v] of res.headers) {
      const lk = k.toLowerCase();
      headers[lk] = headers[lk] === undefined ? v : [].concat(headers[lk], v);
    }
    handler.onResponseStart(controller, res.status, headers, statusText);
    if (aborted) return;
    if (res.body.length) handler.onResponseData(controller, res.body);
    if (!aborted) handler.onResponseEnd(controller, {});
    return;
  }
  let aborted = false;
  if (handler.onConnect) handler.onConnect(() => { aborted = true; });
  if (aborted) return;
  if (handler.onHeaders(res.status, raw, () => {}, statusText) === false) {
    // paused: the bytes are in memory; continue delivering, as the sidecar path would after resume
  }
  if (aborted) return;
  if (res.body.length && !aborted) handler.onData(res.body);
  if (!aborted) handler.onComplete([]);
}

const STATUS_TEXT = require('node:http').STATUS_CODES;

module.exports = { ZerohopDispatcher };
