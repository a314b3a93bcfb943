'use strict';
// The two CRCs the client needs. Entries are sealed with CRC-32/IEEE
// continuing from the low 32 bits of the file's seed (shm/entry.go entrySum),
// which is zlib's crc32(bytes, seed32): Node has it built in since 20.15
// (zlib.crc32); older runtimes get the table below. Invalidation records
// carry CRC-32C (Castagnoli) of bytes [8, length) (invalidate/record.go).

const zlib = require('node:zlib');

function makeTable(poly) {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? poly ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  return t;
}

const IEEE = makeTable(0xedb88320);
const CASTAGNOLI = makeTable(0x82f63b78);

function update(table, crc, buf, start, end) {
  let c = ~crc;
  for (let i = start; i < end; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** zlib.crc32(buf[start, end), init): CRC-32/IEEE continuing from init. */
const crc32 = typeof zlib.crc32 === 'function'
  ? (buf, start, end, init) => zlib.crc32(buf.subarray(start, end), init)
  : (buf, start, end, init) => update(IEEE, init, buf, start, end);

/** CRC-32C of buf[start, end), as Go's crc32.Checksum(b, MakeTable(Castagnoli)). */
function crc32c(buf, start, end) {
  return update(CASTAGNOLI, 0, buf, start, end);
}

module.exports = { crc32, crc32c, crc32Table: (buf, start, end, init) => update(IEEE, init, buf, start, end) };
