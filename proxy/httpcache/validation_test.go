package httpcache

import (
	"net/http"
	"reflect"
	"testing"
)

func TestAddValidators(t *testing.T) {
	for _, tt := range []struct {
		name   string
		req    http.Header
		stored []http.Header
		want   http.Header
		wantOK bool
	}{
		{"§4.3.1 conditional-etag-strong-generate", hdr(), []http.Header{hdr("ETag", `"abcdef"`)}, hdr("If-None-Match", `"abcdef"`), true},
		{"§4.3.1 conditional-etag-weak-generate-weak", hdr(), []http.Header{hdr("ETag", `W/"abcdef"`)}, hdr("If-None-Match", `W/"abcdef"`), true},
		{"§4.3.1 Last-Modified → If-Modified-Since", hdr(), []http.Header{hdr("Last-Modified", date(-100))}, hdr("If-Modified-Since", date(-100)), true},
		{"§4.3.1 both validators", hdr(), []http.Header{hdr("ETag", `"a"`, "Last-Modified", date(-100))}, hdr("If-None-Match", `"a"`, "If-Modified-Since", date(-100)), true},
		{"§4.3.1 Date is not a validator", hdr(), []http.Header{hdr("Date", date(0))}, hdr(), false},
		{"§4.3.1 no validators: unconditional", hdr(), []http.Header{hdr()}, hdr(), false},
		{"§4.3.1 several stored responses: all ETags, no IMS", hdr(),
			[]http.Header{hdr("ETag", `"a"`, "Last-Modified", date(-100)), hdr("ETag", `W/"b"`), hdr("ETag", `"a"`)}, hdr("If-None-Match", `"a", W/"b"`), true},
		{"§4.3.1 client conditionals replaced", hdr("If-None-Match", `"client"`, "If-Modified-Since", date(-5), "X-Other", "kept"),
			[]http.Header{hdr("ETag", `"a"`)}, hdr("If-None-Match", `"a"`, "X-Other", "kept"), true},
		{"§4.3.1 unquoted ETag is invalid and not sent (conditional-etag-strong-generate-unquoted)", hdr(), []http.Header{hdr("ETag", "abcdef")}, hdr(), false},
		{"§4.3.1 invalid Last-Modified not sent", hdr(), []http.Header{hdr("Last-Modified", "yesterday")}, hdr(), false},
		{"§4.3.1 ETag with a comma inside", hdr(), []http.Header{hdr("ETag", `"a,b"`)}, hdr("If-None-Match", `"a,b"`), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.req.Clone()
			ok := AddValidators(got, tt.stored...)
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AddValidators() = %v, %v; want %v, %v", ok, got, tt.wantOK, tt.want)
			}
		})
	}
}

func TestClassifyValidation(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		want   ValidationOutcome
	}{
		{"§4.3.3 304", 304, ValidationNotModified},
		{"§4.3.3 full 200 replaces", 200, ValidationReplaced},
		{"§4.3.3 404 replaces", 404, ValidationReplaced},
		{"§4.3.3 501 is forwarded", 501, ValidationReplaced},
		{"§4.3.3 500 → stale-if-error path", 500, ValidationFailed},
		{"§4.3.3 503 → stale-if-error path", 503, ValidationFailed},
		{"§4.3.3 no response → stale-if-error path", 0, ValidationFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyValidation(tt.status); got != tt.want {
				t.Errorf("classifyValidation(%d) = %v; want %v", tt.status, got, tt.want)
			}
		})
	}
}

