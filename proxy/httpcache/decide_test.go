package httpcache

import (
	"net/http"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	fresh := &Entry{ResponseTime: t0, Lifetime: secs(3600)}                                 // fresh for an hour
	aged := &Entry{ResponseTime: t0, CorrectedInitialAge: secs(1800), Lifetime: secs(3600)} // half-way
	stale := &Entry{ResponseTime: t0, Lifetime: secs(1)}                                    // stale after 1s
	swr := &Entry{ResponseTime: t0, Lifetime: secs(60), StaleWhileRevalidate: secs(30)}     // SWR window 60..90s
	swrMR := &Entry{ResponseTime: t0, Lifetime: secs(60), StaleWhileRevalidate: secs(30), MustRevalidate: true}
	noCache := &Entry{ResponseTime: t0, Lifetime: secs(10000), NoCache: true}
	mustRev := &Entry{ResponseTime: t0, Lifetime: secs(2), MustRevalidate: true}
	for _, tt := range []struct {
		name string
		reqh http.Header // request header; parsed with ParseRequestCacheControl
		e    *Entry
		now  int // seconds after t0
		want Action
	}{
		// Nothing stored.
		{"§4 nothing stored", hdr(), nil, 0, Miss},
		{"§5.2.1.7 ccreq-oic: only-if-cached with nothing stored", hdr("Cache-Control", "only-if-cached"), nil, 0, GatewayTimeout},

		// Freshness (§4.2; cache-tests cc-freshness.mjs).
		{"§4.2 freshness-max-age: fresh", hdr(), fresh, 10, ServeFresh},
		{"§4.2 fresh until lifetime > age fails", hdr(), fresh, 3599, ServeFresh},
		{"§4.2 age == lifetime is stale", hdr(), fresh, 3600, Revalidate},
		{"§4.2 freshness-max-age-age: Age beyond lifetime", hdr(), &Entry{ResponseTime: t0, CorrectedInitialAge: secs(15), Lifetime: secs(10)}, 0, Revalidate},
		{"§4.2 freshness-max-age-0", hdr(), &Entry{ResponseTime: t0}, 0, Revalidate},
		{"§4.2 freshness-max-age-stale", hdr(), stale, 2, Revalidate},

		// Request directives (§5.2.1; cache-tests cc-request.mjs).
		{"§5.2.1.1 ccreq-ma0", hdr("Cache-Control", "max-age=0"), fresh, 1, Revalidate},
		{"§5.2.1.1 max-age=0 at age 0 is satisfied", hdr("Cache-Control", "max-age=0"), fresh, 0, ServeFresh},
		{"§5.2.1.1 ccreq-ma1", hdr("Cache-Control", "max-age=1"), fresh, 2, Revalidate},
		{"§5.2.1.1 max-age satisfied", hdr("Cache-Control", "max-age=600"), fresh, 600, ServeFresh},
		{"§5.2.1.1 ccreq-magreaterage", hdr("Cache-Control", "max-age=600"), aged, 0, Revalidate},
		{"§5.2.1.1 invalid request max-age treated as unsatisfiable", hdr("Cache-Control", "max-age=abc"), fresh, 0, Revalidate},
		{"§5.2.1.2 ccreq-max-stale", hdr("Cache-Control", "max-stale=1000"), stale, 2, ServeStale},
		{"§5.2.1.2 ccreq-max-stale-age", hdr("Cache-Control", "max-stale=1000"), &Entry{ResponseTime: t0, CorrectedInitialAge: secs(2000), Lifetime: secs(1500)}, 0, ServeStale},
		{"§5.2.1.2 max-stale exceeded", hdr("Cache-Control", "max-stale=10"), stale, 12, Revalidate},
		{"§5.2.1.2 max-stale boundary inclusive", hdr("Cache-Control", "max-stale=10"), stale, 11, ServeStale},
		{"§5.2.1.2 max-stale without value: any staleness", hdr("Cache-Control", "max-stale"), stale, 86400 * 365, ServeStale},
		{"§5.2.1.2 invalid max-stale ignored", hdr("Cache-Control", "max-stale=x"), stale, 2, Revalidate},
		{"§5.2.1.1 max-age with max-stale allows stale within max-age", hdr("Cache-Control", "max-age=100, max-stale"), stale, 50, ServeStale},
		{"§5.2.1.1 max-age with max-stale, too old", hdr("Cache-Control", "max-age=100, max-stale"), stale, 101, Revalidate},
		{"§5.2.1.3 ccreq-min-fresh", hdr("Cache-Control", "min-fresh=2000"), &Entry{ResponseTime: t0, Lifetime: secs(1500)}, 0, Revalidate},
		{"§5.2.1.3 ccreq-min-fresh-age", hdr("Cache-Control", "min-fresh=1000"), &Entry{ResponseTime: t0, CorrectedInitialAge: secs(1000), Lifetime: secs(1500)}, 0, Revalidate},
		{"§5.2.1.3 min-fresh satisfied", hdr("Cache-Control", "min-fresh=1000"), fresh, 100, ServeFresh},
		{"§5.2.1.3 min-fresh boundary inclusive", hdr("Cache-Control", "min-fresh=1000"), fresh, 2600, ServeFresh},
		{"§5.2.1.3 invalid min-fresh treated as unsatisfiable", hdr("Cache-Control", "min-fresh=-1"), fresh, 0, Revalidate},
		{"§4.2.1 min-fresh with max-stale: most restrictive wins", hdr("Cache-Control", "min-fresh=0, max-stale"), stale, 5, Revalidate},
		{"§5.2.1.4 ccreq-no-cache", hdr("Cache-Control", "no-cache"), fresh, 0, Revalidate},
		{"§5.2.1.4 qualified no-cache in a request treated as no-cache", hdr("Cache-Control", `no-cache="x"`), fresh, 0, Revalidate},
		{"RFC 7234 §5.4 Pragma: no-cache", hdr("Pragma", "no-cache"), fresh, 0, Revalidate},
		{"RFC 7234 §5.4 Pragma ignored with Cache-Control", hdr("Pragma", "no-cache", "Cache-Control", "max-stale"), fresh, 0, ServeFresh},
		{"§5.2.1.5 request no-store does not prevent serving", hdr("Cache-Control", "no-store"), fresh, 0, ServeFresh},
		{"§5.2.1.7 only-if-cached with a fresh response", hdr("Cache-Control", "only-if-cached"), fresh, 0, ServeFresh},
		{"§5.2.1.7 only-if-cached with a stale response → 504", hdr("Cache-Control", "only-if-cached"), stale, 5, GatewayTimeout},
		{"§5.2.1.7 only-if-cached, max-stale: serve stale", hdr("Cache-Control", "only-if-cached, max-stale"), stale, 5, ServeStale},
		{"§5.2.1.7 only-if-cached and no-cache → 504", hdr("Cache-Control", "only-if-cached, no-cache"), fresh, 0, GatewayTimeout},
		{"RFC 5861 §3 only-if-cached within SWR window", hdr("Cache-Control", "only-if-cached"), swr, 70, ServeStaleRevalidate},

		// Response directives (§5.2.2; cache-tests cc-response.mjs, stale.mjs).
		{"§5.2.2.4 cc-resp-no-cache: fresh but must validate", hdr(), noCache, 0, Revalidate},
		{"§5.2.2.4 no-cache beats max-stale", hdr("Cache-Control", "max-stale"), noCache, 0, Revalidate},
		{"§5.2.2.2 cc-resp-must-revalidate-fresh", hdr(), mustRev, 1, ServeFresh},
		{"§5.2.2.2 cc-resp-must-revalidate-stale", hdr(), mustRev, 3, Revalidate},
		{"§4.2.4 stale-close-must-revalidate: max-stale cannot override", hdr("Cache-Control", "max-stale"), mustRev, 3, Revalidate},

		// stale-while-revalidate (RFC 5861 §3; cache-tests cc-stale.mjs).
		{"RFC 5861 §3 within window", hdr(), swr, 70, ServeStaleRevalidate},
		{"RFC 5861 §3 at the end of the window", hdr(), swr, 90, ServeStaleRevalidate},
		{"RFC 5861 §3 beyond window", hdr(), swr, 91, Revalidate},
		{"RFC 5861 §3 still fresh", hdr(), swr, 59, ServeFresh},
		{"RFC 5861 §3 stale-while-revalidate with max-age=0", hdr(), &Entry{ResponseTime: t0, StaleWhileRevalidate: secs(3600)}, 10, ServeStaleRevalidate},
		{"§4.2.4 must-revalidate forbids SWR", hdr(), swrMR, 70, Revalidate},
		{"§5.2.1.1 request max-age forbids SWR", hdr("Cache-Control", "max-age=1000"), swr, 70, Revalidate},
		{"§5.2.1.4 request no-cache forbids SWR", hdr("Cache-Control", "no-cache"), swr, 70, Revalidate},
		{"§5.2.1.2 max-stale within SWR: serve and refresh", hdr("Cache-Control", "max-stale=100"), swr, 70, ServeStaleRevalidate},
		{"§5.2.1.2 max-stale beyond SWR: serve stale only", hdr("Cache-Control", "max-stale=100"), swr, 150, ServeStale},
		{"§5.2.1.2 max-stale too small, SWR still applies", hdr("Cache-Control", "max-stale=1"), swr, 70, ServeStaleRevalidate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := ParseRequestCacheControl(tt.reqh)
			if got := Decide(req, tt.e, at(tt.now)); got != tt.want {
				t.Errorf("Decide() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestCanServeStaleOnError(t *testing.T) {
	for _, tt := range []struct {
		name string
		reqh http.Header
		e    Entry
		now  int
		want bool
	}{
		{"§4.2.4 stale-close: no permission, no stale", hdr(), Entry{ResponseTime: t0, Lifetime: secs(2)}, 10, false},
		{"§4.3.3 still fresh: serve it", hdr(), Entry{ResponseTime: t0, Lifetime: secs(60)}, 10, true},
		{"RFC 5861 §4 stale-sie-503: within response window", hdr(), Entry{ResponseTime: t0, Lifetime: secs(2), StaleIfError: secs(60)}, 10, true},
		{"RFC 5861 §4 at the end of the window", hdr(), Entry{ResponseTime: t0, Lifetime: secs(2), StaleIfError: secs(60)}, 62, true},
		{"RFC 5861 §4 stale-if-error-cc-response-expired", hdr(), Entry{ResponseTime: t0, StaleIfError: secs(1)}, 5, false},
		{"RFC 5861 §4 stale-if-error-cc-request", hdr("Cache-Control", "stale-if-error=3600"), Entry{ResponseTime: t0}, 10, true},
		{"RFC 5861 §4 stale-if-error-cc-request-expired", hdr("Cache-Control", "stale-if-error=1"), Entry{ResponseTime: t0}, 5, false},
		{"RFC 5861 §4 regardless of request freshness constraints", hdr("Cache-Control", "max-age=0, min-fresh=10"), Entry{ResponseTime: t0, StaleIfError: secs(60)}, 10, true},
		{"§5.2.1.2 request max-stale permits stale on error", hdr("Cache-Control", "max-stale=100"), Entry{ResponseTime: t0}, 10, true},
		{"§5.2.1.2 request max-stale exceeded", hdr("Cache-Control", "max-stale=5"), Entry{ResponseTime: t0}, 10, false},
		{"RFC 5861 §4 invalid request stale-if-error ignored", hdr("Cache-Control", "stale-if-error=x"), Entry{ResponseTime: t0}, 10, false},
		{"§4.2.4 stale-close-must-revalidate", hdr(), Entry{ResponseTime: t0, Lifetime: secs(2), StaleIfError: secs(60), MustRevalidate: true}, 10, false},
		{"§4.2.4 stale-close-s-maxage=2 (s-maxage implies proxy-revalidate)", hdr("Cache-Control", "stale-if-error=60"), NewEntry(200, hdr("Cache-Control", "s-maxage=2, stale-if-error=60"), t0, t0, FreshnessOptions{}), 10, false},
		{"§4.2.4 stale-close-proxy-revalidate", hdr(), NewEntry(200, hdr("Cache-Control", "max-age=2, proxy-revalidate, stale-if-error=60"), t0, t0, FreshnessOptions{}), 10, false},
		{"§4.2.4 stale-close-no-cache, even while fresh", hdr(), Entry{ResponseTime: t0, Lifetime: secs(60), NoCache: true, StaleIfError: secs(60)}, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := ParseRequestCacheControl(tt.reqh)
			if got := CanServeStaleOnError(req, tt.e, at(tt.now)); got != tt.want {
				t.Errorf("CanServeStaleOnError() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestIsUpstreamError(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		want   bool
	}{
		{"RFC 5861 §4 connection failure", 0, true},
		{"RFC 5861 §4 500", 500, true},
		{"RFC 5861 §4 502", 502, true},
		{"RFC 5861 §4 503", 503, true},
		{"RFC 5861 §4 504", 504, true},
		{"RFC 5861 §4 501 is a real answer", 501, false},
		{"RFC 5861 §4 505", 505, false},
		{"RFC 5861 §4 404", 404, false},
		{"RFC 5861 §4 200", 200, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUpstreamError(tt.status); got != tt.want {
				t.Errorf("IsUpstreamError(%d) = %v; want %v", tt.status, got, tt.want)
			}
		})
	}
}

func TestActionString(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    Action
		want string
	}{
		{"miss", Miss, "miss"},
		{"fresh", ServeFresh, "serve-fresh"},
		{"stale", ServeStale, "serve-stale"},
		{"swr", ServeStaleRevalidate, "serve-stale-revalidate"},
		{"revalidate", Revalidate, "revalidate"},
		{"504", GatewayTimeout, "gateway-timeout"},
		{"out of range", Action(99), "unknown"},
		{"negative", Action(-1), "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.String(); got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestLifecycle runs cache-tests scenarios end to end through the public
// API: store, decide, revalidate, freshen.
func TestLifecycle(t *testing.T) {
	for _, tt := range []struct {
		name       string
		respHeader http.Header
		reqHeader  http.Header
		after      time.Duration
		want       Action
	}{
		{"§4.2.3 other-age-update-max-age: fresh with Age", hdr("Cache-Control", "max-age=600", "Date", date(0), "Age", "30"), hdr(), 3 * time.Second, ServeFresh},
		{"§4.2.3 freshness-expires-age-fast-date", hdr("Date", date(10), "Expires", date(20), "Age", "15"), hdr(), 0, Revalidate},
		{"§4.2.3 freshness-expires-age-slow-date", hdr("Date", date(-10), "Expires", date(10), "Age", "25"), hdr(), 0, Revalidate},
		{"§5.3 freshness-expires-invalid-date still fresh", hdr("Date", "foo", "Expires", date(10)), hdr(), time.Second, ServeFresh},
		{"§5.2.2.4 cc-resp-no-cache-revalidate-fresh", hdr("Cache-Control", "max-age=10000, no-cache", "Expires", date(10000), "Date", date(0), "ETag", `"abcd"`), hdr(), time.Second, Revalidate},
		{"RFC 5861 §3 stale-while-revalidate", hdr("Cache-Control", "max-age=0, stale-while-revalidate=3600", "ETag", `"abc"`), hdr(), time.Second, ServeStaleRevalidate},
		{"§4.2.4 s-maxage forbids SWR in a shared cache", hdr("Cache-Control", "s-maxage=0, stale-while-revalidate=3600"), hdr(), time.Second, Revalidate},
		{"RFC 7234 §5.4 pragma-request-no-cache", hdr("Cache-Control", "max-age=3600"), hdr("Pragma", "no-cache"), 0, Revalidate},
		{"§5.2.1.4 ccreq-no-cache-lm", hdr("Cache-Control", "max-age=3600", "Last-Modified", date(-10000), "Date", date(0)), hdr("Cache-Control", "no-cache"), 0, Revalidate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEntry(http.StatusOK, tt.respHeader, t0, t0, FreshnessOptions{})
			if got := Decide(ParseRequestCacheControl(tt.reqHeader), &e, t0.Add(tt.after)); got != tt.want {
				t.Errorf("Decide() = %v; want %v (entry %+v)", got, tt.want, e)
			}
		})
	}
}
