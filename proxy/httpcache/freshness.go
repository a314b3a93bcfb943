package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults for heuristic freshness (RFC 9111 §4.2.2).
const (
	DefaultHeuristicFraction = 0.1            // "a typical setting of this fraction might be 10%"
	DefaultHeuristicMax      = 24 * time.Hour // upper bound on a heuristic lifetime
)

// FreshnessOptions tunes heuristic freshness. The zero value uses the
// defaults above.
type FreshnessOptions struct {
	// HeuristicFraction is the fraction of (Date - Last-Modified) used as
	// heuristic lifetime. 0 means DefaultHeuristicFraction; a negative value
	// disables heuristic freshness.
	HeuristicFraction float64
	// HeuristicMax caps a heuristic lifetime. 0 means DefaultHeuristicMax.
	HeuristicMax time.Duration
}

// freshnessLifetime returns the freshness lifetime of a response with the
// given status and header for a shared cache (RFC 9111 §4.2.1), and whether
// it was computed heuristically (§4.2.2). In order of precedence:
//
//  1. s-maxage;
//  2. max-age;
//  3. Expires - Date. An invalid Expires (e.g. "0") means already expired
//     (§5.3) and conflicting Expires lines make the response stale (§4.2.1);
//  4. a heuristic, only when no explicit expiration is present and the
//     status is heuristically cacheable or the response is public:
//     fraction × (Date - Last-Modified), capped; zero without a valid
//     Last-Modified.
//
// An invalid or conflicting s-maxage or max-age yields 0: RFC 9111 §4.2.1
// encourages caches to consider such responses stale, and a present
// max-age or s-maxage still overrides Expires (§5.3).
//
// responseTime stands in for date_value when Date is absent or invalid, as
// a recipient must record the receipt time in that case (RFC 9110 §6.6.1).
func freshnessLifetime(status int, h http.Header, cc *Directives, responseTime time.Time, opts FreshnessOptions) (time.Duration, bool) {
	switch {
	case cc.SMaxAge.Present: // §5.2.2.10: shared caches use s-maxage, ignoring max-age and Expires
		return cc.SMaxAge.Duration(), false
	case cc.MaxAge.Present: // §5.3: with max-age, Expires MUST be ignored
		return cc.MaxAge.Duration(), false
	}
	if expires := h["Expires"]; len(expires) > 0 {
		for _, e := range expires[1:] {
			if e != expires[0] {
				return 0, false // §4.2.1: more than one value; consider it stale
			}
		}
		exp, ok := parseHTTPDate(expires[0])
		if !ok {
			return 0, false // §5.3: invalid dates, especially "0", are in the past
		}
		return clampDelta(exp.Sub(dateValue(h, responseTime))), false
	}
	if !heuristicallyCacheable(status) && !cc.Public {
		return 0, false
	}
	fraction := opts.HeuristicFraction
	if fraction == 0 {
		fraction = DefaultHeuristicFraction
	}
	if !(fraction > 0) { // negative (disabled) or NaN
		return 0, false
	}
	limit := opts.HeuristicMax
	if limit <= 0 {
		limit = DefaultHeuristicMax
	}
	lm, ok := lastModified(h)
	if !ok {
		return 0, false
	}
	interval := dateValue(h, responseTime).Sub(lm)
	if interval <= 0 {
		return 0, false // Last-Modified in the future of Date: no basis for a heuristic
	}
	// Compare in floating point: converting an out-of-range float to an
	// integer is implementation-defined in Go.
	lifetime := limit
	if f := float64(interval) * fraction; f < float64(limit) {
		lifetime = time.Duration(f)
	}
	return clampDelta(lifetime.Truncate(time.Second)), true
}

// dateValue returns date_value (RFC 9111 §4.2.3): the Date field, or the
// receipt time when Date is missing or invalid (RFC 9110 §6.6.1).
func dateValue(h http.Header, responseTime time.Time) time.Time {
	if v := h["Date"]; len(v) > 0 {
		if t, ok := parseHTTPDate(v[0]); ok {
			return t
		}
	}
	return responseTime
}

func lastModified(h http.Header) (time.Time, bool) {
	v := h["Last-Modified"]
	if len(v) == 0 {
		return time.Time{}, false
	}
	return parseHTTPDate(v[0])
}

// ageValue returns age_value (RFC 9111 §4.2.3) from the Age field. Per
// §5.1, a list-based value uses its first member and an invalid value (not
// a non-negative integer) is ignored, i.e. age_value is 0. Values saturate
// at 2^31 seconds (§1.2.2).
func ageValue(h http.Header) time.Duration {
	v := h["Age"]
	if len(v) == 0 {
		return 0
	}
	first, _, _ := strings.Cut(v[0], ",")
	n, ok := parseDeltaSeconds(strings.Trim(first, " \t"))
	if !ok {
		return 0
	}
	return time.Duration(n) * time.Second
}

