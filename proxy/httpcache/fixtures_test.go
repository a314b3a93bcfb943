package httpcache

import (
	"net/http"
	"time"
)

// t0 is the fixed "now" of the tests: the instant the origin generated the
// response (Date) unless a test says otherwise.
var t0 = time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)

// at returns t0 shifted by a number of seconds.
func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// date formats t0+sec as an IMF-fixdate.
func date(sec int) string { return at(sec).Format(http.TimeFormat) }

// hdr builds a header from name/value pairs; repeated names become
// separate field lines, in order.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }

// valid and invalid build DeltaSeconds for expectations.
func valid(n int64) DeltaSeconds { return DeltaSeconds{Present: true, Valid: true, Seconds: n} }

var invalid = DeltaSeconds{Present: true}
