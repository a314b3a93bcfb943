'use strict';
// The app counters file: this process's counters, published for the
// sidecar's /metrics (docs/format.md, "App counters"; the Go side is
// shm/appcounters). One small file per process in the invalidation log's
// directory, locked with flock for the process's life so that the sidecar
// tells a live process from a departed one.
//
// The Go client writes through a read-write mapping. Node cannot map a file
// from JavaScript, so this writes the whole block (header and counters,
// 216 bytes) with one positional write (pwrite(2)) about once a second.
// The sidecar never maps the file: it reads it with pread until two reads in
// a row agree, so a read racing the write is retried, and it keeps the
// largest value of each counter; the file is never resized after creation.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { Locker } = require('./invalidate');

const MAGIC = 'ZHAPPCTR';
const MAJOR = 1;
const MINOR = 0;
const HEADER_SIZE = 64;
const OFF_UPDATED = 40;
const OFF_CLIENT = 48;
const CLIENT_LEN = 16;
const FILE_PREFIX = 'app-';
const FILE_SUFFIX = '.counters';

/** Counter names in file order, version 1.0 (shm/appcounters.Names). */
const NAMES = Object.freeze([
  'hits', 'not_modified', 'misses',
  'bypass_method', 'bypass_body', 'bypass_conditional', 'bypass_no_cache',
  'served_bytes',
  'lookup_hits', 'lookup_misses', 'lookup_expired',
  'torn_retries', 'torn', 'overruns', 'corrupt', 'collisions', 'writer_stale', 'faults', 'remaps',
]);
const COUNT = NAMES.length;
const FILE_SIZE = HEADER_SIZE + 8 * COUNT;

// u64 little-endian from a non-negative integer below 2^53, without BigInt.
function putU64(buf, off, v) {
  v = v > 0 ? Math.floor(v) : 0;
  buf.writeUInt32LE(v % 0x100000000, off);
  buf.writeUInt32LE(Math.floor(v / 0x100000000), off + 4);
}

class CounterPublisher {
  /**
   * Creates this process's counters file in dir (which the sidecar
   * creates): built under a temporary name, locked, written, then renamed
   * into place, so the sidecar never sees a live process's file unlocked.
   * Throws on any failure (no directory, no permission, no flock).
   * @param {string} dir
   * @param {string} [client] the client's name in the header
   */
  constructor(dir, client = 'node') {
    const instance = crypto.randomBytes(8);
    instance[0] |= 1; // nonzero
    const hex = Buffer.from(instance).reverse().toString('hex'); // the u64, as %016x
    this.path = path.join(dir, `${FILE_PREFIX}${process.pid}-${hex}${FILE_SUFFIX}`);
    const tmp = this.path + '.tmp';
    const C = fs.constants;
    this.fd = fs.openSync(tmp, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644);
    try {
      fs.fchmodSync(this.fd, 0o644); // the sidecar runs as another user; undo the umask
      if (!new Locker().tryLock(this.fd)) throw new Error(`${tmp}: locked by another process`);
      const b = Buffer.alloc(FILE_SIZE);
      b.write(MAGIC, 0, 'latin1');
      b.writeUInt16LE(MAJOR, 8);
      b.writeUInt16LE(MINOR, 10);
      b.writeUInt32LE(HEADER_SIZE, 12);
      b.writeUInt32LE(COUNT, 16);
      b.writeUInt32LE(process.pid >>> 0, 20);
      instance.copy(b, 24);
      const now = Date.now();
      putU64(b, 32, now);
      putU64(b, OFF_UPDATED, now);
      b.write(client.slice(0, CLIENT_LEN), OFF_CLIENT, 'latin1');
      this.buf = b;
      this.write();
      fs.renameSync(tmp, this.path);
    } catch (err) {
      fs.closeSync(this.fd);
      this.fd = -1;
      try { fs.unlinkSync(tmp); } catch { /* already gone */ }
      throw err;
    }
  }

  write() {
    const n = fs.writeSync(this.fd, this.buf, 0, FILE_SIZE, 0);
    if (n !== FILE_SIZE) throw new Error(`${this.path}: short write (${n} of ${FILE_SIZE} bytes)`);
  }

  /**
   * Writes the counters (numbers in NAMES order) and the updated time, all
   * in one pwrite. Does nothing after close.
   * @param {ArrayLike<number>} values
   * @param {number} [nowMs]
   */
  publish(values, nowMs = Date.now()) {
    if (this.fd < 0) return;
    for (let i = 0; i < COUNT; i++) putU64(this.buf, HEADER_SIZE + 8 * i, values[i] || 0);
    putU64(this.buf, OFF_UPDATED, nowMs);
    this.write();
  }

  /** Closes the file, which releases the lock; the sidecar folds it in and removes it. */
  close() {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

module.exports = { CounterPublisher, NAMES, COUNT, FILE_SIZE, HEADER_SIZE };
