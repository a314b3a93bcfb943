package httpcache

import (
	"net/http"
	"testing"
	"time"
)

func TestFreshnessLifetime(t *testing.T) {
	for _, tt := range []struct {
		name          string
		status        int // 200 when 0
		h             http.Header
		responseTime  time.Time // t0 when zero
		opts          FreshnessOptions
		want          time.Duration
		wantHeuristic bool
	}{
		// Explicit freshness (§4.2.1, §5.2.2.1, §5.2.2.10, §5.3).
		{name: "§4.2.1 freshness-none: nothing → 0", h: hdr(), want: 0},
		{name: "§5.2.2.1 freshness-max-age", h: hdr("Cache-Control", "max-age=3600"), want: secs(3600)},
		{name: "§5.2.2.1 freshness-max-age-0", h: hdr("Cache-Control", "max-age=0"), want: 0},
		{name: "§4.2.1 freshness-max-age-a100 → stale", h: hdr("Cache-Control", "max-age=a100"), want: 0},
		{name: "§4.2.1 freshness-max-age-100a → stale", h: hdr("Cache-Control", "max-age=100a"), want: 0},
		{name: "§4.2.1 freshness-max-age-negative → stale", h: hdr("Cache-Control", "max-age=-100"), want: 0},
		{name: "§4.2.1 freshness-max-age-space-before-equals → stale", h: hdr("Cache-Control", "max-age =100"), want: 0},
		{name: "§4.2.1 freshness-max-age-space-after-equals → stale", h: hdr("Cache-Control", "max-age= 100"), want: 0},
		{name: "§4.2.1 freshness-max-age-single-quoted → stale", h: hdr("Cache-Control", "max-age='3600'"), want: 0},
		{name: "§5.2 freshness-max-age-quoted", h: hdr("Cache-Control", `max-age="3600"`), want: secs(3600)},
		{name: "§4.2.1 freshness-max-age-ignore-quoted", h: hdr("Cache-Control", `extension="max-age=100", max-age=1`), want: secs(1)},
		{name: "§4.2.1 conflicting max-age → stale", h: hdr("Cache-Control", "max-age=1800", "Cache-Control", "max-age=1"), want: 0},
		{name: "§1.2.2 freshness-max-age-max", h: hdr("Cache-Control", "max-age=2147483648"), want: secs(MaxDeltaSeconds)},
		{name: "§1.2.2 freshness-max-age-max-plus", h: hdr("Cache-Control", "max-age=99999999999"), want: secs(MaxDeltaSeconds)},
		{name: "§5.3 freshness-max-age-expires: max-age beats past Expires", h: hdr("Cache-Control", "max-age=3600", "Expires", date(-10000), "Date", date(0)), want: secs(3600)},
		{name: "§5.3 freshness-max-age-expires-invalid", h: hdr("Cache-Control", "max-age=3600", "Expires", "0", "Date", date(0)), want: secs(3600)},
		{name: "§5.3 freshness-max-age-0-expires: max-age=0 beats future Expires", h: hdr("Expires", date(10000), "Cache-Control", "max-age=0", "Date", date(0)), want: 0},
		{name: "§5.3 invalid max-age still overrides Expires", h: hdr("Cache-Control", "max-age=x", "Expires", date(10000), "Date", date(0)), want: 0},
		{name: "§5.2.2.10 freshness-s-maxage-shared", h: hdr("Cache-Control", "s-maxage=3600"), want: secs(3600)},
		{name: "§5.2.2.10 freshness-max-age-s-maxage-shared-longer", h: hdr("Cache-Control", "max-age=3600, s-maxage=1"), want: secs(1)},
		{name: "§5.2.2.10 freshness-max-age-s-maxage-shared-longer-reversed", h: hdr("Cache-Control", "s-maxage=1, max-age=3600"), want: secs(1)},
		{name: "§5.2.2.10 freshness-max-age-s-maxage-shared-longer-multiple", h: hdr("Cache-Control", "max-age=3600", "Cache-Control", "s-maxage=1"), want: secs(1)},
		{name: "§5.2.2.10 freshness-max-age-s-maxage-shared-shorter", h: hdr("Cache-Control", "max-age=1, s-maxage=3600"), want: secs(3600)},
		{name: "§5.2.2.10 s-maxage beats Expires", h: hdr("Cache-Control", "s-maxage=60", "Expires", date(3600), "Date", date(0)), want: secs(60)},
		{name: "§4.2.1 invalid s-maxage → stale even with max-age", h: hdr("Cache-Control", "s-maxage=x, max-age=60"), want: 0},
		{name: "§5.2.2.4 no-cache does not change the lifetime", h: hdr("Cache-Control", "max-age=10000, no-cache"), want: secs(10000)},

		// Expires (§5.3; cache-tests expires-freshness.mjs, expires-parse.mjs).
		{name: "§5.3 freshness-expires-future", h: hdr("Expires", date(30*86400), "Date", date(0)), want: secs(30 * 86400)},
		{name: "§5.3 freshness-expires-past", h: hdr("Expires", date(-30*86400), "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-present (Expires == Date)", h: hdr("Expires", date(0), "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-old-date", h: hdr("Expires", date(300), "Date", date(400)), want: 0},
		{name: "§5.3 freshness-expires-invalid (0)", h: hdr("Expires", "0", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-utc", h: hdr("Expires", "Thu, 18 Aug 2050 02:01:18 UTC", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-2-digit-year", h: hdr("Expires", "Thu, 18 Aug 50 02:01:18 GMT", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-no-comma", h: hdr("Expires", "Thu 18 Aug 2050 02:01:18 GMT", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-multiple-spaces", h: hdr("Expires", "Thu, 18  Aug  2050 02:01:18 GMT", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-date-dashes", h: hdr("Expires", "Thu, 18-Aug-2050 02:01:18 GMT", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-time-periods", h: hdr("Expires", "Thu, 18 Aug 2050 02.01.18 GMT", "Date", date(0)), want: 0},
		{name: "§5.3 freshness-expires-invalid-1-digit-hour", h: hdr("Expires", "Thu, 18 Aug 2050 2:01:18 GMT", "Date", date(0)), want: 0},
		{name: "RFC 9110 §5.6.7 freshness-expires-wrong-case-weekday accepted", h: hdr("Expires", "THU, 18 Aug 2050 02:01:18 GMT", "Date", "Wed, 17 Aug 2050 02:01:18 GMT"), want: secs(86400)},
		{name: "RFC 9110 §5.6.7 freshness-expires-wrong-case-month accepted", h: hdr("Expires", "Thu, 18 AUG 2050 02:01:18 GMT", "Date", "Wed, 17 Aug 2050 02:01:18 GMT"), want: secs(86400)},
		{name: "RFC 9110 §5.6.7 freshness-expires-wrong-case-tz accepted", h: hdr("Expires", "Thu, 18 Aug 2050 02:01:18 gMT", "Date", "Wed, 17 Aug 2050 02:01:18 GMT"), want: secs(86400)},
		{name: "RFC 9110 §5.6.7 rfc850 Expires", h: hdr("Expires", "Thursday, 18-Aug-50 02:01:18 GMT", "Date", "Wed, 17 Aug 2050 02:01:18 GMT"), want: secs(86400)},
		{name: "RFC 9110 §5.6.7 asctime Expires", h: hdr("Expires", "Thu Aug 18 02:01:18 2050", "Date", "Wed, 17 Aug 2050 02:01:18 GMT"), want: secs(86400)},
		{name: "RFC 9110 §6.6.1 freshness-expires-invalid-date: receipt time as Date", h: hdr("Date", "foo", "Expires", date(10)), want: secs(10)},
		{name: "RFC 9110 §6.6.1 missing Date: receipt time as Date", h: hdr("Expires", date(100)), responseTime: at(40), want: secs(60)},
		{name: "§5.3 Expires uses Date, not receipt time (clock skew)", h: hdr("Expires", date(100), "Date", date(-50)), responseTime: at(500), want: secs(150)},
		{name: "§4.2.1 conflicting Expires lines → stale", h: hdr("Expires", date(100), "Expires", date(200), "Date", date(0)), want: 0},
		{name: "§4.2.1 identical Expires lines", h: hdr("Expires", date(100), "Expires", date(100), "Date", date(0)), want: secs(100)},
		{name: "§1.2.2 Expires far in the future saturates", h: hdr("Expires", "Fri, 31 Dec 9999 23:59:59 GMT", "Date", date(0)), want: secs(MaxDeltaSeconds)},

		// Heuristics (§4.2.2; cache-tests heuristic-freshness.mjs).
		{name: "§4.2.2 10% of Date - Last-Modified", h: hdr("Last-Modified", date(-10000), "Date", date(0)), want: secs(1000), wantHeuristic: true},
		{name: "§4.2.2 capped at 24h by default", h: hdr("Last-Modified", date(-30*86400), "Date", date(0)), want: 24 * time.Hour, wantHeuristic: true},
		{name: "§4.2.2 custom fraction and cap", h: hdr("Last-Modified", date(-10000), "Date", date(0)), opts: FreshnessOptions{HeuristicFraction: 0.5, HeuristicMax: time.Hour}, want: time.Hour, wantHeuristic: true},
		{name: "§4.2.2 huge fraction capped", h: hdr("Last-Modified", date(-10000), "Date", date(0)), opts: FreshnessOptions{HeuristicFraction: 1e300}, want: 24 * time.Hour, wantHeuristic: true},
		{name: "§4.2.2 heuristics disabled", h: hdr("Last-Modified", date(-10000), "Date", date(0)), opts: FreshnessOptions{HeuristicFraction: -1}, want: 0},
		{name: "§4.2.2 truncated to whole seconds", h: hdr("Last-Modified", date(-15), "Date", date(0)), want: secs(1), wantHeuristic: true},
		{name: "§4.2.2 no Last-Modified, no heuristic", h: hdr("Date", date(0)), want: 0},
		{name: "§4.2.2 invalid Last-Modified, no heuristic", h: hdr("Last-Modified", "yesterday", "Date", date(0)), want: 0},
		{name: "§4.2.2 Last-Modified after Date, no heuristic", h: hdr("Last-Modified", date(100), "Date", date(0)), want: 0},
		{name: "§4.2.2 missing Date uses receipt time", h: hdr("Last-Modified", date(-10000)), responseTime: at(0), want: secs(1000), wantHeuristic: true},
		{name: "§4.2.2 heuristic-404-cached", status: 404, h: hdr("Last-Modified", date(-86400), "Date", date(0)), want: secs(8640), wantHeuristic: true},
		{name: "§4.2.2 heuristic-501-cached", status: 501, h: hdr("Last-Modified", date(-86400), "Date", date(0)), want: secs(8640), wantHeuristic: true},
		{name: "§4.2.2 heuristic-201-not_cached", status: 201, h: hdr("Last-Modified", date(-86400), "Date", date(0)), want: 0},
		{name: "§4.2.2 heuristic-403-not_cached", status: 403, h: hdr("Last-Modified", date(-86400), "Date", date(0)), want: 0},
		{name: "§4.2.2 heuristic-502-not_cached", status: 502, h: hdr("Last-Modified", date(-86400), "Date", date(0)), want: 0},
		{name: "§4.2.2 heuristic-599-not_cached without public", status: 599, h: hdr("Last-Modified", date(-86400), "Date", date(0)), want: 0},
		{name: "§4.2.2 heuristic-599-cached with public", status: 599, h: hdr("Cache-Control", "public", "Last-Modified", date(-86400), "Date", date(0)), want: secs(8640), wantHeuristic: true},
		{name: "§4.2.2 no heuristic when Expires is present (even invalid)", h: hdr("Expires", "0", "Last-Modified", date(-86400), "Date", date(0)), want: 0},
		{name: "§4.2.2 no heuristic when max-age is invalid", h: hdr("Cache-Control", "max-age=x", "Last-Modified", date(-86400), "Date", date(0)), want: 0},
		{name: "§4.2.2 pragma-response-no-cache-heuristic: Pragma ignored", h: hdr("Pragma", "no-cache", "Last-Modified", date(-10000), "Date", date(0)), want: secs(1000), wantHeuristic: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			rt := tt.responseTime
			if rt.IsZero() {
				rt = t0
			}
			got, heuristic := lifetimeOf(status, tt.h, rt, tt.opts)
			if got != tt.want || heuristic != tt.wantHeuristic {
				t.Errorf("freshnessLifetime() = %v, %v; want %v, %v", got, heuristic, tt.want, tt.wantHeuristic)
			}
		})
	}
}

func TestCorrectedInitialAge(t *testing.T) {
	for _, tt := range []struct {
		name         string
		h            http.Header
		requestTime  time.Time
		responseTime time.Time
		want         time.Duration
	}{
		{"§4.2.3 no Date, no Age, no delay", hdr(), t0, t0, 0},
		{"§4.2.3 response_delay counts", hdr("Date", date(0)), at(-2), t0, secs(2)},
		{"§4.2.3 apparent_age from Date", hdr("Date", date(-10)), at(-1), t0, secs(10)},
		{"§4.2.3 Date in the future: apparent_age 0", hdr("Date", date(100)), t0, t0, 0},
		{"§4.2.3 Age plus response_delay", hdr("Date", date(0), "Age", "30"), at(-3), t0, secs(33)},
		{"§4.2.3 max of apparent and corrected age", hdr("Date", date(-100), "Age", "30"), at(-3), t0, secs(100)},
		{"§4.2.3 freshness-expires-age-slow-date", hdr("Date", date(-10), "Expires", date(10), "Age", "25"), t0, t0, secs(25)},
		{"§4.2.3 invalid Date: apparent_age 0", hdr("Date", "foo", "Age", "5"), t0, t0, secs(5)},
		{"§4.2.3 clock step: negative response_delay is 0", hdr("Date", date(0)), at(10), t0, 0},
		{"§5.1 age-parse-nonnumeric ignored", hdr("Date", date(0), "Age", "abc"), t0, t0, 0},
		{"§5.1 age-parse-negative ignored", hdr("Date", date(0), "Age", "-7200"), t0, t0, 0},
		{"§5.1 age-parse-float ignored", hdr("Date", date(0), "Age", "7200.0"), t0, t0, 0},
		{"§5.1 age-parse-suffix: first member", hdr("Date", date(0), "Age", "7200,0"), t0, t0, secs(7200)},
		{"§5.1 age-parse-suffix-twoline: first member", hdr("Date", date(0), "Age", "7200", "Age", "0"), t0, t0, secs(7200)},
		{"§5.1 age-parse-prefix: first member", hdr("Date", date(0), "Age", "0,7200"), t0, t0, 0},
		{"§5.1 age-parse-prefix-twoline: first member", hdr("Date", date(0), "Age", "0", "Age", "7200"), t0, t0, 0},
		{"§5.1 age-parse-dup-0", hdr("Date", date(0), "Age", "0, 0"), t0, t0, 0},
		{"§5.1 age-parse-dup-old", hdr("Date", date(0), "Age", "7200, 7200"), t0, t0, secs(7200)},
		{"§5.1 age-parse-dup-old-twoline", hdr("Date", date(0), "Age", "7200", "Age", "7200"), t0, t0, secs(7200)},
		{"§5.1 OWS around Age", hdr("Age", " 60 "), t0, t0, secs(60)},
		{"§5.1 empty Age ignored", hdr("Age", ""), t0, t0, 0},
		{"§1.2.2 Age overflow saturates", hdr("Age", "99999999999999999999"), t0, t0, secs(MaxDeltaSeconds)},
		{"§1.2.2 Age + delay overflow saturates", hdr("Age", "2147483648"), at(-10), t0, secs(MaxDeltaSeconds)},
		{"§4.2.3 ancient Date saturates", hdr("Date", "Sun, 06 Nov 1904 08:49:37 GMT"), t0, t0, secs(MaxDeltaSeconds)},
		{"§1.2.2 zero request_time: Age + delay must not overflow", hdr("Age", "2147483648"), time.Time{}, t0, secs(MaxDeltaSeconds)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := CorrectedInitialAge(tt.h, tt.requestTime, tt.responseTime); got != tt.want {
				t.Errorf("CorrectedInitialAge() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestFormatAge(t *testing.T) {
	for _, tt := range []struct {
		name string
		age  time.Duration
		want string
	}{
		{"§5.1 zero", 0, "0"},
		{"§5.1 whole seconds", secs(42), "42"},
		{"§5.1 truncated", 42*time.Second + 999*time.Millisecond, "42"},
		{"§5.1 negative clamps to 0", -time.Second, "0"},
		{"§1.2.2 saturates at 2^31", secs(MaxDeltaSeconds) + time.Hour, "2147483648"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatAge(tt.age); got != tt.want {
				t.Errorf("FormatAge(%v) = %q; want %q", tt.age, got, tt.want)
			}
		})
	}
}

func TestNewEntry(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
		want Entry
	}{
		{"§4.2.1 max-age with Age", hdr("Cache-Control", "max-age=600", "Date", date(0), "Age", "30"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(31), Lifetime: secs(600)}},
		{"RFC 5861 windows", hdr("Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=600"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60), StaleWhileRevalidate: secs(30), StaleIfError: secs(600)}},
		{"RFC 5861 invalid windows are ignored", hdr("Cache-Control", "max-age=60, stale-while-revalidate=x, stale-if-error=1, stale-if-error=2"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60)}},
		{"§5.2.2.2 must-revalidate", hdr("Cache-Control", "max-age=60, must-revalidate"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60), MustRevalidate: true}},
		{"§5.2.2.8 proxy-revalidate", hdr("Cache-Control", "max-age=60, proxy-revalidate"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60), MustRevalidate: true}},
		{"§5.2.2.10 s-maxage implies proxy-revalidate", hdr("Cache-Control", "s-maxage=60, stale-while-revalidate=30"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60), StaleWhileRevalidate: secs(30), MustRevalidate: true}},
		{"§5.2.2.4 no-cache", hdr("Cache-Control", "no-cache, max-age=60"),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60), NoCache: true}},
		{"§5.2.2.4 qualified no-cache does not force revalidation", hdr("Cache-Control", `no-cache="X", max-age=60`),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(60)}},
		{"§4.2.2 heuristic", hdr("Last-Modified", date(-10000), "Date", date(0)),
			Entry{ResponseTime: t0, CorrectedInitialAge: secs(1), Lifetime: secs(1000), Heuristic: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewEntry(http.StatusOK, tt.h, at(-1), t0, FreshnessOptions{}); got != tt.want {
				t.Errorf("NewEntry() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestEntryAge(t *testing.T) {
	e := Entry{ResponseTime: t0, CorrectedInitialAge: secs(10), Lifetime: secs(60)}
	for _, tt := range []struct {
		name      string
		e         Entry
		now       time.Time
		wantAge   time.Duration
		wantTTL   time.Duration
		wantFresh bool
	}{
		{"§4.2.3 at receipt: current_age = corrected_initial_age", e, t0, secs(10), secs(50), true},
		{"§4.2.3 resident_time adds", e, at(20), secs(30), secs(30), true},
		{"§4.2 fresh iff lifetime > age: equal is stale", e, at(50), secs(60), 0, false},
		{"§4.2 stale: negative TTL", e, at(65), secs(75), secs(-15), false},
		{"§4.2.3 clock went backwards: resident_time 0", e, at(-30), secs(10), secs(50), true},
		{"§1.2.2 saturates", Entry{ResponseTime: t0, CorrectedInitialAge: secs(MaxDeltaSeconds)}, at(1000), secs(MaxDeltaSeconds), -secs(MaxDeltaSeconds), false},
		{"§4.2 zero lifetime is never fresh", Entry{ResponseTime: t0}, t0, 0, 0, false},
		{"§1.2.2 zero ResponseTime must not overflow", Entry{CorrectedInitialAge: secs(MaxDeltaSeconds), Lifetime: secs(60)}, t0, secs(MaxDeltaSeconds), secs(60) - secs(MaxDeltaSeconds), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Age(tt.now); got != tt.wantAge {
				t.Errorf("Age() = %v; want %v", got, tt.wantAge)
			}
			if got := tt.e.TTL(tt.now); got != tt.wantTTL {
				t.Errorf("TTL() = %v; want %v", got, tt.wantTTL)
			}
			if got := tt.e.Fresh(tt.now); got != tt.wantFresh {
				t.Errorf("Fresh() = %v; want %v", got, tt.wantFresh)
			}
		})
	}
}

// lifetimeOf is freshnessLifetime on a header whose Cache-Control is not
// parsed yet.
func lifetimeOf(status int, h http.Header, responseTime time.Time, opts FreshnessOptions) (time.Duration, bool) {
	cc := ParseCacheControl(h)
	return freshnessLifetime(status, h, &cc, responseTime, opts)
}
