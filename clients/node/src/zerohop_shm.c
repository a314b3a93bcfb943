// zerohop_shm: the native half of the Node client. It maps cache.shm
// read-only and runs the whole reader protocol of docs/format.md ("Reader
// protocol", "Lookup") on the mapping, so that a hit costs no system call:
// XXH64 of the key, two-choice bucket snapshot under the seqlock with
// acquire loads, one copy of the entry into a caller-owned buffer, the tail
// re-check, then kind/length/pos/hash/CRC-32 and full-key verification of the
// private copy. JavaScript only parses the verified copy.
//
// Reading a mapping whose file was truncated raises SIGBUS. Every read of the
// mapping runs inside a guard (sigsetjmp on this thread, a SIGBUS handler
// that siglongjmps back when the fault is inside the guarded mapping), so a
// truncated file becomes a counted miss and Node keeps running. SIGBUS
// anywhere else is passed on to whatever handler was installed before ours.
//
// The code follows shm/lookup.go, shm/view.go and shm/entry.go, which are the
// authority; outcome codes match shm/lookup.go's outcome constants.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- layout (shm/layout.go) ----
enum {
  HEADER_SIZE = 4096,
  BUCKET_SIZE = 128,
  SLOTS_PER_BUCKET = 5,
  SLOT_SIZE = 24,
  ENTRY_HEADER_SIZE = 96,
  ENTRY_ALIGN = 8,
  OFF_STATE = 128,
  OFF_ADOPT_GEN = 132,
  OFF_HEAD = 192,
  OFF_TAIL = 256,
  OFF_HEARTBEAT = 320,
  OFF_WRITER_START = 328,
  OFF_INVAL_SEQ = 384,
  OFF_INVAL_OFF = 392,
  OFF_STATS = 448,
  STAT_COUNT = 10,
  OFF_SLOTS = 8,
  FLAG_NO_CACHE = 1 << 2,
  STATE_LIVE = 1,
  STATE_ABANDONED = 3,
  MAX_SEQ_TRIES = 16,
};
#define KIND_ENTRY 0x3145485au

// Outcomes, as shm/lookup.go numbers them, plus two of this addon's own.
enum {
  OUT_HIT = 0,
  OUT_MISS,
  OUT_EXPIRED,
  OUT_TORN,
  OUT_OVERRUN,
  OUT_CORRUPT,
  OUT_COLLISION,
  OUT_WRITER_STALE,
  OUT_FAULT,
  OUT_GROW,   // the caller's buffer is smaller than the entry: io[0] = size
  OUT_CLOSED, // the handle was unmapped
};

// io[] slots shared with JavaScript (a Float64Array registered by init).
enum {
  IO_FRESH_AT = 0, // in: unix ms; 0 = stale-ok lookup
  IO_NOW = 1,      // in: unix ms, for the writer heartbeat
  IO_SILENCE = 2,  // in: max writer silence, ms
  IO_OFFLINE = 3,  // in: 1 = serve whatever the writer state (not abandoned)
  IO_KEY_LEN = 4,  // in: bytes of the key buffer to use
  IO_N = 5,        // out: entry length
  IO_EXPIRES = 6,  // out: effective expiry, unix ms
  IO_RETRIES = 7,  // out: seqlock retries during this lookup
  IO_OUT_OFF = 8,  // in: offset in the out buffer to copy the entry to
  IO_LEN = 10,
};

typedef struct {
  uint8_t *base;
  size_t size;
  int ready; // geometry set
  uint64_t seed, bucket_mask, region_size, arena_off, arena_len, index_off;
} zh_map;

// The registered Float64Array's data. Per thread: each worker_thread loads
// the addon into its own environment and registers its own array.
static __thread double *g_io;
static __thread napi_ref g_io_ref;

// ---- fault guard ----

