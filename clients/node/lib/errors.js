'use strict';
// Errors Open and Invalidate throw. Each carries a stable code, as the Go
// package's sentinel errors (shm/errors.go, invalidate/errors.go) do.

class ZerohopError extends Error {
  /**
   * @param {string} code ZEROHOP_BAD_MAGIC, ZEROHOP_VERSION, ZEROHOP_CORRUPT,
   *   ZEROHOP_TRUNCATED, ZEROHOP_NOT_READY, ZEROHOP_CLOSED, ZEROHOP_BAD_RECORD,
   *   ZEROHOP_TIMEOUT, ZEROHOP_LOCK
   */
  constructor(code, message, options) {
    super(message, options);
    this.name = 'ZerohopError';
    this.code = code;
  }
}

module.exports = { ZerohopError };
