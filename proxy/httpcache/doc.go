// Package httpcache implements the caching policy of a shared HTTP cache:
// which responses may be stored, how long they stay fresh, what to do with a
// request given a stored response, how to revalidate and how to update a
// stored response afterwards.
//
// It follows RFC 9111 (HTTP Caching), RFC 5861 (stale-while-revalidate and
// stale-if-error), RFC 9110 (conditional requests, validators, dates) and
// RFC 9211 (Cache-Status). The cache is always treated as shared: s-maxage
// applies and private responses are never stored.
//
// The package is pure: it performs no I/O, starts no goroutines and never
// reads the clock. Every time-dependent function takes the relevant instants
// (request_time, response_time, now) as arguments, so a proxy can be tested
// deterministically and a stored entry can be re-evaluated at any instant.
//
// A typical proxy flow is:
//
//	req := ParseRequestCacheControl(r.Header)
//	switch Decide(req, entry, now) {
//	case Miss, Revalidate: // forward, with AddValidators for Revalidate
//	case ServeFresh, ServeStale: // answer from the store, Age: FormatAge(entry.Age(now))
//	case ServeStaleRevalidate: // answer from the store and revalidate in the background
//	case GatewayTimeout: // only-if-cached: answer 504
//	}
//
// and, on the way back, Storable / StrippedFields / NewEntry for new
// responses, SelectForUpdate / Freshen for 304s, CanServeStaleOnError for
// upstream failures and InvalidationURIs for unsafe methods. A Range
// request is answered from a stored complete response with RangeApplies /
// selectRanges (RFC 9110 §14), and a 200 to a forwarded HEAD updates or
// invalidates the stored GET response by HeadMatches (RFC 9111 §4.3.5).
package httpcache
