package httpcache

import "time"

// Action is what a cache should do with a request, given what it has stored.
type Action int

// Actions returned by Decide.
const (
	// Miss: nothing is stored; forward the request (Cache-Status fwd=uri-miss
	// or fwd=vary-miss).
	Miss Action = iota
	// ServeFresh: the stored response is fresh and satisfies the request's
	// constraints; serve it (Cache-Status hit).
	ServeFresh
	// ServeStale: the stored response is stale but the request's max-stale
	// accepts it and nothing forbids serving it stale (RFC 9111 §5.2.1.2,
	// §4.2.4); serve it without contacting the origin.
	ServeStale
	// ServeStaleRevalidate: serve the stale stored response and revalidate
	// it in the background (RFC 5861 §3).
	ServeStaleRevalidate
	// Revalidate: the stored response cannot be used without validation;
	// forward a conditional request (AddValidators) and handle the answer
	// with classifyValidation (Cache-Status fwd=stale or fwd=request).
	Revalidate
	// GatewayTimeout: the request has only-if-cached and nothing usable is
	// stored; answer 504 (RFC 9111 §5.2.1.7).
	GatewayTimeout
)

var actionNames = [...]string{"miss", "serve-fresh", "serve-stale", "serve-stale-revalidate", "revalidate", "gateway-timeout"}

// String returns a short name for the action, for logs.
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "unknown"
	}
	return actionNames[a]
}

// Decide decides how to answer a request with directives req (see
// ParseRequestCacheControl) given the selected stored response e, at now.
// e is nil when no stored response matches the request (including its Vary
// selecting fields). The rules, in order:
//
//   - only-if-cached with nothing usable → GatewayTimeout (RFC 9111 §5.2.1.7);
//   - response no-cache, or request no-cache (including Pragma: no-cache)
//     → Revalidate (§5.2.2.4, §5.2.1.4);
//   - request max-age: the age must not exceed it; request min-fresh: the
//     remaining lifetime must be at least that (§5.2.1.1, §5.2.1.3). An
//     invalid value for either is treated as unsatisfiable;
//   - fresh (lifetime > age) → ServeFresh (§4.2);
//   - stale: never served stale if must-revalidate, proxy-revalidate or
//     s-maxage (§4.2.4). Otherwise a request max-stale covering the
//     staleness → ServeStale (or ServeStaleRevalidate when the
//     stale-while-revalidate window also covers it, so the entry gets
//     refreshed); a stale-while-revalidate window covering the staleness,
//     when the request has no max-age/min-fresh (a client sending those
//     "does not wish to receive a stale response", §5.2.1.1)
//     → ServeStaleRevalidate (RFC 5861 §3);
//   - otherwise → Revalidate.
//
// Request no-store does not prevent serving a stored response (§5.2.1.5:
// it only forbids storing the response to this request).
func Decide(req Directives, e *Entry, now time.Time) Action {
	if e == nil {
		if req.OnlyIfCached {
			return GatewayTimeout
		}
		return Miss
	}
	a := decide(&req, e, now)
	if a == Revalidate && req.OnlyIfCached {
		return GatewayTimeout
	}
	return a
}

func decide(req *Directives, e *Entry, now time.Time) Action {
	// A qualified no-cache has no defined meaning in a request; treat it
	// as the unqualified one (the most restrictive reading).
	if e.NoCache || req.NoCache || len(req.NoCacheFields) > 0 {
		return Revalidate
	}
	age := e.Age(now)
	if req.MaxAge.Present && (!req.MaxAge.Valid || age > req.MaxAge.Duration()) {
		return Revalidate
	}
	if req.MinFresh.Present && (!req.MinFresh.Valid || e.Lifetime-age < req.MinFresh.Duration()) {
		return Revalidate
	}
	if e.Lifetime > age {
		return ServeFresh
	}
	if e.MustRevalidate {
		return Revalidate
	}
	staleness := age - e.Lifetime
	swr := e.StaleWhileRevalidate > 0 && staleness <= e.StaleWhileRevalidate
	if req.MaxStale.Valid && staleness <= req.MaxStale.Duration() {
		if swr {
			return ServeStaleRevalidate
		}
		return ServeStale
	}
	if swr && !req.MaxAge.Present && !req.MinFresh.Present {
		return ServeStaleRevalidate
	}
	return Revalidate
}

// IsUpstreamError reports whether an upstream status code is an "error" for
// stale-if-error: 500, 502, 503 or 504 (RFC 5861 §4). A connection failure
// or timeout, for which the proxy has no status, is an error as well; pass
// 0 for it.
func IsUpstreamError(status int) bool {
	switch status {
	case 0, 500, 502, 503, 504:
		return true
	}
	return false
}

// CanServeStaleOnError reports whether the stored response e may be served
// instead of an upstream error (IsUpstreamError) at now:
//
//   - never when the response had no-cache, must-revalidate,
//     proxy-revalidate or s-maxage: those forbid serving it without a
//     successful validation, even when disconnected (RFC 9111 §4.2.4,
//     §5.2.2.2, §5.2.2.4);
//   - yes while it is still fresh (no stale response is generated);
//   - yes when its staleness is within the response's stale-if-error
//     window, the request's stale-if-error window (RFC 5861 §4: "regardless
//     of other freshness information"), or the request's max-stale.
//
// When it returns false because of must-revalidate (or proxy-revalidate,
// s-maxage) and no response was received at all, the proxy SHOULD answer
// 504 (RFC 9111 §5.2.2.2); when an error response was received, it forwards
// that response.
//
// A cache MAY serve stale when merely disconnected (RFC 9111 §4.2.4); this
// package only does so when explicitly permitted, so that an origin that
// sends none of these directives sees its errors passed through.
func CanServeStaleOnError(req Directives, e Entry, now time.Time) bool {
	if e.NoCache || e.MustRevalidate {
		return false
	}
	staleness := e.Age(now) - e.Lifetime
	switch {
	case staleness < 0:
		return true
	case e.StaleIfError > 0 && staleness <= e.StaleIfError:
		return true
	case req.StaleIfError.Valid && staleness <= req.StaleIfError.Duration():
		return true
	case req.MaxStale.Valid && staleness <= req.MaxStale.Duration():
		return true
	}
	return false
}
