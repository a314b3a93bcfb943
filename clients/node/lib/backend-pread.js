'use strict';
// The positional-read backend, for when the addon cannot be built: the file
// is never mapped; every read is one pread(2) through fs.readSync at an
// offset. It follows the same protocol as the mapping reader, and each step
// that a mapping gets from atomics it gets from ordering of whole reads:
//
// - The bucket is read twice, whole; equal copies with an even sequence
//   are a consistent snapshot of the slot words (tag, pos, and meta with
//   the fresh-until time, which no checksum covers). pread copies from the
//   same page-cache pages the writer's mapping stores to, so a torn copy is
//   possible and is what the second read rejects.
// - The header's hot lines (state, heartbeat, and the reclaim horizon) are
//   read in one pread after the entry's.
// - The entry's copy is verified (kind, length, pos, hash, CRC-32, lengths)
//   and its key compared in full, exactly as with a mapping.
// - A truncated file gives a short read (never SIGBUS): a counted fault.

const fs = require('node:fs');
const L = require('./layout');
const { parseLayout } = require('./header');
const { xxh64Into, mul, regHi: mulHi, regLo: mulLo } = require('./xxh64');
const { crc32 } = require('./crc');
const { ZerohopError } = require('./errors');
const { Slab } = require('./slab');

const hash = new Uint32Array(2);
// Header words a lookup needs, in one read: state (128) .. heartbeat (320+8).
const HOT_FROM = L.OFF_STATE;
const HOT_LEN = L.OFF_HEARTBEAT + 8 - L.OFF_STATE;

function u64(b, off) {
  return b.readUInt32LE(off + 4) * 4294967296 + b.readUInt32LE(off);
}

