package httpcache

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Reason is a short, machine-readable explanation of a storage decision.
// Every value is a valid Structured Field token, so it can be used directly
// as a Cache-Status detail (RFC 9211 §2.8) and as a log field.
type Reason string

// Reasons returned by Storable. The empty Reason means the response may be
// stored.
const (
	ReasonMethod         Reason = "method"          // only GET responses are stored (RFC 9111 §3)
	ReasonStatus         Reason = "status"          // non-final, 304, 407 or out-of-range status (RFC 9111 §3)
	ReasonPartial        Reason = "partial"         // 206: partial content is not stored (RFC 9111 §3.3)
	ReasonNoStore        Reason = "no-store"        // request or response no-store (RFC 9111 §5.2.1.5, §5.2.2.5)
	ReasonPrivate        Reason = "private"         // unqualified private (RFC 9111 §5.2.2.7)
	ReasonAuthorization  Reason = "authorization"   // Authorization without public/s-maxage/must-revalidate (RFC 9111 §3.5)
	ReasonMustUnderstand Reason = "must-understand" // must-understand with a status code the cache does not understand (RFC 9111 §5.2.2.3)
	ReasonSetCookie      Reason = "set-cookie"      // Set-Cookie present and StoreOptions.AllowSetCookie is false
	ReasonVaryStar       Reason = "vary-star"       // Vary: * can never be matched (RFC 9111 §4.1)
	ReasonNoFreshness    Reason = "no-freshness"    // no explicit freshness, not public, not heuristically cacheable (RFC 9111 §3)

	// ReasonRange is no longer returned: a 200 to a request that carried
	// Range is a complete response (the server ignored Range) and is
	// stored like any other. Kept for compatibility.
	ReasonRange Reason = "range"
)

// StoreOptions tunes Storable.
type StoreOptions struct {
	// AllowSetCookie stores responses carrying Set-Cookie, with the
	// Set-Cookie fields stripped (see StrippedFields). By default such
	// responses are not stored at all: in a multi-tenant sidecar a stored
	// cookie would be replayed to other users, and a response that sets a
	// cookie is usually personalised. Set-Cookie itself is never stored.
	AllowSetCookie bool
	// CredentialFields are request fields (canonical names) that carry a
	// caller's credential the way Authorization does, such as the proxy's
	// API key fields: §3.5 applies to a request carrying one as to one
	// carrying Authorization. Default none.
	CredentialFields []string
}

// Storable reports whether a shared cache may store resp, received for req
// (RFC 9111 §3). When it returns false, reason says why; when it returns
// true, reason is empty and the caller must remove StrippedFields from the
// header before storing.
//
// It is stricter than RFC 9111 where the proxy lacks support: only GET is
// stored (HEAD is answered from a stored GET), and 206 responses are not
// stored, since the cache keeps complete responses only (RFC 9111 §3.3
// allows but does not require storing parts); a cache answers Range
// requests from a stored complete response instead (see RangeApplies). A
// 200 to a request that carried Range is complete and may be stored. A
// response carrying
// Cache-Control: no-cache is stored only if it is otherwise storable; it
// will then always be revalidated before use (see Decide).
func Storable(req *http.Request, resp *http.Response, opts StoreOptions) (ok bool, reason Reason) {
	// §3: "the request method is understood by the cache".
	if req.Method != http.MethodGet {
		return false, ReasonMethod
	}
	status := resp.StatusCode
	switch {
	case status < 200 || status > 599, // §3: "the response status code is final"
		status == http.StatusNotModified,       // §3: a 304 is not a complete response to store
		status == http.StatusProxyAuthRequired: // its Proxy-Authenticate must not be stored (§3.1)
		return false, ReasonStatus
	case status == http.StatusPartialContent:
		return false, ReasonPartial
	}
	cc := ParseCacheControl(resp.Header)
	reqcc := ParseCacheControl(req.Header)
	if reqcc.NoStore { // §5.2.1.5
		return false, ReasonNoStore
	}
	// §5.2.2.3: a cache that understands the status code SHOULD ignore
	// no-store when must-understand is present; otherwise it MUST NOT store.
	if cc.MustUnderstand {
		if !understoodStatus(status) {
			return false, ReasonMustUnderstand
		}
	} else if cc.NoStore {
		return false, ReasonNoStore
	}
	if cc.Private { // §3: a shared cache stores only qualified private
		return false, ReasonPrivate
	}
	// §3.5: explicit permission to share a response to an authenticated request.
	if !cc.Public && !cc.SMaxAge.Present && !cc.MustRevalidate &&
		authenticated(req.Header, opts.CredentialFields) {
		return false, ReasonAuthorization
	}
	if varyStar(resp.Header) {
		return false, ReasonVaryStar
	}
	if !opts.AllowSetCookie && hasSetCookie(resp.Header) &&
		!(listed(cc.PrivateFields, "Set-Cookie") || listed(cc.NoCacheFields, "Set-Cookie")) {
		// A Set-Cookie named in private="..." or no-cache="..." is not
		// stored anyway (§3.1), so it does not block storage.
		return false, ReasonSetCookie
	}
	// §3: the response must carry something that allows caching.
	if cc.Public || cc.SMaxAge.Present || cc.MaxAge.Present ||
		len(resp.Header["Expires"]) > 0 || heuristicallyCacheable(status) {
		return true, ""
	}
	return false, ReasonNoFreshness
}

