package httpcache

import (
	"net/http"
	"reflect"
	"testing"
)

func TestStorable(t *testing.T) {
	type row struct {
		name       string
		method     string // GET when empty
		reqHeader  http.Header
		status     int // 200 when 0
		respHeader http.Header
		opts       StoreOptions
		wantOK     bool
		wantReason Reason
	}
	rows := []row{
		// Method (§3).
		{name: "§3 GET with max-age", respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 HEAD is answered from a stored GET, not stored", method: "HEAD", respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonMethod},
		{name: "§3 POST", method: "POST", respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonMethod},
		{name: "§3 unknown method", method: "M-SEARCH", respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonMethod},

		// Status (§3; cache-tests status.mjs: explicit freshness makes any final status storable).
		{name: "§3 1xx is not final", status: 100, respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonStatus},
		{name: "§3 304 is not stored", status: 304, respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonStatus},
		{name: "§3.1 407 (Proxy-Authenticate cannot be stored)", status: 407, respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonStatus},
		{name: "§3 out-of-range status", status: 600, respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonStatus},
		{name: "§3.3 206 not supported", status: 206, respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonPartial},
		{name: "§3 status-203-fresh", status: 203, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-204-fresh", status: 204, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-299-fresh", status: 299, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-301-fresh", status: 301, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-302-fresh", status: 302, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-303-fresh", status: 303, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-307-fresh", status: 307, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-308-fresh", status: 308, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-400-fresh", status: 400, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-404-fresh", status: 404, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-410-fresh", status: 410, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-499-fresh", status: 499, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-500-fresh", status: 500, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-502-fresh", status: 502, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-503-fresh", status: 503, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-504-fresh", status: 504, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 status-599-fresh", status: 599, respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},
		{name: "§3 Expires makes it storable", respHeader: hdr("Expires", date(3600), "Date", date(0)), wantOK: true},
		{name: "§3 invalid Expires still makes it storable (stale)", status: 302, respHeader: hdr("Expires", "0"), wantOK: true},
		{name: "§3 s-maxage makes it storable", status: 302, respHeader: hdr("Cache-Control", "s-maxage=60"), wantOK: true},
		{name: "§3 invalid max-age still storable (stale)", status: 302, respHeader: hdr("Cache-Control", "max-age=abc"), wantOK: true},

		// Range: a 200 is complete even when the request asked for a part.
		{name: "§3.3 a 200 to a range request is complete and stored", reqHeader: hdr("Range", "bytes=0-10"), respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},

		// no-store (§5.2.1.5, §5.2.2.5) and must-understand (§5.2.2.3).
		{name: "§5.2.2.5 cc-resp-no-store", respHeader: hdr("Cache-Control", "no-store"), wantReason: ReasonNoStore},
		{name: "§5.2.2.5 cc-resp-no-store-fresh", respHeader: hdr("Cache-Control", "max-age=10000, no-store", "Expires", date(10000), "Date", date(0)), wantReason: ReasonNoStore},
		{name: "§5.2.2.5 no-store on a second line", respHeader: hdr("Cache-Control", "max-age=10000", "Cache-Control", "NO-STORE"), wantReason: ReasonNoStore},
		{name: "§5.2.1.5 request no-store", reqHeader: hdr("Cache-Control", "no-store"), respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonNoStore},
		{name: "§5.2.2.3 must-understand overrides no-store for an understood status", respHeader: hdr("Cache-Control", "must-understand, no-store, max-age=60"), wantOK: true},
		{name: "§5.2.2.3 must-understand with an unknown status", status: 299, respHeader: hdr("Cache-Control", "must-understand, no-store, max-age=60"), wantReason: ReasonMustUnderstand},
		{name: "§5.2.2.3 must-understand does not override request no-store", reqHeader: hdr("Cache-Control", "no-store"), respHeader: hdr("Cache-Control", "must-understand, no-store, max-age=60"), wantReason: ReasonNoStore},
		{name: "§5.2.2.3 malformed must-understand does not override no-store", respHeader: hdr("Cache-Control", "must-understand=1, no-store, max-age=60"), wantReason: ReasonNoStore},

		// private (§5.2.2.7) and public (§5.2.2.9).
		{name: "§5.2.2.7 cc-resp-private-shared", respHeader: hdr("Cache-Control", "private, max-age=3600"), wantReason: ReasonPrivate},
		{name: "§5.2.2.7 private wins over public", respHeader: hdr("Cache-Control", "public, private, max-age=3600"), wantReason: ReasonPrivate},
		{name: "§5.2.2.7 qualified private is storable (fields stripped)", respHeader: hdr("Cache-Control", `private="X-User", max-age=3600`, "X-User", "alice"), wantOK: true},
		{name: "§5.2.2.7 empty qualified private is unqualified", respHeader: hdr("Cache-Control", `private="", max-age=3600`), wantReason: ReasonPrivate},
		{name: "§5.2.2.9 public allows an unknown status (heuristic-599-cached)", status: 599, respHeader: hdr("Cache-Control", "public", "Last-Modified", date(-86400), "Date", date(0)), wantOK: true},
		{name: "§5.2.2.9 public alone on a 302", status: 302, respHeader: hdr("Cache-Control", "public"), wantOK: true},

		// Authorization (§3.5; cache-tests authorization.mjs).
		{name: "§3.5 other-authorization", reqHeader: hdr("Authorization", "FOO"), respHeader: hdr("Expires", date(30*86400), "Date", date(0)), wantReason: ReasonAuthorization},
		{name: "§3.5 other-authorization-public", reqHeader: hdr("Authorization", "FOO"), respHeader: hdr("Cache-Control", "max-age=3600, public"), wantOK: true},
		{name: "§3.5 other-authorization-must-revalidate", reqHeader: hdr("Authorization", "FOO"), respHeader: hdr("Cache-Control", "max-age=3600, must-revalidate"), wantOK: true},
		{name: "§3.5 other-authorization-smaxage", reqHeader: hdr("Authorization", "FOO"), respHeader: hdr("Cache-Control", "s-maxage=3600"), wantOK: true},
		{name: "§3.5 proxy-revalidate does not allow sharing", reqHeader: hdr("Authorization", "FOO"), respHeader: hdr("Cache-Control", "max-age=3600, proxy-revalidate"), wantReason: ReasonAuthorization},
		{name: "§3.5 empty Authorization still counts", reqHeader: hdr("Authorization", ""), respHeader: hdr("Cache-Control", "max-age=3600"), wantReason: ReasonAuthorization},

		// Vary (§4.1; cache-tests vary-parse.mjs).
		{name: "§4.1 vary-syntax-star", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "*"), wantReason: ReasonVaryStar},
		{name: "§4.1 vary-syntax-star-star", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "*, *"), wantReason: ReasonVaryStar},
		{name: "§4.1 vary-syntax-star-star-lines", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "*", "Vary", "*"), wantReason: ReasonVaryStar},
		{name: "§4.1 vary-syntax-empty-star", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", ", *"), wantReason: ReasonVaryStar},
		{name: "§4.1 vary-syntax-empty-star-lines", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "", "Vary", "*"), wantReason: ReasonVaryStar},
		{name: "§4.1 vary-syntax-star-foo", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "*, Foo"), wantReason: ReasonVaryStar},
		{name: "§4.1 vary-syntax-foo-star", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "Foo, *"), wantReason: ReasonVaryStar},
		{name: "§4.1 Vary with field names is storable", respHeader: hdr("Cache-Control", "max-age=3600", "Vary", "Accept-Encoding, Foo"), wantOK: true},

		// Set-Cookie (multi-tenant policy).
		{name: "policy Set-Cookie not stored by default", respHeader: hdr("Cache-Control", "max-age=3600", "Set-Cookie", "a=b"), wantReason: ReasonSetCookie},
		{name: "policy Set-Cookie2 not stored by default", respHeader: hdr("Cache-Control", "max-age=3600", "Set-Cookie2", "a=b"), wantReason: ReasonSetCookie},
		{name: "policy AllowSetCookie stores (other-set-cookie)", respHeader: hdr("Cache-Control", "max-age=3600", "Set-Cookie", "a=b"), opts: StoreOptions{AllowSetCookie: true}, wantOK: true},
		{name: "§5.2.2.7 Set-Cookie named in private=\"...\" is stripped, so storable", respHeader: hdr("Cache-Control", `max-age=3600, private="Set-Cookie"`, "Set-Cookie", "a=b"), wantOK: true},
		{name: "§5.2.2.4 Set-Cookie named in no-cache=\"...\" is stripped, so storable", respHeader: hdr("Cache-Control", `max-age=3600, no-cache="set-cookie"`, "Set-Cookie", "a=b"), wantOK: true},
		{name: "other-cookie request Cookie does not prevent storage", reqHeader: hdr("Cookie", "a=b"), respHeader: hdr("Cache-Control", "max-age=3600"), wantOK: true},

		// no-cache (§5.2.2.4): storable, but only if otherwise allowed.
		{name: "§5.2.2.4 cc-resp-no-cache-revalidate", respHeader: hdr("Cache-Control", "no-cache", "ETag", `"abcd"`), wantOK: true},
		{name: "§3 no-cache alone does not make a 302 storable", status: 302, respHeader: hdr("Cache-Control", "no-cache"), wantReason: ReasonNoFreshness},
		{name: "RFC 5861 stale extensions alone do not make a 302 storable", status: 302, respHeader: hdr("Cache-Control", "stale-while-revalidate=60"), wantReason: ReasonNoFreshness},
	}
	// Heuristic cacheability (§4.2.2; cache-tests heuristic-freshness.mjs).
	for _, h := range []struct {
		status int
		ok     bool
	}{
		{200, true}, {201, false}, {202, false}, {203, true}, {204, true}, {300, true}, {301, true}, {302, false},
		{307, false}, {308, true}, {403, false}, {404, true}, {405, true}, {410, true}, {414, true}, {501, true},
		{502, false}, {503, false}, {504, false}, {599, false},
	} {
		r := row{
			name:       "§4.2.2 heuristic status " + http.StatusText(h.status),
			status:     h.status,
			respHeader: hdr("Last-Modified", date(-86400), "Date", date(0)),
			wantOK:     h.ok,
		}
		if !h.ok {
			r.wantReason = ReasonNoFreshness
		}
		rows = append(rows, r)
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			req := &http.Request{Method: method, Header: tt.reqHeader}
			if req.Header == nil {
				req.Header = http.Header{}
			}
			resp := &http.Response{StatusCode: status, Header: tt.respHeader}
			ok, reason := Storable(req, resp, tt.opts)
			if ok != tt.wantOK || reason != tt.wantReason {
				t.Errorf("Storable() = %v, %q; want %v, %q", ok, reason, tt.wantOK, tt.wantReason)
			}
		})
	}
}

