'use strict';
// Client: the app-side reader of the sidecar's shared cache. It answers
// fresh hits from cache.shm and tells the caller (or the undici dispatcher)
// to send everything else to the sidecar. Mirrors clients/go/zerohop.

const os = require('node:os');
const path = require('node:path');
const L = require('./layout');
const { Reader } = require('./reader');
const { KeyBuilder, appendKey, appendVary } = require('./key');
const { Entry, decodeEntry } = require('./entry');
const { headerLines, eligible, notModified, first } = require('./request');
const { InvalidationLog, waitApplied, keyRecord } = require('./invalidate');
const { CounterPublisher, COUNT } = require('./counters');

/** The cache's name in Cache-Status fields (RFC 9211), as the Go client's. */
const CACHE_NAME = 'zerohop';
const DEFAULT_SIDECAR = '127.0.0.1:8089';
/** How often the counters are copied to the app counters file. */
const COUNTERS_INTERVAL_MS = 1000;

// The clients publishing counters, for one 'exit' listener that publishes
// them a last time however many clients are open.
const publishing = new Set();
function publishAtExit() {
  for (const c of publishing) c.stopCounters();
}

class Client {
  /**
   * Maps dir/cache.shm read-only. Throws if the sidecar has not created it
   * yet, or it is not a readable cache file (ZerohopError with a code).
   * @param {string} dir the cache directory (the volume shared with the sidecar)
   * @param {object} [opts] see index.d.ts ClientOptions
   */
  constructor(dir, opts = {}) {
    this.dir = dir;
    this.opts = opts;
    this.reader = new Reader(dir, opts);
    this.kb = new KeyBuilder(1024);
    this.vkb = new KeyBuilder(1024);
    this.sidecar = opts.sidecar || process.env.ZEROHOP_SIDECAR || DEFAULT_SIDECAR;
    this.logPath = opts.invalidationLog || path.join(dir, 'inval', 'inval.log');
    this.log = null;
    this.counters = {
      hits: 0, notModified: 0, misses: 0, bypassed: 0,
      bypassMethod: 0, bypassBody: 0, bypassConditional: 0, bypassNoCache: 0, servedBytes: 0,
    };
    this.why = { reason: '' }; // eligible()'s refusal reason, reused
    this.startCounters(opts.countersDir);
  }

  // startCounters creates the app counters file (docs/format.md, "App
  // counters") and publishes into it once a second on an unref'd timer and
  // at close or process exit. Failing that, the app works on and its
  // counters are missing from the sidecar's /metrics (countersFile() says why).
  startCounters(dir) {
    this.publisher = null;
    this.countersError = null;
    this.countersTimer = null;
    if (dir === 'off') return;
    try {
      this.publisher = new CounterPublisher(dir || path.dirname(this.logPath), 'node');
    } catch (err) {
      this.countersError = err;
      return;
    }
    this.countersValues = new Array(COUNT).fill(0);
    this.countersTimer = setInterval(() => this.publishCounters(), COUNTERS_INTERVAL_MS);
    this.countersTimer.unref();
    if (publishing.size === 0) process.on('exit', publishAtExit);
    publishing.add(this);
  }

  /**
   * Copies the counters to the app counters file now rather than at the
   * next one-second tick (an app about to exit, a test). Does nothing when
   * counters are not published.
   */
  publishCounters() {
    const p = this.publisher;
    if (p === null) return;
    const c = this.counters;
    const r = this.reader.c;
    const v = this.countersValues;
    v[0] = c.hits; v[1] = c.notModified; v[2] = c.misses;
    v[3] = c.bypassMethod; v[4] = c.bypassBody; v[5] = c.bypassConditional; v[6] = c.bypassNoCache;
    v[7] = c.servedBytes;
    v[8] = r.hits; v[9] = r.misses; v[10] = r.expired;
    v[11] = r.tornRetries; v[12] = r.torn; v[13] = r.overruns; v[14] = r.corrupt; v[15] = r.collisions;
    v[16] = r.writerStale; v[17] = r.faults; v[18] = r.remaps;
    try {
      p.publish(v);
    } catch (err) {
      // A write error (the volume gone): stop publishing, keep serving.
      this.countersError = err;
      this.stopCounters(false);
    }
  }

