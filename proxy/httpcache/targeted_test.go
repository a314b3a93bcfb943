package httpcache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestValidTargetedValue(t *testing.T) {
	for _, tt := range []struct {
		v  string
		ok bool
	}{
		{"max-age=60", true},
		{"no-store", true},
		{"max-age=60, stale-while-revalidate=30", true},
		{" max-age=60 ,private ", true},
		{`private="set-cookie"`, true},
		{"max-age=60;foo=bar", true},
		{"a=?1", true},
		{"", false},
		{"Max-Age=60", false}, // keys are lower case
		{"max-age=60,", false},
		{"max-age=60,,private", false},
		{"max-age=", false},
		{`max-age="60`, false},
		{"max-age=60 private", false},
		{"=60", false},
	} {
		if got := ValidTargetedValue(tt.v); got != tt.ok {
			t.Errorf("ValidTargetedValue(%q) = %v, want %v", tt.v, got, tt.ok)
		}
	}
}

// TestTargetedPrecedence: the first listed field with a valid, non-empty
// value replaces Cache-Control and Expires for the cache's decisions;
// invalid or empty ones are skipped; without any, Cache-Control applies.
func TestTargetedPrecedence(t *testing.T) {
	names := []string{"Zerohop-Cache-Control", "Cdn-Cache-Control"}
	now := time.Unix(1_700_000_000, 0)
	date := now.UTC().Format(http.TimeFormat)
	req, _ := http.NewRequest("GET", "http://a/", nil)
	for _, tt := range []struct {
		name     string
		h        http.Header
		storable bool
		lifetime time.Duration
		used     string
	}{
		{"cdn over no-store", http.Header{"Cache-Control": {"no-store"}, "Cdn-Cache-Control": {"max-age=60"}}, true, time.Minute, "max-age=60"},
		{"cdn over private", http.Header{"Cache-Control": {"private, max-age=600"}, "Cdn-Cache-Control": {"max-age=5"}}, true, 5 * time.Second, "max-age=5"},
		{"cdn no-store over public", http.Header{"Cache-Control": {"public, max-age=600"}, "Cdn-Cache-Control": {"no-store"}}, false, 0, "no-store"},
		{"zerohop before cdn", http.Header{"Cdn-Cache-Control": {"max-age=60"}, "Zerohop-Cache-Control": {"max-age=7"}}, true, 7 * time.Second, "max-age=7"},
		{"invalid zerohop skipped", http.Header{"Cdn-Cache-Control": {"max-age=60"}, "Zerohop-Cache-Control": {"Max-Age=7,"}}, true, time.Minute, "max-age=60"},
		{"empty skipped", http.Header{"Cache-Control": {"max-age=30"}, "Zerohop-Cache-Control": {" "}}, true, 30 * time.Second, ""},
		{"expires ignored", http.Header{"Expires": {now.Add(time.Hour).UTC().Format(http.TimeFormat)}, "Cdn-Cache-Control": {"must-revalidate"}}, true, 0, "must-revalidate"},
		{"lines joined", http.Header{"Cdn-Cache-Control": {"max-age=9", "must-revalidate"}}, true, 9 * time.Second, "max-age=9, must-revalidate"},
		{"none: cache-control", http.Header{"Cache-Control": {"max-age=30"}}, true, 30 * time.Second, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.h.Set("Date", date)
			pol := tt.h
			v, ok := SelectTargeted(tt.h, names)
			if v != tt.used || ok != (tt.used != "") {
				t.Fatalf("SelectTargeted = %q %v, want %q", v, ok, tt.used)
			}
			if ok {
				pol = TargetedPolicy(tt.h, v)
				if tt.h.Get("Cache-Control") != "" && pol.Get("Cache-Control") != v {
					t.Fatalf("policy Cache-Control %q", pol.Get("Cache-Control"))
				}
			}
			st, _ := Storable(req, &http.Response{StatusCode: 200, Header: pol}, StoreOptions{})
			if st != tt.storable {
				t.Errorf("storable %v, want %v", st, tt.storable)
			}
			if e := NewEntry(200, pol, now, now, FreshnessOptions{}); tt.storable && e.Lifetime != tt.lifetime {
				t.Errorf("lifetime %v, want %v", e.Lifetime, tt.lifetime)
			}
		})
	}
}

// FuzzTargeted: any field value is judged without panicking, and a value
// judged valid is one ParseCacheControl reads without complaint when it
// takes Cache-Control's place.
func FuzzTargeted(f *testing.F) {
	for _, s := range []string{"max-age=60", `private="a", no-store`, "a;b=?1", ",", "max-age=\"6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{"Cdn-Cache-Control": {v}, "Expires": {"0"}}
		got, ok := SelectTargeted(h, []string{"Cdn-Cache-Control"})
		if ok != ValidTargetedValue(v) && strings.TrimSpace(v) != "" {
			t.Fatalf("SelectTargeted(%q) = %v, ValidTargetedValue %v", v, ok, !ok)
		}
		if ok {
			p := TargetedPolicy(h, got)
			if p.Get("Expires") != "" || p.Get("Cache-Control") != v {
				t.Fatalf("policy %v for %q", p, v)
			}
			ParseCacheControl(p)
		}
	})
}