func TestStrippedFields(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
		want []string
	}{
		{"§3.1 nothing to strip", hdr("Content-Type", "text/plain", "Cache-Control", "max-age=60"), nil},
		{"§3.1 Connection and the fields it lists (headers-omit-headers-listed-in-Connection)",
			hdr("Connection", "a, B", "A", "1", "B", "2", "C", "3"), []string{"Connection", "A", "B"}},
		{"§3.1 listed field absent from the header is not returned", hdr("Connection", "close"), []string{"Connection"}},
		{"§3.1 hop-by-hop fields", hdr("Keep-Alive", "timeout=5", "Proxy-Connection", "keep-alive", "Transfer-Encoding", "chunked", "Upgrade", "h2c", "TE", "trailers"),
			[]string{"Keep-Alive", "Proxy-Connection", "Te", "Transfer-Encoding", "Upgrade"}},
		{"§3.1 proxy authentication fields", hdr("Proxy-Authenticate", "Basic", "Proxy-Authentication-Info", "x"),
			[]string{"Proxy-Authenticate", "Proxy-Authentication-Info"}},
		{"§5.2.2.4 no-cache listed field (headers-omit-headers-listed-in-Cache-Control-no-cache-single)",
			hdr("Cache-Control", `no-cache="a"`, "A", "1", "B", "2", "Cache-Control", "max-age=3600"), []string{"A"}},
		{"§5.2.2.4 no-cache listed fields (headers-omit-headers-listed-in-Cache-Control-no-cache)",
			hdr("Cache-Control", `no-cache="a, b"`, "A", "1", "B", "2", "C", "3"), []string{"A", "B"}},
		{"§5.2.2.7 private listed fields", hdr("Cache-Control", `private="X-User", max-age=60`, "X-User", "alice"), []string{"X-User"}},
		{"policy Set-Cookie never stored", hdr("Set-Cookie", "a=b", "Set-Cookie2", "c=d"), []string{"Set-Cookie", "Set-Cookie2"}},
		{"§3.1 duplicates reported once", hdr("Connection", "Keep-Alive, keep-alive", "Keep-Alive", "x"), []string{"Connection", "Keep-Alive"}},
		{"§3.1 invalid Connection member ignored", hdr("Connection", "a b, c", "C", "1"), []string{"Connection", "C"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := StrippedFields(tt.h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StrippedFields() = %q; want %q", got, tt.want)
			}
		})
	}
}
