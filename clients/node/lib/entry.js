'use strict';
// Parsing a verified private copy of an entry (shm/entry.go parseEntryInto).
// Nothing here reads the mapping: the backends copy, verify and hand over
// the copy.

const L = require('./layout');
const { stringBlock } = require('./key');

/**
 * A stored response, decoded from a private copy.
 * @typedef {object} Entry
 */

function i64(b, off) {
  return b.readInt32LE(off + 4) * 4294967296 + b.readUInt32LE(off);
}

/**
 * Decodes the entry in buf[0, n). The lengths were checked by the backend.
 * @param {Buffer} buf
 * @param {number} effectiveExpiresMs min(slot fresh-until, entry expires)
 * @param {boolean} copyBody copy the body out of buf (buf is reused)
 */
function decodeEntry(buf, effectiveExpiresMs, copyBody = true) {
  const keyLen = buf.readUInt32LE(64);
  const varyLen = buf.readUInt32LE(68);
  const hdrsLen = buf.readUInt32LE(72);
  const bodyLen = buf.readUInt32LE(76);
  const etagLen = buf.readUInt16LE(80);
  const lmLen = buf.readUInt16LE(82);
  const tagsLen = buf.readUInt32LE(84);
  let p = L.ENTRY_HEADER_SIZE + keyLen;
  const varyStart = p; p += varyLen;
  const etagStart = p; p += etagLen;
  const lmStart = p; p += lmLen;
  const tagsStart = p; p += tagsLen;
  const hdrsStart = p; p += hdrsLen;
  const bodyStart = p;
  const body = copyBody
    ? Buffer.from(buf.subarray(bodyStart, bodyStart + bodyLen))
    : buf.subarray(bodyStart, bodyStart + bodyLen);
  return {
    status: buf.readUInt16LE(60),
    flags: buf.readUInt16LE(62),
    storedMs: i64(buf, 32),
    expiresMs: effectiveExpiresMs,
    entryExpiresMs: i64(buf, 40),
    initialAge: buf.readUInt32LE(48),
    swr: buf.readUInt32LE(52),
    sie: buf.readUInt32LE(56),
    headers: headerBlock(buf, hdrsStart, hdrsStart + hdrsLen),
    body,
    etag: buf.toString('latin1', etagStart, etagStart + etagLen),
    lastModified: buf.toString('latin1', lmStart, lmStart + lmLen),
    // Vary block: names of request headers (only on FlagVaryIndex markers
    // and on variants). Tags starting with NUL are the writer's bookkeeping.
    vary: varyLen ? stringBlock(buf, varyStart, varyStart + varyLen) : [],
    tags: tagsLen ? stringBlock(buf, tagsStart, tagsStart + tagsLen) : [],
    key: Buffer.from(buf.subarray(L.ENTRY_HEADER_SIZE, L.ENTRY_HEADER_SIZE + keyLen)),
    pos: buf.readUInt32LE(20) * 4294967296 + buf.readUInt32LE(16),
    totalLen: buf.readUInt32LE(4),
  };
}

/**
 * The header block: repeated u16 name_len, u32 value_len, name, value, in
 * stored order (sorted by name; one line per value). Names and values are
 * latin1 strings, which keep every byte. Stops at the first malformed field.
 * @returns {Array<[string, string]>}
 */
function headerBlock(buf, start, end) {
  const out = [];
  let p = start;
  while (end - p >= 6) {
    const nl = buf.readUInt16LE(p);
    const vl = buf.readUInt32LE(p + 2);
    if (end - p - 6 < nl + vl) break;
    const ns = p + 6;
    out.push([buf.toString('latin1', ns, ns + nl), buf.toString('latin1', ns + nl, ns + nl + vl)]);
    p = ns + nl + vl;
  }
  return out;
}

/** Age in seconds at nowMs (RFC 9111 §4.2.3): initial age + resident time. */
function ageSeconds(e, nowMs) {
  let resident = Math.trunc((nowMs - e.storedMs) / 1000);
  if (resident < 0) resident = 0;
  return e.initialAge + resident;
}

module.exports = { decodeEntry, headerBlock, ageSeconds };
