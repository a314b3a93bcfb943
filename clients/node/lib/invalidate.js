'use strict';
// Appending to the invalidation log the sidecar tails (invalidate/record.go,
// invalidate/log.go; docs/invalidation.md), and waiting until the sidecar
// has applied a record (invalidate/wait.go): read-your-purge.
//
// Every appender, in any process or container, takes the log file's
// exclusive flock(2), checks that the locked file is still the one at the
// path (the tailer rotates it by rename), reads what others appended since
// its last look to learn the last sequence number, and writes its record
// with one write(2) on an O_APPEND descriptor. Node has no flock in core:
// the addon provides it; without the addon, flock(1) from util-linux locks
// our own descriptor, passed to it as fd 3 (a flock belongs to the open
// file description, which the child shares, so the lock outlives it).

const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { setTimeout: sleep, setImmediate: yieldLoop } = require('node:timers/promises');
const { crc32c } = require('./crc');
const { ZerohopError } = require('./errors');
const native = require('./backend-native');

const MAGIC = Buffer.from('ZHIV', 'latin1');
const VERSION = 1;
const HEADER_SIZE = 33;
const MAX_ORIGIN = 255;
const MAX_PAYLOAD = 64 << 10;
const MAX_RECORD_SIZE = HEADER_SIZE + MAX_ORIGIN + MAX_PAYLOAD;
const TAIL_WINDOW = 64 << 10;

const KINDS = { key: 1, prefix: 2, tag: 3, all: 4 };
const MODES = { hard: 0, soft: 1 };

/** A record purging one URL and its Vary variants. */
function keyRecord(url, mode = 'hard') { return { kind: 'key', payload: url, mode }; }
/** A record purging every URL of one scheme and host under a path prefix. */
function prefixRecord(prefix, mode = 'hard') { return { kind: 'prefix', payload: prefix, mode }; }
/** A record purging every response carrying a surrogate key. */
function tagRecord(tag, mode = 'hard') { return { kind: 'tag', payload: tag, mode }; }
/** A record purging everything. */
function allRecord(mode = 'hard') { return { kind: 'all', payload: '', mode }; }

function bad(msg) { return new ZerohopError('ZEROHOP_BAD_RECORD', `zerohop: invalidate: ${msg}`); }

