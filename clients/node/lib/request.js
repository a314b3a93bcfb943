'use strict';
// What a request may be answered from the mapping with, as the Go client's
// transport decides it (clients/go/zerohop/transport.go): eligibility, the
// request Cache-Control directives, and the app's own conditional request.

/**
 * Request header field lines by lower-case name, from any of the shapes
 * Node code passes headers in: a WHATWG Headers, a Map, a plain object
 * (string or string[] values), an array of [name, value] pairs, or undici's
 * flat [name, value, name, value] array of strings or Buffers.
 * @returns {Map<string, string[]>}
 */
function headerLines(headers) {
  const m = new Map();
  if (headers == null) return m;
  const add = (k, v) => {
    if (v === undefined || v === null) return;
    const name = String(k).toLowerCase();
    const vals = Array.isArray(v) ? v.map(String) : [Buffer.isBuffer(v) ? v.toString('latin1') : String(v)];
    const cur = m.get(name);
    if (cur) cur.push(...vals);
    else m.set(name, vals);
  };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && !Array.isArray(headers[0])) {
      for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i].toString('latin1'), headers[i + 1]);
    } else {
      for (const [k, v] of headers) add(k, v);
    }
  } else if (typeof headers.entries === 'function' && typeof headers.get === 'function') {
    for (const [k, v] of headers.entries()) add(k, v);
  } else if (typeof headers[Symbol.iterator] === 'function') {
    for (const [k, v] of headers) add(k, v);
  } else {
    for (const k of Object.keys(headers)) add(k, headers[k]);
  }
  return m;
}

/** First value of a header, '' when absent (Go's Header.Get). */
function first(h, name) {
  const v = h.get(name);
  return v && v.length ? v[0] : '';
}

// strconv.ParseInt(s, 10, 64): optional sign, decimal digits only.
function parseInt64(s) {
  return /^[+-]?[0-9]+$/.test(s) ? Number(s) : NaN;
}

function hasToken(list, tok) {
  return list.split(',').some((p) => p.trim().toLowerCase() === tok);
}

// refuse records why a request is not eligible (the app counters' bypass
// reasons: method, body, conditional, no_cache) and returns null.
function refuse(why, reason) {
  if (why) why.reason = reason;
  return null;
}

/**
 * Whether a request may be answered from shared memory at all, and its
 * max-age (-1: none) and min-fresh directives. Anything the client does not
 * fully handle (ranges, preconditions other than If-None-Match and
 * If-Modified-Since, request bodies, no-cache) goes to the sidecar, which
 * implements the whole of RFC 9111. why, if given, gets the refusal's reason.
 * @returns {{maxAge: number, minFresh: number} | null}
 */
function eligible(method, h, hasBody, why) {
  if (method !== 'GET' && method !== 'HEAD') return refuse(why, 'method');
  if (hasBody) return refuse(why, 'body');
  if (first(h, 'range') || first(h, 'if-match') || first(h, 'if-unmodified-since') || first(h, 'if-range')) return refuse(why, 'conditional');
  const d = { maxAge: -1, minFresh: 0 };
  const cc = h.get('cache-control');
  if (!cc || cc.length === 0) {
    // Pragma: no-cache counts only without Cache-Control (RFC 9111 §5.4).
    for (const p of h.get('pragma') || []) if (hasToken(p, 'no-cache')) return refuse(why, 'no_cache');
    return d;
  }
  for (const line of cc) {
    for (const dir of line.split(',')) {
      const t = dir.trim();
      const eq = t.indexOf('=');
      const name = (eq < 0 ? t : t.slice(0, eq)).trim().toLowerCase();
      const arg = eq < 0 ? '' : t.slice(eq + 1).trim().replace(/^"+|"+$/g, '');
      if (name === 'no-cache' || name === 'no-store') return refuse(why, 'no_cache');
      if (name === 'max-age') {
        const n = parseInt64(arg);
        if (!(n > 0)) return refuse(why, 'no_cache'); // max-age=0 or unparseable: revalidate at the sidecar
        if (d.maxAge < 0 || n < d.maxAge) d.maxAge = n;
      } else if (name === 'min-fresh') {
        const n = parseInt64(arg);
        if (!(n >= 0)) return refuse(why, 'no_cache');
        d.minFresh = Math.max(d.minFresh, n);
      }
    }
  }
  return d;
}

/**
 * Evaluates the app's own conditional request against the stored response's
 * validators (RFC 9110 §13.1.2, §13.1.3; If-None-Match wins; weak
 * comparison). stored: the stored header list.
 */
function notModified(h, stored) {
  const find = (name) => {
    for (const [k, v] of stored) if (k.toLowerCase() === name) return v;
    return '';
  };
  const inm = h.get('if-none-match');
  if (inm && inm.length) {
    let etag = find('etag');
    if (!etag) return false;
    if (etag.startsWith('W/')) etag = etag.slice(2);
    for (const line of inm) {
      for (let t of line.split(',')) {
        t = t.trim();
        if (t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === etag) return true;
      }
    }
    return false;
  }
  const ims = first(h, 'if-modified-since');
  const lms = find('last-modified');
  if (!ims || !lms) return false;
  const t = parseHttpDate(ims);
  const lm = parseHttpDate(lms);
  return !Number.isNaN(t) && !Number.isNaN(lm) && lm <= t;
}

// http.ParseTime: IMF-fixdate, RFC 850 and asctime, all GMT.
function parseHttpDate(s) {
  if (!/GMT$|^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.test(s)) return NaN;
  return Date.parse(/GMT$/.test(s) ? s : s + ' GMT');
}

module.exports = { headerLines, eligible, notModified, first };
