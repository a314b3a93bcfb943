'use strict';
// The cache file's numbers (shm/layout.go). docs/format.md is the prose
// version; shm/layout.go is the authority.

module.exports = Object.freeze({
  MAGIC: Buffer.from('ZHCACHE\0', 'latin1'),
  MAJOR_VERSION: 2,
  HEADER_SIZE: 4096,
  BUCKET_SIZE: 128,
  SLOTS_PER_BUCKET: 5,
  SLOT_SIZE: 24,
  ENTRY_HEADER_SIZE: 96,
  ENTRY_ALIGN: 8,
  PAGE_SIZE: 4096,
  KIND_ENTRY: 0x3145485a,
  LAYOUT_SUMMED_LEN: 96,

  // header offsets
  OFF_MAJOR: 8,
  OFF_MINOR: 10,
  OFF_HEADER_SIZE: 12,
  OFF_FEATURES: 16,
  OFF_SEED: 24,
  OFF_BUCKET_LOG2: 32,
  OFF_SLOTS_PER_BKT: 36,
  OFF_REGION_SIZE: 40,
  OFF_REGION_COUNT: 44,
  OFF_INDEX_OFF: 48,
  OFF_ARENA_OFF: 56,
  OFF_INSTANCE_ID: 64,
  OFF_CREATED_MS: 72,
  OFF_FILE_SIZE: 80,
  OFF_MAX_KEY: 88,
  OFF_MAX_HEADERS: 92,
  OFF_LAYOUT_SUM: 96,
  OFF_STATE: 128,
  OFF_ADOPT_GEN: 132,
  OFF_HEAD: 192,
  OFF_TAIL: 256,
  OFF_HEARTBEAT: 320,
  OFF_WRITER_START: 328,
  OFF_INVAL_SEQ: 384,
  OFF_INVAL_OFF: 392,
  OFF_STATS: 448,

  // writer states
  STATE_INIT: 0,
  STATE_LIVE: 1,
  STATE_CLEAN: 2,
  STATE_ABANDONED: 3,

  // entry flags
  FLAG_VARY_INDEX: 1 << 0,
  FLAG_MUST_REVALIDATE: 1 << 1,
  FLAG_NO_CACHE: 1 << 2,
  FLAG_HEADERS_ONLY: 1 << 3,
  // A response a shared cache may reuse for requests carrying Authorization
  // (public, s-maxage or must-revalidate; RFC 9111 §3.5). Entries without it
  // are never served to such requests.
  FLAG_AUTH_SHARED: 1 << 4,

  MAX_SEQ_TRIES: 16,

  // Lookup outcomes, numbered as shm/lookup.go and src/zerohop_shm.c.
  OUT_HIT: 0,
  OUT_MISS: 1,
  OUT_EXPIRED: 2,
  OUT_TORN: 3,
  OUT_OVERRUN: 4,
  OUT_CORRUPT: 5,
  OUT_COLLISION: 6,
  OUT_WRITER_STALE: 7,
  OUT_FAULT: 8,
  OUT_GROW: 9,
  OUT_CLOSED: 10,

  STAT_NAMES: ['entries', 'inserts', 'replaces', 'deletes', 'evictions', 'reclaimed',
    'regionsReclaimed', 'purges', 'bytesWritten', 'rejected'],
});