// authenticated reports whether h carries Authorization or one of the
// credential fields.
func authenticated(h http.Header, credential []string) bool {
	if _, ok := h["Authorization"]; ok {
		return true
	}
	for _, f := range credential {
		if _, ok := h[f]; ok {
			return true
		}
	}
	return false
}

func hasSetCookie(h http.Header) bool {
	return len(h["Set-Cookie"]) > 0 || len(h["Set-Cookie2"]) > 0
}

func listed(fields []string, name string) bool {
	for _, f := range fields {
		if f == name {
			return true
		}
	}
	return false
}

// heuristicallyCacheable reports the status codes that are "heuristically
// cacheable" by default (RFC 9110 §15.1; RFC 9111 §4.2.2).
func heuristicallyCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus reports the final status codes whose caching
// requirements this cache implements, for must-understand (RFC 9111
// §5.2.2.3): the codes defined by RFC 9110 §15, except 206 (no range
// support), 304 (never stored), 305/306 (deprecated/unused), 407 (its
// Proxy-Authenticate cannot be stored) and 418 (unused).
func understoodStatus(status int) bool {
	switch status {
	case 200, 201, 202, 203, 204, 205,
		300, 301, 302, 303, 307, 308,
		400, 401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426,
		500, 501, 502, 503, 504, 505:
		return true
	}
	return false
}

// hopByHop lists the fields that RFC 9110 §7.6.1 requires to be removed
// before forwarding and that RFC 9111 §3.1 therefore lets a cache drop
// before storage, plus the proxy-specific fields that MUST NOT be stored
// (RFC 9111 §3.1).
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Transfer-Encoding", "Upgrade",
	"Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization",
}

// StrippedFields returns the canonical names of the fields of response
// header h that a shared cache must not store (RFC 9111 §3.1), limited to
// those present in h:
//
//   - Connection, the fields it lists, and the other hop-by-hop fields
//     (RFC 9110 §7.6.1);
//   - Proxy-Authenticate, Proxy-Authentication-Info, Proxy-Authorization;
//   - the fields named by qualified no-cache="..." and private="..."
//     (RFC 9111 §5.2.2.4, §5.2.2.7);
//   - Set-Cookie and Set-Cookie2, which this cache never stores (see
//     StoreOptions.AllowSetCookie).
//
// The result is nil when nothing needs stripping.
func StrippedFields(h http.Header) []string {
	var out []string
	add := func(name string) {
		if _, ok := h[name]; ok && !listed(out, name) {
			out = append(out, name)
		}
	}
	for _, name := range hopByHop {
		add(name)
	}
	for _, line := range h["Connection"] {
		for line != "" {
			var name string
			name, line, _ = strings.Cut(line, ",")
			if name = strings.Trim(name, " \t"); isToken(name) {
				add(textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	add("Set-Cookie")
	add("Set-Cookie2")
	cc := ParseCacheControl(h)
	for _, name := range cc.NoCacheFields {
		add(name)
	}
	for _, name := range cc.PrivateFields {
		add(name)
	}
	return out
}
