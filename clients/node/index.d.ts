// Type declarations for zerohop, the Node client of the zerohop sidecar.
// Hand-written for the CommonJS sources in lib/ (see README.md, "Why
// JavaScript with a .d.ts").

import type { Dispatcher } from 'undici';

/** Which reader is active: the N-API addon (mmap, no system call per hit) or positional reads. */
export type Backend = 'addon' | 'pread';

export interface ReaderOptions {
  /** "addon", "pread" or "auto" (default: $ZEROHOP_BACKEND, else "auto": the addon when it loaded). */
  backend?: Backend | 'auto';
  /** How old the sidecar's heartbeat may be before hits stop. Default 2000 ms. */
  maxWriterSilenceMs?: number;
  /** How often, at most, a reader that is not serving looks for a replaced file. Default 100 ms. */
  recheckIntervalMs?: number;
  /** Serve whatever the writer's state (tools, golden files). Never in an app. */
  offline?: boolean;
  /** The cache file itself, instead of <dir>/cache.shm. */
  file?: string;
}

export interface ClientOptions extends ReaderOptions {
  /** host:port of the sidecar's listener. Default $ZEROHOP_SIDECAR, else 127.0.0.1:8089. */
  sidecar?: string;
  /** The invalidation log. Default <dir>/inval/inval.log. */
  invalidationLog?: string;
  /**
   * Where the client publishes its counters for the sidecar's /metrics,
   * once a second (docs/format.md, "App counters"). Default: the
   * invalidation log's directory; "off" publishes nothing.
   */
  countersDir?: string;
}

/** Request headers in any of the shapes Node code uses. */
export type HeadersLike =
  | Headers
  | Map<string, string | string[]>
  | Record<string, string | string[] | undefined>
  | Array<[string, string]>
  | Array<string | Buffer>;

/** A stored response. It owns a copy of its bytes. */
export interface Entry {
  readonly status: number;
  /** VARY_INDEX 1, MUST_REVALIDATE 2, NO_CACHE 4, HEADERS_ONLY 8, AUTH_SHARED 16. */
  readonly flags: number;
  /** Header fields in stored order, one per line, as latin1 strings (frozen: shared between hits). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  /** response_time, unix ms. */
  readonly storedMs: number;
  /** Effective expiry, unix ms: the earlier of the entry's and its slot's. */
  readonly expiresMs: number;
  /** The entry's own expiry, unix ms. */
  readonly entryExpiresMs: number;
  readonly initialAge: number;
  readonly swr: number;
  readonly sie: number;
  readonly etag: string;
  readonly lastModified: string;
  readonly vary: string[];
  readonly tags: string[];
  readonly pos: number;
  readonly totalLen: number;
  ageSeconds(nowMs: number): number;
  fresh(nowMs: number): boolean;
}

/** A response answered from the mapping, with Age and Cache-Status added. */
export interface ServedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  ageSeconds: number;
  ttlSeconds: number;
  entry: Entry;
}

export interface ReadStats {
  hits: number;
  /** Every lookup that was not a hit, whatever the cause. */
  misses: number;
  expired: number;
  tornRetries: number;
  torn: number;
  overruns: number;
  corrupt: number;
  collisions: number;
  writerStale: number;
  /** Memory faults (truncated file) turned into misses. */
  faults: number;
  remaps: number;
}

export interface ClientStats {
  /** Answered from shared memory. */
  hits: number;
  /** Of those, 304s to the app's own conditional requests. */
  notModified: number;
  /** Eligible, but not fresh in shared memory: sent to the sidecar. */
  misses: number;
  /** Not eligible for a shared-memory answer: sent to the sidecar. */
  bypassed: number;
  /** Of those, by reason: not GET or HEAD; a body; Range, If-Match, If-Unmodified-Since, If-Range; no-cache, no-store, max-age=0, Pragma. */
  bypassMethod: number;
  bypassBody: number;
  bypassConditional: number;
  bypassNoCache: number;
  /** Body bytes of the responses answered from shared memory (not HEAD, not 304). */
  servedBytes: number;
  backend: Backend;
  cache: ReadStats;
}

