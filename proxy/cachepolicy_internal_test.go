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