class PreadMapping {
  constructor(filePath) {
    this.fd = fs.openSync(filePath, 'r');
    try {
      const st = fs.fstatSync(this.fd);
      this.size = st.size;
      this.id = `${st.dev}:${st.ino}`;
      this.path = filePath;
      if (st.size < L.HEADER_SIZE) {
        throw new ZerohopError('ZEROHOP_TRUNCATED', `zerohop: ${filePath}: truncated cache file: ${st.size} bytes`);
      }
      const h = Buffer.alloc(L.HEADER_SIZE);
      if (fs.readSync(this.fd, h, 0, L.HEADER_SIZE, 0) !== L.HEADER_SIZE) {
        throw new ZerohopError('ZEROHOP_TRUNCATED', `zerohop: ${filePath}: short read of the header`);
      }
      this.geo = parseLayout(h, st.size, filePath);
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
    this.hot = Buffer.alloc(HOT_LEN);
    this.bucket = Buffer.alloc(L.BUCKET_SIZE);
    this.bucket2 = Buffer.alloc(L.BUCKET_SIZE);
    this.slab = new Slab();
    this.n = 0;
    this.expires = 0;
    this.retries = 0;
    this.closed = false;
    // snapshot results
    this.sPosHi = 0; this.sPosLo = 0; this.sMetaHi = 0; this.sMetaLo = 0;
  }

  read(buf, len, off) {
    return fs.readSync(this.fd, buf, 0, len, off) === len;
  }

  // Returns 1 found, 0 not found, -1 torn, -2 short read. Two preads of
  // the whole bucket that agree byte for byte, with an even sequence, are a
  // consistent snapshot on any CPU: a kernel copy gives no per-word
  // atomicity and no order within one copy, but the second copy starts only
  // after the first is complete, and a writer that changed the bucket
  // meanwhile changed its sequence word too (docs/format.md, "Positional
  // reads"). The bucket's ctl word is never written in format 2.
  snapshot(b, tagHi, tagLo) {
    const bk = this.bucket;
    const again = this.bucket2;
    for (let t = 0; t < L.MAX_SEQ_TRIES; t++) {
      if (!this.read(bk, L.BUCKET_SIZE, b)) return -2;
      const s = bk.readUInt32LE(0);
      if (s & 1) { this.retries++; continue; }
      if (!this.read(again, L.BUCKET_SIZE, b)) return -2;
      if (!bk.equals(again)) { this.retries++; continue; }
      for (let i = 0; i < L.SLOTS_PER_BUCKET; i++) {
        const so = 8 + i * L.SLOT_SIZE;
        if (bk.readUInt32LE(so) === tagLo && bk.readUInt32LE(so + 4) === tagHi) {
          this.sPosLo = bk.readUInt32LE(so + 8); this.sPosHi = bk.readUInt32LE(so + 12);
          this.sMetaLo = bk.readUInt32LE(so + 16); this.sMetaHi = bk.readUInt32LE(so + 20);
          return 1;
        }
      }
      return 0;
    }
    return -1;
  }

  lookup(key, keyLen, freshAt, nowMs, silenceMs, offline) {
    if (this.closed) return L.OUT_CLOSED;
    const g = this.geo;
    this.retries = 0;
    xxh64Into(key, keyLen, g.seedHi, g.seedLo, hash);
    const hHi = hash[0], hLo = hash[1];
    const tagLo = (hLo | 1) >>> 0;
    const i1 = (hLo & g.bucketMask) >>> 0;
    mul(hLo, hHi, 0x9e3779b9, 0x7f4a7c15); // rotl(h, 32) * golden ratio
    let i2 = ((mulHi() << 15 | mulLo() >>> 17) & g.bucketMask) >>> 0;
    if (i2 === i1) i2 = (i1 ^ 1) >>> 0;
    let f = this.snapshot(g.indexOff + i1 * L.BUCKET_SIZE, hHi, tagLo);
    if (f === 0) f = this.snapshot(g.indexOff + i2 * L.BUCKET_SIZE, hHi, tagLo);
    if (f === -2) return L.OUT_FAULT; // a short read: the file was truncated
    // Copy the entry if the slot holds one worth copying; else remember why
    // not. The range checks that bound the read come first (a pread cannot
    // fault, so the horizon checks can wait for the tail read after the copy).
    let pre = -1;
    let n = 0;
    let pos = 0;
    let freshUntilMs = 0;
    let b = null;
    if (f === -1) pre = L.OUT_TORN;
    else if (f === 0) pre = L.OUT_MISS;
    else {
      n = this.sMetaLo;
      freshUntilMs = this.sMetaHi * 1000;
      pos = this.sPosHi * 4294967296 + this.sPosLo;
      if (freshAt !== 0 && freshAt >= freshUntilMs) pre = L.OUT_EXPIRED;
      else if (this.sPosHi >= 0x200000 || // beyond 2^53: not a real position
          n < L.ENTRY_HEADER_SIZE || n > g.regionSize || n % L.ENTRY_ALIGN !== 0 || pos % L.ENTRY_ALIGN !== 0 ||
          pos % g.regionSize + n > g.regionSize) {
        pre = L.OUT_CORRUPT;
      } else {
        const [sb, so] = this.slab.reserve(n);
        this.slab.hitBuf = sb;
        this.slab.hitOff = so;
        if (fs.readSync(this.fd, sb, so, n, g.arenaOff + pos % g.arenaLen) !== n) return L.OUT_FAULT;
        b = so === 0 ? sb : sb.subarray(so, so + n);
      }
    }
    // Then the header's hot lines in one pread, after the copy: the state
    // and heartbeat (should we serve at all? read on every lookup, as the Go
    // reader does, but at its end instead of its start, which is the same
    // answer a moment later; caching them would keep serving a cleanly
    // closed or abandoned file) and the reclaim horizon after the copy.
    // A hit costs four preads: the bucket twice, the entry, these lines.
    const hot = this.hot;
    if (!this.read(hot, HOT_LEN, HOT_FROM)) return L.OUT_FAULT;
    const state = hot.readUInt32LE(0);
    if (offline ? state === L.STATE_ABANDONED
      : state !== L.STATE_LIVE || nowMs - u64(hot, L.OFF_HEARTBEAT - HOT_FROM) > silenceMs) {
      return L.OUT_WRITER_STALE;
    }
    if (pre !== -1) return pre;
    const tail = u64(hot, L.OFF_TAIL - HOT_FROM);
    if (pos < tail) return L.OUT_OVERRUN; // reclaimed before or during the copy
    if (pos - tail >= g.arenaLen) return L.OUT_CORRUPT;
    // Only the private copy from here on.
    if (b.readUInt32LE(0) !== L.KIND_ENTRY || b.readUInt32LE(4) !== n ||
        b.readUInt32LE(16) !== this.sPosLo || b.readUInt32LE(20) !== this.sPosHi ||
        b.readUInt32LE(24) !== hLo || b.readUInt32LE(28) !== hHi) {
      return L.OUT_CORRUPT;
    }
    if (crc32(b, 16, n, g.seed32) !== b.readUInt32LE(8)) return L.OUT_CORRUPT;
    const keyLen2 = b.readUInt32LE(64);
    const total = L.ENTRY_HEADER_SIZE + keyLen2 + b.readUInt32LE(68) + b.readUInt16LE(80) + b.readUInt16LE(82) +
      b.readUInt32LE(84) + b.readUInt32LE(72) + b.readUInt32LE(76);
    if (total > n || n - total >= L.ENTRY_ALIGN) return L.OUT_CORRUPT;
    if (keyLen2 !== keyLen || b.compare(key, 0, keyLen, L.ENTRY_HEADER_SIZE, L.ENTRY_HEADER_SIZE + keyLen) !== 0) {
      return L.OUT_COLLISION;
    }
    let expires = b.readInt32LE(44) * 4294967296 + b.readUInt32LE(40);
    if (freshUntilMs < expires) expires = freshUntilMs; // soft-purged: the slot says stale
    this.n = n;
    this.expires = expires;
    if (freshAt !== 0 && ((b.readUInt16LE(62) & L.FLAG_NO_CACHE) !== 0 || !(freshAt < expires))) {
      return L.OUT_EXPIRED;
    }
    return L.OUT_HIT;
  }

  /** The last hit's entry bytes, valid until the next lookup. */
  view() { return this.slab.view(this.n); }

  /** The last hit's entry bytes, for good. */
  take() { return this.slab.take(this.n); }

  header() {
    const h = Buffer.alloc(L.OFF_STATS + 8 * L.STAT_NAMES.length);
    if (this.closed || !this.read(h, h.length, 0)) return null;
    const stats = {};
    L.STAT_NAMES.forEach((n, i) => { stats[n] = u64(h, L.OFF_STATS + 8 * i); });
    return {
      state: h.readUInt32LE(L.OFF_STATE), adoptGen: h.readUInt32LE(L.OFF_ADOPT_GEN),
      head: u64(h, L.OFF_HEAD), tail: u64(h, L.OFF_TAIL), heartbeatMs: u64(h, L.OFF_HEARTBEAT),
      writerStartMs: u64(h, L.OFF_WRITER_START), invalSeq: u64(h, L.OFF_INVAL_SEQ),
      invalOff: u64(h, L.OFF_INVAL_OFF), stats,
    };
  }

  faulted() {
    if (this.closed) return true;
    try {
      return fs.fstatSync(this.fd).size < this.geo.fileSize;
    } catch {
      return true;
    }
  }

  close() {
    if (!this.closed) {
      this.closed = true;
      fs.closeSync(this.fd);
    }
  }
}

module.exports = {
  name: 'pread',
  available: true,
  open: (p) => new PreadMapping(p),
};
