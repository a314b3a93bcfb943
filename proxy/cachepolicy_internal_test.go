package proxy

import (
	"testing"

	"github.com/zerohop/zerohop/config"
)

func TestNormalizeQuery(t *testing.T) {
	drop := &config.QueryKey{Drop: []string{"utm_source", "a b"}}
	keep := &config.QueryKey{Keep: []string{"id", "page"}, Sort: true}
	sorted := &config.QueryKey{Sort: true}
	for _, tt := range []struct {
		q        *config.QueryKey
		in, want string
	}{
		{drop, "/a?x=1&utm_source=m&y=2", "/a?x=1&y=2"},
		{drop, "/a?utm_source=m", "/a"},
		{drop, "/a?a+b=1&a%20b=2&ab=3", "/a?ab=3"},
		{drop, "/a", "/a"},
		{drop, "/a?", "/a"},
		{drop, "/a?x=1&&y", "/a?x=1&y"},
		{keep, "/a?page=2&q=x&id=7&id=1", "/a?id=1&id=7&page=2"},
		{keep, "/a?q=x", "/a"},
		{sorted, "/a?b=%2F&a=1&b=1", "/a?a=1&b=%2F&b=1"},
	} {
		got := normalizeQuery(tt.in, tt.q)
		if got != tt.want {
			t.Errorf("normalizeQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := normalizeQuery(got, tt.q); again != got {
			t.Errorf("not idempotent: %q -> %q -> %q", tt.in, got, again)
		}
	}
}

// FuzzNormalizeQuery: normalising is idempotent for every policy (the
// property that keeps a client's hit the sidecar's), and keeps every
// parameter a keep list names.
func FuzzNormalizeQuery(f *testing.F) {
	f.Add("/a?b=2&a=1&utm_source=x", "utm_source", true)
	f.Add("/a?%75tm=1&&x", "utm", false)
	f.Add("/?", "", true)
	f.Fuzz(func(t *testing.T, target, name string, sort bool) {
		for _, q := range []*config.QueryKey{{Drop: []string{name}, Sort: sort}, {Keep: []string{name}, Sort: sort}} {
			n := normalizeQuery(target, q)
			if again := normalizeQuery(n, q); again != n {
				t.Fatalf("%+v: %q -> %q -> %q", q, target, n, again)
			}
		}
	})
}