// Read by the signal handler: initial-exec TLS is a fixed offset from the
// thread pointer, so the handler never calls __tls_get_addr (which may
// allocate) on a thread that has not touched these yet.
#define HANDLER_TLS __thread __attribute__((tls_model("initial-exec")))
static HANDLER_TLS sigjmp_buf *t_jmp;   // set while this thread reads a mapping
static HANDLER_TLS uintptr_t t_lo, t_hi; // the mapping being read
static struct sigaction g_old_bus;
static int g_handler_installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  sigjmp_buf *j = t_jmp;
  uintptr_t a = (uintptr_t)si->si_addr;
  if (j != NULL && a >= t_lo && a < t_hi) {
    t_jmp = NULL;
    siglongjmp(*j, 1); // SA_NODEFER: SIGBUS is not left blocked
  }
  // Not ours: behave as if we had never been installed.
  if (g_old_bus.sa_flags & SA_SIGINFO) {
    if (g_old_bus.sa_sigaction != NULL) {
      g_old_bus.sa_sigaction(sig, si, uc);
      return;
    }
  } else if (g_old_bus.sa_handler != SIG_DFL && g_old_bus.sa_handler != SIG_IGN) {
    g_old_bus.sa_handler(sig);
    return;
  }
  // Default action: restore it; returning re-executes the faulting access.
  signal(sig, SIG_DFL);
}

static int install_handler(void) {
  if (g_handler_installed) return 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, &g_old_bus) != 0) return -1;
  g_handler_installed = 1;
  return 0;
}

// ---- XXH64 (shm/xxh64.go) ----

#define P1 11400714785074694791ULL
#define P2 14029467366897019727ULL
#define P3 1609587929392839161ULL
#define P4 9650029242287828579ULL
#define P5 2870177450012600261ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint64_t xround(uint64_t acc, uint64_t in) { return rotl(acc + in * P2, 31) * P1; }
static inline uint64_t xmerge(uint64_t acc, uint64_t v) { return (acc ^ xround(0, v)) * P1 + P4; }