// CorrectedInitialAge computes corrected_initial_age exactly as RFC 9111
// §4.2.3 defines it, for a response with header h whose request was sent at
// requestTime and which was received at responseTime:
//
//	apparent_age          = max(0, response_time - date_value)
//	response_delay        = response_time - request_time
//	corrected_age_value   = age_value + response_delay
//	corrected_initial_age = max(apparent_age, corrected_age_value)
//
// A missing or invalid Date makes apparent_age 0 (date_value is the receipt
// time); an invalid Age counts as 0 (§5.1). A response_delay made negative
// by a clock step is treated as 0. The result saturates at 2^31 seconds.
func CorrectedInitialAge(h http.Header, requestTime, responseTime time.Time) time.Duration {
	// Clamp each term first so that the sum cannot overflow (§1.2.2).
	apparent := clampDelta(responseTime.Sub(dateValue(h, responseTime)))
	delay := clampDelta(responseTime.Sub(requestTime))
	return clampDelta(max(apparent, ageValue(h)+delay))
}

func clampDelta(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d > maxDelta:
		return maxDelta
	}
	return d
}

// FormatAge formats an age as the value of an Age field: whole seconds,
// saturated at 2^31 (RFC 9111 §5.1, §1.2.2). A cache serving a stored
// response MUST send Age equal to its current_age (RFC 9111 §4).
func FormatAge(age time.Duration) string {
	return strconv.FormatInt(int64(clampDelta(age)/time.Second), 10)
}

// Entry is the caching metadata a proxy keeps beside a stored response. It
// is computed once by NewEntry when the response is stored (or freshened)
// and is then enough, together with the request's directives and the
// current time, to decide how to use the response.
type Entry struct {
	// ResponseTime is response_time: when the response was received.
	ResponseTime time.Time
	// CorrectedInitialAge is corrected_initial_age (RFC 9111 §4.2.3).
	CorrectedInitialAge time.Duration
	// Lifetime is the freshness lifetime (RFC 9111 §4.2.1).
	Lifetime time.Duration
	// Heuristic reports that Lifetime is heuristic (RFC 9111 §4.2.2).
	Heuristic bool
	// StaleWhileRevalidate is the RFC 5861 §3 window (0 when absent).
	StaleWhileRevalidate time.Duration
	// StaleIfError is the RFC 5861 §4 window (0 when absent).
	StaleIfError time.Duration
	// MustRevalidate forbids serving the response stale: must-revalidate,
	// proxy-revalidate or s-maxage (which implies proxy-revalidate for a
	// shared cache) was present (RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8,
	// §5.2.2.10). It overrides stale-while-revalidate, stale-if-error and
	// the request's max-stale.
	MustRevalidate bool
	// NoCache requires successful validation before every use: an
	// unqualified no-cache was present (RFC 9111 §5.2.2.4).
	NoCache bool
}

// NewEntry computes the Entry of a response with the given status and
// header, whose request was sent at requestTime and which was received at
// responseTime. After a 304 the proxy calls it again with the Freshen-ed
// header and the times of the validation exchange: the Age of a
// revalidated response is based on the time of revalidation.
func NewEntry(status int, h http.Header, requestTime, responseTime time.Time, opts FreshnessOptions) Entry {
	cc := ParseCacheControl(h)
	lifetime, heuristic := freshnessLifetime(status, h, &cc, responseTime, opts)
	return Entry{
		ResponseTime:         responseTime,
		CorrectedInitialAge:  CorrectedInitialAge(h, requestTime, responseTime),
		Lifetime:             lifetime,
		Heuristic:            heuristic,
		StaleWhileRevalidate: cc.StaleWhileRevalidate.Duration(),
		StaleIfError:         cc.StaleIfError.Duration(),
		MustRevalidate:       cc.MustRevalidate || cc.ProxyRevalidate || cc.SMaxAge.Present,
		NoCache:              cc.NoCache,
	}
}

// Age returns current_age at now (RFC 9111 §4.2.3):
// corrected_initial_age + (now - response_time), saturated at 2^31 seconds.
func (e Entry) Age(now time.Time) time.Duration {
	return clampDelta(clampDelta(e.CorrectedInitialAge) + clampDelta(now.Sub(e.ResponseTime)))
}

// Fresh reports whether the response is fresh at now:
// freshness_lifetime > current_age (RFC 9111 §4.2).
func (e Entry) Fresh(now time.Time) bool {
	return e.Lifetime > e.Age(now)
}

// TTL returns the remaining freshness lifetime at now; it is negative once
// the response is stale. It is the Cache-Status ttl (RFC 9211 §2.4).
func (e Entry) TTL(now time.Time) time.Duration {
	return e.Lifetime - e.Age(now)
}