  // stopCounters publishes a last time (unless told not to) and closes the
  // file, releasing its lock: the sidecar folds it into its departed total.
  stopCounters(last = true) {
    if (this.countersTimer !== null) clearInterval(this.countersTimer);
    this.countersTimer = null;
    if (publishing.delete(this) && publishing.size === 0) process.removeListener('exit', publishAtExit);
    if (this.publisher === null) return;
    if (last) this.publishCounters();
    if (this.publisher !== null) this.publisher.close();
    this.publisher = null;
  }

  /**
   * The app counters file this client publishes in, or null with the
   * reason in countersError (countersDir "off", no writable directory...).
   * @returns {string|null}
   */
  countersFile() { return this.publisher === null ? null : this.publisher.path; }

  /** "addon" (mmap; a hit makes no system call) or "pread" (positional reads). */
  get backend() { return this.reader.backendName; }

  /**
   * Looks up the fresh stored response for a request, resolving Vary
   * through the request headers. HEAD is looked up as GET. Returns null on
   * a miss. This is the format-level lookup (Go Client.Get): it does not
   * apply the request's Cache-Control, Authorization or conditional
   * headers; serve() does.
   * @param {string} method
   * @param {string} scheme "http" or "https"
   * @param {string} host host[:port] as sent
   * @param {string|Buffer} target path and query exactly as sent
   * @param {*} [headers] request headers (any shape headerLines accepts, or a Map from it)
   * @param {number} [nowMs]
   */
  get(method, scheme, host, target, headers, nowMs = Date.now()) {
    const m = this.find(method, scheme, host, target, headers, nowMs);
    return m === null ? null : new Entry(m.take(), m.expires);
  }

  /** get() for a URL string or URL object. */
  lookup(url, { method = 'GET', headers } = {}) {
    const u = typeof url === 'string' ? new URL(url) : url;
    return this.get(method, u.protocol.slice(0, -1), u.host, u.pathname + u.search, headers);
  }

  // find returns the backend mapping holding the verified fresh entry.
  find(method, scheme, host, target, headers, nowMs) {
    if (method === 'HEAD') method = 'GET'; // HEAD is answered from a stored GET
    const kb = appendKey(this.kb.reset(), method, scheme, host, target);
    const r = this.reader;
    const m = r.lookup(kb.buf, kb.len, nowMs, nowMs);
    if (m === null) return null;
    const v = m.view();
    if (((v[62] | (v[63] << 8)) & L.FLAG_VARY_INDEX) === 0) return m;
    // A Vary marker: it names the request headers the response varies on,
    // and the response itself is stored under the key that includes them.
    const e = decodeEntry(v, m.expires, false);
    const h = headers instanceof Map ? headers : headerLines(headers);
    const vkb = this.vkb.reset();
    vkb.ensure(kb.len);
    kb.buf.copy(vkb.buf, 0, 0, kb.len);
    vkb.len = kb.len;
    appendVary(vkb, e.vary, (name) => h.get(name.toLowerCase()) || []);
    return r.lookup(vkb.buf, vkb.len, nowMs, nowMs);
  }

  /**
   * Answers a request from the mapping as the Go client's transport does,
   * or returns null to send it to the sidecar: only eligible requests
   * (GET/HEAD without body, range or unsupported preconditions, no
   * no-cache), only fresh entries, none that the request's max-age or
   * min-fresh refuse, no entry without the Authorization-shareable flag for
   * a request carrying Authorization, no headers-only entry for a GET. The
   * response carries Age and Cache-Status, and is a 304 when the app's own
   * If-None-Match / If-Modified-Since matches.
   * @returns {{status: number, headers: Array<[string, string]>, body: Buffer, ageSeconds: number, ttlSeconds: number} | null}
   */
  serve(method, scheme, host, target, headers, hasBody = false, nowMs = Date.now()) {
    const h = headers instanceof Map ? headers : headerLines(headers);
    const d = eligible(method, h, hasBody, this.why);
    if (d === null) {
      this.bypass(this.why.reason);
      return null;
    }
    const m = this.find(method, scheme, host, target, h, nowMs);
    if (m !== null) {
      const e = new Entry(m.take(), m.expires);
      const age = e.ageSeconds(nowMs);
      const ttl = Math.trunc((e.expiresMs - nowMs) / 1000);
      let ok = true;
      if (first(h, 'authorization') !== '' && (e.flags & L.FLAG_AUTH_SHARED) === 0) ok = false; // RFC 9111 §3.5
      else if (d.maxAge >= 0 && age > d.maxAge) ok = false;
      else if (d.minFresh > 0 && ttl < d.minFresh) ok = false;
      else if ((e.flags & L.FLAG_HEADERS_ONLY) !== 0 && method !== 'HEAD') ok = false; // only the headers were stored
      if (ok) return this.response(method, h, e, age, ttl);
    }
    this.counters.misses++;
    return null;
  }

