'use strict';
// Reader: one cache file, read through one backend, with the Go reader's
// health rules (shm/reader.go): hits only from a live writer whose heartbeat
// is recent; when not serving (or after a fault) look at the path at most
// once per recheck interval and map it again if it holds another file (a
// new writer replaced it) or the current one faults.

const path = require('node:path');
const fs = require('node:fs');
const L = require('./layout');
const native = require('./backend-native');
const pread = require('./backend-pread');
const { ZerohopError } = require('./errors');

const FILE_NAME = 'cache.shm';

/** Picks a backend: "addon", "pread" or "auto" (the addon when it loaded). */
function pickBackend(want = process.env.ZEROHOP_BACKEND || 'auto') {
  if (want === 'pread') return pread;
  if (want === 'addon') {
    if (!native.available) {
      throw new ZerohopError('ZEROHOP_NO_ADDON', `zerohop: the native addon is not built: ${native.loadError && native.loadError.message}`);
    }
    return native;
  }
  if (want !== 'auto') throw new TypeError(`zerohop: unknown backend ${JSON.stringify(want)}`);
  return native.available ? native : pread;
}

function newStats() {
  return {
    hits: 0, misses: 0, expired: 0, tornRetries: 0, torn: 0, overruns: 0, corrupt: 0,
    collisions: 0, writerStale: 0, faults: 0, remaps: 0,
  };
}

class Reader {
  /**
   * Opens dir/cache.shm. Throws ZerohopError (bad magic, newer major version,
   * corrupt, truncated, not ready) or a system error (ENOENT).
   * @param {string} dir
   * @param {{backend?: string, maxWriterSilenceMs?: number, recheckIntervalMs?: number, offline?: boolean}} [opts]
   */
  constructor(dir, opts = {}) {
    this.path = opts.file || path.join(dir, FILE_NAME);
    this.backend = pickBackend(opts.backend);
    this.silenceMs = opts.maxWriterSilenceMs > 0 ? opts.maxWriterSilenceMs : 2000;
    this.recheckMs = opts.recheckIntervalMs > 0 ? opts.recheckIntervalMs : 100;
    // Offline serves whatever the writer state (not abandoned): for tools
    // and golden files only. Never in an app: nothing applies invalidations.
    this.offline = !!opts.offline;
    this.nextCheck = 0;
    this.closed = false;
    this.c = newStats();
    this.cur = this.mapReadOnly();
  }

  /** The active backend's name: "addon" (mmap, no syscall per hit) or "pread". */
  get backendName() { return this.backend.name; }

  mapReadOnly() {
    const m = this.backend.open(this.path);
    const h = m.header();
    if (h === null || h.state === L.STATE_INIT) {
      m.close();
      throw new ZerohopError('ZEROHOP_NOT_READY', `zerohop: ${this.path}: cache file not ready`);
    }
    return m;
  }

  /**
   * Looks key[0, keyLen) up. freshAt: unix ms at which the entry must be
   * fresh, or 0 for any verified entry. Returns the mapping holding the
   * verified copy (m.view() or m.take(), m.expires) on a hit, else null.
   */
  lookup(key, keyLen, freshAt, nowMs) {
    const m = this.cur;
    if (m === null) {
      this.c.misses++;
      this.maybeRemap(nowMs);
      return null;
    }
    const o = m.lookup(key, keyLen, freshAt, nowMs, this.silenceMs, this.offline);
    if (m.retries) this.c.tornRetries += m.retries;
    if (o === L.OUT_HIT) {
      this.c.hits++;
      return m;
    }
    this.count(o);
    if (o === L.OUT_FAULT || o === L.OUT_CLOSED) this.nextCheck = 0;
    if (o === L.OUT_FAULT || o === L.OUT_WRITER_STALE || o === L.OUT_CLOSED) this.maybeRemap(nowMs);
    return null;
  }

  count(o) {
    const c = this.c;
    switch (o) {
      case L.OUT_EXPIRED: c.expired++; break;
      case L.OUT_TORN: c.torn++; break;
      case L.OUT_OVERRUN: c.overruns++; break;
      case L.OUT_CORRUPT: c.corrupt++; break;
      case L.OUT_COLLISION: c.collisions++; break;
      case L.OUT_WRITER_STALE: c.writerStale++; break;
      case L.OUT_FAULT: c.faults++; break;
      default: break;
    }
    c.misses++;
  }

  /**
   * At most once per recheck interval, maps the path again if it holds
   * another file or the current mapping faults. JavaScript runs a lookup to
   * its end before anything else on this thread, so the old mapping can be
   * unmapped at once (the Go reader keeps it for a grace period because its
   * goroutines may still be copying from it).
   */
  maybeRemap(nowMs) {
    if (this.closed || nowMs < this.nextCheck) return;
    this.nextCheck = nowMs + this.recheckMs;
    let st;
    try {
      st = fs.statSync(this.path);
    } catch {
      return; // vanished: keep missing until it comes back
    }
    const cur = this.cur;
    if (cur !== null && `${st.dev}:${st.ino}` === cur.id && !cur.faulted()) return;
    let m;
    try {
      m = this.mapReadOnly();
    } catch {
      return;
    }
    this.cur = m;
    this.c.remaps++;
    if (cur !== null) cur.close();
  }

  /** Whether hits are served at nowMs: live writer, recent heartbeat. */
  healthy(nowMs = Date.now()) {
    const h = this.cur && this.cur.header();
    if (!h) return false;
    if (this.offline) return h.state !== L.STATE_ABANDONED;
    return h.state === L.STATE_LIVE && nowMs - h.heartbeatMs <= this.silenceMs;
  }

  /** Sequence number of the last invalidation record the writer applied. */
  invalidationSeq() {
    const h = this.cur && this.cur.header();
    return h ? h.invalSeq : 0;
  }

  /** The writer's counters from the file header (null if unreadable). */
  writerStats() {
    return this.cur ? this.cur.header() : null;
  }

  /** This process's lookup statistics. */
  stats() { return { ...this.c }; }

  /** The file's geometry (seed, regions, ...). */
  get geometry() { return this.cur ? this.cur.geo : null; }

  close() {
    if (this.closed) return;
    this.closed = true;
    const m = this.cur;
    this.cur = null;
    if (m) m.close();
  }
}

module.exports = { Reader, pickBackend, FILE_NAME, backends: { addon: native, pread } };
