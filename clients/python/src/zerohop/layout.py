"""The numbers of the cache file format 2.0 (shm/layout.go, docs/format.md)."""

from __future__ import annotations

import struct

MAGIC = b"ZHCACHE\x00"
MAJOR_VERSION = 2
HEADER_SIZE = 4096
BUCKET_SIZE = 128
SLOTS_PER_BUCKET = 5
SLOT_SIZE = 24
ENTRY_HEADER_SIZE = 96
ENTRY_ALIGN = 8
KIND_ENTRY = 0x3145485A  # "ZHE1"
MAX_SEQ_TRIES = 16

# Header offsets.
OFF_LAYOUT_SUM = 96
LAYOUT_SUMMED_LEN = 96
OFF_STATE = 128  # u32
OFF_ADOPT_GEN = 132  # u32
OFF_HEAD = 192  # u64
OFF_TAIL = 256  # u64
OFF_HEARTBEAT = 320  # u64
OFF_WRITER_START = 328  # u64
OFF_INVAL_SEQ = 384  # u64
OFF_INVAL_OFF = 392  # u64
OFF_STATS = 448  # 10 x u64

STATE_INIT = 0
STATE_LIVE = 1
STATE_CLEAN = 2
STATE_ABANDONED = 3

# Entry flags.
FLAG_VARY_INDEX = 1
FLAG_MUST_REVALIDATE = 2
FLAG_NO_CACHE = 4
FLAG_HEADERS_ONLY = 8
FLAG_AUTH_SHARED = 16

STAT_NAMES = (
    "entries",
    "inserts",
    "replaces",
    "deletes",
    "evictions",
    "reclaimed",
    "regions_reclaimed",
    "purges",
    "bytes_written",
    "rejected",
)

# Header line 0: magic, major, minor, header_size, features, seed,
# bucket_log2, slots_per_bucket, region_size, region_count, index_off,
# arena_off, instance_id, created_ms, file_size, max_key, max_headers,
# layout_sum.
LINE0 = struct.Struct("<8sHHIQQIIIIQQQQQIIQ")

# The entry header: kind, total_len, sum, reserved, pos, hash, stored_ms,
# expires_ms, initial_age, swr, sie, status, flags, key_len, vary_len,
# hdrs_len, body_len, etag_len, last_modified_len, tags_len, reserved.
ENTRY_HEADER = struct.Struct("<IIIIQQqqIIIHHIIIIHHIQ")
assert ENTRY_HEADER.size == ENTRY_HEADER_SIZE