  // bypass counts a request not eligible for a shared-memory answer, by
  // reason: method, body, conditional, no_cache (or none of them).
  bypass(reason) {
    const c = this.counters;
    c.bypassed++;
    switch (reason) {
      case 'method': c.bypassMethod++; break;
      case 'body': c.bypassBody++; break;
      case 'conditional': c.bypassConditional++; break;
      case 'no_cache': c.bypassNoCache++; break;
      default: break;
    }
  }

  response(method, h, e, age, ttl) {
    let status = e.status;
    const out = [];
    let storedLength = null;
    for (const [k, v] of e.headers) {
      const lk = k.toLowerCase();
      if (lk === 'age') continue; // replaced below
      if (lk === 'content-length') {
        if (storedLength === null) storedLength = v;
        continue; // set below from what is sent
      }
      out.push([k, v]);
    }
    out.push(['Age', String(age)]);
    if (notModified(h, e.headers)) {
      status = 304;
      this.counters.notModified++;
    }
    out.push(['Cache-Status', `${CACHE_NAME}; hit; ttl=${ttl}; detail=shm`]);
    this.counters.hits++;
    let body = e.body;
    if (status === 304) {
      body = Buffer.alloc(0);
    } else if (method === 'HEAD') {
      // A HEAD answered from a stored GET carries the GET's length.
      if ((e.flags & L.FLAG_HEADERS_ONLY) === 0) out.push(['Content-Length', String(e.body.length)]);
      else if (storedLength !== null) out.push(['Content-Length', storedLength]);
      body = Buffer.alloc(0);
    } else {
      out.push(['Content-Length', String(body.length)]);
      this.counters.servedBytes += body.length;
    }
    return { status, headers: out, body, ageSeconds: age, ttlSeconds: ttl, entry: e };
  }

  /** The client's counters and the reader's lookup statistics. */
  stats() {
    return { ...this.counters, backend: this.backend, cache: this.reader.stats() };
  }

  /** Whether hits are served from the mapping (the sidecar's heartbeat is recent). */
  healthy() { return this.reader.healthy(Date.now()); }

  /** The writer's counters and header words. */
  writerStats() { return this.reader.writerStats(); }

  /**
   * Appends an invalidation record to the log the sidecar applies and waits
   * until the sidecar has applied it (read-your-purge): the next lookup
   * cannot return what it purged. rec: {kind: "key"|"prefix"|"tag"|"all",
   * payload, mode: "hard"|"soft"} or a URL string (a hard key purge).
   * Resolves to the record's sequence number.
   * @param {string|object} rec
   * @param {{timeoutMs?: number, signal?: AbortSignal}} [opts]
   */
  async invalidate(rec, opts = {}) {
    if (typeof rec === 'string') rec = keyRecord(rec);
    if (this.log === null) {
      this.log = new InvalidationLog(this.logPath, { origin: `app@${os.hostname()}`.slice(0, 255) });
    }
    const signal = opts.signal || AbortSignal.timeout(opts.timeoutMs > 0 ? opts.timeoutMs : 10000);
    const seq = await this.log.append(rec, { signal });
    await waitApplied(this.reader, seq, signal);
    return seq;
  }

  /**
   * An undici Dispatcher answering fresh hits from the mapping and sending
   * the rest to the sidecar. Use it per request (fetch(url, {dispatcher}))
   * or for every fetch with undici.setGlobalDispatcher.
   */
  dispatcher(opts = {}) {
    const { ZerohopDispatcher } = require('./dispatcher');
    return new ZerohopDispatcher(this, { sidecar: this.sidecar, ...opts });
  }

  /** Publishes the counters a last time, unmaps the cache and closes the invalidation log. */
  close() {
    this.stopCounters();
    if (this.log) this.log.close();
    this.log = null;
    this.reader.close();
  }
}

module.exports = { Client, CACHE_NAME, DEFAULT_SIDECAR };
