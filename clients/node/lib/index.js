'use strict';
// zerohop: the Node client of the zerohop sidecar. See README.md.

const { Client, CACHE_NAME, DEFAULT_SIDECAR } = require('./client');
const { Reader, backends } = require('./reader');
const { ZerohopError } = require('./errors');
const inval = require('./invalidate');
const key = require('./key');
const layout = require('./layout');

/**
 * Opens the cache in dir (the directory holding cache.shm).
 * @param {string} dir
 * @param {object} [opts]
 */
function open(dir, opts) {
  return new Client(dir, opts);
}

/** Whether the native addon loaded, and why not. */
function addonStatus() {
  return { available: backends.addon.available, error: backends.addon.loadError ? backends.addon.loadError.message : null };
}

module.exports = {
  open,
  Client,
  Reader,
  ZerohopError,
  CACHE_NAME,
  DEFAULT_SIDECAR,
  addonStatus,
  keyRecord: inval.keyRecord,
  prefixRecord: inval.prefixRecord,
  tagRecord: inval.tagRecord,
  allRecord: inval.allRecord,
  InvalidationLog: inval.InvalidationLog,
  primaryKey: key.primaryKey,
  normalizeFieldValue: key.normalizeFieldValue,
  flags: {
    VARY_INDEX: layout.FLAG_VARY_INDEX,
    MUST_REVALIDATE: layout.FLAG_MUST_REVALIDATE,
    NO_CACHE: layout.FLAG_NO_CACHE,
    HEADERS_ONLY: layout.FLAG_HEADERS_ONLY,
    AUTH_SHARED: layout.FLAG_AUTH_SHARED,
  },
  get ZerohopDispatcher() { return require('./dispatcher').ZerohopDispatcher; },
};
