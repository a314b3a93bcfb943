'use strict';
// Validation of header line 0 (shm/view.go parseLayout), shared by both
// backends: they differ only in how they get the 4096 header bytes.

const L = require('./layout');
const { xxh64 } = require('./xxh64');
const { ZerohopError } = require('./errors');

function u64(b, off) {
  const hi = b.readUInt32LE(off + 4);
  return hi * 4294967296 + b.readUInt32LE(off); // exact below 2^53; layout values are far below
}

/**
 * Parses and validates the header copy against the file's size. Returns the
 * file's geometry or throws a ZerohopError.
 * @param {Buffer} h the first 4096 bytes
 * @param {number} size the file (or mapping) size in bytes
 * @param {string} path for messages
 */
function parseLayout(h, size, path) {
  if (size < L.HEADER_SIZE || h.length < L.HEADER_SIZE) {
    throw new ZerohopError('ZEROHOP_TRUNCATED', `zerohop: ${path}: truncated cache file: ${size} bytes is shorter than the header`);
  }
  if (!h.subarray(0, 8).equals(L.MAGIC)) {
    throw new ZerohopError('ZEROHOP_BAD_MAGIC', `zerohop: ${path}: not a zerohop cache file`);
  }
  const major = h.readUInt16LE(L.OFF_MAJOR);
  const minor = h.readUInt16LE(L.OFF_MINOR);
  if (major !== L.MAJOR_VERSION) {
    throw new ZerohopError('ZEROHOP_VERSION',
      `zerohop: ${path}: unsupported format version: file is version ${major}.${minor}, this build reads ${L.MAJOR_VERSION}.x`);
  }
  if (xxh64(h.subarray(0, L.LAYOUT_SUMMED_LEN), 0n) !== h.readBigUInt64LE(L.OFF_LAYOUT_SUM)) {
    throw new ZerohopError('ZEROHOP_CORRUPT', `zerohop: ${path}: corrupt cache file: header checksum mismatch`);
  }
  const g = {
    minorVersion: minor,
    features: h.readBigUInt64LE(L.OFF_FEATURES),
    seed: h.readBigUInt64LE(L.OFF_SEED),
    seedHi: h.readUInt32LE(L.OFF_SEED + 4),
    seedLo: h.readUInt32LE(L.OFF_SEED),
    bucketLog2: h.readUInt32LE(L.OFF_BUCKET_LOG2),
    regionSize: h.readUInt32LE(L.OFF_REGION_SIZE),
    regionCount: h.readUInt32LE(L.OFF_REGION_COUNT),
    indexOff: u64(h, L.OFF_INDEX_OFF),
    arenaOff: u64(h, L.OFF_ARENA_OFF),
    fileSize: u64(h, L.OFF_FILE_SIZE),
    instanceId: h.readBigUInt64LE(L.OFF_INSTANCE_ID),
    createdMs: u64(h, L.OFF_CREATED_MS),
    maxKey: h.readUInt32LE(L.OFF_MAX_KEY),
    maxHeaders: h.readUInt32LE(L.OFF_MAX_HEADERS),
  };
  if (h.readUInt32LE(L.OFF_HEADER_SIZE) !== L.HEADER_SIZE ||
      h.readUInt32LE(L.OFF_SLOTS_PER_BKT) !== L.SLOTS_PER_BUCKET ||
      g.bucketLog2 < 1 || g.bucketLog2 > 32 ||
      g.regionSize < L.PAGE_SIZE || g.regionSize % L.PAGE_SIZE !== 0 ||
      g.regionCount < 4 ||
      g.indexOff !== L.HEADER_SIZE ||
      g.arenaOff !== g.indexOff + L.BUCKET_SIZE * 2 ** g.bucketLog2 ||
      g.fileSize !== g.arenaOff + g.regionSize * g.regionCount) {
    throw new ZerohopError('ZEROHOP_CORRUPT', `zerohop: ${path}: corrupt cache file: inconsistent layout`);
  }
  if (size < g.fileSize) {
    throw new ZerohopError('ZEROHOP_TRUNCATED', `zerohop: ${path}: truncated cache file: ${size} bytes, header says ${g.fileSize}`);
  }
  g.bucketMask = 2 ** g.bucketLog2 - 1;
  g.arenaLen = g.regionSize * g.regionCount;
  g.seed32 = g.seedLo;
  return g;
}

module.exports = { parseLayout };