static uint64_t xxh64(const uint8_t *p, size_t n, uint64_t seed) {
  const uint8_t *end = p + n;
  uint64_t h;
  if (n >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    do {
      v1 = xround(v1, rd64(p));
      v2 = xround(v2, rd64(p + 8));
      v3 = xround(v3, rd64(p + 16));
      v4 = xround(v4, rd64(p + 24));
      p += 32;
    } while (end - p >= 32);
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = xmerge(h, v1);
    h = xmerge(h, v2);
    h = xmerge(h, v3);
    h = xmerge(h, v4);
  } else {
    h = seed + P5;
  }
  h += (uint64_t)n;
  while (end - p >= 8) {
    h ^= xround(0, rd64(p));
    h = rotl(h, 27) * P1 + P4;
    p += 8;
  }
  if (end - p >= 4) {
    h ^= (uint64_t)rd32(p) * P1;
    h = rotl(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= (uint64_t)(*p) * P5;
    h = rotl(h, 11) * P1;
    p++;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

// ---- CRC-32/IEEE, slicing by 8 (shm/entry.go entrySum) ----

static uint32_t crc_tab[8][256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_tab[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++)
      crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

// crc32_table is zlib's crc32(crc, p, n) by slicing-by-8: the running
// value is pre- and post-inverted.
static uint32_t crc32_table(uint32_t crc, const uint8_t *p, size_t n) {
  crc = ~crc;
  while (n >= 8) {
    uint32_t a = rd32(p) ^ crc, b = rd32(p + 4);
    crc = crc_tab[7][a & 0xff] ^ crc_tab[6][(a >> 8) & 0xff] ^ crc_tab[5][(a >> 16) & 0xff] ^
          crc_tab[4][a >> 24] ^ crc_tab[3][b & 0xff] ^ crc_tab[2][(b >> 8) & 0xff] ^
          crc_tab[1][(b >> 16) & 0xff] ^ crc_tab[0][b >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
#include <immintrin.h>

// crc32_clmul folds len bytes (len >= 64, a multiple of 16) with carry-less
// multiplication, as Go's hash/crc32 does on amd64 (and Intel's "Fast CRC
// Computation for Generic Polynomials Using PCLMULQDQ"; this is the
// well-known zlib/Chromium formulation). crc is the pre-inverted running
// state; the result is the state, not yet post-inverted.
__attribute__((target("sse4.1,pclmul"))) static uint32_t crc32_clmul(const uint8_t *buf, size_t len, uint32_t crc) {
  static const uint64_t __attribute__((aligned(16))) k1k2[] = {0x0154442bd4, 0x01c6e41596};
  static const uint64_t __attribute__((aligned(16))) k3k4[] = {0x01751997d0, 0x00ccaa009e};
  static const uint64_t __attribute__((aligned(16))) k5k0[] = {0x0163cd6124, 0x0000000000};
  static const uint64_t __attribute__((aligned(16))) poly[] = {0x01db710641, 0x01f7011641};
  __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
  x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
  x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
  x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
  x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  x0 = _mm_load_si128((const __m128i *)k1k2);
  buf += 64;
  len -= 64;
  while (len >= 64) { // fold four blocks at a time
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
    x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
    x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
    x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
    x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
    y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
    y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
    y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
    y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
    x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
    x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
    x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
    buf += 64;
    len -= 64;
  }
  x0 = _mm_load_si128((const __m128i *)k3k4); // fold the four into one
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
  while (len >= 16) { // single blocks
    x2 = _mm_loadu_si128((const __m128i *)buf);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    buf += 16;
    len -= 16;
  }
  x2 = _mm_clmulepi64_si128(x1, x0, 0x10); // 128 to 64 bits
  x3 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_srli_si128(x1, 8);
  x1 = _mm_xor_si128(x1, x2);
  x0 = _mm_loadl_epi64((const __m128i *)k5k0);
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_and_si128(x1, x3);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  x0 = _mm_load_si128((const __m128i *)poly); // Barrett reduction to 32 bits
  x2 = _mm_and_si128(x1, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
  x2 = _mm_and_si128(x2, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}
#endif

static int use_clmul;

// crc32_update is zlib's crc32(crc, p, n), folded with PCLMULQDQ where the
// CPU has it (whole 16-byte blocks from 64 bytes on), the table otherwise.
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
  if (use_clmul && n >= 64) {
    size_t m = n & ~(size_t)15;
    crc = ~crc32_clmul(p, m, ~crc);
    p += m;
    n -= m;
    if (n == 0) return crc;
  }
#endif
  return crc32_table(crc, p, n);
}

// crc_setup builds the table and enables the folding kernel only if the CPU
// has it and it agrees with the table on the check value and on every
// length from 64 to 600 at several alignments.
static void crc_setup(void) {
  crc_init();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) return;
  use_clmul = 1;
  uint8_t buf[700];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
  int ok = crc32_update(0, (const uint8_t *)"123456789012345678901234567890123456789012345678901234567890123456789", 70) ==
           crc32_table(0, (const uint8_t *)"123456789012345678901234567890123456789012345678901234567890123456789", 70);
  for (size_t n = 64; ok && n <= 600; n++)
    for (size_t a = 0; ok && a < 8; a += 3)
      ok = crc32_update((uint32_t)(n * 2654435761u), buf + a, n) == crc32_table((uint32_t)(n * 2654435761u), buf + a, n);
  use_clmul = ok;
#endif
}

// ---- the lookup (shm/lookup.go view.lookup, shm/reader.go live) ----

static inline uint32_t ld32(const uint8_t *p) {
  return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}
static inline uint64_t ld64(const uint8_t *p) {
  return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// snapshot reads the slot holding tag in the bucket at offset b under the
// bucket's sequence counter. Returns 1 found, 0 not found, -1 torn.
static int snapshot(const zh_map *m, uint64_t b, uint64_t tag, uint64_t *pos, uint64_t *meta,
                    double *retries) {
  const uint8_t *bk = m->base + b;
  for (int try_ = 0; try_ < MAX_SEQ_TRIES; try_++) {
    uint32_t s = ld32(bk);
    if (s & 1) {
      *retries += 1;
      if (try_ > 2) cpu_relax(); // never a syscall: a dead writer must not cost sched_yield x16
      continue;
    }
    int found = 0;
    for (int i = 0; i < SLOTS_PER_BUCKET; i++) {
      const uint8_t *so = bk + OFF_SLOTS + i * SLOT_SIZE;
      if (ld64(so) == tag) {
        *pos = ld64(so + 8);
        *meta = ld64(so + 16);
        found = 1;
        break;
      }
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (ld32(bk) == s) return found;
    *retries += 1;
  }
  return -1;
}

static int live(const zh_map *m) {
  uint32_t st = ld32(m->base + OFF_STATE);
  if (g_io[IO_OFFLINE] != 0) return st != STATE_ABANDONED;
  uint64_t hb = ld64(m->base + OFF_HEARTBEAT);
  return st == STATE_LIVE && g_io[IO_NOW] - (double)hb <= g_io[IO_SILENCE];
}

// lookup_unguarded must only run under the fault guard.
static __attribute__((noinline)) int lookup_unguarded(const zh_map *m, const uint8_t *key,
                                                      size_t klen, uint8_t *out, size_t cap) {
  if (!live(m)) return OUT_WRITER_STALE;
  uint64_t h = xxh64(key, klen, m->seed);
  uint64_t tag = h | 1;
  uint64_t i1 = h & m->bucket_mask;
  uint64_t i2 = ((rotl(h, 32) * 0x9e3779b97f4a7c15ULL) >> 17) & m->bucket_mask;
  if (i2 == i1) i2 = i1 ^ 1;
  uint64_t pos = 0, meta = 0;
  double retries = 0;
  int f = snapshot(m, m->index_off + i1 * BUCKET_SIZE, tag, &pos, &meta, &retries);
  if (f == 0) f = snapshot(m, m->index_off + i2 * BUCKET_SIZE, tag, &pos, &meta, &retries);
  g_io[IO_RETRIES] = retries;
  if (f < 0) return OUT_TORN;
  if (f == 0) return OUT_MISS;
  uint64_t n = meta & 0xffffffffu;
  double fresh_until_ms = (double)(meta >> 32) * 1000.0;
  double fresh_at = g_io[IO_FRESH_AT];
  if (fresh_at != 0 && fresh_at >= fresh_until_ms) return OUT_EXPIRED;
  uint64_t tail = ld64(m->base + OFF_TAIL);
  if (pos < tail) return OUT_OVERRUN;
  if (n < ENTRY_HEADER_SIZE || n > m->region_size || n % ENTRY_ALIGN != 0 || pos % ENTRY_ALIGN != 0 ||
      pos % m->region_size + n > m->region_size || pos - tail >= m->arena_len)
    return OUT_CORRUPT;
  if (n > cap) {
    g_io[IO_N] = (double)n;
    return OUT_GROW;
  }
  memcpy(out, m->base + m->arena_off + pos % m->arena_len, n);
  // The copy's loads must complete before the horizon is read again.
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (ld64(m->base + OFF_TAIL) > pos) return OUT_OVERRUN;
  // From here on only the private copy is read.
  if (rd32(out) != KIND_ENTRY || rd32(out + 4) != n || rd64(out + 16) != pos || rd64(out + 24) != h)
    return OUT_CORRUPT;
  if (crc32_update((uint32_t)m->seed, out + 16, n - 16) != rd32(out + 8)) return OUT_CORRUPT;
  uint64_t key_len = rd32(out + 64), vary_len = rd32(out + 68), hdrs_len = rd32(out + 72),
           body_len = rd32(out + 76), etag_len = rd16(out + 80), lm_len = rd16(out + 82),
           tags_len = rd32(out + 84);
  uint64_t total = ENTRY_HEADER_SIZE + key_len + vary_len + etag_len + lm_len + tags_len + hdrs_len + body_len;
  if (total > n || n - total >= ENTRY_ALIGN) return OUT_CORRUPT;
  if (key_len != klen || memcmp(out + ENTRY_HEADER_SIZE, key, klen) != 0) return OUT_COLLISION;
  double expires = (double)(int64_t)rd64(out + 40);
  if (fresh_until_ms < expires) expires = fresh_until_ms; // soft-purged: the slot says stale
  g_io[IO_N] = (double)n;
  g_io[IO_EXPIRES] = expires;
  if (fresh_at != 0) {
    uint16_t flags = rd16(out + 62);
    if ((flags & FLAG_NO_CACHE) != 0 || !(fresh_at < expires)) return OUT_EXPIRED;
  }
  return OUT_HIT;
}

// guarded runs the lookup with SIGBUS inside m's mapping turned into OUT_FAULT.
static int guarded_lookup(const zh_map *m, const uint8_t *key, size_t klen, uint8_t *out, size_t cap) {
  sigjmp_buf jb;
  t_lo = (uintptr_t)m->base;
  t_hi = (uintptr_t)m->base + m->size;
  if (sigsetjmp(jb, 0) != 0) { // savemask 0: no sigprocmask syscall on the hit path
    t_jmp = NULL;
    return OUT_FAULT;
  }
  t_jmp = &jb;
  int o = lookup_unguarded(m, key, klen, out, cap);
  t_jmp = NULL;
  return o;
}

static __attribute__((noinline)) void copy_unguarded(const zh_map *m, size_t off, uint8_t *out, size_t n) {
  // Volatile-free plain copy: the guard only needs the access to happen here.
  memcpy(out, m->base + off, n);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
}

static int guarded_copy(const zh_map *m, size_t off, uint8_t *out, size_t n) {
  sigjmp_buf jb;
  t_lo = (uintptr_t)m->base;
  t_hi = (uintptr_t)m->base + m->size;
  if (sigsetjmp(jb, 0) != 0) {
    t_jmp = NULL;
    return OUT_FAULT;
  }
  t_jmp = &jb;
  copy_unguarded(m, off, out, n);
  t_jmp = NULL;
  return 0;
}

// header words the JavaScript side polls (health, read-your-purge, stats).
static __attribute__((noinline)) void header_unguarded(const zh_map *m, double *o) {
  const uint8_t *b = m->base;
  o[0] = ld32(b + OFF_STATE);
  o[1] = ld32(b + OFF_ADOPT_GEN);
  o[2] = (double)ld64(b + OFF_HEAD);
  o[3] = (double)ld64(b + OFF_TAIL);
  o[4] = (double)ld64(b + OFF_HEARTBEAT);
  o[5] = (double)ld64(b + OFF_WRITER_START);
  o[6] = (double)ld64(b + OFF_INVAL_SEQ);
  o[7] = (double)ld64(b + OFF_INVAL_OFF);
  for (int i = 0; i < STAT_COUNT; i++) o[8 + i] = (double)ld64(b + OFF_STATS + 8 * i);
}

static int guarded_header(const zh_map *m, double *o) {
  sigjmp_buf jb;
  t_lo = (uintptr_t)m->base;
  t_hi = (uintptr_t)m->base + m->size;
  if (sigsetjmp(jb, 0) != 0) {
    t_jmp = NULL;
    return OUT_FAULT;
  }
  t_jmp = &jb;
  header_unguarded(m, o);
  t_jmp = NULL;
  return 0;
}

// ---- N-API glue ----

#define CHECK(env, call)                                   \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error((env), NULL, "zerohop_shm: " #call); \
      return NULL;                                         \
    }                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, const char *path, int err) {
  char msg[4200];
  snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(err));
  char code[32];
  snprintf(code, sizeof code, "E%d", err);
  napi_throw_error(env, err == ENOENT ? "ENOENT" : code, msg);
  return NULL;
}

static void finalize_map(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  zh_map *m = data;
  if (m->base != NULL) munmap(m->base, m->size);
  free(m);
}

static zh_map *get_map(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "zerohop_shm: not a mapping handle");
    return NULL;
  }
  return p;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

// init(io: Float64Array(IO_LEN)) registers the shared in/out array.
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type t;
  size_t len;
  void *data;
  CHECK(env, napi_get_typedarray_info(env, argv[0], &t, &len, &data, NULL, NULL));
  if (t != napi_float64_array || len < IO_LEN) {
    napi_throw_type_error(env, NULL, "zerohop_shm.init: need a Float64Array(10)");
    return NULL;
  }
  if (g_io_ref != NULL) napi_delete_reference(env, g_io_ref);
  CHECK(env, napi_create_reference(env, argv[0], 1, &g_io_ref));
  g_io = data;
  if (install_handler() != 0) return throw_errno(env, "sigaction", "SIGBUS", errno);
  return NULL;
}

// map(path) -> [handle, size, dev, ino]. Opens, fstats (the file must hold
// at least the header), maps the whole file PROT_READ/MAP_SHARED, closes.
static napi_value js_map(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4096];
  size_t plen;
  CHECK(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen));
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return throw_errno(env, "open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "fstat", path, e);
  }
  if (st.st_size < HEADER_SIZE) {
    close(fd);
    char msg[4200];
    snprintf(msg, sizeof msg, "zerohop: %s: truncated cache file: %lld bytes", path, (long long)st.st_size);
    napi_throw_error(env, "ZEROHOP_TRUNCATED", msg);
    return NULL;
  }
  void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd);
  if (base == MAP_FAILED) return throw_errno(env, "mmap", path, e);
  zh_map *m = calloc(1, sizeof *m);
  if (m == NULL) {
    munmap(base, (size_t)st.st_size);
    napi_throw_error(env, NULL, "zerohop_shm: out of memory");
    return NULL;
  }
  m->base = base;
  m->size = (size_t)st.st_size;
  napi_value handle, arr;
  if (napi_create_external(env, m, finalize_map, NULL, &handle) != napi_ok) {
    finalize_map(env, m, NULL);
    napi_throw_error(env, NULL, "zerohop_shm: napi_create_external");
    return NULL;
  }
  CHECK(env, napi_create_array_with_length(env, 4, &arr));
  napi_set_element(env, arr, 0, handle);
  napi_set_element(env, arr, 1, num(env, (double)st.st_size));
  napi_set_element(env, arr, 2, num(env, (double)st.st_dev));
  napi_set_element(env, arr, 3, num(env, (double)st.st_ino));
  return arr;
}

// setGeometry(handle, seedBigInt, bucketLog2, regionSize, regionCount, indexOff, arenaOff)
// after JavaScript has validated the header copy.
static napi_value js_set_geometry(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  zh_map *m = get_map(env, argv[0]);
  if (m == NULL) return NULL;
  bool lossless;
  uint64_t seed;
  CHECK(env, napi_get_value_bigint_uint64(env, argv[1], &seed, &lossless));
  double log2, rsize, rcount, ioff, aoff;
  CHECK(env, napi_get_value_double(env, argv[2], &log2));
  CHECK(env, napi_get_value_double(env, argv[3], &rsize));
  CHECK(env, napi_get_value_double(env, argv[4], &rcount));
  CHECK(env, napi_get_value_double(env, argv[5], &ioff));
  CHECK(env, napi_get_value_double(env, argv[6], &aoff));
  m->seed = seed;
  m->bucket_mask = (((uint64_t)1) << (uint64_t)log2) - 1;
  m->region_size = (uint64_t)rsize;
  m->arena_len = (uint64_t)rsize * (uint64_t)rcount;
  m->index_off = (uint64_t)ioff;
  m->arena_off = (uint64_t)aoff;
  if (m->arena_off + m->arena_len > m->size || m->index_off + ((m->bucket_mask + 1) * BUCKET_SIZE) > m->size) {
    napi_throw_error(env, "ZEROHOP_TRUNCATED", "zerohop: mapping shorter than its layout");
    return NULL;
  }
  m->ready = 1;
  return NULL;
}

// lookup(handle, key: Buffer, out: Buffer) -> outcome; inputs and outputs in io[]:
// the entry is copied to out at io[IO_OUT_OFF].
static napi_value js_lookup(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *mp = NULL;
  if (napi_get_value_external(env, argv[0], &mp) != napi_ok || mp == NULL) {
    napi_throw_type_error(env, NULL, "zerohop_shm: not a mapping handle");
    return NULL;
  }
  zh_map *m = mp;
  void *key, *out;
  size_t klen, cap;
  CHECK(env, napi_get_buffer_info(env, argv[1], &key, &klen));
  CHECK(env, napi_get_buffer_info(env, argv[2], &out, &cap));
  size_t use = (size_t)g_io[IO_KEY_LEN];
  if (use > klen) use = klen;
  size_t off = (size_t)g_io[IO_OUT_OFF];
  if (off > cap) off = cap;
  int o = (m->base == NULL || !m->ready) ? OUT_CLOSED : guarded_lookup(m, key, use, (uint8_t *)out + off, cap - off);
  napi_value r;
  napi_create_int32(env, o, &r);
  return r;
}

// copy(handle, off, out: Buffer) -> 0 or OUT_FAULT; copies out.length bytes.
static napi_value js_copy(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  zh_map *m = get_map(env, argv[0]);
  if (m == NULL) return NULL;
  double off;
  CHECK(env, napi_get_value_double(env, argv[1], &off));
  void *out;
  size_t n;
  CHECK(env, napi_get_buffer_info(env, argv[2], &out, &n));
  int o;
  if (m->base == NULL) o = OUT_CLOSED;
  else if (off < 0 || (size_t)off > m->size || n > m->size - (size_t)off) o = OUT_CORRUPT;
  else o = guarded_copy(m, (size_t)off, out, n);
  napi_value r;
  napi_create_int32(env, o, &r);
  return r;
}

// header(handle, out: Float64Array(18)) -> 0 or OUT_FAULT.
static napi_value js_header(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  zh_map *m = get_map(env, argv[0]);
  if (m == NULL) return NULL;
  napi_typedarray_type t;
  size_t len;
  void *data;
  CHECK(env, napi_get_typedarray_info(env, argv[1], &t, &len, &data, NULL, NULL));
  if (t != napi_float64_array || len < 8 + STAT_COUNT) {
    napi_throw_type_error(env, NULL, "zerohop_shm.header: need a Float64Array(18)");
    return NULL;
  }
  int o = m->base == NULL ? OUT_CLOSED : guarded_header(m, data);
  napi_value r;
  napi_create_int32(env, o, &r);
  return r;
}

// unmap(handle): later calls on it answer OUT_CLOSED.
static napi_value js_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  zh_map *m = get_map(env, argv[0]);
  if (m == NULL) return NULL;
  if (m->base != NULL) {
    munmap(m->base, m->size);
    m->base = NULL;
  }
  return NULL;
}

