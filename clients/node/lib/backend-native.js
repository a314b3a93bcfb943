'use strict';
// The addon backend: the file is mapped read-only (PROT_READ, MAP_SHARED)
// by src/zerohop_shm.c, which runs the whole lookup on the mapping under a
// SIGBUS guard and copies a verified entry into this mapping's buffer. A hit
// makes no system call.

const path = require('node:path');
const L = require('./layout');
const { parseLayout } = require('./header');
const { ZerohopError } = require('./errors');
const { Slab } = require('./slab');

let addon = null;
let loadError = null;
if (process.env.ZEROHOP_NO_ADDON === '1') {
  // As if the build had failed: for tests of the fallback, and for ruling the addon out.
  loadError = new Error('disabled by ZEROHOP_NO_ADDON=1');
} else {
  try {
    addon = require(path.join(__dirname, '..', 'build', 'Release', 'zerohop_shm.node'));
  } catch (err) {
    loadError = err;
  }
}

// io slots (src/zerohop_shm.c IO_*).
const io = new Float64Array(10);
if (addon) addon.init(io);

const HDR_WORDS = 8 + L.STAT_NAMES.length;

class NativeMapping {
  /**
   * Maps path and validates its header. Throws ZerohopError or a system error.
   * @param {string} filePath
   */
  constructor(filePath) {
    const [handle, size, dev, ino] = addon.map(filePath);
    this.handle = handle;
    this.size = size;
    this.id = `${dev}:${ino}`;
    this.path = filePath;
    try {
      const h = Buffer.allocUnsafe(L.HEADER_SIZE);
      if (addon.copy(handle, 0, h) !== 0) {
        throw new ZerohopError('ZEROHOP_TRUNCATED', `zerohop: ${filePath}: memory fault reading the header (truncated or vanished)`);
      }
      this.geo = parseLayout(h, size, filePath);
      const g = this.geo;
      addon.setGeometry(handle, g.seed, g.bucketLog2, g.regionSize, g.regionCount, g.indexOff, g.arenaOff);
    } catch (err) {
      addon.unmap(handle);
      throw err;
    }
    this.hdr = new Float64Array(HDR_WORDS);
    this.slab = new Slab();
    this.n = 0;
    this.expires = 0;
    this.retries = 0;
  }

  /**
   * Looks up key[0, keyLen). On OUT_HIT the verified entry is this.view()
   * (or this.take() to keep it), and this.expires is its effective expiry.
   */
  lookup(key, keyLen, freshAt, nowMs, silenceMs, offline) {
    io[0] = freshAt;
    io[1] = nowMs;
    io[2] = silenceMs;
    io[3] = offline ? 1 : 0;
    io[4] = keyLen;
    io[7] = 0;
    // The entry is copied straight into the slab; a hit takes it from there.
    const slab = this.slab;
    let buf = slab.buf;
    io[8] = slab.off;
    let o = addon.lookup(this.handle, key, buf);
    if (o === L.OUT_GROW) {
      const [b, off] = slab.reserve(io[5]);
      buf = b;
      io[8] = off;
      io[7] = 0;
      o = addon.lookup(this.handle, key, buf);
    }
    this.retries = io[7];
    if (o === L.OUT_HIT) {
      this.n = io[5];
      this.expires = io[6];
      slab.hitBuf = buf;
      slab.hitOff = io[8];
    }
    return o;
  }

  /** The last hit's entry bytes, valid until the next lookup. */
  view() { return this.slab.view(this.n); }

  /** The last hit's entry bytes, for good. */
  take() { return this.slab.take(this.n); }

  /** The header's mutable words, or null if reading them faulted. */
  header() {
    const o = addon.header(this.handle, this.hdr);
    if (o !== 0) return null;
    const w = this.hdr;
    const stats = {};
    L.STAT_NAMES.forEach((n, i) => { stats[n] = w[8 + i]; });
    return {
      state: w[0], adoptGen: w[1], head: w[2], tail: w[3], heartbeatMs: w[4],
      writerStartMs: w[5], invalSeq: w[6], invalOff: w[7], stats,
    };
  }

  /** Whether touching the header or the last byte faults (file truncated). */
  faulted() {
    const one = Buffer.allocUnsafe(1);
    return addon.header(this.handle, this.hdr) !== 0 || addon.copy(this.handle, this.size - 1, one) !== 0;
  }

  close() {
    addon.unmap(this.handle);
  }
}

module.exports = {
  name: 'addon',
  available: addon !== null,
  loadError,
  open: (p) => new NativeMapping(p),
  flock: addon ? addon.flock : null,
  addon,
};
