package httpcache

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, time.November, 6, 8, 49, 37, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		in     string
		want   time.Time
		wantOK bool
	}{
		{"RFC 9110 §5.6.7 IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", want, true},
		{"RFC 9110 §5.6.7 rfc850-date", "Sunday, 06-Nov-94 08:49:37 GMT", want, true},
		{"RFC 9110 §5.6.7 asctime-date", "Sun Nov  6 08:49:37 1994", want, true},
		{"RFC 9110 §5.6.7 surrounding whitespace", "  Sun, 06 Nov 1994 08:49:37 GMT\t", want, true},
		{"RFC 9110 §5.6.7 lenient weekday case", "SUN, 06 Nov 1994 08:49:37 GMT", want, true},
		{"RFC 9110 §5.6.7 lenient month case", "Sun, 06 NOV 1994 08:49:37 GMT", want, true},
		{"RFC 9110 §5.6.7 lenient zone case", "Sun, 06 Nov 1994 08:49:37 gmt", want, true},
		{"RFC 5322 leap second", "Sat, 31 Dec 2016 23:59:60 GMT", time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"RFC 9110 §5.6.7 UTC zone invalid", "Sun, 06 Nov 1994 08:49:37 UTC", time.Time{}, false},
		{"RFC 9110 §5.6.7 numeric zone invalid", "Sun, 06 Nov 1994 08:49:37 +0000", time.Time{}, false},
		{"RFC 9110 §5.6.7 two-digit year in IMF-fixdate invalid", "Sun, 06 Nov 94 08:49:37 GMT", time.Time{}, false},
		{"RFC 9110 §5.6.7 missing comma invalid", "Sun 06 Nov 1994 08:49:37 GMT", time.Time{}, false},
		{"RFC 9110 §5.6.7 bad weekday invalid", "Xyz, 06 Nov 1994 08:49:37 GMT", time.Time{}, false},
		{"RFC 9110 §5.6.7 bad month invalid", "Sun, 06 Nox 1994 08:49:37 GMT", time.Time{}, false},
		{"RFC 9110 §5.6.7 Feb 30 invalid", "Sun, 30 Feb 1994 08:49:37 GMT", time.Time{}, false},
		{"RFC 9110 §5.6.7 hour 24 invalid", "Sun, 06 Nov 1994 24:49:37 GMT", time.Time{}, false},
		{"RFC 9110 §5.6.7 rfc850 with UTC invalid", "Sunday, 06-Nov-94 08:49:37 UTC", time.Time{}, false},
		{"RFC 9111 §5.3 \"0\" invalid", "0", time.Time{}, false},
		{"RFC 9111 §5.3 empty invalid", "", time.Time{}, false},
		{"RFC 9111 §5.3 -1 invalid", "-1", time.Time{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseHTTPDate(tt.in)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("parseHTTPDate(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
