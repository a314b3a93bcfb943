'use strict';
// Canonical cache keys (shm/key.go, docs/format.md "Canonical key"):
//
//   primary   = str16(method) str16(lower(scheme)) str16(lower(host)) str32(target)
//   secondary = primary u16(n) n × ( str16(name) u8(present) str32(value) )
//
// strN is a little-endian uN length then the bytes. The host loses the
// scheme's default port (:80 for http, :443 for https). The target is the
// path and query exactly as sent. Strings are encoded as UTF-8 (the bytes a
// client sends); a Buffer is taken as it is. The Vary values are the request
// header's field lines joined with "," after dropping spaces and tabs around
// list members; commas inside quoted strings do not split members.

/** A growable scratch buffer that keys are built into without allocating. */
class KeyBuilder {
  constructor(size = 1024) {
    this.buf = Buffer.allocUnsafe(size);
    this.len = 0;
  }

  reset() { this.len = 0; return this; }

  ensure(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.len);
    this.buf = nb;
  }

  u8(v) { this.ensure(1); this.buf[this.len++] = v; }
  u16(v) { this.ensure(2); this.u16at(v, this.len); this.len += 2; }
  u32(v) { this.ensure(4); this.buf.writeUInt32LE(v >>> 0, this.len); this.len += 4; }

  /** Appends the bytes of s (string as UTF-8, or Buffer); returns their length. */
  bytes(s) {
    if (typeof s === 'string') {
      // ASCII strings are one byte per char; others may need up to three.
      this.ensure(s.length * 3);
      const b = this.buf;
      const start = this.len;
      // Short ASCII strings (methods, hosts, most targets) are copied here:
      // a Buffer.write call costs more than the loop.
      if (s.length <= 256) {
        let i = 0;
        for (; i < s.length; i++) {
          const c = s.charCodeAt(i);
          if (c > 0x7f) break;
          b[start + i] = c;
        }
        if (i === s.length) {
          this.len += i;
          return i;
        }
      }
      const n = b.write(s, start, 'utf8');
      this.len += n;
      return n;
    }
    this.ensure(s.length);
    s.copy(this.buf, this.len);
    this.len += s.length;
    return s.length;
  }

  u16at(v, at) { this.buf[at] = v & 0xff; this.buf[at + 1] = v >>> 8; }

  // lenN prefixes: the length is patched after writing the bytes.
  str16(s, lower = false) {
    const at = this.len;
    this.u16(0);
    const n = this.bytes(s);
    // len16 saturates at 0xffff (shm/key.go): such a key can only miss.
    this.u16at(n > 0xffff ? 0xffff : n, at);
    if (lower) asciiLowerInPlace(this.buf, at + 2, at + 2 + n);
  }

  str32(s) {
    const at = this.len;
    this.u32(0);
    const n = this.bytes(s);
    this.buf.writeUInt32LE(n, at);
  }

  /** A copy of the key built so far. */
  toBuffer() { return Buffer.from(this.buf.subarray(0, this.len)); }
}

function asciiLowerInPlace(b, start, end) {
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c >= 0x41 && c <= 0x5a) b[i] = c + 0x20;
  }
}

function asciiEqualFold(a, b) {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase() && /^[\x00-\x7f]*$/.test(a);
}

/** The host without the scheme's default port (RFC 9110 §4.2.3). */
function trimDefaultPort(scheme, host) {
  if (typeof host !== 'string') return host;
  if ((scheme === 'http' || asciiEqualFold(scheme, 'http')) && host.endsWith(':80')) return host.slice(0, -3);
  if ((scheme === 'https' || asciiEqualFold(scheme, 'https')) && host.endsWith(':443')) return host.slice(0, -4);
  return host;
}

/** Appends the primary key of a request to kb. */
function appendKey(kb, method, scheme, host, target) {
  host = trimDefaultPort(scheme, host);
  kb.str16(method);
  kb.str16(scheme, true);
  kb.str16(host, true);
  kb.str32(target);
  return kb;
}

/** The primary key as a new Buffer. */
function primaryKey(method, scheme, host, target) {
  return appendKey(new KeyBuilder(256), method, scheme, host, target).toBuffer();
}

/** The names (u16-length strings) of a vary or tags block; stops at a malformed length. */
function stringBlock(buf, start, end) {
  const out = [];
  let p = start;
  while (end - p >= 2) {
    const n = buf.readUInt16LE(p);
    if (end - p - 2 < n) break;
    out.push(buf.toString('latin1', p + 2, p + 2 + n));
    p += 2 + n;
  }
  return out;
}

/**
 * Splits a field value at commas outside quoted strings (RFC 9110 §5.6.1,
 * §5.6.4: a backslash in a quoted string escapes the next byte).
 */
function splitList(s) {
  const parts = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (quoted && c === 0x5c) i++;
    else if (c === 0x22) quoted = !quoted;
    else if (c === 0x2c && !quoted) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

// strings.Trim(s, " \t"): spaces and tabs only, not every Unicode space.
function trimSpTab(s) {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** NormalizeFieldValue: field lines joined by "," with list OWS dropped. */
function normalizeFieldValue(lines) {
  let out = '';
  let first = true;
  for (const line of lines) {
    for (const part of splitList(line)) {
      if (!first) out += ',';
      first = false;
      out += trimSpTab(part);
    }
  }
  return out;
}

/**
 * Appends the secondary part of a key for the names of a vary block,
 * taking values from getLines(name), which returns the request header's
 * field lines (an empty array when absent).
 */
function appendVary(kb, names, getLines) {
  kb.u16(names.length);
  for (const name of names) {
    const lines = getLines(name);
    kb.str16(Buffer.from(name, 'latin1'), true);
    if (lines.length === 0) {
      kb.u8(0);
      kb.u32(0);
      continue;
    }
    kb.u8(1);
    kb.str32(Buffer.from(normalizeFieldValue(lines), 'latin1'));
  }
  return kb;
}

module.exports = {
  KeyBuilder, appendKey, primaryKey, appendVary, stringBlock, splitList, normalizeFieldValue, trimDefaultPort,
};