// flock(fd, op) -> 0, or "busy" for EWOULDBLOCK with LOCK_NB; throws otherwise.
// op: 1 exclusive non-blocking, 0 unlock. Node has no flock(2) in core; the
// invalidation log's appenders all serialise on it (invalidate/sys_unix.go).
static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, op;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_int32(env, argv[1], &op));
  int how = op == 1 ? (LOCK_EX | LOCK_NB) : LOCK_UN;
  int rc;
  do rc = flock(fd, how);
  while (rc != 0 && errno == EINTR);
  napi_value r;
  if (rc == 0) {
    napi_create_int32(env, 0, &r);
    return r;
  }
  if (errno == EWOULDBLOCK) {
    napi_create_string_utf8(env, "busy", NAPI_AUTO_LENGTH, &r);
    return r;
  }
  return throw_errno(env, "flock", "log", errno);
}

// xxh64(buf, seedBigInt) -> BigInt, and crc32(buf, init) -> number: for tests.
static napi_value js_xxh64(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *p;
  size_t n;
  CHECK(env, napi_get_buffer_info(env, argv[0], &p, &n));
  uint64_t seed;
  bool lossless;
  CHECK(env, napi_get_value_bigint_uint64(env, argv[1], &seed, &lossless));
  napi_value r;
  CHECK(env, napi_create_bigint_uint64(env, xxh64(p, n, seed), &r));
  return r;
}

