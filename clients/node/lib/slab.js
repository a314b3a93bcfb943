'use strict';
// Where lookups copy entries to. A hit's Entry keeps its bytes, so each hit
// needs fresh memory; allocating a Buffer per hit (Node's pool hands out
// 8 KiB pools, a few entries each) cost a fifth of a hit. A Slab is one large
// buffer that the backends copy entries into at a moving offset: a hit takes
// its bytes as a view and moves the offset on, a miss takes nothing. Like
// Node's own Buffer pool, an Entry kept alive keeps its slab alive.

const SLAB_SIZE = 256 << 10;

class Slab {
  constructor() {
    this.buf = Buffer.allocUnsafeSlow(SLAB_SIZE);
    this.off = 0;
    // The buffer and offset holding the last lookup's entry.
    this.hitBuf = this.buf;
    this.hitOff = 0;
  }

  /** Bytes left in the current slab. */
  room() { return this.buf.length - this.off; }

  /**
   * Makes room for n bytes: a new slab if the current one is too full, or a
   * buffer of its own for an entry larger than a quarter slab. Returns
   * [buffer, offset] to copy to.
   */
  reserve(n) {
    if (n > SLAB_SIZE / 4) return [Buffer.allocUnsafeSlow(n), 0];
    if (this.room() < n) {
      this.buf = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.off = 0;
    }
    return [this.buf, this.off];
  }

  /** A view of the last entry copied (valid until the next lookup). */
  view(n) { return this.hitBuf.subarray(this.hitOff, this.hitOff + n); }

  /** Hands the last entry's n bytes over to the caller for good. */
  take(n) {
    const b = this.hitBuf.subarray(this.hitOff, this.hitOff + n);
    if (this.hitBuf === this.buf) this.off = this.hitOff + ((n + 7) & ~7);
    return b;
  }
}

module.exports = { Slab, SLAB_SIZE };
