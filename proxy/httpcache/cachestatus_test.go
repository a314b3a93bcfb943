package httpcache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestCacheStatusString(t *testing.T) {
	for _, tt := range []struct {
		name string
		cs   CacheStatus
		want string
	}{
		{"RFC 9211 §2.1 hit with ttl", CacheStatus{Hit: true, TTL: 30 * time.Second, HasTTL: true}, "zerohop; hit; ttl=30"},
		{"RFC 9211 §2.2 miss, stored", CacheStatus{Fwd: FwdMiss, Stored: true}, "zerohop; fwd=miss; stored"},
		{"RFC 9211 §2.3 stale with fwd-status", CacheStatus{Fwd: FwdStale, FwdStatus: 304}, "zerohop; fwd=stale; fwd-status=304"},
		{"RFC 9211 §2.2 uri-miss", CacheStatus{Fwd: FwdURIMiss}, "zerohop; fwd=uri-miss"},
		{"RFC 9211 §2.8 bypass with token detail", CacheStatus{Fwd: FwdBypass, Detail: string(ReasonNoStore)}, "zerohop; fwd=bypass; detail=no-store"},
		{"RFC 9211 §2.8 detail that is not a token becomes a string", CacheStatus{Fwd: FwdBypass, Detail: "no store"}, `zerohop; fwd=bypass; detail="no store"`},
		{"RFC 9211 §2.8 detail starting with a digit is a string", CacheStatus{Fwd: FwdMiss, Detail: "1x"}, `zerohop; fwd=miss; detail="1x"`},
		{"RFC 9211 §2.7 key is a string, escaped", CacheStatus{Hit: true, Key: `GET https://a/"b"\c`}, `zerohop; hit; key="GET https://a/\"b\"\\c"`},
		{"RFC 8941 §3.3.3 non-ASCII in a string is percent-encoded", CacheStatus{Hit: true, Key: "/\xc3\xa9\n"}, `zerohop; hit; key="/%C3%A9%0A"`},
		{"RFC 9211 §2.4 negative ttl when stale, rounded down", CacheStatus{Hit: true, TTL: -1500 * time.Millisecond, HasTTL: true}, "zerohop; hit; ttl=-2"},
		{"RFC 9211 §2.4 zero ttl is sent", CacheStatus{Fwd: FwdStale, TTL: 0, HasTTL: true}, "zerohop; fwd=stale; ttl=0"},
		{"RFC 9211 §2.4 positive ttl truncated", CacheStatus{Hit: true, TTL: 1999 * time.Millisecond, HasTTL: true}, "zerohop; hit; ttl=1"},
		{"RFC 9211 §2 all forward parameters in order", CacheStatus{Cache: "edge", Fwd: FwdVaryMiss, FwdStatus: 200, TTL: time.Minute, HasTTL: true, Stored: true, Collapsed: true, Key: "k", Detail: "d"},
			`edge; fwd=vary-miss; fwd-status=200; ttl=60; stored; collapsed; key="k"; detail=d`},
		{"RFC 9211 §2.1 hit suppresses forward-only parameters", CacheStatus{Hit: true, Fwd: FwdStale, FwdStatus: 304, Stored: true, Collapsed: true}, "zerohop; hit"},
		{"RFC 9211 §2.6 collapsed", CacheStatus{Fwd: FwdMiss, FwdStatus: 200, Collapsed: true}, "zerohop; fwd=miss; fwd-status=200; collapsed"},
		{"RFC 9211 §2.3 fwd-status needs fwd", CacheStatus{FwdStatus: 200}, "zerohop"},
		{"RFC 9211 §2 cache id that is not a token", CacheStatus{Cache: "my cache", Hit: true}, `"my cache"; hit`},
		{"RFC 9211 §2 cache id token with colon and slash", CacheStatus{Cache: "ex:cache/1", Hit: true}, "ex:cache/1; hit"},
		{"RFC 9211 §2.2 request", CacheStatus{Fwd: FwdRequest, FwdStatus: 200}, "zerohop; fwd=request; fwd-status=200"},
		{"RFC 9211 §2.2 method", CacheStatus{Fwd: FwdMethod}, "zerohop; fwd=method"},
		{"RFC 9211 §2.2 partial", CacheStatus{Fwd: FwdPartial}, "zerohop; fwd=partial"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cs.String(); got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestAppendCacheStatus(t *testing.T) {
	hit := CacheStatus{Hit: true}
	for _, tt := range []struct {
		name string
		h    http.Header
		want []string
	}{
		{"RFC 9211 §2 first member", hdr(), []string{"zerohop; hit"}},
		{"RFC 9211 §2 appended after the upstream cache", hdr("Cache-Status", "OriginCache; hit; ttl=1100"), []string{"OriginCache; hit; ttl=1100, zerohop; hit"}},
		{"RFC 8941 §4.2 several lines are one list", hdr("Cache-Status", "A; hit", "Cache-Status", "B; fwd=miss"), []string{"A; hit, B; fwd=miss, zerohop; hit"}},
		{"RFC 8941 §4.2 empty and comma-trailing lines tolerated", hdr("Cache-Status", "", "Cache-Status", "A; hit, "), []string{"A; hit, zerohop; hit"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			AppendCacheStatus(tt.h, hit)
			if got := tt.h["Cache-Status"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Cache-Status = %q; want %q", got, tt.want)
			}
		})
	}
}