func TestSelectForUpdate(t *testing.T) {
	lm := date(-86400)
	for _, tt := range []struct {
		name       string
		nm         http.Header
		candidates []http.Header
		want       []int
	}{
		{"§4.3.4 strong ETag selects the matching response",
			hdr("ETag", `"b"`), []http.Header{hdr("ETag", `"a"`), hdr("ETag", `"b"`)}, []int{1}},
		{"§4.3.4 strong ETag selects all matching responses",
			hdr("ETag", `"b"`), []http.Header{hdr("ETag", `"b"`), hdr("ETag", `"a"`), hdr("ETag", `"b"`)}, []int{0, 2}},
		{"§4.3.4 strong ETag without a match: MUST NOT update",
			hdr("ETag", `"c"`), []http.Header{hdr("ETag", `"a"`), hdr("ETag", `"b"`)}, nil},
		{"§4.3.4 strong ETag does not strongly match a weak one",
			hdr("ETag", `"a"`), []http.Header{hdr("ETag", `W/"a"`)}, nil},
		{"§4.3.4 weak ETag: most recent match only",
			hdr("ETag", `W/"a"`), []http.Header{hdr("ETag", `W/"x"`), hdr("ETag", `W/"a"`), hdr("ETag", `"a"`)}, []int{1}},
		{"§4.3.4 weak ETag without a match",
			hdr("ETag", `W/"z"`), []http.Header{hdr("ETag", `W/"a"`)}, nil},
		{"RFC 9110 §8.8.2.2 strong Last-Modified (Date ≥ 1s later) selects all",
			hdr("Last-Modified", lm), []http.Header{hdr("Last-Modified", lm, "Date", date(0)), hdr("Last-Modified", lm, "Date", date(-10))}, []int{0, 1}},
		{"RFC 9110 §8.8.2.2 weak Last-Modified (no Date): most recent",
			hdr("Last-Modified", lm), []http.Header{hdr("Last-Modified", date(-5)), hdr("Last-Modified", lm), hdr("Last-Modified", lm)}, []int{1}},
		{"RFC 9110 §8.8.2.2 Last-Modified == Date is weak",
			hdr("Last-Modified", lm), []http.Header{hdr("Last-Modified", lm, "Date", lm), hdr("Last-Modified", lm, "Date", lm)}, []int{0}},
		{"§4.3.4 no validators, single candidate without validators",
			hdr(), []http.Header{hdr("Date", date(0))}, []int{0}},
		{"§4.3.4 no validators, candidate has a validator",
			hdr(), []http.Header{hdr("ETag", `"a"`)}, nil},
		{"§4.3.4 no validators, several candidates",
			hdr(), []http.Header{hdr(), hdr()}, nil},
		{"§4.3.4 no candidates", hdr("ETag", `"a"`), nil, nil},
		{"safeguard: matching Last-Modified but contradicting ETag",
			hdr("ETag", `"b"`, "Last-Modified", lm), []http.Header{hdr("ETag", `"a"`, "Last-Modified", lm, "Date", date(0))}, nil},
		{"safeguard: matching ETag but contradicting Last-Modified",
			hdr("ETag", `W/"a"`, "Last-Modified", lm), []http.Header{hdr("ETag", `W/"a"`, "Last-Modified", date(-5))}, nil},
		{"§4.3.4 strong ETag, candidate without ETag but strong Last-Modified",
			hdr("ETag", `"a"`, "Last-Modified", lm), []http.Header{hdr("Last-Modified", lm, "Date", date(0))}, []int{0}},
		{"§4.3.4 invalid ETag in the 304 is no validator",
			hdr("ETag", "abc"), []http.Header{hdr()}, []int{0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := SelectForUpdate(tt.nm, tt.candidates); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SelectForUpdate() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestFreshen(t *testing.T) {
	base := func(kv ...string) http.Header {
		return hdr(append([]string{"Cache-Control", "max-age=1", "Date", date(-100), "ETag", `"e"`}, kv...)...)
	}
	for _, tt := range []struct {
		name   string
		stored http.Header
		nm     http.Header
		want   http.Header
	}{
		{"§4.3.4 304-etag-use-stored-Test-Header: omitted fields kept",
			base("Test-Header", "A"), hdr("Cache-Control", "max-age=3600", "Date", date(0), "ETag", `"e"`),
			hdr("Cache-Control", "max-age=3600", "Date", date(0), "ETag", `"e"`, "Test-Header", "A")},
		{"§3.2 304-etag-update-response-Test-Header",
			base("Test-Header", "A"), hdr("Date", date(0), "Test-Header", "B"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "Test-Header", "B")},
		{"§3.2 304-lm-update-response-X-Content-Foo",
			base("X-Content-Foo", "A"), hdr("Date", date(0), "X-Content-Foo", "B"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "X-Content-Foo", "B")},
		{"§3.2 304-etag-update-response-Content-Type",
			base("Content-Type", "text/plain"), hdr("Date", date(0), "Content-Type", "text/plain;charset=utf-8"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "Content-Type", "text/plain;charset=utf-8")},
		{"§3.2 304-etag-update-response-Content-MD5 and Content-Location",
			base("Content-Md5", "a", "Content-Location", "/foo"), hdr("Date", date(0), "Content-MD5", "b", "Content-Location", "/bar"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "Content-Md5", "b", "Content-Location", "/bar")},
		{"§3.2 304-etag-update-response-Content-Security-Policy, X-Frame-Options, X-XSS-Protection, Clear-Site-Data",
			base("X-Frame-Options", "deny"), hdr("Date", date(0), "Content-Security-Policy", "default-src 'self'", "X-Frame-Options", "sameorigin", "X-XSS-Protection", "1; mode=block", "Clear-Site-Data", "cookies"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "Content-Security-Policy", "default-src 'self'", "X-Frame-Options", "sameorigin", "X-XSS-Protection", "1; mode=block", "Clear-Site-Data", "cookies")},
		{"§3.2 304-etag-update-response-Cache-Control and Expires",
			base("Expires", date(-99)), hdr("Date", date(0), "Cache-Control", "max-age=3600", "Expires", date(3600)),
			hdr("Cache-Control", "max-age=3600", "Date", date(0), "ETag", `"e"`, "Expires", date(3600))},
		{"§3.2 multi-line fields replaced as a whole",
			base("X-Multi", "a", "X-Multi", "b"), hdr("Date", date(0), "X-Multi", "c"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "X-Multi", "c")},
		{"§3.2 Content-Length, Content-Encoding and Content-Range are not updated",
			base("Content-Length", "10", "Content-Encoding", "gzip"), hdr("Date", date(0), "Content-Length", "0", "Content-Encoding", "br", "Content-Range", "bytes 0-1/2"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "Content-Length", "10", "Content-Encoding", "gzip")},
		{"§3.1 Set-Cookie from a 304 is never stored",
			base(), hdr("Date", date(0), "Set-Cookie", "a=c", "Set-Cookie2", "a=c"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`)},
		{"§3.1 hop-by-hop and Connection-listed fields are not stored",
			base(), hdr("Date", date(0), "Connection", "x-hop", "X-Hop", "1", "Keep-Alive", "timeout=5", "Proxy-Authenticate", "Basic"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`)},
		{"§5.2.2.7 a new private=\"...\" strips the stored field",
			base("X-User", "alice"), hdr("Date", date(0), "Cache-Control", `max-age=60, private="X-User"`),
			hdr("Cache-Control", `max-age=60, private="X-User"`, "Date", date(0), "ETag", `"e"`)},
		{"§4.2.3 stale Age is dropped when the 304 has none",
			base("Age", "50"), hdr("Date", date(0)),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`)},
		{"§4.2.3 Age from the 304 is kept",
			base("Age", "50"), hdr("Date", date(0), "Age", "3"),
			hdr("Cache-Control", "max-age=1", "Date", date(0), "ETag", `"e"`, "Age", "3")},
		{"RFC 9110 §6.6.1 missing Date becomes the receipt time",
			base(), hdr("ETag", `"e"`),
			hdr("Cache-Control", "max-age=1", "Date", date(5), "ETag", `"e"`)},
		{"§4.3.4 nil stored header", nil, hdr("Date", date(0)), hdr("Date", date(0))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before http.Header
			if tt.stored != nil {
				before = tt.stored.Clone()
			}
			got := Freshen(tt.stored, tt.nm, at(5))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Freshen() = %v; want %v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.stored, before) {
				t.Errorf("Freshen modified its input: %v; want %v", tt.stored, before)
			}
		})
	}
}

func TestHeadMatches(t *testing.T) {
	stored := hdr("ETag", `"a"`, "Last-Modified", date(-100), "Content-Length", "10")
	for _, tt := range []struct {
		name   string
		stored http.Header
		head   http.Header
		want   bool
	}{
		{"§4.3.5 validator the stored response lacks", hdr("Last-Modified", date(-100)), hdr("ETag", `"a"`), false},
		{"§4.3.5 matching ETag", stored, hdr("ETag", `"a"`), true},
		{"§4.3.5 matching ETag and Last-Modified and Content-Length", stored, hdr("ETag", `"a"`, "Last-Modified", date(-100), "Content-Length", "10"), true},
		{"§4.3.5 different ETag", stored, hdr("ETag", `"b"`), false},
		{"§4.3.5 different Last-Modified", stored, hdr("ETag", `"a"`, "Last-Modified", date(-50)), false},
		{"§4.3.5 different Content-Length", stored, hdr("ETag", `"a"`, "Content-Length", "11"), false},
		{"§4.3.5 other fields are irrelevant", stored, hdr("Last-Modified", date(-100), "ETag", `"a"`, "X", "y"), true},
		{"§4.3.5 no validator: not trusted", stored, hdr("Content-Length", "10"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := HeadMatches(tt.stored, tt.head); got != tt.want {
				t.Errorf("HeadMatches() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestNotModified(t *testing.T) {
	lm := date(-5000)
	for _, tt := range []struct {
		name         string
		method       string
		reqh         http.Header
		storedStatus int
		stored       http.Header
		want         bool
	}{
		{"§4.3.2 conditional-etag-strong-respond", "GET", hdr("If-None-Match", `"abcdef"`), 200, hdr("ETag", `"abcdef"`), true},
		{"§4.3.2 conditional-etag-weak-respond", "GET", hdr("If-None-Match", `W/"abcdef"`), 200, hdr("ETag", `W/"abcdef"`), true},
		{"RFC 9110 §13.1.2 weak comparison: strong request, weak stored", "GET", hdr("If-None-Match", `"abcdef"`), 200, hdr("ETag", `W/"abcdef"`), true},
		{"§4.3.2 conditional-etag-strong-respond-multiple-first", "GET", hdr("If-None-Match", `"abcdef", "1234", "5678"`), 200, hdr("ETag", `"abcdef"`), true},
		{"§4.3.2 conditional-etag-strong-respond-multiple-second", "GET", hdr("If-None-Match", `"1234", "abcdef", "5678"`), 200, hdr("ETag", `"abcdef"`), true},
		{"§4.3.2 conditional-etag-strong-respond-multiple-last", "GET", hdr("If-None-Match", `"1234", "5678", "abcdef"`), 200, hdr("ETag", `"abcdef"`), true},
		{"§4.3.2 list across field lines", "GET", hdr("If-None-Match", `"1"`, "If-None-Match", `"abcdef"`), 200, hdr("ETag", `"abcdef"`), true},
		{"§4.3.2 conditional-etag-strong-respond-obs-text", "GET", hdr("If-None-Match", "\"abcdef\xc3\xbc\""), 200, hdr("ETag", "\"abcdef\xc3\xbc\""), true},
		{"RFC 9110 §8.8.3 conditional-etag-quoted-respond-unquoted: invalid", "GET", hdr("If-None-Match", "abcdef"), 200, hdr("ETag", `"abcdef"`), false},
		{"RFC 9110 §8.8.3 conditional-etag-unquoted-respond-quoted: invalid", "GET", hdr("If-None-Match", `"abcdef"`), 200, hdr("ETag", "abcdef"), false},
		{"RFC 9110 §8.8.3 conditional-etag-weak-respond-lowercase: invalid", "GET", hdr("If-None-Match", `w/"abcdef"`), 200, hdr("ETag", `w/"abcdef"`), false},
		{"RFC 9110 §8.8.3 conditional-etag-weak-respond-omit-slash: invalid", "GET", hdr("If-None-Match", `W"abcdef"`), 200, hdr("ETag", `W"abcdef"`), false},
		{"RFC 9110 §8.8.3 malformed member skipped, later member matches", "GET", hdr("If-None-Match", `xyz, "abcdef"`), 200, hdr("ETag", `"abcdef"`), true},
		{"RFC 9110 §13.1.2 If-None-Match: *", "GET", hdr("If-None-Match", "*"), 200, hdr(), true},
		{"RFC 9110 §13.1.2 no match", "GET", hdr("If-None-Match", `"x"`), 200, hdr("ETag", `"abcdef"`), false},
		{"§4.3.2 conditional-etag-precedence: If-None-Match beats If-Modified-Since", "GET", hdr("If-None-Match", `"x"`, "If-Modified-Since", date(0)), 200, hdr("ETag", `"abcdef"`, "Last-Modified", lm), false},
		{"§4.3.2 If-Modified-Since after Last-Modified", "GET", hdr("If-Modified-Since", date(-1)), 200, hdr("Last-Modified", lm), true},
		{"§4.3.2 If-Modified-Since equal to Last-Modified", "GET", hdr("If-Modified-Since", lm), 200, hdr("Last-Modified", lm), true},
		{"§4.3.2 If-Modified-Since before Last-Modified", "GET", hdr("If-Modified-Since", date(-6000)), 200, hdr("Last-Modified", lm), false},
		{"§4.3.2 no Last-Modified: use Date", "GET", hdr("If-Modified-Since", date(0)), 200, hdr("Date", date(-10)), true},
		{"§4.3.2 no Last-Modified: Date later than IMS", "GET", hdr("If-Modified-Since", date(-20)), 200, hdr("Date", date(-10)), false},
		{"§4.3.2 no Last-Modified or Date: receipt time", "GET", hdr("If-Modified-Since", date(0)), 200, hdr(), true},
		{"RFC 9110 §13.1.3 invalid If-Modified-Since ignored", "GET", hdr("If-Modified-Since", "yesterday"), 200, hdr("Last-Modified", lm), false},
		{"RFC 9110 §13.1.3 more than one If-Modified-Since ignored", "GET", hdr("If-Modified-Since", date(0), "If-Modified-Since", date(0)), 200, hdr("Last-Modified", lm), false},
		{"RFC 9110 §13.1.3 HEAD", "HEAD", hdr("If-Modified-Since", date(0)), 200, hdr("Last-Modified", lm), true},
		{"RFC 9110 §13.1.3 only GET and HEAD", "POST", hdr("If-None-Match", "*"), 200, hdr(), false},
		{"§4.3.2 only stored 200 responses", "GET", hdr("If-None-Match", `"a"`), 404, hdr("ETag", `"a"`), false},
		{"§4.3.2 If-Match is not for caches", "GET", hdr("If-Match", `"x"`), 200, hdr("ETag", `"a"`), false},
		{"§4.3.2 If-Unmodified-Since is not for caches", "GET", hdr("If-Unmodified-Since", date(-9000)), 200, hdr("Last-Modified", lm), false},
		{"§4.3.2 unconditional request", "GET", hdr(), 200, hdr("ETag", `"a"`), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{Method: tt.method, Header: tt.reqh}
			if got := NotModified(req, tt.storedStatus, tt.stored, t0); got != tt.want {
				t.Errorf("NotModified() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestNotModifiedHeader(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stored http.Header
		want   http.Header
	}{
		{"RFC 9110 §15.4.5 conditional-304-etag: required fields copied, representation metadata dropped",
			hdr("Cache-Control", "max-age=60", "Content-Location", "/a", "Date", date(0), "ETag", `"a"`, "Expires", date(60), "Vary", "Accept",
				"Content-Type", "text/plain", "Content-Length", "10", "Last-Modified", date(-10)),
			hdr("Cache-Control", "max-age=60", "Content-Location", "/a", "Date", date(0), "ETag", `"a"`, "Expires", date(60), "Vary", "Accept")},
		{"RFC 9110 §15.4.5 Last-Modified when there is no ETag",
			hdr("Date", date(0), "Last-Modified", date(-10)),
			hdr("Date", date(0), "Last-Modified", date(-10))},
		{"RFC 9110 §15.4.5 empty", hdr(), hdr()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := NotModifiedHeader(tt.stored); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("NotModifiedHeader() = %v; want %v", got, tt.want)
			}
		})
	}
}