// invalidate/url.go SplitURL's checks: an absolute URL with a valid scheme and a host.
function checkURL(u) {
  const i = u.indexOf('://');
  const scheme = i < 0 ? '' : u.slice(0, i);
  if (!/^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme)) throw bad(`${JSON.stringify(u)} is not an absolute URL`);
  const rest = u.slice(i + 3);
  let end = rest.search(/[/?#]/);
  if (end < 0) end = rest.length;
  let host = rest.slice(0, end);
  const at = host.lastIndexOf('@');
  if (at >= 0) host = host.slice(at + 1);
  if (host === '' || /[ \t\r\n]/.test(host)) throw bad(`${JSON.stringify(u)} has no host`);
}

/** Record.Validate, then the encoding (AppendRecord). */
function encodeRecord(rec, seq, timeMs, origin) {
  const kind = KINDS[rec.kind];
  const mode = MODES[rec.mode || 'hard'];
  if (kind === undefined || mode === undefined) throw bad(`unknown kind or mode ${rec.kind}/${rec.mode}`);
  const payload = Buffer.isBuffer(rec.payload) ? rec.payload : Buffer.from(rec.payload || '', 'utf8');
  const org = Buffer.from(rec.origin || origin || '', 'utf8');
  if (org.length > MAX_ORIGIN) throw bad(`origin of ${org.length} bytes, limit ${MAX_ORIGIN}`);
  if (payload.length > MAX_PAYLOAD) throw bad(`payload of ${payload.length} bytes, limit ${MAX_PAYLOAD}`);
  if (kind === 1 || kind === 2) checkURL(payload.toString('utf8'));
  if (kind === 3 && payload.length === 0) throw bad('empty tag');
  if (kind === 4 && payload.length !== 0) throw bad('payload on an "all" record');
  const n = HEADER_SIZE + org.length + payload.length;
  const b = Buffer.alloc(n);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(n, 8);
  b[12] = VERSION;
  b[13] = kind;
  b[14] = mode;
  b[15] = 0; // flags: FlagRemote is the bridge's
  b.writeBigUInt64LE(BigInt(seq), 16);
  b.writeBigInt64LE(BigInt(timeMs), 24);
  b[32] = org.length;
  org.copy(b, HEADER_SIZE);
  payload.copy(b, HEADER_SIZE + org.length);
  b.writeUInt32LE(crc32c(b, 8, n), 4);
  return b;
}

/**
 * DecodeRecord's verdict on b at p: {n, seq} for a whole checksummed record
 * (usable or not: an unknown version or a malformed origin is still skipped
 * whole, as the Go reader does), "incomplete", or "corrupt".
 */
function decodeAt(b, p) {
  const rest = b.length - p;
  if (rest < 4) return b.subarray(p).equals(MAGIC.subarray(0, rest)) ? 'incomplete' : 'corrupt';
  if (b[p] !== 0x5a || b[p + 1] !== 0x48 || b[p + 2] !== 0x49 || b[p + 3] !== 0x56) return 'corrupt';
  if (rest < 12) return 'incomplete';
  const n = b.readUInt32LE(p + 8);
  if (n < HEADER_SIZE || n > MAX_RECORD_SIZE) return 'corrupt';
  if (rest < n) return 'incomplete';
  if (crc32c(b, p + 8, p + n) !== b.readUInt32LE(p + 4)) return 'corrupt';
  const usable = b[p + 12] === VERSION && HEADER_SIZE + b[p + 32] <= n;
  return { n, seq: usable ? Number(b.readBigUInt64LE(p + 16)) : 0 };
}

/** The highest sequence number among the records in b (parsed forward, resynchronising on garbage). */
function maxSeq(b) {
  let best = 0;
  let found = false;
  let p = 0;
  while (p < b.length) {
    const r = decodeAt(b, p);
    if (typeof r === 'object') {
      found = true;
      if (r.seq > best) best = r.seq;
      p += r.n;
      continue;
    }
    // corrupt or a torn/incomplete record: look for the next magic
    const q = b.indexOf(MAGIC, p + 1);
    if (q < 0) break;
    p = q;
  }
  return { best, found };
}

class Locker {
  constructor() {
    this.flock = native.flock; // addon: flock(2)
  }

  // Returns true when locked, false when busy.
  tryLock(fd) {
    if (this.flock) return this.flock(fd, 1) === 0;
    const r = spawnSync('flock', ['-n', '-x', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    if (r.error) throw new ZerohopError('ZEROHOP_LOCK', `zerohop: invalidate: flock(1) unavailable without the addon: ${r.error.message}`);
    if (r.status === 0) return true;
    if (r.status === 1) return false;
    throw new ZerohopError('ZEROHOP_LOCK', `zerohop: invalidate: flock(1): ${r.stderr}`);
  }

  unlock(fd) {
    if (this.flock) { this.flock(fd, 0); return; }
    spawnSync('flock', ['-u', '3'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
  }
}

/**
 * An appender to one invalidation log (invalidate.Log). Appends from one
 * InvalidationLog are serialised; any number of processes may append at once.
 */
class InvalidationLog {
  constructor(logPath, { origin = '' } = {}) {
    if (Buffer.byteLength(origin) > MAX_ORIGIN) throw bad(`origin of ${Buffer.byteLength(origin)} bytes, limit ${MAX_ORIGIN}`);
    this.path = logPath;
    this.origin = origin;
    this.fd = -1;
    this.id = '';
    this.off = 0; // a record boundary: the end of what we last read or wrote
    this.seq = 0; // highest sequence number known: a floor for the next
    this.locker = new Locker();
    this.queue = Promise.resolve();
    this.closed = false;
  }

  /** Validates rec, gives it the next sequence number and appends it. Resolves to the seq. */
  append(rec, { signal } = {}) {
    encodeRecord(rec, 0, 0, this.origin); // validate before queueing
    const run = this.queue.then(() => this.appendLocked(rec, signal));
    this.queue = run.catch(() => {});
    return run;
  }

  async appendLocked(rec, signal) {
    if (this.closed) throw new ZerohopError('ZEROHOP_CLOSED', 'zerohop: invalidation log closed');
    const size = await this.lockCurrent(signal);
    try {
      const seq = this.lastSeq(size) + 1;
      const b = encodeRecord(rec, seq, Date.now(), this.origin);
      let n = 0;
      try {
        n = fs.writeSync(this.fd, b);
      } catch (err) {
        this.off = 0; // maybe a torn record of ours: rescan next time
        throw err;
      }
      if (n !== b.length) {
        this.off = 0;
        throw new ZerohopError('ZEROHOP_SHORT_WRITE', `zerohop: append to ${this.path}: short write`);
      }
      this.off = size + n;
      this.seq = seq;
      return seq;
    } finally {
      this.locker.unlock(this.fd);
    }
  }

  // Opens the log if needed and locks it, making sure the locked file is
  // the one at the path (else reopen). Returns the locked file's size.
  async lockCurrent(signal) {
    for (;;) {
      if (this.fd < 0) {
        this.fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o666);
        const st = fs.fstatSync(this.fd);
        this.id = `${st.dev}:${st.ino}`;
        this.off = 0;
      }
      // A busy lock: yield first (appends hold it for microseconds), then sleep.
      for (let i = 0; !this.locker.tryLock(this.fd); i++) {
        if (signal && signal.aborted) {
          throw new ZerohopError('ZEROHOP_TIMEOUT', 'zerohop: invalidate: waiting for the log lock: aborted', { cause: signal.reason });
        }
        if (i < 64) await yieldLoop();
        else await sleep(1);
      }
      let pst = null;
      try {
        pst = fs.statSync(this.path);
      } catch (err) {
        if (err.code !== 'ENOENT') {
          this.locker.unlock(this.fd);
          throw err;
        }
      }
      if (pst && `${pst.dev}:${pst.ino}` === this.id) return fs.fstatSync(this.fd).size;
      // Rotated or replaced under us: reopen the file at the path.
      this.locker.unlock(this.fd);
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  // The highest sequence number in the locked file of the given size, or
  // our floor if higher: parse forward from the last known boundary, or
  // read a window at the end, widened until it holds a record.
  lastSeq(size) {
    let from = this.off;
    if (from > size) from = 0; // truncated
    if (from === size) return this.seq;
    let start = size - from > TAIL_WINDOW ? size - TAIL_WINDOW : from;
    for (;;) {
      const b = Buffer.alloc(size - start);
      const got = fs.readSync(this.fd, b, 0, b.length, start);
      const { best, found } = maxSeq(b.subarray(0, got));
      if (found || start === from) {
        this.off = size;
        this.seq = Math.max(this.seq, best);
        return this.seq;
      }
      start = Math.max(from, start - 2 * (size - start));
    }
  }

  close() {
    this.closed = true;
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Waits until the reader reports seq applied (the cache header's applied
 * invalidation sequence), or signal aborts. Polls on the event loop: a few
 * milliseconds of immediate turns (the sidecar usually applies a record
 * within tens of microseconds), then sleeps of a millisecond.
 */
async function waitApplied(reader, seq, signal) {
  const spinUntil = Date.now() + 5;
  for (;;) {
    if (reader.invalidationSeq() >= seq) return;
    if (signal && signal.aborted) {
      if (reader.invalidationSeq() >= seq) return;
      throw new ZerohopError('ZEROHOP_TIMEOUT',
        `zerohop: invalidate: waiting for record ${seq} to be applied (applied: ${reader.invalidationSeq()}): aborted`,
        { cause: signal.reason });
    }
    if (Date.now() < spinUntil) await yieldLoop();
    else await sleep(1);
  }
}

module.exports = {
  InvalidationLog, Locker, waitApplied, encodeRecord, decodeAt, maxSeq, keyRecord, prefixRecord, tagRecord, allRecord,
};
