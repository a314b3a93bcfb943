'use strict';
// XXH64 in plain JavaScript on pairs of unsigned 32-bit halves (BigInt is
// about ten times slower for the tens-of-bytes keys a lookup hashes). Used by
// the positional-read backend and for header checksums; the addon has its
// own in C. Verified against the golden key hashes and the addon
// (test/hash.test.js).

// Result registers of the last 64-bit operation: no allocation per step.
let H = 0;
let L = 0;

function mul(ah, al, bh, bl) {
  const a48 = ah >>> 16, a32 = ah & 0xffff, a16 = al >>> 16, a00 = al & 0xffff;
  const b48 = bh >>> 16, b32 = bh & 0xffff, b16 = bl >>> 16, b00 = bl & 0xffff;
  let c48 = 0, c32 = 0, c16 = 0, c00 = 0;
  c00 += a00 * b00; c16 += c00 >>> 16; c00 &= 0xffff;
  c16 += a16 * b00; c32 += c16 >>> 16; c16 &= 0xffff;
  c16 += a00 * b16; c32 += c16 >>> 16; c16 &= 0xffff;
  c32 += a32 * b00; c48 += c32 >>> 16; c32 &= 0xffff;
  c32 += a16 * b16; c48 += c32 >>> 16; c32 &= 0xffff;
  c32 += a00 * b32; c48 += c32 >>> 16; c32 &= 0xffff;
  c48 += a48 * b00 + a32 * b16 + a16 * b32 + a00 * b48; c48 &= 0xffff;
  H = ((c48 << 16) | c32) >>> 0;
  L = ((c16 << 16) | c00) >>> 0;
}

function add(ah, al, bh, bl) {
  const lo = al + bl;
  L = lo >>> 0;
  H = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

// rotl for 0 < r < 32 (XXH64 rotates by 1, 7, 11, 12, 18, 23, 27 and 31).
function rotl(h, l, r) {
  H = ((h << r) | (l >>> (32 - r))) >>> 0;
  L = ((l << r) | (h >>> (32 - r))) >>> 0;
}

const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

// round(acc, input) = rotl(acc + input*P2, 31) * P1
function round(ah, al, ih, il) {
  mul(ih, il, P2H, P2L);
  add(ah, al, H, L);
  rotl(H, L, 31);
  mul(H, L, P1H, P1L);
}

// merge(acc, v) = (acc ^ round(0, v)) * P1 + P4
function merge(ah, al, vh, vl) {
  round(0, 0, vh, vl);
  mul((ah ^ H) >>> 0, (al ^ L) >>> 0, P1H, P1L);
  add(H, L, P4H, P4L);
}

/**
 * XXH64 of buf[0, len) with a 64-bit seed given as two halves.
 * The hash goes to out[0] (high half) and out[1] (low half).
 */
function xxh64Into(buf, len, seedHi, seedLo, out) {
  let p = 0;
  let hh, hl;
  if (len >= 32) {
    add(seedHi, seedLo, P1H, P1L); add(H, L, P2H, P2L);
    let v1h = H, v1l = L;
    add(seedHi, seedLo, P2H, P2L);
    let v2h = H, v2l = L;
    let v3h = seedHi, v3l = seedLo;
    add(seedHi, seedLo, 0x61c8864e, 0x7a143579); // seed - P1
    let v4h = H, v4l = L;
    const limit = len - 32;
    do {
      round(v1h, v1l, buf.readUInt32LE(p + 4), buf.readUInt32LE(p)); v1h = H; v1l = L;
      round(v2h, v2l, buf.readUInt32LE(p + 12), buf.readUInt32LE(p + 8)); v2h = H; v2l = L;
      round(v3h, v3l, buf.readUInt32LE(p + 20), buf.readUInt32LE(p + 16)); v3h = H; v3l = L;
      round(v4h, v4l, buf.readUInt32LE(p + 28), buf.readUInt32LE(p + 24)); v4h = H; v4l = L;
      p += 32;
    } while (p <= limit);
    rotl(v1h, v1l, 1); hh = H; hl = L;
    rotl(v2h, v2l, 7); add(hh, hl, H, L); hh = H; hl = L;
    rotl(v3h, v3l, 12); add(hh, hl, H, L); hh = H; hl = L;
    rotl(v4h, v4l, 18); add(hh, hl, H, L); hh = H; hl = L;
    merge(hh, hl, v1h, v1l); merge(H, L, v2h, v2l); merge(H, L, v3h, v3l); merge(H, L, v4h, v4l);
    hh = H; hl = L;
  } else {
    add(seedHi, seedLo, P5H, P5L); hh = H; hl = L;
  }
  add(hh, hl, Math.floor(len / 4294967296) >>> 0, len >>> 0); hh = H; hl = L;
  while (len - p >= 8) {
    round(0, 0, buf.readUInt32LE(p + 4), buf.readUInt32LE(p));
    rotl((hh ^ H) >>> 0, (hl ^ L) >>> 0, 27);
    mul(H, L, P1H, P1L); add(H, L, P4H, P4L); hh = H; hl = L;
    p += 8;
  }
  if (len - p >= 4) {
    mul(0, buf.readUInt32LE(p), P1H, P1L);
    rotl((hh ^ H) >>> 0, (hl ^ L) >>> 0, 23);
    mul(H, L, P2H, P2L); add(H, L, P3H, P3L); hh = H; hl = L;
    p += 4;
  }
  while (p < len) {
    mul(0, buf[p], P5H, P5L);
    rotl((hh ^ H) >>> 0, (hl ^ L) >>> 0, 11);
    mul(H, L, P1H, P1L); hh = H; hl = L;
    p++;
  }
  // avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32
  hl = (hl ^ (hh >>> 1)) >>> 0;
  mul(hh, hl, P2H, P2L); hh = H; hl = L;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P3H, P3L); hh = H; hl = L;
  out[0] = hh;
  out[1] = (hl ^ hh) >>> 0;
}

const tmp = new Uint32Array(2);

/** XXH64 as a BigInt, for tests and header checksums. */
function xxh64(buf, seed = 0n) {
  xxh64Into(buf, buf.length, Number(seed >> 32n) >>> 0, Number(seed & 0xffffffffn) >>> 0, tmp);
  return (BigInt(tmp[0]) << 32n) | BigInt(tmp[1]);
}

module.exports = { xxh64Into, xxh64, mul, regHi: () => H, regLo: () => L };