static napi_value js_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *p;
  size_t n;
  CHECK(env, napi_get_buffer_info(env, argv[0], &p, &n));
  uint32_t init;
  CHECK(env, napi_get_value_uint32(env, argv[1], &init));
  return num(env, crc32_update(init, p, n));
}

static napi_value module_init(napi_env env, napi_value exports) {
  crc_setup();
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"map", NULL, js_map, NULL, NULL, NULL, napi_default, NULL},
      {"setGeometry", NULL, js_set_geometry, NULL, NULL, NULL, napi_default, NULL},
      {"lookup", NULL, js_lookup, NULL, NULL, NULL, napi_default, NULL},
      {"copy", NULL, js_copy, NULL, NULL, NULL, napi_default, NULL},
      {"header", NULL, js_header, NULL, NULL, NULL, napi_default, NULL},
      {"unmap", NULL, js_unmap, NULL, NULL, NULL, napi_default, NULL},
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_default, NULL},
      {"xxh64", NULL, js_xxh64, NULL, NULL, NULL, napi_default, NULL},
      {"crc32", NULL, js_crc32, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value crcImpl;
  napi_create_string_utf8(env, use_clmul ? "pclmulqdq" : "table", NAPI_AUTO_LENGTH, &crcImpl);
  napi_set_named_property(env, exports, "crcImpl", crcImpl);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