export interface WriterStats {
  state: number;
  adoptGen: number;
  head: number;
  tail: number;
  heartbeatMs: number;
  writerStartMs: number;
  invalSeq: number;
  invalOff: number;
  stats: Record<'entries' | 'inserts' | 'replaces' | 'deletes' | 'evictions' | 'reclaimed' |
    'regionsReclaimed' | 'purges' | 'bytesWritten' | 'rejected', number>;
}

export type InvalidationKind = 'key' | 'prefix' | 'tag' | 'all';
export type InvalidationMode = 'hard' | 'soft';
export interface InvalidationRecord {
  kind: InvalidationKind;
  /** key: an absolute URL; prefix: an absolute URL prefix; tag: the tag; all: empty. */
  payload: string | Buffer;
  mode?: InvalidationMode;
  origin?: string;
}

export class ZerohopError extends Error {
  /**
   * ZEROHOP_BAD_MAGIC, ZEROHOP_VERSION, ZEROHOP_CORRUPT, ZEROHOP_TRUNCATED,
   * ZEROHOP_NOT_READY, ZEROHOP_NO_ADDON, ZEROHOP_BAD_RECORD, ZEROHOP_TIMEOUT,
   * ZEROHOP_LOCK, ZEROHOP_CLOSED
   */
  code: string;
}

export class Reader {
  constructor(dir: string, opts?: ReaderOptions);
  readonly backendName: Backend;
  healthy(nowMs?: number): boolean;
  invalidationSeq(): number;
  writerStats(): WriterStats | null;
  stats(): ReadStats;
  close(): void;
}

export class Client {
  /** Maps <dir>/cache.shm read-only; throws ZerohopError or ENOENT. */
  constructor(dir: string, opts?: ClientOptions);
  readonly backend: Backend;
  readonly reader: Reader;
  /** The fresh stored response (Vary resolved, HEAD as GET), or null. */
  get(method: string, scheme: string, host: string, target: string | Buffer, headers?: HeadersLike, nowMs?: number): Entry | null;
  /** get() for a URL. */
  lookup(url: string | URL, opts?: { method?: string; headers?: HeadersLike }): Entry | null;
  /** The response the Go client's transport would give from the mapping, or null to forward. */
  serve(method: string, scheme: string, host: string, target: string, headers?: HeadersLike,
    hasBody?: boolean, nowMs?: number): ServedResponse | null;
  stats(): ClientStats;
  healthy(): boolean;
  writerStats(): WriterStats | null;
  /** Appends to the invalidation log and waits until the sidecar applied it. Resolves to its seq. */
  invalidate(rec: string | InvalidationRecord, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<number>;
  /** An undici Dispatcher: fresh hits from the mapping, the rest to the sidecar. */
  dispatcher(opts?: { sidecar?: string; direct?: boolean; fallback?: Dispatcher }): ZerohopDispatcher;
  /** Copies the counters to the app counters file now (it is done once a second and at close/exit). */
  publishCounters(): void;
  /** The app counters file, or null (countersDir "off", or countersError says why). */
  countersFile(): string | null;
  readonly countersError: Error | null;
  /** Publishes the counters a last time, unmaps the cache, closes the log. */
  close(): void;
}

export class ZerohopDispatcher extends Dispatcher {
  constructor(client: Client, opts?: { sidecar?: string; direct?: boolean; fallback?: Dispatcher });
}

export class InvalidationLog {
  constructor(path: string, opts?: { origin?: string });
  append(rec: InvalidationRecord, opts?: { signal?: AbortSignal }): Promise<number>;
  close(): void;
}

export function open(dir: string, opts?: ClientOptions): Client;
export function addonStatus(): { available: boolean; error: string | null };
export function keyRecord(url: string, mode?: InvalidationMode): InvalidationRecord;
export function prefixRecord(prefix: string, mode?: InvalidationMode): InvalidationRecord;
export function tagRecord(tag: string, mode?: InvalidationMode): InvalidationRecord;
export function allRecord(mode?: InvalidationMode): InvalidationRecord;
export function primaryKey(method: string, scheme: string, host: string, target: string | Buffer): Buffer;
export function normalizeFieldValue(lines: string[]): string;
export const CACHE_NAME: 'zerohop';
export const DEFAULT_SIDECAR: '127.0.0.1:8089';
export const flags: {
  VARY_INDEX: 1; MUST_REVALIDATE: 2; NO_CACHE: 4; HEADERS_ONLY: 8; AUTH_SHARED: 16;
};
