package sidecar

import (
	"testing"

	"github.com/zerohop/zerohop/shm"
)

// TestHasURLPrefix compares a key's URL with a prefix across its parts.
func TestHasURLPrefix(t *testing.T) {
	k, _ := shm.SplitKey(shm.AppendKey(nil, "GET", "http", "catalog.test", "/items/42?x=1"))
	for _, tc := range []struct {
		prefix string
		want   bool
	}{
		{"", true}, {"ht", true}, {"http://", true}, {"http://cat", true}, {"http://catalog.test", true},
		{"http://catalog.test/items/", true}, {"http://catalog.test/items/42?x=1", true},
		{"https://", false}, {"http://catalog.testing", false}, {"http://catalog.test/users", false},
		{"http://catalog.test/items/42?x=12", false},
	} {
		if got := hasURLPrefix(k, tc.prefix); got != tc.want {
			t.Errorf("hasURLPrefix(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
}
