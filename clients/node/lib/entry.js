'use strict';
// A stored response, decoded from a verified private copy of its entry
// (shm/entry.go parseEntryInto). Nothing here reads the mapping: a backend
// copies and verifies the entry, and an Entry owns one copy of its bytes
// and parses parts of it only when they are asked for, so a hit costs one
// copy and no work for the fields the caller does not read.

const L = require('./layout');
const { stringBlock } = require('./key');

// latin1 keeps every byte of a field as one char (latin1Slice is what
// toString('latin1') calls, without its argument handling).
const latin1 = typeof Buffer.prototype.latin1Slice === 'function'
  ? (b, start, end) => b.latin1Slice(start, end)
  : (b, start, end) => b.toString('latin1', start, end);

const u16 = (b, o) => b[o] | (b[o + 1] << 8);
const u32 = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const i64 = (b, o) => (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) * 4294967296 + u32(b, o);

// Header lists of recent entries, by arena position. An entry's bytes never
// change while it lives, but a position is reused once its region is
// reclaimed, so a cached list is used only if its header block is byte for
// byte the same as this entry's. Lists are frozen: entries share them.
const HEADER_CACHE_MAX = 1024;
const headerCache = new Map(); // pos -> { block: Buffer, list }

class Entry {
  /**
   * @param {Buffer} raw the entry's bytes (verified; owned by this Entry)
   * @param {number} expiresMs effective expiry: min(slot fresh-until, entry expires)
   */
  constructor(raw, expiresMs) {
    this.raw = raw;
    /** Effective expiry, unix ms: the earlier of the entry's and its slot's (a soft purge lowers the slot's). */
    this.expiresMs = expiresMs;
    const keyEnd = L.ENTRY_HEADER_SIZE + u32(raw, 64);
    this.varyStart = keyEnd;
    this.etagStart = keyEnd + u32(raw, 68);
    this.lmStart = this.etagStart + u16(raw, 80);
    this.tagsStart = this.lmStart + u16(raw, 82);
    this.hdrsStart = this.tagsStart + u32(raw, 84);
    this.bodyStart = this.hdrsStart + u32(raw, 72);
    this.bodyEnd = this.bodyStart + u32(raw, 76);
    this.hdrs = null;
  }

  /** HTTP status. */
  get status() { return u16(this.raw, 60); }
  /** Entry flags (VARY_INDEX 1, MUST_REVALIDATE 2, NO_CACHE 4, HEADERS_ONLY 8, AUTH_SHARED 16). */
  get flags() { return u16(this.raw, 62); }
  /** response_time, unix ms. */
  get storedMs() { return i64(this.raw, 32); }
  /** The entry's own fresh-until, unix ms (expiresMs is the effective one). */
  get entryExpiresMs() { return i64(this.raw, 40); }
  /** corrected_initial_age, seconds. */
  get initialAge() { return u32(this.raw, 48); }
  /** stale-while-revalidate, seconds. */
  get swr() { return u32(this.raw, 52); }
  /** stale-if-error, seconds. */
  get sie() { return u32(this.raw, 56); }
  /** Arena position. */
  get pos() { return i64(this.raw, 16); }
  get totalLen() { return u32(this.raw, 4); }
  /** The body (a view of this entry's own copy). */
  get body() { return this.raw.subarray(this.bodyStart, this.bodyEnd); }
  get etag() { return latin1(this.raw, this.etagStart, this.lmStart); }
  get lastModified() { return latin1(this.raw, this.lmStart, this.tagsStart); }
  /** Lower-case request header names the response varies on (markers and variants). */
  get vary() { return stringBlock(this.raw, this.varyStart, this.etagStart); }
  /** Surrogate keys; ones starting with NUL are the writer's bookkeeping. */
  get tags() { return stringBlock(this.raw, this.tagsStart, this.hdrsStart); }

  /**
   * Header fields in stored order (sorted by name, one per line), as latin1
   * strings. The list is frozen (shared by the hits of one stored entry).
   */
  get headers() {
    if (this.hdrs !== null) return this.hdrs;
    const pos = this.pos;
    const block = this.raw.subarray(this.hdrsStart, this.bodyStart);
    const c = headerCache.get(pos);
    if (c !== undefined && c.block.equals(block)) {
      this.hdrs = c.list;
      return c.list;
    }
    const out = [];
    this.eachHeader((b, ns, ne, ve) => out.push(Object.freeze([latin1(b, ns, ne), latin1(b, ne, ve)])));
    this.hdrs = Object.freeze(out);
    if (headerCache.size >= HEADER_CACHE_MAX) headerCache.clear();
    headerCache.set(pos, { block: Buffer.from(block), list: this.hdrs });
    return this.hdrs;
  }

  /**
   * Calls f(raw, nameStart, nameEnd, valueEnd) for each header field: the
   * header block is repeated u16 name_len, u32 value_len, name, value; it
   * stops at the first malformed field.
   */
  eachHeader(f) {
    const b = this.raw;
    const end = this.bodyStart;
    let p = this.hdrsStart;
    while (end - p >= 6) {
      const nl = u16(b, p);
      const vl = u32(b, p + 2);
      if (end - p - 6 < nl + vl) break;
      const ns = p + 6;
      f(b, ns, ns + nl, ns + nl + vl);
      p = ns + nl + vl;
    }
  }

  /** Age in seconds at nowMs (RFC 9111 §4.2.3): initial age + resident time. */
  ageSeconds(nowMs) {
    let resident = Math.trunc((nowMs - this.storedMs) / 1000);
    if (resident < 0) resident = 0;
    return this.initialAge + resident;
  }

  /** Whether the entry is fresh at nowMs (never for a no-cache response). */
  fresh(nowMs) {
    return (this.flags & L.FLAG_NO_CACHE) === 0 && nowMs < this.expiresMs;
  }

  toJSON() {
    return {
      status: this.status, flags: this.flags, headers: this.headers, body: this.body.toString('base64'),
      storedMs: this.storedMs, expiresMs: this.expiresMs, etag: this.etag, lastModified: this.lastModified,
      vary: this.vary, tags: this.tags,
    };
  }
}

/**
 * The Entry in buf[0, n) (n from the entry's total_len). With copy (the
 * default) it owns a copy of the bytes; without, it aliases buf, which the
 * next lookup overwrites.
 */
function decodeEntry(buf, effectiveExpiresMs, copy = true) {
  const n = u32(buf, 4);
  const raw = copy ? Buffer.from(buf.subarray(0, n)) : buf;
  return new Entry(raw, effectiveExpiresMs);
}

/** Age in seconds at nowMs. */
function ageSeconds(e, nowMs) { return e.ageSeconds(nowMs); }

module.exports = { Entry, decodeEntry, ageSeconds, latin1 };
